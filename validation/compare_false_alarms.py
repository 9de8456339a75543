"""False alarms of hbstan.compare_fits: how often two correct fits of one model "disagree".

Two cases, each repeated with fresh seeds:

* ``small``: a small hierarchical Gaussian model (``y ~ x + (1 | g)``, 8 groups, 80 rows, a
  new data set per repetition: one program, the data are data), fitted twice with CmdStan,
  2 chains x 300 draws each, judged by the short-run bars of the examples' quick runs (R-hat
  <= 1.05, bulk ESS >= 50: at 600 draws, R-hat <= 1.01 often fails on a group effect);
* ``heavy``: example 8's grouped means with a half-Cauchy(5) group SD, fitted once with the
  group effects integrated out and once sampled non-centered (the PyMC backend's
  parameterization, on CmdStan, so that it is cheap), 4 chains x 1000 draws each. Its
  intercept's posterior has heavy tails, the case where Monte Carlo errors are underestimated
  and where ``compare_backends`` cried wolf before (issue 18).

For each pair: the verdict of one round of the test (``confirm=False``), its family-wise
p-value (the smallest p-value of the pair's t tests times their number, which is below
``alpha`` exactly when the round flags a difference at level ``alpha``), and, when the round
flags one, the verdict after confirmation (``compare_fits`` as by default: fresh runs of both
fits with twice the draws). Writes ``results/compare_false_alarms.md`` and ``.json``.

    python validation/compare_false_alarms.py [--reps 200] [--only small]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import hbstan  # noqa: E402
from hbstan.compare import compare_fits  # noqa: E402

ALPHA = 0.01
LEVELS = (0.01, 0.05, 0.1, 0.2)


def small_data(rep: int) -> pd.DataFrame:
    rng = np.random.default_rng(1000 + rep)
    g = rng.integers(0, 8, 80)
    a = rng.normal(0, 0.7, 8)
    x = rng.normal(size=80)
    return pd.DataFrame({"x": x, "g": [f"g{j}" for j in g], "y": 1 + 0.5 * x + a[g] + rng.normal(0, 1, 80)})


def heavy_data() -> pd.DataFrame:
    rng = np.random.default_rng(8)  # examples/08_grouped_means.py's simulate()
    sizes = {"L1": 2, "L2": 3, "L3": 5, "L4": 8, "L5": 12, "L6": 20, "L7": 35, "L8": 60}
    effect = rng.normal(0, 4.0, len(sizes))
    parts = [pd.DataFrame({"lab": lab, "y": rng.normal(50.0 + e, 6.0, n)}) for (lab, n), e in zip(sizes.items(), effect)]
    return pd.concat(parts, ignore_index=True)


def family_wise_p(c: hbstan.Comparison) -> float:
    """Smallest p-value of the pair's tests times their number (the Bonferroni-adjusted p)."""
    from scipy.stats import t

    tab = c.table[c.table["verdict"] != "not converged"]
    p = []
    for z, df in (("z", "df"), ("z_sd", "df_sd")):
        ok = np.isfinite(tab[z]) & np.isfinite(tab[df])
        p += list(2 * t.sf(np.abs(tab.loc[ok, z]), tab.loc[ok, df]))
    return min(1.0, min(p) * c.n_tests) if p else 1.0


def run(case: str, reps: int) -> list[dict]:
    out = []
    heavy = heavy_data() if case == "heavy" else None
    for rep in range(reps):
        t0 = time.perf_counter()
        if case == "small":
            m = hbstan.Model("y ~ x + (1 | g)", small_data(rep))
            fa = m.sample(chains=2, draws=300, warmup=300, seed=rep + 1)
            fb = m.sample(chains=2, draws=300, warmup=300, seed=rep + 100_001)
        else:
            prior = {"1|lab_sigma": hbstan.HalfCauchy(5)}
            ma = hbstan.Model("y ~ 1 + (1 | lab)", heavy, priors=prior)
            mb = hbstan.Model("y ~ 1 + (1 | lab)", heavy, priors=prior, marginalize=False, centered=False)
            fa = ma.sample(chains=4, draws=1000, warmup=1000, seed=rep + 1, adapt_delta=0.95)
            fb = mb.sample(chains=4, draws=1000, warmup=1000, seed=rep + 100_001, adapt_delta=0.95)
        bars = {"rhat_max": 1.05, "ess_min": 50.0} if case == "small" else {}
        one = compare_fits(fa, fb, confirm=False, alpha=ALPHA, **bars)
        row = {"rep": rep, "one_round": one.verdict, "p_fw": family_wise_p(one), "final": one.verdict}
        if one.verdict != "agree":
            final = compare_fits(fa, fb, alpha=ALPHA, **bars)
            row.update(final=final.verdict, rounds=len(final.rounds), note=final.note)
        row["seconds"] = time.perf_counter() - t0
        out.append(row)
        print(case, rep, row["one_round"], f"p_fw {row['p_fw']:.3g}", row["final"], flush=True)
    return out


def summarize(case: str, rows: list[dict]) -> list[str]:
    n = len(rows)
    p = np.array([r["p_fw"] for r in rows])
    one = sum(r["one_round"] == "disagree" for r in rows)
    nc = sum(r["one_round"] == "not converged" for r in rows)
    final = sum(r["final"] == "disagree" for r in rows)
    final_nc = sum(r["final"] == "not converged" for r in rows)
    secs = sum(r["seconds"] for r in rows)
    lines = [
        f"### {case}: {n} pairs of correct fits ({secs / 60:.1f} min)",
        "",
        "| | count | rate |",
        "|---|---:|---:|",
        f"| one round (confirm=False) says disagree, alpha {ALPHA:g} | {one} | {one / n:.3f} |",
        f"| one round says not converged | {nc} | {nc / n:.3f} |",
        f"| after confirmation (default) says disagree | {final} | {final / n:.3f} |",
        f"| after longer runs says not converged | {final_nc} | {final_nc / n:.3f} |",
        "",
        "Calibration of one round: fraction of pairs whose family-wise p-value is below each level "
        "(a round at that alpha would say disagree):",
        "",
        "| alpha | " + " | ".join(f"{a:g}" for a in LEVELS) + " |",
        "|---|" + "---:|" * len(LEVELS),
        "| observed | " + " | ".join(f"{np.mean(p < a):.3f}" for a in LEVELS) + " |",
        "",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--only", choices=["small", "heavy"])
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("hbstan").setLevel(logging.WARNING)
    results = {}
    for case in ("small", "heavy"):
        if args.only and case != args.only:
            continue
        results[case] = run(case, args.reps if case == "small" else max(1, args.reps // 2))
    lines = ["# False alarms of compare_fits", "", "`python validation/compare_false_alarms.py` "
             f"(--reps {args.reps}); see the script's docstring for the cases.", ""]
    for case, rows in results.items():
        lines += summarize(case, rows)
    out = HERE / "results"
    suffix = "" if not args.only else f"_{args.only}"
    (out / f"compare_false_alarms{suffix}.md").write_text("\n".join(lines))
    (out / f"compare_false_alarms{suffix}.json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
