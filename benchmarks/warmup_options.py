"""Issue 19's sampler candidates on the GLMM rows: a dense metric, Pathfinder inits, a shorter warm-up.

    python benchmarks/warmup_options.py [--cases glmm_binomial,...] [--seeds 1,2,3]

For each row of ``run.py`` (data from ``glmm_data.py``), hbstan's specialized program (compiled
beforehand into hbstan's cache) is sampled with 2 chains x 1000 draws in these variants:

* ``default``: CmdStan's defaults (diagonal metric, 1000 warm-up iterations, random inits);
* ``dense``: ``metric="dense_e"`` (the issue's "dense metric adaptation"; CmdStan's is dense
  over all parameters, not only the population-level block). Skipped where the program has
  more than ``DENSE_MAX`` parameters: on the binomial row (634) one fit ran over 10 minutes,
  against 3 s with the diagonal metric, and was stopped;
* ``pathfinder``: inits from CmdStan's Pathfinder (``CmdStanModel.pathfinder``, its defaults),
  one approximate draw per chain; its run time is added to the sampler's;
* ``pathfinder + 300 warm-up`` and ``300 warm-up``: the same with 300 warm-up iterations (what
  Pathfinder's inits might make safe), and the shorter warm-up alone as its control.

Reported per row and variant, medians over the seeds: min bulk ESS over every posterior
quantity, CmdStan's sampler seconds (the slower chain; plus Pathfinder's), min ESS per second
of those, leapfrog steps per draw, divergences (summed) and the largest R-hat. Wall-clock
figures move with the machine's load: compare variants within a run.

Writes ``benchmarks/results/<name>.md`` and ``.json`` (``--name``, default ``warmup_options``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_lib as bl  # noqa: E402
from glmm_data import simulate  # noqa: E402
from run import CASES  # noqa: E402

DENSE_MAX = 200

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "dense": {"metric": "dense_e"},
    "pathfinder": {"pathfinder": True},
    "pathfinder + 300 warm-up": {"pathfinder": True, "warmup": 300},
    "300 warm-up": {"warmup": 300},
}


def n_parameters(case: str) -> int:
    """The number of unconstrained parameters of the row's program (the length of CmdStan's metric)."""
    import hbstan

    spec = CASES[case]
    m = hbstan.Model(spec["formula"], data=simulate(spec["sim"]), **spec["options"])
    fit = m.sample(chains=1, draws=1, warmup=10, seed=1, show_progress=False, pointwise=False, program="specialized")
    return int(fit.stan_fit.inv_metric.shape[-1])


def one_run(case: str, variant: str, seed: int) -> dict[str, Any]:
    """One fit of ``case`` in ``variant`` with ``seed``."""
    import hbstan
    from hbstan.backend import compiled_model, quiet_cmdstanpy

    spec = CASES[case]
    opts = dict(VARIANTS[variant])
    m = hbstan.Model(spec["formula"], data=simulate(spec["sim"]), **spec["options"])
    pf_s = 0.0
    kw: dict[str, Any] = {}
    if opts.pop("pathfinder", False):
        cm = compiled_model(m.program())
        t = time.perf_counter()
        with quiet_cmdstanpy(logging.ERROR):
            pf = cm.pathfinder(data=m.stan_data_for(), seed=seed, show_console=False)
        kw["inits"] = pf.create_inits(seed=seed, chains=2)
        pf_s = time.perf_counter() - t
    warmup = opts.pop("warmup", 1000)
    fit = m.sample(chains=2, draws=1000, warmup=warmup, seed=seed, show_progress=False, pointwise=False,
                   program="specialized", **kw, **opts)
    ct = bl.cmdstan_times(fit.stan_fit)
    diag = bl.ess_rhat(bl.posterior_arrays(fit.idata))
    ess, rhat = diag["min_ess_bulk"], diag["max_rhat"]
    ss = fit.idata.sample_stats
    seconds = ct["sampler_s"] + pf_s
    return {
        "min_ess_bulk": ess, "max_rhat": rhat, "sampler_s": ct["sampler_s"], "pathfinder_s": pf_s,
        "seconds": seconds, "ess_per_s": ess / seconds, "leapfrog_per_draw": float(ss["n_steps"].mean()),
        "divergences": int(ss["diverging"].sum()),
    }


def report(rows: list[dict[str, Any]], seeds: list[int], load: tuple[Any, Any]) -> str:
    lines = [
        "# Sampler candidates of issue 19 on the GLMM rows",
        "",
        f"`python benchmarks/warmup_options.py`: 2 chains x 1000 draws, seeds {', '.join(map(str, seeds))}, medians "
        f"(divergences summed over the seeds). Load average {load[0]} at the start, {load[1]} at the end. *Seconds*: "
        "CmdStan's sampler time of the slower chain, plus Pathfinder's run where it gave the inits; *ESS/s* = min bulk "
        "ESS / seconds; *vs default*: that ratio against the row's default.",
        "",
        "| row | parameters | variant | min bulk ESS | seconds | ESS/s | vs default | leapfrog/draw | divergences | max R-hat |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {r["case"]: r["ess_per_s"] for r in rows if r["variant"] == "default"}
    for r in sorted(rows, key=lambda r: (list(CASES).index(r["case"]), list(VARIANTS).index(r["variant"]))):
        ratio = r["ess_per_s"] / base[r["case"]] if r["case"] in base else None
        lines.append(
            f"| {r['case']} | {r['parameters']} | {r['variant']} | {r['min_ess_bulk']:.0f} | {r['seconds']:.2f} | {r['ess_per_s']:.0f} | "
            f"{'–' if ratio is None else f'{ratio:.2f}x'} | {r['leapfrog_per_draw']:.1f} | {r['divergences']} | "
            f"{r['max_rhat']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(c for c in CASES if c.startswith("glmm_")))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--name", default="warmup_options")
    ap.add_argument("--append", action="store_true", help="keep the other rows of the existing <name>.json")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("cmdstanpy").setLevel(logging.ERROR)
    logging.getLogger("hbstan").setLevel(logging.ERROR)
    seeds = [int(s) for s in args.seeds.split(",")]
    load0 = [round(x, 2) for x in os.getloadavg()]
    rows = []
    out = HERE / "results" / args.name
    if args.append:  # the rows of an earlier run, but for those measured again now
        again = {(c, v) for c in args.cases.split(",") for v in args.variants.split(",")}
        rows = [r for r in json.loads(out.with_suffix(".json").read_text())["rows"] if (r["case"], r["variant"]) not in again]
    for case in args.cases.split(","):
        size = n_parameters(case)
        for variant in args.variants.split(","):
            if variant == "dense" and size > DENSE_MAX:
                print(f"{case} / dense: skipped ({size} parameters)", flush=True)
                continue
            runs = [one_run(case, variant, s) for s in seeds]
            row = {"case": case, "variant": variant, "runs": runs}
            row.update({k: bl.median([r[k] for r in runs]) for k in runs[0] if k != "divergences"})
            row["divergences"] = sum(r["divergences"] for r in runs)
            row["max_rhat"] = max(r["max_rhat"] for r in runs)
            rows.append(row)
            row["parameters"] = size
            out.with_suffix(".json").write_text(json.dumps({"seeds": seeds, "rows": rows}, indent=1))  # so far
            print(f"{case} / {variant}: min ESS {row['min_ess_bulk']:.0f}, {row['seconds']:.2f} s, "
                  f"{row['ess_per_s']:.0f} ESS/s, div {row['divergences']}, R-hat {row['max_rhat']:.3f}", flush=True)
    load1 = [round(x, 2) for x in os.getloadavg()]
    md = report(rows, seeds, (load0, load1))
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps({"seeds": seeds, "load": [load0, load1], "rows": rows}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
