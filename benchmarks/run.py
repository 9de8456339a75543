#!/usr/bin/env python
"""hbstan benchmark runner (issues 7 and 19): the same models, side by side, in one run.

    python benchmarks/run.py                     # the standard run (3 repeats, ~15-20 min on 2 cores)
    python benchmarks/run.py --quick             # 1 repeat, Minnesota only, reuse compiled programs
    python benchmarks/run.py --only radon_vs/hbstan,radon_vs/stan_brms --repeats 5
    python benchmarks/run.py --only glmm --name glmm   # the GLMM rows only (simulated data)

Engines (each run in a fresh Python subprocess, with the program compiled beforehand):

* ``hbstan``     hbstan.Model(formula, df).sample(...)              (CmdStan, generated program)
* ``pymc``       hbstan.pymc_backend.sample_pymc(..., nuts_sampler="pymc")
* ``nutpie``     hbstan.pymc_backend.sample_pymc(..., nuts_sampler="nutpie")
* ``stan_brms``  CmdStanPy on programs/radon_*_brms.stan   (brms-style program written for the benchmark)
* ``stan_loop``  CmdStanPy on programs/radon_*_loop.stan   (hand-written loop program)
* ``hbstan_nc``  hbstan with ``centered=False`` (GLMM rows; only when --only names it)

Writes ``<out>/latest.json`` (every run, with breakdowns) and ``<out>/latest.md`` (the table
of medians), and prints the table. See benchmarks/README.md for the columns.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_lib as bl  # noqa: E402  (puts the repository root on sys.path too)

ROOT = bl.ROOT

FORMULA_VI = "log_radon ~ 1 + floor + (1 | county)"
FORMULA_VS = "log_radon ~ 1 + floor + (1 + floor | county)"

CASES: dict[str, dict[str, Any]] = {
    "radon_vi": {
        "title": "Radon MN, varying intercept",
        "data": "mn",
        "formula": FORMULA_VI,
        "engines": ["hbstan", "stan_brms", "stan_loop", "nutpie", "pymc"],
        "programs": {"stan_loop": "radon_vi_loop", "stan_brms": "radon_vi_brms"},
    },
    "radon_vs": {
        "title": "Radon MN, correlated varying intercept + slope (LKJ)",
        "data": "mn",
        "formula": FORMULA_VS,
        "engines": ["hbstan", "stan_brms", "stan_loop", "nutpie", "pymc"],
        "programs": {"stan_loop": "radon_vs_loop", "stan_brms": "radon_vs_brms"},
    },
    "radon_all_vs": {
        "title": "Radon, all states (12,573 homes, 386 counties), correlated varying intercept + slope",
        "data": "all",
        "formula": FORMULA_VS,
        "engines": ["hbstan", "stan_loop"],
        "optional": ["stan_brms"],  # run only when --only names radon_all_vs/stan_brms
        "programs": {"stan_loop": "radon_vs_loop", "stan_brms": "radon_vs_brms"},
        "repeats": 1,  # one run per engine in the standard run (see --all-repeats)
    },
    # issue 19: non-Gaussian multilevel models on data simulated by glmm_data.py (fixed seed)
    "glmm_bernoulli": {
        "title": "Bernoulli, 10,000 rows, three crossed varying intercepts (50, 12 and 8 levels)",
        "sim": "bernoulli_crossed",
        "formula": "y ~ 1 + x1 + x2 + (1 | state) + (1 | age) + (1 | edu)",
        "options": {"family": "bernoulli"},
        "engines": ["hbstan", "stan_brms", "nutpie", "pymc"],
        "optional": ["hbstan_nc"],
        "programs": {"stan_brms": "glmm_bernoulli_brms"},
    },
    "glmm_binomial": {
        "title": "Binomial, 600 rows in 30 sites, a per-observation effect for overdispersion",
        "sim": "binomial_obs",
        "formula": "y | trials(n) ~ 1 + x + (1 | site) + (1 | obs)",
        "options": {"family": "binomial"},
        "engines": ["hbstan", "stan_brms", "nutpie", "pymc"],
        "optional": ["hbstan_nc"],
        "programs": {"stan_brms": "glmm_binomial_brms"},
    },
    "glmm_poisson": {
        "title": "Poisson, 1,920 counts of 60 sites x 8 years x 4 visits, correlated site intercepts and slopes, exposure",
        "sim": "poisson_slopes",
        "formula": "count ~ 1 + year + (1 + year | site)",
        "options": {"family": "poisson", "exposure": "effort"},
        "engines": ["hbstan", "stan_brms", "nutpie", "pymc"],
        "optional": ["hbstan_nc"],
        "programs": {"stan_brms": "glmm_poisson_brms"},
    },
    # issues 15 and 19: one row per newer family group, 2,000 rows each (glmm_data.py)
    "glmm_negbinomial": {
        "title": "Negative binomial, 2,000 counts in 50 clinics, correlated clinic intercepts and slopes",
        "sim": "negbinomial_slopes",
        "formula": "count ~ 1 + x + (1 + x | clinic)",
        "options": {"family": "negbinomial"},
        "engines": ["hbstan", "stan_brms", "nutpie"],
        "optional": ["hbstan_nc", "pymc"],  # PyMC NUTS: not measured yet; run with --only <case>/pymc
        "programs": {"stan_brms": "glmm_negbinomial_brms"},
    },
    "glmm_zip": {
        "title": "Zero-inflated Poisson, 2,000 counts in 40 sites, varying intercept",
        "sim": "zip_intercept",
        "formula": "count ~ 1 + x + (1 | site)",
        "options": {"family": "zero_inflated_poisson"},
        "engines": ["hbstan", "stan_brms", "nutpie"],
        "optional": ["hbstan_nc", "pymc"],  # PyMC NUTS: not measured yet; run with --only <case>/pymc
        "programs": {"stan_brms": "glmm_zip_brms"},
    },
    "glmm_cumulative": {
        "title": "Ordinal (cumulative logit), 2,000 ratings 1-5 by 40 raters, varying intercept",
        "sim": "cumulative_intercept",
        "formula": "rating ~ 1 + x + (1 | rater)",
        "options": {"family": "cumulative"},
        "engines": ["hbstan", "stan_brms", "nutpie"],
        "optional": ["hbstan_nc", "pymc"],  # PyMC NUTS: not measured yet; run with --only <case>/pymc
        "programs": {"stan_brms": "glmm_cumulative_brms"},
    },
    "glmm_gamma": {
        "title": "Gamma (log link), 2,000 positive amounts in 40 regions, varying intercept",
        "sim": "gamma_intercept",
        "formula": "amount ~ 1 + x + (1 | region)",
        "options": {"family": "gamma"},
        "engines": ["hbstan", "stan_brms", "nutpie"],
        "optional": ["hbstan_nc", "pymc"],  # PyMC NUTS: not measured yet; run with --only <case>/pymc
        "programs": {"stan_brms": "glmm_gamma_brms"},
    },
    "glmm_beta": {
        "title": "Beta (logit link), 2,000 proportions in 40 fields, varying intercept",
        "sim": "beta_intercept",
        "formula": "cover ~ 1 + x + (1 | field)",
        "options": {"family": "beta"},
        "engines": ["hbstan", "stan_brms", "nutpie"],
        "optional": ["hbstan_nc", "pymc"],  # PyMC NUTS: not measured yet; run with --only <case>/pymc
        "programs": {"stan_brms": "glmm_beta_brms"},
    },
}

# hbstan engines: Model options added to the case's (the default engine adds none)
HBSTAN_VARIANTS: dict[str, dict[str, Any]] = {"hbstan": {}, "hbstan_nc": {"centered": False}}

ENGINES = {
    "hbstan": "hbstan (CmdStan)",
    "hbstan_nc": "hbstan, centered=False",
    "stan_brms": "CmdStan, brms-style program",
    "stan_loop": "CmdStan, hand-written loop",
    "nutpie": "hbstan PyMC backend, nutpie",
    "pymc": "hbstan PyMC backend, PyMC NUTS",
}

# the reference points: min bulk ESS/s (2 chains x 1000+1000, compiled)
REFERENCE = {
    "radon_vi": {"stan_loop": 153, "brms (generated)": 540, "nutpie": 92, "pymc": 62},
    "radon_vs": {"stan_loop": 64, "brms (generated)": 85, "nutpie": 72, "pymc": 28},
}

RESULT_TAG = "BENCH_RESULT "


# ======================================================================================
# worker side: one measurement in a fresh process
# ======================================================================================
def _load(case: dict[str, Any]) -> Any:
    if "sim" in case:
        import glmm_data

        return glmm_data.simulate(case["sim"])
    from hbstan import datasets

    return datasets.load_radon(case["data"])


def _options(case: dict[str, Any], engine: str = "hbstan") -> dict[str, Any]:
    """Model options of a case (family, exposure, ...) plus those of an hbstan variant."""
    return {**case.get("options", {}), **HBSTAN_VARIANTS.get(engine, {})}


def _ss_from_idata(idata: Any) -> dict[str, Any]:
    ss = idata.sample_stats
    out: dict[str, Any] = {"divergences": int(ss["diverging"].values.sum())}
    if "n_steps" in ss:
        steps = ss["n_steps"].values  # (chain, draw)
        out["leapfrog_per_chain"] = [float(x) for x in steps.sum(axis=1)]
        out["mean_leapfrog"] = float(steps.mean())
    if "step_size" in ss:
        out["step_size"] = float(ss["step_size"].values[:, -1].mean())
    return out


def _beyond_the_list(timings: dict[str, float]) -> tuple[float, float]:
    """Seconds of a fit's work beyond the issue's list (validate, render, hash, write data,
    build InferenceData): log_lik, y_rep and integrated-out group effects computed in NumPy
    (what generated quantities would do inside CmdStan), and that plus the post-fit R-hat /
    ESS / divergence checks."""
    numpy_s = timings.get("pointwise", 0.0) + timings.get("effects", 0.0)
    return numpy_s, numpy_s + timings.get("diagnose", 0.0)


def _fit_hbstan(spec: dict[str, Any], case: dict[str, Any], df: Any) -> dict[str, Any]:
    import cmdstanpy

    import hbstan

    parse = {"s": 0.0}
    orig = cmdstanpy.CmdStanMCMC._assemble_draws

    def timed_assemble(self: Any) -> Any:  # timing only: how much of convert is CSV parsing
        t = time.perf_counter()
        try:
            return orig(self)
        finally:
            parse["s"] += time.perf_counter() - t

    cmdstanpy.CmdStanMCMC._assemble_draws = timed_assemble
    cache = Path(spec["cache"])
    recompiled = 0
    for _attempt in range(2):  # the templates changed since the compile phase: time a second, warm fit
        parse["s"] = 0.0
        before = _count_models(cache)
        with bl.MemoryPoller() as mem, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            m = hbstan.Model(case["formula"], data=df, **_options(case, spec["engine"]))
            t1 = time.perf_counter()
            fit = m.sample(chains=spec["chains"], draws=spec["draws"], warmup=spec["warmup"], seed=spec["seed"])
            t2 = time.perf_counter()
        if _count_models(cache) == before:
            break
        recompiled += 1
    cmdstanpy.CmdStanMCMC._assemble_draws = orig
    wall = t2 - t0
    tm = dict(fit.timings)
    ct = bl.cmdstan_times(fit.stan_fit)
    # estimates of parts hbstan does not time itself, measured again after the fit
    with tempfile.TemporaryDirectory() as tmp, bl.Stopwatch() as sw_data:
        cmdstanpy.write_stan_json(os.path.join(tmp, "d.json"), m.stan_data_for())
    py_overhead = wall - tm.get("sample", 0.0)
    numpy_s, extra = _beyond_the_list(tm)
    out = {
        "wall_s": wall,
        "warmup_s": ct["warmup_s"],
        "sampling_s": ct["sampling_s"],
        "sampler_s": ct["sampler_s"],
        "peak_rss_mb": mem.peak_mb,
        "rss_start_mb": mem.start_mb,
        "python_overhead_s": py_overhead,
        "python_overhead_share": py_overhead / wall,
        "pointwise_s": numpy_s,
        "diagnose_s": tm.get("diagnose"),
        "bookkeeping_s": py_overhead - extra,
        "bookkeeping_share": (py_overhead - extra) / wall,
        "breakdown": {
            "model_build_s": t1 - t0,
            "render_hash_cache_lookup_s": tm.get("compile"),
            "cmdstanpy_sample_call_s": tm.get("sample"),
            "cmdstan_sampler_s": ct["sampler_s"],
            "process_launch_and_csv_check_s": tm.get("sample", 0.0) - ct["sampler_s"],
            "convert_to_inferencedata_s": tm.get("convert"),
            "of_which_csv_parse_s": parse["s"],
            "run_dir_data_write_diagnose_s": wall - (t1 - t0) - sum(tm.values()),
            "est_data_write_s": sw_data.s,
        },
        "chains_time": ct["per_chain"],
        "warnings": sorted({str(w.message)[:200] for w in caught if "ArviZ is undergoing" not in str(w.message)}),
        "program_header": [ln for ln in m.stan_code.splitlines()[:3] if ln.startswith("//")],
        "suff_stats": getattr(m, "suff_stats", None),
        "compiled_during_fit": recompiled,
        "output_csv_mb": sum(os.path.getsize(f) for f in fit.stan_fit.runset.csv_files) / 2**20,
        "data_json_mb": os.path.getsize(Path(fit.run_dir) / "data.json") / 2**20,
    }
    out["grad_eval_us"] = bl.gradient_eval_us(fit.stan_fit)
    out.update(_ss_from_idata(fit.idata))
    out["post"] = bl.posterior_arrays(fit.idata)
    # a re-fit in the same process (another seed): the per-fit overhead, without the first
    # fit's one-time costs (importing formulae, scipy.stats and ArviZ's submodules on first use)
    t0 = time.perf_counter()
    refit = hbstan.Model(case["formula"], data=df, **_options(case, spec["engine"])).sample(
        chains=spec["chains"], draws=spec["draws"], warmup=spec["warmup"], seed=spec["seed"] + 1000
    )
    wall2 = time.perf_counter() - t0
    out["refit_wall_s"] = wall2
    out["refit_python_overhead_s"] = wall2 - refit.timings["sample"]
    out["refit_python_overhead_share"] = out["refit_python_overhead_s"] / wall2
    out["refit_pointwise_s"], extra2 = _beyond_the_list(refit.timings)
    out["refit_diagnose_s"] = refit.timings.get("diagnose")
    out["refit_bookkeeping_s"] = out["refit_python_overhead_s"] - extra2
    out["refit_bookkeeping_share"] = out["refit_bookkeeping_s"] / wall2
    out["refit_breakdown"] = dict(refit.timings)
    return out


def _fit_pymc(spec: dict[str, Any], case: dict[str, Any], df: Any, sampler: str) -> dict[str, Any]:
    """One call of hbstan's PyMC backend in a fresh process.

    The backend builds and compiles the log density inside every call (PyTensor for PyMC's
    NUTS, numba for nutpie), so that compile is timed inside the call and reported as the
    compile time; ``wall_s`` is the call's time without it (the model "already compiled"),
    ``wall_incl_compile_s`` the whole call. PyMC: compile = time to the first draw (model
    build, PyTensor compile, worker start-up). nutpie: compile = ``nutpie.compile_pymc_model``.
    """
    import hbstan
    from hbstan.pymc_backend import sample_pymc

    marks: dict[str, Any] = {"first": None, "tune_end": {}, "last": {}, "compile": 0.0, "sample": 0.0}

    def on_draw(trace: Any, draw: Any) -> None:
        now = time.perf_counter()
        if marks["first"] is None:
            marks["first"] = now
        if not draw.tuning:
            marks["tune_end"].setdefault(draw.chain, now)
        marks["last"][draw.chain] = now

    extra: dict[str, Any] = {}
    if sampler == "pymc":
        extra["callback"] = on_draw
    else:  # timing wrappers only: where the numba compile ends and sampling starts
        import nutpie

        def timed(fn: Any, key: str) -> Any:
            def inner(*a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    marks[key] += time.perf_counter() - t

            return inner

        nutpie.compile_pymc_model = timed(nutpie.compile_pymc_model, "compile")
        nutpie.sample = timed(nutpie.sample, "sample")
    with bl.MemoryPoller() as mem, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        m = hbstan.Model(case["formula"], data=df, **_options(case))
        fit = sample_pymc(
            m, chains=spec["chains"], draws=spec["draws"], warmup=spec["warmup"], seed=spec["seed"],
            nuts_sampler=sampler, **extra,
        )
        t1 = time.perf_counter()
    out: dict[str, Any] = {"wall_incl_compile_s": t1 - t0, "peak_rss_mb": mem.peak_mb, "rss_start_mb": mem.start_mb}
    if sampler == "pymc" and marks["first"] is not None and marks["tune_end"]:
        out["compile_s"] = marks["first"] - t0
        warm = [marks["tune_end"][c] - marks["first"] for c in marks["tune_end"]]
        samp = [marks["last"][c] - marks["tune_end"][c] for c in marks["tune_end"]]
        out.update(warmup_s=max(warm), sampling_s=max(samp))
        out["sampler_s"] = max(marks["last"].values()) - marks["first"]
    elif sampler == "nutpie" and marks["sample"]:
        out["compile_s"] = marks["compile"]
        out["sampler_s"] = marks["sample"]
    else:
        out["compile_s"] = fit.timings.get("compile")
        out["sampler_s"] = fit.timings.get("sample")
    out["wall_s"] = out["wall_incl_compile_s"] - (out["compile_s"] or 0.0)
    out["breakdown"] = {"backend_timings": dict(fit.timings), "in_call_compile_s": out["compile_s"]}
    out["warnings"] = sorted({str(w.message)[:200] for w in caught if "ArviZ is undergoing" not in str(w.message)})
    out.update(_ss_from_idata(fit.idata))
    out["post"] = bl.posterior_arrays(fit.idata)
    return out


def _program_paths(cache: Path, name: str) -> tuple[Path, Path]:
    d = cache / "programs" / name
    return d / f"{name}.stan", d / name


def _fit_program(spec: dict[str, Any], case: dict[str, Any], df: Any, engine: str) -> dict[str, Any]:
    import cmdstanpy

    import programs

    prog = programs.PROGRAMS[case["programs"][engine]]
    stan_file, exe = _program_paths(Path(spec["cache"]), prog.name)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{prog.name}-", dir=Path(spec["cache"]) / "runs"))
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    with bl.MemoryPoller() as mem:
        t0 = time.perf_counter()
        data = prog.prep(df)
        cmdstanpy.write_stan_json(str(run_dir / "data.json"), data)
        tm = time.perf_counter()
        model = cmdstanpy.CmdStanModel(stan_file=str(stan_file), exe_file=str(exe))
        t1 = time.perf_counter()
        mcmc = model.sample(
            data=str(run_dir / "data.json"),
            chains=spec["chains"],
            parallel_chains=spec["chains"],
            iter_warmup=spec["warmup"],
            iter_sampling=spec["draws"],
            seed=spec["seed"],
            output_dir=str(run_dir),
            show_progress=False,
        )
        t2 = time.perf_counter()
        draws = mcmc.draws(concat_chains=False)  # (draw, chain, column): every column, as hbstan reads

        def get(name: str) -> Any:
            import numpy as np

            var = mcmc.metadata.stan_vars.get(name) or mcmc.metadata.method_vars.get(name)
            return np.swapaxes(np.asarray(var.extract_reshape(draws), dtype=float), 0, 1)

        post = prog.extract(get)
        t3 = time.perf_counter()
    wall = t3 - t0
    ct = bl.cmdstan_times(mcmc)
    steps = get("n_leapfrog__")
    div = get("divergent__")
    return {
        "wall_s": wall,
        "warmup_s": ct["warmup_s"],
        "sampling_s": ct["sampling_s"],
        "sampler_s": ct["sampler_s"],
        "peak_rss_mb": mem.peak_mb,
        "rss_start_mb": mem.start_mb,
        "python_overhead_s": wall - (t2 - t1),
        "python_overhead_share": (wall - (t2 - t1)) / wall,
        "breakdown": {
            "prep_and_write_data_s": tm - t0,
            "cmdstanmodel_from_exe_s": t1 - tm,
            "cmdstanpy_sample_call_s": t2 - t1,
            "cmdstan_sampler_s": ct["sampler_s"],
            "read_draws_s": t3 - t2,
        },
        "chains_time": ct["per_chain"],
        "divergences": int(div.sum()),
        "leapfrog_per_chain": [float(x) for x in steps.sum(axis=1)],
        "mean_leapfrog": float(steps.mean()),
        "step_size": float(get("stepsize__")[:, -1].mean()),
        "output_csv_mb": sum(os.path.getsize(f) for f in mcmc.runset.csv_files) / 2**20,
        "grad_eval_us": bl.gradient_eval_us(mcmc),
        "post": post,
    }


def _post_summary(post: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Posterior mean and SD of every element of every quantity (flattened, in the quantity's
    order: group levels sorted by label in every engine), to check that two engines sample the
    same posterior."""
    import numpy as np

    out = {}
    for k, v in post.items():
        a = np.asarray(v, dtype=float)
        a = a.reshape(a.shape[0], a.shape[1], -1)
        out[k] = {"mean": a.mean(axis=(0, 1)).tolist(), "sd": a.std(axis=(0, 1)).tolist()}
    return out


def worker_fit(spec: dict[str, Any]) -> dict[str, Any]:
    import arviz  # noqa: F401  (imports are not part of any timing)
    import cmdstanpy  # noqa: F401

    import hbstan  # noqa: F401

    case = CASES[spec["case"]]
    df = _load(case)
    engine = spec["engine"]
    if engine in ("pymc", "nutpie"):
        import pymc  # noqa: F401
    # the heavy imports leave a full garbage-collection pass due; run it now so that no
    # engine's timing pays for it
    gc.collect()
    if engine in HBSTAN_VARIANTS:
        res = _fit_hbstan(spec, case, df)
    elif engine in ("pymc", "nutpie"):
        import pymc  # noqa: F401

        res = _fit_pymc(spec, case, df, engine)
    else:
        res = _fit_program(spec, case, df, engine)
    post = res.pop("post")
    res.update(bl.ess_rhat(post))
    res["post_summary"] = _post_summary(post)
    res["ess_per_s"] = res["min_ess_bulk"] / res["wall_s"]
    if res.get("sampler_s"):
        res["ess_per_s_sampler"] = res["min_ess_bulk"] / res["sampler_s"]
    res["us_per_gradient"] = bl.us_per_gradient(res.get("sampling_s"), res.get("leapfrog_per_chain", []))
    res["overhead_share"] = (res["wall_s"] - res["sampler_s"]) / res["wall_s"] if res.get("sampler_s") else None
    res["maxrss_mb"] = bl.maxrss_mb()
    return res


def _count_models(cache: Path) -> int:
    d = cache / "models"
    return len([p for p in d.iterdir() if p.is_dir()]) if d.is_dir() else 0


class _CompileLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.compiles = 0
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "compiling" in msg.lower() and "cache miss" in msg.lower():
            self.compiles += 1
            self.records.append(msg)


def _compile_record(cache: Path, code: str, seconds: float | None = None) -> float | None:
    """Cold compile times by program text, kept next to the executables: a cached program
    reports the time its compile took."""
    import hashlib

    path = cache / "compile_times.json"
    key = hashlib.sha256(code.encode()).hexdigest()
    with bl_lock(cache):
        rec = json.loads(path.read_text()) if path.is_file() else {}
        if seconds is not None:
            rec[key] = seconds
            path.write_text(json.dumps(rec, indent=0))
    return rec.get(key)


def bl_lock(cache: Path) -> Any:
    import contextlib
    import fcntl

    @contextlib.contextmanager
    def lock() -> Any:
        with open(cache / ".bench-lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    return lock()


def worker_compile(spec: dict[str, Any]) -> dict[str, Any]:
    cache = Path(spec["cache"])
    engine = spec["engine"]
    if engine in HBSTAN_VARIANTS:
        import hbstan

        case = CASES[spec["case"]]
        df = _load(case)
        handler = _CompileLog()
        log = logging.getLogger("hbstan")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        before = _count_models(cache)
        m = hbstan.Model(case["formula"], data=df, **_options(case, engine))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = m.sample(chains=1, draws=20, warmup=20, seed=1)
        after = _count_models(cache)
        compiled = handler.compiles > 0 or after > before
        if compiled:
            _compile_record(cache, m.stan_code, fit.timings["compile"])
        recorded = _compile_record(cache, m.stan_code)
        return {
            "compile_s": fit.timings["compile"] if compiled else recorded,
            "compiled": compiled,
            "program_header": [ln for ln in m.stan_code.splitlines()[:3] if ln.startswith("//")],
            "program_lines": len(m.stan_code.splitlines()),
        }
    import cmdstanpy

    import programs

    prog = programs.PROGRAMS[spec["program"]]
    stan_file, exe = _program_paths(cache, prog.name)
    stan_file.parent.mkdir(parents=True, exist_ok=True)
    code = prog.stan_file.read_text()
    lines = len(code.splitlines())
    if exe.is_file() and stan_file.is_file() and stan_file.read_text() == code:
        return {"compile_s": _compile_record(cache, code), "program_lines": lines, "compiled": False}
    stan_file.write_text(code)
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    cmdstanpy.CmdStanModel(stan_file=str(stan_file), force_compile=True)
    seconds = time.perf_counter() - t0
    _compile_record(cache, code, seconds)
    return {"compile_s": seconds, "program_lines": lines, "compiled": True}


def worker_refit(spec: dict[str, Any]) -> dict[str, Any]:
    """Re-fits with new data and new prior values must reuse the cached executable."""
    import hbstan
    from hbstan import HalfNormal, LKJ, Normal, Exponential

    cache = Path(spec["cache"])
    handler = _CompileLog()
    log = logging.getLogger("hbstan")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    mn = hbstan.datasets.load_radon("mn")
    checks = []
    for name, formula in (("radon_vi", FORMULA_VI), ("radon_vs", FORMULA_VS)):
        priors = {"Intercept": Normal(1.5, 3.0), "floor": Normal(-0.5, 2.0), "sigma": Exponential(2.0), "sd": HalfNormal(1.0)}
        if name == "radon_vs":
            priors["county_corr"] = LKJ(4.0)
        variants = {
            "baseline (original data, default priors)": (mn, None),
            "new data (random 70% of the homes)": (mn.sample(frac=0.7, random_state=7).reset_index(drop=True), None),
            "new prior values (same families)": (mn, priors),
            "new data set (radon_all, 386 counties)": (hbstan.datasets.load_radon("all"), None),
        }
        base_code = None
        for label, (df, pri) in variants.items():
            before_dirs, before_log = _count_models(cache), handler.compiles
            check: dict[str, Any] = {"model": name, "variant": label}
            try:
                m = hbstan.Model(formula, data=df, priors=pri)
                check["header"] = [ln for ln in m.stan_code.splitlines()[1:2]]
                base_code = m.stan_code if base_code is None else base_code
                # a different program needs its own executable, whether or not the cache has it already
                check["same_program"] = m.stan_code == base_code
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = m.sample(chains=1, draws=50, warmup=50, seed=3)
                check["lookup_s"] = fit.timings.get("compile")
            except Exception as err:  # noqa: BLE001  (reported in the table)
                check["error"] = f"{type(err).__name__}: {err}"[:300]
            check["new_compiles"] = max(_count_models(cache) - before_dirs, handler.compiles - before_log)
            checks.append(check)
    refits = [c for c in checks if not c["variant"].startswith("baseline")]
    return {
        "checks": checks,
        "refit_compiles": sum(c["new_compiles"] for c in refits),
        "refit_new_programs": sum(not c.get("same_program", True) for c in refits),
        "refit_errors": sum("error" in c for c in checks),
    }


def worker_main(spec: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.WARNING)
    phase = spec["phase"]
    try:
        res = {"fit": worker_fit, "compile": worker_compile, "refit": worker_refit}[phase](spec)
        res["ok"] = True
    except Exception as err:  # reported in the table, the run goes on
        res = {"ok": False, "error": f"{type(err).__name__}: {err}"[:2000], "traceback": traceback.format_exc()[-4000:]}
    print(RESULT_TAG + json.dumps(res, default=_json_default), flush=True)


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    return str(o)


# ======================================================================================
# parent side: plan, run the workers, aggregate, write the table
# ======================================================================================
def run_worker(spec: dict[str, Any], env: dict[str, str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    return {"ok": False, "error": f"worker exited with code {proc.returncode}: " + " | ".join(tail)[-1500:]}


def _engine_available(engine: str) -> str | None:
    import importlib.util

    if engine in ("pymc", "nutpie"):
        if importlib.util.find_spec("pymc") is None:
            return "PyMC is not installed"
        if not (ROOT / "hbstan" / "pymc_backend.py").is_file():
            return "hbstan/pymc_backend.py not found"
        if engine == "nutpie" and importlib.util.find_spec("nutpie") is None:
            return "nutpie is not installed (pip install nutpie)"
    return None


def _selected(name: str, only: list[str] | None) -> bool:
    return not only or any(o in name for o in only)


def _versions() -> dict[str, Any]:
    import importlib.metadata as md

    out: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    for pkg in ("cmdstanpy", "arviz", "pymc", "pytensor", "nutpie", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    try:
        from hbstan.backend import find_cmdstan

        out["cmdstan"] = os.path.basename(find_cmdstan().rstrip("/"))
    except Exception as err:  # noqa: BLE001
        out["cmdstan"] = f"not found ({err})"
    try:  # read-only: which commit, and whether the tree has uncommitted changes
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hbstan", "stan_templates"], cwd=ROOT, capture_output=True, text=True)
        out["git"] = rev.stdout.strip() + (" (+ uncommitted changes in hbstan/ or stan_templates/)" if dirty.stdout.strip() else "")
    except OSError:
        out["git"] = None
    return out


NUMERIC = [
    "compile_s", "wall_s", "warmup_s", "sampling_s", "sampler_s", "min_ess_bulk", "min_ess_tail", "ess_per_s",
    "ess_per_s_sampler", "us_per_gradient", "divergences", "max_rhat", "peak_rss_mb", "overhead_share",
    "python_overhead_share", "python_overhead_s", "refit_python_overhead_share", "refit_python_overhead_s",
    "pointwise_s", "diagnose_s", "bookkeeping_s", "bookkeeping_share", "refit_pointwise_s", "refit_diagnose_s",
    "refit_bookkeeping_s", "refit_bookkeeping_share", "mean_leapfrog", "step_size", "output_csv_mb", "grad_eval_us",
]


def aggregate(runs: list[dict[str, Any]], compiles: dict[str, Any]) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for r in runs:
        key = f"{r['case']}/{r['engine']}"
        row = rows.setdefault(key, {"case": r["case"], "engine": r["engine"], "runs": [], "errors": []})
        if r.get("ok"):
            row["runs"].append(r)
        else:
            row["errors"].append(r.get("error"))
    for key, row in rows.items():
        ok = row["runs"]
        row["n_ok"] = len(ok)
        med = {k: bl.median([x.get(k) for x in ok]) for k in NUMERIC}
        comp = compiles.get(key) or {}
        if med.get("compile_s") is None and comp.get("compile_s") is not None:
            med["compile_s"] = comp["compile_s"]
            med["compile_cached"] = not comp.get("compiled", True)
        med["ess_per_s_range"] = (
            [min(x["ess_per_s"] for x in ok), max(x["ess_per_s"] for x in ok)] if ok else None
        )
        med["max_rhat_worst"] = max((x["max_rhat"] for x in ok if x.get("max_rhat") is not None), default=None)
        med["min_ess_params"] = sorted({x.get("min_ess_bulk_param") for x in ok if x.get("min_ess_bulk_param")})
        row["median"] = med
    return rows


def _f(x: Any, fmt: str = "{:.1f}", none: str = "–") -> str:
    if x is None:
        return none
    try:
        return fmt.format(x)
    except (ValueError, TypeError):
        return str(x)


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    rows = result["rows"]
    lines = [
        "# hbstan benchmark",
        "",
        f"Run {result['started']} ({result['elapsed_min']:.1f} min); {s['chains']} chains x ({s['warmup']} warm-up + "
        f"{s['draws']} draws); seeds {s['seeds']}; median of {s['repeats']} runs per row (radon_all: "
        f"{s['repeats_all']}); each run in a fresh process with the program compiled beforehand "
        f"({'fresh compile cache' if s.get('fresh_cache') else 'compile cache kept between runs; (cached) = compile time recorded when built'}).",
        f"Machine: {result['versions']['cpus']} CPUs, load average {result['load_start']} at the start and "
        f"{result['load_end']} at the end (other jobs were running: timings are noisy). "
        f"CmdStan {result['versions'].get('cmdstan')}, cmdstanpy {result['versions'].get('cmdstanpy')}, "
        f"PyMC {result['versions'].get('pymc')}, nutpie {result['versions'].get('nutpie')}, "
        f"ArviZ {result['versions'].get('arviz')}; hbstan at {result['versions'].get('git')}.",
        "",
    ]
    for case_name, case in CASES.items():
        case_rows = [rows[k] for k in rows if rows[k]["case"] == case_name]
        if not case_rows:
            continue
        opts = ", ".join(f"{k}={v!r}" for k, v in case.get("options", {}).items())
        lines += [f"## {case_name}: {case['title']}", "", f"`{case['formula']}`" + (f" ({opts})" if opts else ""), ""]
        lines += [
            "| engine | compile s | wall s | warm-up / sampling s | min bulk ESS | **ESS/s** (range) | ESS/s sampler | grad µs | leapfrog/draw | div | max R-hat | peak RSS MB | overhead | hbstan Py overhead, first fit / re-fit (all: with pointwise and checks) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        order = {e: i for i, e in enumerate(case["engines"] + case.get("optional", []))}
        for row in sorted(case_rows, key=lambda r: order.get(r["engine"], 99)):
            m = row["median"]
            name = ENGINES.get(row["engine"], row["engine"])
            if not row["n_ok"]:
                err = (row.get("skipped") or (row["errors"] or ["?"])[0] or "?").replace("|", "/")[:160]
                lines.append(f"| {name} | {_f(m.get('compile_s'))} | failed: {err} |" + " |" * 11)
                continue
            rng = m["ess_per_s_range"]
            comp = _f(m.get("compile_s"))
            if m.get("compile_cached"):
                comp += " (cached)"
            split = f"{_f(m.get('warmup_s'))} / {_f(m.get('sampling_s'))}" if m.get("warmup_s") is not None else "n/a"
            pyo = (
                f"{_f(m.get('bookkeeping_share'), '{:.0%}')} / {_f(m.get('refit_bookkeeping_share'), '{:.0%}')} "
                f"(all: {_f(m.get('python_overhead_share'), '{:.0%}')} / {_f(m.get('refit_python_overhead_share'), '{:.0%}')})"
                if row["engine"] in HBSTAN_VARIANTS
                else ""
            )
            lines.append(
                f"| {name} | {comp} | {_f(m['wall_s'])} | {split} | {_f(m['min_ess_bulk'], '{:.0f}')} | "
                f"**{_f(m['ess_per_s'], '{:.0f}')}** ({_f(rng[0], '{:.0f}')}–{_f(rng[1], '{:.0f}')}) | "
                f"{_f(m.get('ess_per_s_sampler'), '{:.0f}')} | {_f(m.get('grad_eval_us'), '{:.0f}')} | "
                f"{_f(m.get('mean_leapfrog'), '{:.1f}')} | {_f(m.get('divergences'), '{:.0f}')} | "
                f"{_f(m.get('max_rhat_worst'), '{:.3f}')} | {_f(m.get('peak_rss_mb'), '{:.0f}')} | "
                f"{_f(m.get('overhead_share'), '{:.0%}')} | {pyo} |"
            )
        notes = []
        for row in case_rows:
            if row["engine"] in HBSTAN_VARIANTS and row["runs"]:
                r0 = row["runs"][0]
                hdr = " ".join(h.lstrip("/ ").strip() for h in r0.get("program_header", [])[:2])
                notes.append(
                    f"hbstan program: {hdr} Sufficient statistics: {r0.get('suff_stats')}. CmdStan CSV "
                    f"output {r0.get('output_csv_mb', 0):.1f} MB per run."
                )
            if row["runs"]:
                params = ", ".join(row["median"]["min_ess_params"])
                notes.append(f"{ENGINES.get(row['engine'], row['engine'])}: min bulk ESS at {params}.")
        for other in ("stan_brms", "nutpie"):
            agree = posterior_agreement(rows.get(f"{case_name}/hbstan"), rows.get(f"{case_name}/{other}"))
            if agree:
                notes.append(f"Same posterior, hbstan vs {ENGINES[other]}: {agree}.")
        lines += [""] + [f"- {n}" for n in notes] + [""]
    lines += goals_section(result)
    lines += refit_section(result.get("refit"))
    lines += [
        "## Reference points from issue 7 (min bulk ESS/s, radon MN, 2 chains x 1000+1000)",
        "",
        "| model | hand-written loop Stan | brms-generated | nutpie | PyMC default |",
        "|---|---:|---:|---:|---:|",
        "| varying intercept | 153 | ~540 | 92 | 62 |",
        "| varying intercept + slope | 64 | ~85 | 72 | 28 |",
        "",
        "Columns: see benchmarks/README.md. ESS/s = min bulk ESS over the user-facing quantities "
        "(Intercept, floor, sigma, group SDs, group effects, correlation) / wall time of the warm fit.",
        "",
    ]
    return "\n".join(lines)


def posterior_agreement(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str | None:
    """How far two engines' posteriors are apart, over the quantities both report: the largest
    difference of posterior means in posterior SDs, and the range of the ratio of SDs, each
    from the averages over the rows' runs. Monte Carlo error alone gives differences of about
    sqrt(1 / ESS_a + 1 / ESS_b / n_runs) SDs per element, the largest of many elements a few
    times that."""
    import numpy as np

    def averaged(row: dict[str, Any] | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        runs = [r["post_summary"] for r in (row or {}).get("runs", []) if r.get("post_summary")]
        if not runs:
            return {}
        keys = set.intersection(*(set(r) for r in runs))
        return {
            k: (np.mean([r[k]["mean"] for r in runs], axis=0), np.mean([r[k]["sd"] for r in runs], axis=0))
            for k in keys
        }

    pa, pb = averaged(a), averaged(b)
    common = sorted(k for k in set(pa) & set(pb) if len(pa[k][0]) == len(pb[k][0]))
    if not common:
        return None
    worst, at, ratios = 0.0, "", []
    for k in common:
        (ma, sa), (mb, sb) = pa[k], pb[k]
        z = np.abs(ma - mb) / np.maximum(np.sqrt((sa**2 + sb**2) / 2), 1e-12)
        if z.max() > worst:
            worst, at = float(z.max()), k
        ratios += list(sa / np.maximum(sb, 1e-12))
    n = sum(len(pa[k][0]) for k in common)
    return (
        f"largest difference of posterior means {worst:.2f} posterior SDs (at {at}), ratio of posterior SDs "
        f"{min(ratios):.2f}-{max(ratios):.2f}, over {n} elements of {len(common)} quantities"
    )


def _ratio(rows: dict[str, Any], case: str, a: str, b: str, key: str = "ess_per_s") -> float | None:
    ra, rb = rows.get(f"{case}/{a}"), rows.get(f"{case}/{b}")
    if not (ra and rb and ra["n_ok"] and rb["n_ok"]):
        return None
    x, y = ra["median"].get(key), rb["median"].get(key)
    return x / y if x and y else None


def goals_section(result: dict[str, Any]) -> list[str]:
    rows = result["rows"]
    lines = ["## Goals of issues 7 and 19", "", "| goal | measured | met |", "|---|---|---|"]

    def mark(ok: bool | None) -> str:
        return "–" if ok is None else ("yes" if ok else "**no**")

    for case in ("radon_vi", "radon_vs"):
        for other, goal, label in (("stan_brms", 1.0, "1.0x brms-style"), ("nutpie", 2.0, "2x nutpie")):
            r = _ratio(rows, case, "hbstan", other)
            rs = _ratio(rows, case, "hbstan", other, "ess_per_s_sampler")
            txt = f"{_f(r, '{:.2f}x')} (sampler time only: {_f(rs, '{:.2f}x')})"
            ok = None if r is None else (r >= goal and (rs is None or rs >= goal))
            lines.append(f"| {case}: ESS/s >= {label} | {txt} | {mark(ok)} |")
    ref = result.get("refit")
    if ref and ref.get("ok"):
        n, bad, progs = ref["refit_compiles"], ref.get("refit_errors", 0), ref.get("refit_new_programs", 0)
        txt = f"{n} compiles, {progs} re-fits needing a different program" + (f" ({bad} re-fits failed)" if bad else "")
        base = {c["model"]: c.get("header") for c in ref["checks"] if c["variant"].startswith("baseline")}
        why = [
            f"{c['model']}, {c['variant'].split(' (')[0]}: program changed to '{' '.join(c.get('header') or []).lstrip('/ ')}'"
            for c in ref["checks"]
            if not c["variant"].startswith("baseline") and (c["new_compiles"] or not c.get("same_program", True))
        ]
        if why:
            txt += " — " + "; ".join(why)
        lines.append(f"| re-fit with new data / new prior values: zero compiles | {txt} | {mark(n == 0 and not progs and not bad)} |")
    for case in ("radon_vi", "radon_vs"):
        row = rows.get(f"{case}/hbstan")
        if row and row["n_ok"]:
            md = row["median"]
            first, sh = md.get("bookkeeping_share"), md.get("refit_bookkeeping_share")
            txt = (
                f"re-fit in the same process: {_f(sh, '{:.1%}')} ({_f(md.get('refit_bookkeeping_s'), '{:.3f}')} s); "
                f"first fit in a fresh process, with one-time imports: {_f(first, '{:.1%}')} "
                f"({_f(md.get('bookkeeping_s'), '{:.3f}')} s). Beyond that list, log_lik, y_rep and the integrated-out group effects in NumPy take "
                f"{_f(md.get('refit_pointwise_s'), '{:.3f}')} s and the post-fit checks {_f(md.get('refit_diagnose_s'), '{:.3f}')} s: "
                f"all Python time together is {_f(md.get('refit_python_overhead_share'), '{:.1%}')} of the re-fit"
            )
            lines.append(
                f"| {case}: hbstan Python overhead (validate, render, hash, write data, build InferenceData) < 10% of the fit "
                f"| {txt} | {mark(None if sh is None else sh < 0.10)} |"
            )
    for case in (c for c in CASES if c.startswith("glmm_")):
        row = rows.get(f"{case}/hbstan")
        for other in ("stan_brms", "nutpie"):
            r = _ratio(rows, case, "hbstan", other)
            if r is None:
                continue
            rs = _ratio(rows, case, "hbstan", other, "ess_per_s_sampler")
            div = row["median"].get("divergences") if row and row["n_ok"] else None
            txt = f"{_f(r, '{:.2f}x')} (sampler time only: {_f(rs, '{:.2f}x')}); hbstan divergences {_f(div, '{:.0f}')}"
            lines.append(f"| {case}: ESS/s >= 2x {other} (issue 19), no divergences | {txt} | {mark(r >= 2 and not div)} |")
    ra, rl = rows.get("radon_all_vs/hbstan"), rows.get("radon_all_vs/stan_loop")
    if ra and ra["n_ok"]:
        rh = ra["median"]["max_rhat_worst"]
        txt = f"hbstan: R-hat {_f(rh, '{:.3f}')}, wall {ra['median']['wall_s']:.0f} s"
        if rl and rl["n_ok"]:
            txt += (
                f"; hand-written loop: R-hat {_f(rl['median']['max_rhat_worst'], '{:.3f}')}, wall "
                f"{rl['median']['wall_s']:.0f} s ({rl['median']['wall_s'] / ra['median']['wall_s']:.1f}x hbstan's time)"
            )
        lines.append(f"| radon_all varying slope: R-hat <= 1.01 at 1000+1000 | {txt} | {mark(None if rh is None else rh <= 1.01)} |")
    return lines + [""]


def refit_section(ref: dict[str, Any] | None) -> list[str]:
    if not ref:
        return []
    lines = ["## Re-fit without recompiling", ""]
    if not ref.get("ok"):
        return lines + [f"Check failed: {ref.get('error')}", ""]
    lines += [
        "New compiles count executables added to the cache; \"same program\" says whether the re-fit's "
        "program is the baseline's (a different one needs its own compile unless an earlier run cached it).",
        "",
        "| model | re-fit | new compiles | same program | cache lookup s | program |",
        "|---|---|---:|---|---:|---|",
    ]
    for c in ref["checks"]:
        hdr = " ".join(h.lstrip("/ ").strip() for h in c.get("header", []))
        if c.get("error"):
            hdr += " FAILED: " + c["error"].replace("|", "/").replace("\n", " ")[:200]
        same = {True: "yes", False: "**no**", None: "–"}[c.get("same_program")]
        lines.append(f"| {c['model']} | {c['variant']} | {c['new_compiles']} | {same} | {_f(c.get('lookup_s'), '{:.2f}')} | {hdr} |")
    return lines + [""]


README_START = "<!-- latest results: written by benchmarks/run.py -->"
README_END = "<!-- end of latest results -->"


def update_readme(md: str) -> None:
    """Put the latest tables into benchmarks/README.md, between the two markers."""
    path = HERE / "README.md"
    if not path.is_file():
        return
    text = path.read_text()
    if README_START not in text or README_END not in text:
        return
    body = md.split("\n", 1)[1].replace("\n## ", "\n### ").strip()  # drop the title, demote headings
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    path.write_text(f"{head}{README_START}\n\n{body}\n\n{README_END}{tail}")


def parent_main(args: argparse.Namespace) -> int:
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t_start = time.perf_counter()
    only = [o.strip() for o in args.only.split(",")] if args.only else None
    if args.quick:
        cases = ["radon_vi", "radon_vs"]
        repeats = args.repeats or 1
    else:
        cases = list(CASES)
        repeats = args.repeats or 3
    repeats_all = repeats if args.all_repeats else min(repeats, CASES["radon_all_vs"]["repeats"])
    pairs = [(c, e) for c in cases for e in CASES[c]["engines"] if _selected(f"{c}/{e}", only)]
    pairs += [
        (c, e) for c in cases for e in CASES[c].get("optional", []) if only and (f"{c}/{e}" in only or e in only)
    ]
    do_refit = not args.no_refit and (not only or "refit" in only)
    if not pairs and not do_refit:
        print(f"nothing selected by --only {args.only!r}; names look like radon_vs/hbstan", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.cold:
        cache = Path(tempfile.mkdtemp(prefix="hbstan-bench-"))
        fresh = True
    else:
        cache = Path(args.cache) if args.cache else Path(tempfile.gettempdir()) / "hbstan-bench-cache"
        fresh = False
    (cache / "runs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["HBSTAN_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    versions = _versions()
    load_start = bl.load_average()
    print(f"hbstan benchmark: {len(pairs)} (model x engine) pairs, {repeats} repeat(s); cache {cache}", flush=True)

    # ---- compile everything first (compile time recorded separately) ----
    compiles: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for case, engine in pairs:
        why = _engine_available(engine)
        if why:
            skipped[f"{case}/{engine}"] = why
            continue
        if engine in HBSTAN_VARIANTS:
            spec = {"phase": "compile", "engine": engine, "case": case, "cache": str(cache)}
        elif engine.startswith("stan_"):
            spec = {"phase": "compile", "engine": engine, "program": CASES[case]["programs"][engine], "cache": str(cache)}
        else:
            continue
        res = run_worker(spec, env, args.timeout)
        compiles[f"{case}/{engine}"] = res
        state = "compiled" if res.get("compiled") else "cached"
        print(f"  compile {case}/{engine}: {_f(res.get('compile_s'))} s ({state}) {res.get('error', '')}", flush=True)

    # ---- timed fits: repeats interleaved, so load from other jobs spreads over the engines ----
    runs: list[dict[str, Any]] = []
    for rep in range(repeats):
        seed = args.seed + rep
        for case, engine in pairs:
            key = f"{case}/{engine}"
            if key in skipped or (case == "radon_all_vs" and rep >= repeats_all):
                continue
            comp = compiles.get(key)
            if comp is not None and not comp.get("ok"):
                continue
            spec = {
                "phase": "fit", "case": case, "engine": engine, "seed": seed, "chains": args.chains,
                "warmup": args.warmup, "draws": args.draws, "cache": str(cache),
            }
            res = run_worker(spec, env, args.timeout)
            res.update(case=case, engine=engine, seed=seed, repeat=rep)
            runs.append(res)
            if res.get("ok"):
                print(
                    f"  [{rep + 1}/{repeats}] {key}: wall {res['wall_s']:.1f} s, min ESS {res['min_ess_bulk']:.0f} "
                    f"({res.get('min_ess_bulk_param')}), ESS/s {res['ess_per_s']:.0f}, R-hat {_f(res['max_rhat'], '{:.3f}')}, "
                    f"div {res.get('divergences')}",
                    flush=True,
                )
            else:
                print(f"  [{rep + 1}/{repeats}] {key}: FAILED {res.get('error')}", flush=True)

    refit = None
    if do_refit:
        refit = run_worker({"phase": "refit", "cache": str(cache)}, env, args.timeout)
        print(f"  refit check: {refit.get('refit_compiles', refit.get('error'))} new compile(s)", flush=True)

    rows = aggregate(runs, compiles)
    for key, why in skipped.items():
        case, engine = key.split("/")
        rows[key] = {"case": case, "engine": engine, "runs": [], "errors": [], "n_ok": 0, "skipped": why, "median": {}}
    for key, comp in compiles.items():
        if not comp.get("ok") and key in rows:
            rows[key]["errors"].insert(0, "compile: " + str(comp.get("error")))
        elif not comp.get("ok"):
            case, engine = key.split("/")
            rows[key] = {"case": case, "engine": engine, "runs": [], "errors": ["compile: " + str(comp.get("error"))], "n_ok": 0, "median": {}}
    result = {
        "started": started,
        "elapsed_min": (time.perf_counter() - t_start) / 60,
        "settings": {
            "chains": args.chains, "warmup": args.warmup, "draws": args.draws, "repeats": repeats,
            "repeats_all": repeats_all, "seeds": [args.seed + r for r in range(repeats)], "quick": args.quick,
            "cache": str(cache), "fresh_cache": fresh,
        },
        "versions": versions,
        "load_start": load_start,
        "load_end": bl.load_average(),
        "compiles": compiles,
        "rows": rows,
        "refit": refit,
    }
    md = markdown(result)
    name = args.name or ("quick" if args.quick else "latest")
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1, default=_json_default))
    (out_dir / f"{name}.md").write_text(md)
    if name == "latest" and not args.no_readme:
        update_readme(md)
    print()
    print(md)
    if fresh and not args.keep_cache:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 repeat, Minnesota models only; writes quick.md/quick.json")
    p.add_argument("--only", help="comma-separated substrings of 'case/engine' (e.g. radon_vs/hbstan,nutpie,refit)")
    p.add_argument("--repeats", type=int, help="runs per (model x engine) pair; the median is reported (default 3)")
    p.add_argument("--all-repeats", action="store_true", help="repeat radon_all as often as the others (default: once)")
    p.add_argument("--out", default=str(HERE / "results"), help="directory for <name>.json and <name>.md")
    p.add_argument("--name", help="file name stem of the outputs (default: latest; quick with --quick)")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1, help="seed of the first repeat; repeat r uses seed+r for every engine")
    p.add_argument(
        "--cache",
        help="compile cache of the benchmark (default: $TMPDIR/hbstan-bench-cache, kept between runs; a "
        "cached program reports the compile time recorded when it was built)",
    )
    p.add_argument("--cold", action="store_true", help="use a fresh, temporary compile cache: every program compiles")
    p.add_argument("--keep-cache", action="store_true", help="keep the --cold cache")
    p.add_argument("--no-refit", action="store_true", help="skip the re-fit/zero-compile check")
    p.add_argument("--no-readme", action="store_true", help="do not copy the tables into benchmarks/README.md")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per worker process")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main(json.loads(args.worker))
        return 0
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
