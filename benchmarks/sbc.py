#!/usr/bin/env python
"""Simulation-based calibration of every family x design on a Dask LocalCluster (issue 17).

    python benchmarks/sbc.py                       # every case, 100 simulations each
    python benchmarks/sbc.py --n-sims 200 --only gaussian_slope bernoulli   # merged into the results
    python benchmarks/sbc.py --family poisson      # the cases of one family

Each case is a formula and family on a small simulated design (8 groups of 10 rows, one
normal predictor); :func:`hbstan.sbc` draws parameters and data from the prior predictive,
refits every data set on a 2-worker ``LocalCluster`` and tests the ranks' uniformity.
Writes ``benchmarks/results/sbc.md`` (per case: the report of ``SBCResult.to_markdown()``)
with ECDF-difference plots in ``docs/figures/sbc_<case>.png`` (where the repository keeps
its figures), and ``sbc.json``.

The cases: every family (``cumulative`` with its logit and probit links) on three designs,
pooled (``y ~ x``), group intercepts (``y ~ x + (1 | g)``) and a correlated intercept and
slope (``y ~ x + (1 + x | g)``; ``categorical``, which has no correlated terms yet:
independent ones, ``(1 + x || g)``), and formulas for sigma and zi. The programs of the cases run
are compiled first, two at a time on the cluster's workers. With ``--only`` or ``--family``
the cases run replace theirs in the results and the others are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import hbstan

HERE = Path(__file__).resolve().parent

# the designs of the grid: the formula's right-hand side
DESIGNS = {"pooled": "x", "intercept": "x + (1 | g)", "correlated": "x + (1 + x | g)"}
# the families (with a link where it is not the default), in the order of the report
FAMILY_CASES = [
    ("gaussian", None), ("student", None), ("bernoulli", None), ("binomial", None), ("poisson", None),
    ("negbinomial", None), ("gamma", None), ("lognormal", None), ("beta", None), ("zero_inflated_poisson", None),
    ("zero_inflated_negbinomial", None), ("hurdle_poisson", None), ("hurdle_negbinomial", None),
    ("hurdle_lognormal", None), ("cumulative", "logit"), ("cumulative", "probit"), ("categorical", None),
]
# names of the cases of earlier runs, kept so that their rows stay theirs
OLD_NAMES = {
    ("gaussian", "intercept"): "gaussian_intercept", ("gaussian", "correlated"): "gaussian_slope",
    ("student", "pooled"): "student", ("student", "intercept"): "student_intercept",
}


def _cases() -> dict[str, dict]:
    """name: {"formula", "family", "link", "design"}: every family x design, then the distributional formulas."""
    out = {}
    for family, link in FAMILY_CASES:
        label = family if link is None else f"{family}_{link}"
        lhs = "y | trials(n)" if family == "binomial" else "y"
        for design, rhs in DESIGNS.items():
            if family == "categorical" and design == "correlated":  # not supported: independent slopes
                design, rhs = "slopes", "x + (1 + x || g)"
            default = label if design == "intercept" else f"{label}_{design}"
            name = OLD_NAMES.get((family, design), default)
            out[name] = {"formula": f"{lhs} ~ {rhs}", "family": family, "link": link, "design": design}
    out["gaussian_sigma_formula"] = {
        "formula": "y ~ x + (1 | g); sigma ~ x", "family": "gaussian", "link": None, "design": "intercept; sigma ~ x",
    }
    out["zero_inflated_poisson_zi_formula"] = {
        "formula": "y ~ x + (1 | g); zi ~ x", "family": "zero_inflated_poisson", "link": None,
        "design": "intercept; zi ~ x",
    }
    return out


CASES = _cases()

def template(family: str, seed: int = 1, J: int = 8, n: int = 10) -> pd.DataFrame:
    """A design with a plausible response: the response sets the default priors' scales."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    eta = 0.5 * x + rng.normal(0, 0.5, J)[g]
    trials = rng.integers(5, 15, J * n)
    zero = rng.random(J * n) < 0.3  # the zero part of the zero-inflated and hurdle families
    counts = rng.poisson(np.exp(1 + eta))
    y = {
        "bernoulli": lambda: rng.binomial(1, 1 / (1 + np.exp(-eta))),
        "binomial": lambda: rng.binomial(trials, 1 / (1 + np.exp(-eta))),
        "poisson": lambda: counts,
        "negbinomial": lambda: rng.negative_binomial(5, 5 / (5 + np.exp(1 + eta))),
        "lognormal": lambda: np.exp(1 + eta + rng.normal(0, 0.5, eta.size)),
        "gamma": lambda: rng.gamma(5.0, np.exp(1 + eta) / 5.0),
        "beta": lambda: rng.beta(10 / (1 + np.exp(-eta)), 10 / (1 + np.exp(eta))),
        "zero_inflated_poisson": lambda: np.where(zero, 0, counts),
        "zero_inflated_negbinomial": lambda: np.where(zero, 0, counts),
        "hurdle_poisson": lambda: np.where(zero, 0, counts + 1),
        "hurdle_negbinomial": lambda: np.where(zero, 0, counts + 1),
        "hurdle_lognormal": lambda: np.where(zero, 0.0, np.exp(1 + eta + rng.normal(0, 0.5, eta.size))),
        "cumulative": lambda: 1 + np.searchsorted([-1.0, 0.0, 1.0], eta + rng.logistic(size=eta.size)),  # 4 ordered
        "categorical": lambda: categories(rng, eta, g, J),  # 3 unordered
    }.get(family, lambda: 1 + eta + rng.normal(size=eta.size))()
    return pd.DataFrame({"x": x, "g": [f"g{j}" for j in g], "y": y, "n": trials})


def categories(rng: np.random.Generator, eta: np.ndarray, g: np.ndarray, J: int) -> np.ndarray:
    """Three unordered categories by a multinomial logit: category 1 the reference."""
    logits = np.column_stack([np.zeros_like(eta), eta, -eta + rng.normal(0, 0.5, J)[g]])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return 1 + (rng.random(eta.size)[:, None] > p.cumsum(axis=1)).sum(axis=1)


def beta_boundary_split(res: hbstan.SBCResult) -> str:
    """The beta SBC split by whether a simulated data set has a row within 1e-12 of 0 or 1.

    Ranks are uniform given the data, so each data-chosen subset is a valid SBC of its own.
    Near 1 a double resolves y only to 1.1e-16 (a draw of 1 - 1e-30 is stored as 1 - 1.1e-16,
    and log(1 - y) loses most of its value), so such data sets carry less information than the
    simulation says.
    """
    y = res.simulated
    edge = ((y >= 1 - 1e-12) | (y <= 1e-12)).any(axis=1)
    lines = ["### beta: simulations split by their data\n"]
    for what, mask in (("no row within 1e-12 of 0 or 1", ~edge), ("some row within 1e-12 of 0 or 1", edge)):
        sub = res.subset(mask)
        u = sub.uniformity()
        p = ", ".join(f"`{k}` {v:.3g}" for k, v in u["p_value"].items())
        lines.append(f"- {what}: {int(mask.sum())} simulations, uniform: {'yes' if sub.ok else '**no**'} (p-values {p})")
    return "\n".join(lines) + "\n"


COUNT_FAMILIES = {"poisson", "negbinomial", "zero_inflated_poisson", "zero_inflated_negbinomial", "hurdle_poisson",
                  "hurdle_negbinomial"}


def count_scale_split(res: hbstan.SBCResult, name: str, limit: float = 1e5) -> str:
    """A count SBC split by whether a simulated data set's largest count exceeds ``limit``.

    The default priors on the log scale put some simulated data sets' counts in the millions;
    there the posterior is so concentrated (and the non-centered terms pinned from the template
    data likely the wrong geometry) that 2 x 200 draws after 200 warm-up can leave chains stuck
    apart. The split is by the data alone, so each part is an SBC of its own.
    """
    big = res.simulated.max(axis=1) > limit
    rhat = np.array([any("R-hat" in w for w in ws) for ws in res.fit_warnings or [[]] * len(big)])
    extreme = ((res.ranks == 0) | (res.ranks == res.max_rank)).any(axis=1).to_numpy()
    lines = [
        f"### {name}: simulations split by their data\n",
        f"Largest simulated count: median {np.median(res.simulated.max(axis=1)):.3g}, maximum "
        f"{res.simulated.max():.3g}. Fits with an R-hat warning: {int(rhat.sum())} of {len(big)}; simulations with "
        f"a rank at 0 or {res.max_rank} (every draw on one side of the truth): {int(extreme.sum())}, "
        f"{int((extreme & big).sum())} of them with counts above {limit:g}.\n",
    ]
    for what, mask in ((f"largest count at most {limit:g}", ~big), (f"largest count above {limit:g}", big)):
        if mask.sum() < 10:
            lines.append(f"- {what}: {int(mask.sum())} simulations (too few to test)")
            continue
        sub = res.subset(mask)
        u = sub.uniformity()
        p = ", ".join(f"`{k}` {v:.3g}" for k, v in u["p_value"].items())
        lines.append(f"- {what}: {int(mask.sum())} simulations, uniform: {'yes' if sub.ok else '**no**'} (p-values {p})")
    return "\n".join(lines) + "\n"


def model(name: str) -> hbstan.Model:
    """The model of a case on its template design."""
    case = CASES[name]
    link = {"link": case["link"]} if case["link"] else {}
    return hbstan.Model(case["formula"], template(case["family"]), family=case["family"], **link)


def compile_case(name: str) -> float:
    """Compile a case's programs (the fitted one and, for a centered model, the non-centered one of its prior draws)."""
    from hbstan.backend import compiled_model

    t0 = time.perf_counter()
    m = model(name)
    compiled_model(m.program())
    if any(blk.centered for blk in m.design.blocks):
        compiled_model(m.replace(centered=False).program())
    return time.perf_counter() - t0


def _table_row(name: str, s: dict) -> str:
    if "error" in s:
        return f"| {name} | | | | error | | | | | |"
    formula = s["formula"].replace("|", "\\|")
    family = s["family"] + (f" ({s['link']})" if s.get("link") else "")
    return (
        f"| {name} | `{formula}` | {family} | {s.get('n_sims', '')} | {'yes' if s['ok'] else '**no**'} | "
        f"{s['divergent_fits']} | {s['failed_fits']} | {s.get('dropped', 0)} | {s.get('prior', 'model')} | "
        f"{s['seconds']:.0f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-sims", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None, help=f"cases: {list(CASES)}")
    ap.add_argument("--family", nargs="*", default=None, help="every case of these families")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from distributed import Client, LocalCluster

    names = list(args.only or [])
    names += [k for k, c in CASES.items() if args.family and c["family"] in args.family and k not in names]
    unknown = [k for k in names if k not in CASES]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; valid cases: {list(CASES)}")
    partial = bool(names)
    names = names or list(CASES)
    out = HERE / "results"
    figures = HERE.parent / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    load_start = os.getloadavg()
    reports, summary = {}, {}
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, Client(cluster) as client:
        # the programs first, two compiles at a time on the workers (they share the cache)
        t_compile = time.perf_counter()
        compiled = client.gather(client.map(compile_case, names, pure=False), errors="skip")
        t_compile = time.perf_counter() - t_compile
        print(f"compiled {len(compiled)} cases' programs in {t_compile:.0f} s", flush=True)
        for name in names:
            case = CASES[name]
            formula, family = case["formula"], case["family"]
            try:
                m = model(name)
                res = hbstan.sbc(m, n_sims=args.n_sims, seed=args.seed, client=client, progress=False)
            except Exception as err:  # a case that cannot run is reported, the others go on
                reports[name] = f"## {name}\n\nfailed: {type(err).__name__}: {err}\n"
                summary[name] = {"error": str(err)}
                print(name, "failed:", err, flush=True)
                continue
            u = res.uniformity()
            axes = res.plot()
            fig = axes.reshape(-1)[0].figure
            title = family + (f", {case['link']}" if case["link"] else "")
            fig.suptitle(f"{name}: {formula} ({title})", fontsize=10)
            fig.tight_layout()
            fig.savefig(figures / f"sbc_{name}.png", dpi=60 if u.shape[0] > 8 else 80)
            plt.close(fig)
            report = f"## {name}\n\n{res.to_markdown()}\n\n![{name}](../../docs/figures/sbc_{name}.png)\n"
            if family == "beta":
                report += beta_boundary_split(res)
            elif family in COUNT_FAMILIES and not res.ok:
                report += count_scale_split(res, name)
            reports[name] = report
            summary[name] = {
                "formula": formula, "family": family, "link": case["link"], "design": case["design"],
                "n_sims": len(res.ranks), "ok": res.ok, "seconds": res.seconds,
                "failed_fits": len(res.failures), "divergent_fits": int(np.sum(np.nan_to_num(res.divergences) > 0)),
                "dropped": res.settings.get("dropped", 0),
                "prior": "non-centered" if res.settings.get("prior_program") == "non-centered" else "model",
                "p_values": u["p_value"].round(4).to_dict(), "in_band": u["in_band"].to_dict(),
            }
            print(name, "uniform" if res.ok else "NOT uniform", f"{res.seconds:.0f} s", flush=True)
    total = time.perf_counter() - t_all
    run = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "cases": names, "n_sims": args.n_sims,
        "seconds": round(total, 1), "compile_seconds": round(t_compile, 1),
        "load_average_start": [round(x, 2) for x in load_start], "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    old_json = out / "sbc.json"
    runs = [run]
    if partial and old_json.exists():  # keep the other cases' results (and their reports)
        old = json.loads(old_json.read_text())
        old_md = (out / "sbc.md").read_text().split("\n## ")[1:]
        kept = {sec.split("\n", 1)[0]: "## " + sec for sec in old_md}
        for k, v in old["cases"].items():
            if k not in summary and k in CASES:  # (cases no longer defined are dropped)
                summary[k] = {"n_sims": old.get("n_sims"), **v}
                reports[k] = kept.get(k, "")
        runs = old.get("runs", [{"date": "2026-11-26 21:43", "cases": list(old["cases"]), "n_sims": old.get("n_sims"),
                                 "seconds": old.get("seconds")}]) + runs
    order = [k for k in CASES if k in summary] + [k for k in summary if k not in CASES]
    seconds = sum(r["seconds"] or 0 for r in runs)
    n_ok = sum(1 for k in order if summary[k].get("ok"))
    head = [
        f"# Simulation-based calibration (last run {run['date']} UTC)",
        "",
        f"`python benchmarks/sbc.py` (here in {len(runs)} runs, a family at a time with `--only`): seed {args.seed}, "
        f"on a 2-worker Dask `LocalCluster` ({os.cpu_count()} cores shared with other jobs); {seconds:.0f} s in all, "
        f"compiles included. {len(order)} cases, {n_ok} uniform. Per case: each simulated data set refitted with "
        "2 chains x 200 draws after 200 warm-up; `dropped`: simulated data sets that missed a category, replaced by "
        "further prior draws; `prior`: the program of the prior draws (non-centered where the fitted program "
        "centers its group effects).",
        "",
        "| case | formula | family | simulations | uniform | fits with divergences | failed fits | dropped | prior | seconds |",
        "|---|---|---|---:|---|---:|---:|---:|---|---:|",
    ]
    head += [_table_row(k, summary[k]) for k in order]
    head += ["", "Runs (load average: 1, 5 and 15 minutes, at the start and the end):", ""]
    for r in runs:
        load = (f"; load {r['load_average_start']} -> {r['load_average_end']}" if "load_average_start" in r else "")
        head.append(f"- {r['date']}: {len(r['cases'])} cases, {r['seconds']:.0f} s{load}")
    (out / "sbc.md").write_text("\n".join(head) + "\n\n" + "\n".join(reports[k] for k in order))
    (out / "sbc.json").write_text(json.dumps(
        {"seed": args.seed, "seconds": seconds, "runs": runs, "cases": {k: summary[k] for k in order}}, indent=2
    ))
    print("\n".join(head))


if __name__ == "__main__":
    main()
