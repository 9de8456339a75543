#!/usr/bin/env python
"""K-fold cross-validation of radon_all by county (issue 17's scale story).

    python benchmarks/kfold_radon.py            # 10 folds of whole counties
    python benchmarks/kfold_radon.py --K 0      # leave-one-county-out (386 fits)

The correlated varying intercept and slope model of the radon benchmarks,
``log_radon ~ floor + (1 + floor | county)`` on all 12,573 homes, is cross-validated with
folds of whole counties (the score of predicting a new county), three ways with the same
seed, so the three give the same ELPD to the last digit:

1. ``loop``: the folds one after another (``workers=1``), each fit's 2 chains in parallel
   on the 2 cores: what a plain loop over the folds does;
2. ``threads``: hbstan's local pool, 2 fits at a time, each fit's chains one after another;
3. ``dask``: a 2-worker ``LocalCluster`` (processes, 1 thread each); its start-up is timed
   apart.

Writes ``benchmarks/results/kfold_radon.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import arviz as az

import hbstan

HERE = Path(__file__).resolve().parent
FORMULA = "log_radon ~ floor + (1 + floor | county)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--K", type=int, default=10, help="folds of counties; 0: one per county")
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    df = hbstan.datasets.load_radon("all")
    sampler = dict(chains=2, draws=args.draws, warmup=args.warmup)
    m = hbstan.Model(FORMULA, df)
    t0 = time.perf_counter()
    fit = m.sample(seed=args.seed, **sampler)
    full_s = time.perf_counter() - t0
    loo = az.loo(fit.idata, pointwise=True)
    K = None if args.K == 0 else args.K
    kw = dict(K=K, group="county", seed=args.seed, progress=False, **sampler)
    runs = {}
    t0 = time.perf_counter()
    runs["loop"] = (hbstan.kfold(fit, workers=1, parallel_chains=2, **kw), time.perf_counter() - t0)
    t0 = time.perf_counter()
    runs["threads"] = (hbstan.kfold(fit, workers=2, **kw), time.perf_counter() - t0)
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("hbstan"))  # workers import hbstan before the clock starts
        startup = time.perf_counter() - t0
        t0 = time.perf_counter()
        runs["dask"] = (hbstan.kfold(fit, client=client, **kw), time.perf_counter() - t0)
    folds = len(set(runs["loop"][0]["folds"]))
    result = {
        "formula": FORMULA, "rows": len(df), "counties": int(df["county"].nunique()), "folds": folds,
        "sampler": sampler, "seed": args.seed, "full_fit_s": full_s,
        "elpd_psis_loo": float(loo["elpd_loo"]), "se_psis_loo": float(loo["se"]),
        "max_pareto_k": float(loo["pareto_k"].max()),
        "runs": {k: {"seconds": s, "elpd": float(e["elpd_loo"]), "se": float(e["se"])} for k, (e, s) in runs.items()},
        "dask_startup_s": startup, "cores": os.cpu_count(), "load_average": list(os.getloadavg()),
        "python": platform.python_version(), "hbstan": hbstan.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    same = len({round(r["elpd"], 9) for r in result["runs"].values()}) == 1
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "kfold_radon.json").write_text(json.dumps(result, indent=2))
    loop_s = result["runs"]["loop"]["seconds"]
    lines = [
        f"# K-fold by county of radon_all ({result['date']} UTC)",
        "",
        f"`{FORMULA}`, {result['rows']} homes in {result['counties']} counties, {folds} folds of whole counties "
        f"(seed {args.seed}); every fit {sampler['chains']} chains x ({sampler['warmup']} + {sampler['draws']}). "
        f"{result['cores']} cores shared with other jobs (load average {result['load_average'][0]:.1f} at the end), "
        "so the times are noisy.",
        "",
        "| run | wall time (s) | vs the loop | ELPD (SE) |",
        "|---|---:|---:|---:|",
    ]
    names = {
        "loop": "loop: folds one after another, each fit's 2 chains in parallel",
        "threads": "hbstan local pool (`client=None`, 2 threads), chains in sequence",
        "dask": "Dask `LocalCluster`, 2 worker processes",
    }
    for k, r in result["runs"].items():
        lines.append(f"| {names[k]} | {r['seconds']:.1f} | {loop_s / r['seconds']:.2f}x | {r['elpd']:.1f} ({r['se']:.1f}) |")
    lines += [
        "",
        f"The three ELPDs are {'identical' if same else 'NOT identical'} (one seed, any number of workers). "
        f"The Dask cluster took {startup:.1f} s to start (not in its row). The full fit took {full_s:.1f} s; "
        f"its PSIS-LOO ELPD is {result['elpd_psis_loo']:.1f} ({result['se_psis_loo']:.1f}), max Pareto k "
        f"{result['max_pareto_k']:.2f}: leaving whole counties out asks a harder question (a new county) than "
        "leaving out a home.",
    ]
    (out / "kfold_radon.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
