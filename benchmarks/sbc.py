#!/usr/bin/env python
"""Simulation-based calibration of several families and designs on a Dask LocalCluster (issue 17).

    python benchmarks/sbc.py                       # every case, 100 simulations each
    python benchmarks/sbc.py --n-sims 200 --only gaussian_slope bernoulli   # merged into the results

Each case is a formula and family on a small simulated design (8 groups of 10 rows, one
normal predictor); :func:`hbstan.sbc` draws parameters and data from the prior predictive,
refits every data set on a 2-worker ``LocalCluster`` and tests the ranks' uniformity.
Writes ``benchmarks/results/sbc.md`` (per case: the report of ``SBCResult.to_markdown()``)
with ECDF-difference plots in ``docs/figures/sbc_<case>.png`` (where the repository keeps
its figures), and ``sbc.json``.

Not every family x design yet: every family with one linear predictor on a design with group
intercepts (and the Gaussian on three designs), and formulas for sigma and zi; the ordinal
and categorical families (whose simulated data sets can miss a category) and the other
designs are the next step. With ``--only`` the cases run replace theirs in the results.
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

# name: (formula, family, response generator on the linear predictor)
CASES = {
    "gaussian_intercept": ("y ~ x + (1 | g)", "gaussian"),
    "gaussian_slope": ("y ~ x + (1 + x | g)", "gaussian"),
    "gaussian_pooled": ("y ~ x", "gaussian"),
    "bernoulli": ("y ~ x + (1 | g)", "bernoulli"),
    "poisson": ("y ~ x + (1 | g)", "poisson"),
    "negbinomial": ("y ~ x + (1 | g)", "negbinomial"),
    "student": ("y ~ x", "student"),
    "lognormal": ("y ~ x + (1 | g)", "lognormal"),
    "binomial": ("y | trials(n) ~ x + (1 | g)", "binomial"),
    "gamma": ("y ~ x + (1 | g)", "gamma"),
    "beta": ("y ~ x + (1 | g)", "beta"),
    "zero_inflated_poisson": ("y ~ x + (1 | g)", "zero_inflated_poisson"),
    "zero_inflated_negbinomial": ("y ~ x + (1 | g)", "zero_inflated_negbinomial"),
    "hurdle_poisson": ("y ~ x + (1 | g)", "hurdle_poisson"),
    "hurdle_negbinomial": ("y ~ x + (1 | g)", "hurdle_negbinomial"),
    "hurdle_lognormal": ("y ~ x + (1 | g)", "hurdle_lognormal"),
    "gaussian_sigma_formula": ("y ~ x + (1 | g); sigma ~ x", "gaussian"),
    "zero_inflated_poisson_zi_formula": ("y ~ x + (1 | g); zi ~ x", "zero_inflated_poisson"),
}


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
    }.get(family, lambda: 1 + eta + rng.normal(size=eta.size))()
    return pd.DataFrame({"x": x, "g": [f"g{j}" for j in g], "y": y, "n": trials})


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-sims", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None, help=f"cases: {list(CASES)}")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from distributed import Client, LocalCluster

    names = args.only or list(CASES)
    out = HERE / "results"
    figures = HERE.parent / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    reports, summary = [], {}
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, Client(cluster) as client:
        for name in names:
            formula, family = CASES[name]
            m = hbstan.Model(formula, template(family), family=family)
            try:
                res = hbstan.sbc(m, n_sims=args.n_sims, seed=args.seed, client=client, progress=False)
            except Exception as err:  # a case that cannot run is reported, the others go on
                reports.append(f"## {name}\n\nfailed: {type(err).__name__}: {err}\n")
                summary[name] = {"error": str(err)}
                continue
            u = res.uniformity()
            axes = res.plot()
            fig = axes.reshape(-1)[0].figure
            fig.suptitle(f"{name}: {formula} ({family})", fontsize=10)
            fig.tight_layout()
            fig.savefig(figures / f"sbc_{name}.png", dpi=80)
            plt.close(fig)
            report = f"## {name}\n\n{res.to_markdown()}\n\n![{name}](../../docs/figures/sbc_{name}.png)\n"
            if family == "beta":
                report += beta_boundary_split(res)
            reports.append(report)
            summary[name] = {
                "formula": formula, "family": family, "ok": res.ok, "seconds": res.seconds,
                "failed_fits": len(res.failures), "divergent_fits": int(np.sum(np.nan_to_num(res.divergences) > 0)),
                "p_values": u["p_value"].round(4).to_dict(), "in_band": u["in_band"].to_dict(),
            }
            print(name, "uniform" if res.ok else "NOT uniform", f"{res.seconds:.0f} s", flush=True)
    total = time.perf_counter() - t_all
    old_json = out / "sbc.json"
    if args.only and old_json.exists():  # keep the other cases' results (and their reports)
        old = json.loads(old_json.read_text())
        old_md = (out / "sbc.md").read_text().split("\n## ")[1:]
        kept = {sec.split("\n", 1)[0]: "## " + sec for sec in old_md}
        summary = {**{k: v for k, v in old["cases"].items() if k not in summary}, **summary}
        new_reports = {r.split("\n", 1)[0][3:]: r for r in reports}
        reports = [new_reports.get(k) or kept.get(k, "") for k in summary]
        total = old.get("seconds", 0.0) + total
    head = [
        f"# Simulation-based calibration ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)",
        "",
        f"`python benchmarks/sbc.py`: {args.n_sims} simulations per case, seed {args.seed}, on a 2-worker Dask "
        f"`LocalCluster` ({os.cpu_count()} cores shared with other jobs); {total:.0f} s in all.",
        "",
        "| case | formula | family | uniform | fits with divergences | failed fits | seconds |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for name, s in summary.items():
        if "error" in s:
            head.append(f"| {name} | | | error | | | |")
            continue
        formula = s["formula"].replace("|", "\\|")
        head.append(
            f"| {name} | `{formula}` | {s['family']} | {'yes' if s['ok'] else '**no**'} | "
            f"{s['divergent_fits']} | {s['failed_fits']} | {s['seconds']:.0f} |"
        )
    (out / "sbc.md").write_text("\n".join(head) + "\n\n" + "\n".join(reports))
    (out / "sbc.json").write_text(json.dumps({"n_sims": args.n_sims, "seed": args.seed, "seconds": total, "cases": summary}, indent=2))
    print("\n".join(head))


if __name__ == "__main__":
    main()
