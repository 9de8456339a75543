#!/usr/bin/env python
"""Scale benchmark (issue 7): a synthetic Gaussian data set with a correlated varying
intercept and slope, ``y ~ 1 + x + (1 + x | g)``, fitted with hbstan.

    python benchmarks/scale.py                              # 1,000,000 rows in 10,000 groups
    python benchmarks/scale.py --rows 100000 --groups 1000  # a quicker check

Stages (each in a fresh process, so peak memory is that fit's own):

1. ``default``: ``hbstan.Model(...).sample(chains=2, warmup=200, draws=200)`` with hbstan's
   defaults (sufficient statistics where they apply); peak resident memory of the process
   tree (Python + CmdStan), time split into model build, compile, sampling, conversion.
2. ``threads``: the row-wise likelihood (``suff_stats=False``) with ``threads_per_chain=1``
   and ``2`` (reduce_sum), one chain each, so that 2 threads use the machine's 2 cores.
   Skipped with a note where ``Model.sample`` has no ``threads_per_chain``.

Per-row generated quantities (``log_lik``, ``y_rep``) are 2 x rows numbers per draw; at a
million rows they alone would be gigabytes, so where ``Model.sample`` accepts
``pointwise=`` the script passes ``--pointwise`` (default ``False``: skip them).
``--time-cap`` (default 600 s) skips the stages that would start after it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_lib as bl  # noqa: E402

FORMULA = "y ~ 1 + x + (1 + x | g)"
TAG = "SCALE_RESULT "


def make_data(rows: int, groups: int, seed: int) -> Any:
    """y = 1 + 0.5 x + a_g + b_g x + e, (a_g, b_g) ~ N(0, diag(0.5, 0.3) R(0.4) diag(0.5, 0.3)), e ~ N(0, 1)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    sd = np.array([0.5, 0.3])
    corr = np.array([[1.0, 0.4], [0.4, 1.0]])
    ab = rng.multivariate_normal(np.zeros(2), corr * np.outer(sd, sd), size=groups)
    g = rng.integers(0, groups, size=rows)
    x = rng.normal(size=rows)
    y = 1.0 + 0.5 * x + ab[g, 0] + ab[g, 1] * x + rng.normal(size=rows)
    labels = np.char.add("g", np.char.zfill(np.arange(groups).astype(str), len(str(groups))))
    return pd.DataFrame({"y": y, "x": x, "g": labels[g]})


def _accepts(fn: Any, name: str) -> bool:
    return name in inspect.signature(fn).parameters


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    import hbstan

    with bl.Stopwatch() as sw_gen:
        df = make_data(spec["rows"], spec["groups"], spec["seed"])
    model_kw: dict[str, Any] = dict(spec.get("model_kwargs", {}))
    sample_kw: dict[str, Any] = dict(chains=spec["chains"], warmup=spec["warmup"], draws=spec["draws"], seed=spec["seed"])
    notes = []
    if spec.get("pointwise") is not None:
        if _accepts(hbstan.Model.sample, "pointwise"):
            sample_kw["pointwise"] = spec["pointwise"]
        else:
            notes.append("Model.sample has no pointwise= option: log_lik and y_rep are computed for every row")
    if spec.get("threads"):
        sample_kw["threads_per_chain"] = spec["threads"]
    if spec.get("max_treedepth"):
        sample_kw["max_treedepth"] = spec["max_treedepth"]
    if spec.get("save_warmup"):  # passed on to CmdStanPy: leapfrog counts of the warm-up too
        sample_kw["save_warmup"] = True
    with bl.MemoryPoller(interval=0.2) as mem, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        m = hbstan.Model(FORMULA, data=df, **model_kw)
        t1 = time.perf_counter()
        fit = m.sample(**sample_kw)
        t2 = time.perf_counter()
    tm = dict(fit.timings)
    ct = bl.cmdstan_times(fit.stan_fit)
    post = {}
    for v in fit.idata.posterior.data_vars:
        a = fit.idata.posterior[v].values
        post[v] = bl.upper_offdiag(a) if (a.ndim == 4 and "_corr" in v) else a
    diag = bl.ess_rhat(post)
    diag.pop("per_variable", None)
    # the population-level quantities (what the sampler moves) apart from the group effects:
    # with thousands of group effects, the largest of their R-hats exceeds 1.01 by chance at
    # a few hundred draws, even for independent draws; the iid reference shows by how much
    import numpy as np

    group_vars = {p.name for p in m.params if p.kind == "matrix_cols"}
    pop = bl.ess_rhat({k: v for k, v in post.items() if k not in group_vars})
    n_group = sum(int(np.prod(post[k].shape[2:])) for k in post if k in group_vars)
    diag["population_max_rhat"], diag["population_min_ess_bulk"] = pop["max_rhat"], pop["min_ess_bulk"]
    if n_group:
        shape = next(iter(post.values())).shape[:2]
        iid = np.random.default_rng(0).normal(size=(*shape, n_group))
        diag["iid_reference_max_rhat"] = bl.ess_rhat({"iid": iid})["max_rhat"]
        diag["group_effects"] = n_group
    ss = fit.idata.sample_stats
    run_dir = Path(fit.run_dir)
    # leapfrog steps of every iteration (warm-up too where it was saved): sampler s per gradient
    mcmc = fit.stan_fit
    leap = mcmc.draws(inc_warmup=bool(spec.get("save_warmup")), concat_chains=False)[
        :, :, list(mcmc.column_names).index("n_leapfrog__")
    ]
    per_chain = leap.sum(axis=0)
    if spec.get("save_warmup"):
        us_grad = max(1e6 * t["total"] / n for t, n in zip(ct["per_chain"], per_chain) if n)
    else:
        us_grad = max(1e6 * t["sampling"] / n for t, n in zip(ct["per_chain"], leap[-spec["draws"]:].sum(axis=0)) if n)
    wall_warm = (t2 - t0) - (tm.get("compile", 0.0))  # as if compiled beforehand
    return {
        "rows": spec["rows"],
        "groups": spec["groups"],
        "data_generation_s": sw_gen.s,
        "data_mb": float(df.memory_usage(deep=True).sum()) / 2**20,
        "model_build_s": t1 - t0,
        "compile_s": tm.get("compile"),
        "sample_call_s": tm.get("sample"),
        "convert_s": tm.get("convert"),
        "wall_s": t2 - t0,
        "wall_warm_s": wall_warm,
        "warmup_s": ct["warmup_s"],
        "sampling_s": ct["sampling_s"],
        "sampler_s": ct["sampler_s"],
        "peak_rss_mb": mem.peak_mb,
        "rss_start_mb": mem.start_mb,
        "maxrss_mb": bl.maxrss_mb(),
        "data_json_mb": os.path.getsize(run_dir / "data.json") / 2**20 if (run_dir / "data.json").is_file() else None,
        "output_csv_mb": sum(os.path.getsize(f) for f in fit.stan_fit.runset.csv_files) / 2**20,
        "divergences": int(ss["diverging"].values.sum()),
        "leapfrog_total": float(per_chain.sum()),
        "mean_leapfrog": float(leap.mean()),
        "us_per_gradient": us_grad,
        "ess_per_s_warm": diag["min_ess_bulk"] / wall_warm,
        "suff_stats": getattr(m, "suff_stats", None),
        "program_header": [ln for ln in m.stan_code.splitlines()[:3] if ln.startswith("//")],
        "sample_kwargs": {k: v for k, v in sample_kw.items() if k != "seed"},
        "model_kwargs": model_kw,
        "notes": notes,
        "warnings": sorted({str(w.message)[:200] for w in caught if "ArviZ is undergoing" not in str(w.message)}),
        **diag,
    }


def run_stage(spec: dict[str, Any], env: dict[str, str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=str(bl.ROOT))
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(TAG):
            return json.loads(line[len(TAG) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
    return {"ok": False, "error": f"exit code {proc.returncode}: " + " | ".join(tail)[-1500:]}


def _f(x: Any, fmt: str = "{:.1f}") -> str:
    return "–" if x is None else fmt.format(x)


def markdown(res: dict[str, Any]) -> str:
    s = res["settings"]
    lines = [
        f"# hbstan scale benchmark: {s['rows']:,} rows in {s['groups']:,} groups",
        "",
        f"`{FORMULA}`, Gaussian, simulated (seed {s['seed']}). Run {res['started']} "
        f"({res['elapsed_min']:.1f} min); load average {res['load_start']} -> {res['load_end']} on "
        f"{os.cpu_count()} CPUs.",
        "",
        "| stage | chains x (warm-up + draws) | model build s | compile s | sampler s (warm-up / sampling) | "
        "wall s (without compile) | µs/gradient | peak RSS MB (start) | data JSON MB | CSV MB | min bulk ESS | max R-hat | div |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in res["stages"].items():
        if not r.get("ok"):
            lines.append(f"| {name} | skipped/failed: {str(r.get('error') or r.get('skipped'))[:200]} |" + " |" * 11)
            continue
        kw = r["sample_kwargs"]
        lines.append(
            f"| {name} | {kw['chains']} x ({kw['warmup']} + {kw['draws']}) | {_f(r['model_build_s'])} | "
            f"{_f(r['compile_s'])} | {_f(r['sampler_s'])} ({_f(r['warmup_s'])} / {_f(r['sampling_s'])}) | "
            f"{_f(r['wall_warm_s'])} | {_f(r.get('us_per_gradient'), '{:.0f}')} | {_f(r['peak_rss_mb'], '{:.0f}')} ({_f(r['rss_start_mb'], '{:.0f}')}) | "
            f"{_f(r['data_json_mb'], '{:.0f}')} | {_f(r['output_csv_mb'], '{:.0f}')} | "
            f"{_f(r['min_ess_bulk'], '{:.0f}')} | {_f(r['max_rhat'], '{:.3f}')} | {r['divergences']} |"
        )
    lines.append("")
    for name, r in res["stages"].items():
        if r.get("ok"):
            hdr = " ".join(h.lstrip("/ ").strip() for h in r["program_header"][:2])
            opts = {**r["model_kwargs"], **{k: v for k, v in r["sample_kwargs"].items() if k not in ("chains", "warmup", "draws")}}
            lines.append(f"- {name}: options {opts}; sufficient statistics {r['suff_stats']}; {hdr}")
            if r.get("population_max_rhat") is not None and r.get("group_effects"):
                lines.append(
                    f"  - population-level quantities (coefficients, sigma, SDs, correlation): max R-hat "
                    f"{r['population_max_rhat']:.3f}, min bulk ESS {r['population_min_ess_bulk']:.0f}; "
                    f"the max R-hat above is over {r['group_effects']:,} group effects, where independent "
                    f"draws of the same shape give {r['iid_reference_max_rhat']:.3f} by chance"
                )
            for n in r.get("notes", []):
                lines.append(f"  - {n}")
    t1, t2 = res["stages"].get("threads_1", {}), res["stages"].get("threads_2", {})
    if t1.get("ok") and t2.get("ok"):
        lines.append(
            f"- reduce_sum, 2 threads vs 1 thread (one chain each): {t2['us_per_gradient']:.0f} vs "
            f"{t1['us_per_gradient']:.0f} µs per gradient, speed-up {t1['us_per_gradient'] / t2['us_per_gradient']:.2f}x "
            f"(sampler {t2['sampler_s']:.1f} s vs {t1['sampler_s']:.1f} s; short runs with max_treedepth "
            f"{t1['sample_kwargs'].get('max_treedepth')}, warm-up saved, so µs per gradient is the measure)."
        )
    for n in res.get("notes", []):
        lines.append(f"- {n}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--groups", type=int, default=10_000)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--thread-warmup", type=int, default=15, help="warm-up of each threads run (1 chain)")
    p.add_argument("--thread-draws", type=int, default=5, help="draws of each threads run (1 chain)")
    p.add_argument("--thread-treedepth", type=int, default=5, help="max_treedepth of the threads runs (bounds their time)")
    p.add_argument("--no-threads", action="store_true", help="skip the reduce_sum comparison")
    p.add_argument("--pointwise", default="false", help="pointwise= passed to Model.sample where it exists: false, python, stan, or 'default' to leave it out")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-cap", type=float, default=600, help="no stage starts after this many seconds")
    p.add_argument("--cache", help="compile cache (default: $HBSTAN_CACHE_DIR, else a persistent temp dir)")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--name", default="scale_latest")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        try:
            res = worker(json.loads(args.worker))
            res["ok"] = True
        except Exception as err:  # noqa: BLE001
            import traceback

            res = {"ok": False, "error": f"{type(err).__name__}: {err}"[:1500], "traceback": traceback.format_exc()[-3000:]}
        print(TAG + json.dumps(res, default=str), flush=True)
        return 0

    import hbstan

    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_start = bl.load_average()
    cache = args.cache or os.environ.get("HBSTAN_CACHE_DIR") or str(Path(tempfile.gettempdir()) / "hbstan-bench-cache")
    env = dict(os.environ, HBSTAN_CACHE_DIR=cache)
    env["PYTHONPATH"] = os.pathsep.join([str(bl.ROOT), str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    pw: Any = {"false": False, "python": "python", "stan": "stan", "default": None}[args.pointwise.lower()]
    base = {"rows": args.rows, "groups": args.groups, "seed": args.seed, "pointwise": pw}
    stages: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    plan = [("default", dict(base, chains=args.chains, warmup=args.warmup, draws=args.draws))]
    if args.no_threads:
        notes.append("reduce_sum comparison skipped (--no-threads)")
    elif not _accepts(hbstan.Model.sample, "threads_per_chain"):
        notes.append("reduce_sum comparison skipped: Model.sample has no threads_per_chain= option yet")
    else:
        mk = {"suff_stats": False} if _accepts(hbstan.Model.__init__, "suff_stats") else {}
        for th in (1, 2):
            plan.append(
                (
                    f"threads_{th}",
                    dict(
                        base, chains=1, warmup=args.thread_warmup, draws=args.thread_draws, threads=th,
                        model_kwargs=mk, max_treedepth=args.thread_treedepth, save_warmup=True,
                    ),
                )
            )
        if mk:
            notes.append("threads runs use suff_stats=False: reduce_sum splits the row-wise likelihood, which sufficient statistics replace")
    print(f"scale benchmark: {args.rows:,} rows, {args.groups:,} groups; cache {cache}", flush=True)
    for name, spec in plan:
        elapsed = time.perf_counter() - t_start
        if elapsed > args.time_cap:
            stages[name] = {"ok": False, "skipped": f"time cap {args.time_cap:.0f} s reached after {elapsed:.0f} s"}
            continue
        res = run_stage(spec, env, timeout=max(60.0, 3 * args.time_cap))
        stages[name] = res
        if res.get("ok"):
            print(
                f"  {name}: wall {res['wall_s']:.1f} s (compile {res['compile_s']:.1f}, sampler {res['sampler_s']:.1f}), "
                f"{res['us_per_gradient']:.0f} µs/gradient, peak RSS {res['peak_rss_mb']:.0f} MB, "
                f"min ESS {res['min_ess_bulk']:.0f}, R-hat {_f(res['max_rhat'], '{:.3f}')}",
                flush=True,
            )
        else:
            print(f"  {name}: FAILED {res.get('error')}", flush=True)
    result = {
        "started": started,
        "elapsed_min": (time.perf_counter() - t_start) / 60,
        "settings": vars(args) | {"cache": cache},
        "load_start": load_start,
        "load_end": bl.load_average(),
        "stages": stages,
        "notes": notes,
    }
    md = markdown(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=1, default=str))
    (out / f"{args.name}.md").write_text(md)
    print()
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
