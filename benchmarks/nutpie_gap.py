"""What the "at least 2x nutpie" goal of issue 19 would take on each GLMM row.

    python benchmarks/nutpie_gap.py [--results benchmarks/results/glmm_all.json] [--measure | --keep-measured]

Part 1 reads a ``run.py`` result file (no sampling) and asks, per row: for hbstan's ESS/s to
be twice nutpie's, how long may hbstan's whole fit take, and how much faster would CmdStan's
sampler have to be, given the time hbstan spends outside the sampler (building the model,
starting CmdStan, reading its CSV files, building the InferenceData)? Twice: once at
hbstan's measured ESS, once as if hbstan's draws were as effective as nutpie's.

Part 2 (``--measure``) samples each row again: hbstan at CmdStan's default step-size target
(``adapt_delta`` 0.8) and at 0.7, and nutpie through hbstan's PyMC backend (target 0.8), with
the same data, 2 chains x (1000 + 1000) and seeds 1-3. Reported are medians of the minimum
bulk ESS over every posterior quantity, the mean acceptance statistic of the draws and the
step size. The question: why do nutpie's draws carry more ESS per draw at the same number
of leapfrog steps?

Writes ``benchmarks/results/<name>.md`` and ``.json`` (``--name``, default ``nutpie_gap``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_lib as bl  # noqa: E402
from run import CASES  # noqa: E402

SEEDS = (1, 2, 3)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return bl.median([r.get(key) for r in runs])


def floor_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per GLMM row with hbstan and nutpie results: the wall and sampler time the goal allows.

    hbstan's time outside the sampler is taken from its re-fit in the same process (``run.py``
    times one after each fresh-process fit): the fresh-process fit also waits for ArviZ's
    import, which the nutpie engine has done (with PyMC's) before its clock starts.
    """
    rows = []
    for case in CASES:
        h, n = results["rows"].get(f"{case}/hbstan"), results["rows"].get(f"{case}/nutpie")
        if not case.startswith("glmm_") or not h or not n or not h["runs"] or not n["runs"]:
            continue
        hw, hs, he = (_median(h["runs"], k) for k in ("wall_s", "sampler_s", "min_ess_bulk"))
        ne = _median(n["runs"], "min_ess_bulk")
        target = 2 * _median(n["runs"], "ess_per_s")  # ESS/s hbstan needs (run.py's medians)
        refit_wall = _median(h["runs"], "refit_wall_s")
        outside = _median(h["runs"], "refit_python_overhead_s")  # re-fit: wall minus CmdStan's run
        row = {"case": case, "hbstan_ess_per_s": _median(h["runs"], "ess_per_s"), "nutpie_ess_per_s": target / 2,
               "target_ess_per_s": target, "hbstan_wall_s": hw, "hbstan_sampler_s": hs,
               "hbstan_outside_sampler_s_first_fit": hw - hs, "hbstan_refit_wall_s": refit_wall,
               "hbstan_refit_ess_per_s": he / refit_wall, "hbstan_outside_sampler_s": outside,
               "hbstan_min_ess": he, "nutpie_min_ess": ne}
        for label, ess in (("at_hbstan_ess", he), ("at_nutpie_ess", ne)):
            wall = ess / target
            sampler = wall - outside
            row[f"wall_allowed_s_{label}"] = wall
            row[f"sampler_allowed_s_{label}"] = sampler
            row[f"sampler_speedup_needed_{label}"] = hs / sampler if sampler > 0 else None
        rows.append(row)
    return rows


def measure(cases: list[str]) -> list[dict[str, Any]]:
    """hbstan at adapt_delta 0.8 and 0.7, and nutpie, per row: ESS, acceptance, step size."""
    from glmm_data import simulate

    import hbstan
    from hbstan.pymc_backend import sample_pymc

    warnings.filterwarnings("ignore")
    logging.getLogger("cmdstanpy").setLevel(logging.ERROR)
    out = []
    for case in cases:
        spec = CASES[case]
        df = simulate(spec["sim"])
        for engine, delta in (("hbstan", 0.8), ("hbstan", 0.7), ("nutpie", 0.8)):
            runs = []
            for seed in SEEDS:
                m = hbstan.Model(spec["formula"], data=df, **spec["options"])
                kw = dict(chains=2, draws=1000, warmup=1000, seed=seed, adapt_delta=delta, pointwise=False)
                if engine == "hbstan":
                    fit = m.sample(show_progress=False, **kw)
                    sample_s = fit.timings["sample"]
                else:
                    fit = sample_pymc(m, nuts_sampler="nutpie", **kw)
                    sample_s = fit.timings.get("sample")
                ss = fit.idata.sample_stats  # Stan's names with either backend
                runs.append({
                    "min_ess_bulk": bl.ess_rhat(bl.posterior_arrays(fit.idata))["min_ess_bulk"],
                    "accept": float(ss["acceptance_rate"].mean()),
                    "step_size": float(ss["step_size"].mean()),
                    "leapfrog_per_draw": float(ss["n_steps"].mean()),
                    "divergences": int(ss["diverging"].sum()),
                    "sample_s": sample_s,
                })
            row = {"case": case, "engine": engine, "adapt_delta": delta, "runs": runs}
            row.update({k: _median(runs, k) for k in runs[0] if k != "divergences"})
            row["divergences"] = sum(r["divergences"] for r in runs)
            out.append(row)
            print(f"{case} {engine} {delta}: min ESS {row['min_ess_bulk']:.0f}, accept {row['accept']:.3f}, "
                  f"step {row['step_size']:.3f}, leapfrog/draw {row['leapfrog_per_draw']:.1f}", flush=True)
    return out


def _f(x: Any, fmt: str = "{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def report(src: str, rows: list[dict[str, Any]], measured: list[dict[str, Any]] | None) -> str:
    lines = [
        "# What 2x nutpie would take (issue 19)",
        "",
        f"Part 1 from `{src}` (medians of its runs; no sampling here). ESS/s as `run.py` reports it (each fit in "
        "a fresh process), and at the wall time of hbstan's re-fit in the same process, which does not wait for "
        "ArviZ's import (the nutpie engine imports ArviZ with PyMC before its clock starts). *Outside* is the "
        "re-fit's time outside CmdStan's run: building the model, writing the data, reading the CSV files, the "
        "InferenceData, the pointwise log-likelihood and the checks. *Allowed* is the wall time at which hbstan's "
        "ESS/s would be twice nutpie's; *speed-up* is how much faster CmdStan's sampler would have to run for "
        "that, with the outside time unchanged (\"impossible\": the outside time alone is over the allowance).",
        "",
        "| row | hbstan ESS/s | at re-fit wall | nutpie ESS/s | needed | hbstan sampler s | outside s "
        "| allowed wall s (at hbstan's ESS) | sampler speed-up | allowed wall s (at nutpie's ESS) | sampler speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = []
        for label in ("at_hbstan_ess", "at_nutpie_ess"):
            s = r[f"sampler_speedup_needed_{label}"]
            cells += [_f(r[f"wall_allowed_s_{label}"]), "impossible" if s is None else f"{s:.1f}x"]
        lines.append(
            f"| {r['case']} | {r['hbstan_ess_per_s']:.0f} | {r['hbstan_refit_ess_per_s']:.0f} | "
            f"{r['nutpie_ess_per_s']:.0f} | {r['target_ess_per_s']:.0f} "
            f"| {r['hbstan_sampler_s']:.2f} | {r['hbstan_outside_sampler_s']:.2f} | " + " | ".join(cells) + " |"
        )
    if measured:
        lines += [
            "",
            "## Part 2: ESS per draw and the step size",
            "",
            "Same data, 2 chains x (1000 + 1000), seeds " + ", ".join(map(str, SEEDS)) + "; medians. "
            "`accept` is the mean acceptance statistic of the post-warm-up draws.",
            "",
            "| row | engine | target accept | min bulk ESS | accept | step size | leapfrog/draw | divergences |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in measured:
            lines.append(
                f"| {r['case']} | {r['engine']} | {r['adapt_delta']} | {r['min_ess_bulk']:.0f} | {_f(r['accept'], '{:.3f}')} "
                f"| {_f(r['step_size'], '{:.3f}')} | {_f(r['leapfrog_per_draw'], '{:.1f}')} | {r['divergences']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(HERE / "results" / "glmm_all.json"))
    ap.add_argument("--measure", action="store_true", help="also sample each row (part 2)")
    ap.add_argument("--cases", default="", help="comma-separated rows for part 2 (default: those below 2x nutpie)")
    ap.add_argument("--keep-measured", action="store_true", help="part 2 from the existing <name>.json, not sampled again")
    ap.add_argument("--name", default="nutpie_gap")
    args = ap.parse_args()
    rows = floor_rows(json.loads(Path(args.results).read_text()))
    out = HERE / "results" / args.name
    measured = None
    if args.keep_measured:
        measured = json.loads(out.with_suffix(".json").read_text())["measured"]
    elif args.measure:
        cases = [c for c in args.cases.split(",") if c] or [
            r["case"] for r in rows if r["hbstan_ess_per_s"] < r["target_ess_per_s"]
        ]
        measured = measure(cases)
    src = Path(args.results)
    src = src.relative_to(ROOT) if src.is_absolute() and src.is_relative_to(ROOT) else src
    md = report(str(src), rows, measured)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps({"floor": rows, "measured": measured}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
