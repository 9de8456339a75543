"""The CmdStan backend: a model specification and sampler options in, a :class:`~hbstan.Fit` out.

Split the way CmdStanPy splits it: the program and its data come from the spec
(:meth:`~hbstan.spec.ModelSpec.program`, :meth:`~hbstan.spec.ModelSpec.stan_data_for`), the
executable from the compile cache (:func:`hbstan.backend.compiled_model`), the run from
``CmdStanModel.sample`` into a run directory, and the InferenceData from
:func:`hbstan.idata.build_idata`, the builder every backend shares.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import general as general_programs
from .backend import (
    compile_in_background,
    compiled_model,
    is_compiled,
    new_run_dir,
    program_hash,
    quiet_cmdstanpy,
)
from .fit import Fit, SamplingError, arviz_without_numba
from .idata import SAMPLE_STATS, build_idata, import_arviz_in_background, resolve_pointwise
from .marginal import group_effect_draws
from .options import recorded_settings
from .pointwise import pointwise_groups

if TYPE_CHECKING:
    import arviz as az

    from .spec import ModelSpec, ParamInfo

__all__ = ["sample_stan", "params_from_stan"]

log = logging.getLogger("hbstan")


def sample_stan(model: ModelSpec, **opts: Any) -> Fit:
    """Compile (or reuse) the program, write the run directory, sample, and convert.

    ``opts`` are :meth:`hbstan.Model.sample`'s sampler options.
    """
    import cmdstanpy

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    threads = opts.pop("threads_per_chain")
    grainsize = opts.pop("grainsize")
    # any explicit threads_per_chain (1 included, the baseline) renders the reduce_sum program
    use_threads = threads is not None and threads >= 1 and model.threads_supported
    code = model.program(threads=use_threads)
    cpp = {"STAN_THREADS": True} if use_threads else None
    program = opts.pop("program", "auto")
    on_general = _on_general_program(model, code, cpp, program, use_threads)
    specialized_code = code
    if on_general:
        code, cpp = general_programs.general_program(model.family.name, model.family.link), None
    cm = compiled_model(code, cpp_options=cpp)
    timings["compile"] = time.perf_counter() - t0
    run_dir = new_run_dir(program_hash(code, cpp), opts.pop("output_dir"))
    (run_dir / "model.stan").write_text(code)
    prior_only = opts.pop("prior_only")
    pointwise = opts.pop("pointwise")
    if pointwise not in ("auto", "python", "stan", False):
        raise ValueError(f"pointwise must be 'auto', 'python', 'stan' or False, got {pointwise!r}")
    if pointwise == "stan" and model.aggregated and not use_threads and not on_general:
        raise ValueError(
            f"pointwise='stan' computes log_lik per row of the data CmdStan sees, but this {model.family.name} "
            "model sums identical rows into counts; use pointwise='python' or Model(..., aggregate=False)"
        )
    data_file = run_dir / "data.json"
    if on_general:
        stan_data = general_programs.general_data(model, prior_only=prior_only, pointwise=pointwise == "stan")
    else:
        stan_data = model.stan_data_for(
            prior_only=prior_only,
            threads=use_threads,
            grainsize=grainsize,
            pointwise=pointwise == "stan",
            draw_effects=pointwise == "stan",
        )
    cmdstanpy.write_stan_json(str(data_file), stan_data)
    if use_threads:
        opts["threads_per_chain"] = threads
    settings = recorded_settings({**opts, "prior_only": prior_only})
    for key in settings:
        opts.pop(key, None)
    chains = settings["chains"]
    parallel = opts.pop("parallel_chains") or min(chains, os.cpu_count() or 1)
    t1 = time.perf_counter()
    # the first fit of a process imports ArviZ (about 1.3 s) while CmdStan samples, not after
    arviz_import = import_arviz_in_background()
    # CmdStan's non-fatal warmup messages (e.g. a rejected proposal) are noise here: hbstan
    # runs its own diagnostics after sampling and warns about what matters.
    quiet = contextlib.nullcontext() if log.isEnabledFor(logging.DEBUG) else quiet_cmdstanpy(logging.ERROR)
    try:
        with quiet:
            mcmc = cm.sample(
                data=str(data_file),
                chains=chains,
                parallel_chains=parallel,
                iter_sampling=settings["draws"],
                iter_warmup=settings["warmup"],
                seed=settings["seed"],
                adapt_delta=settings["adapt_delta"],
                max_treedepth=settings["max_treedepth"],
                output_dir=str(run_dir),
                show_progress=opts.pop("show_progress"),
                inits=opts.pop("inits"),
                **opts,
            )
    except KeyboardInterrupt:
        log.warning("hbstan: sampling interrupted; the CSV files written so far are kept in %s", run_dir)
        raise
    except (RuntimeError, ValueError) as err:
        raise SamplingError(_failure_message(str(err), run_dir)) from None
    timings["sample"] = time.perf_counter() - t1
    background = None
    if on_general and program == "auto":
        # after sampling, so that the compile does not slow this fit down
        background = compile_in_background(specialized_code)
    t2 = time.perf_counter()
    if arviz_import is not None:
        arviz_import.join()
    pointwise = settings["pointwise"] = resolve_pointwise(pointwise, model, chains, settings["draws"])
    converter = _CmdStanConverter(
        model, mcmc, prior_only=prior_only, seed=settings["seed"], general=on_general,
        marginal=bool(stan_data.get("marginal", 0)) if on_general else None,
    )
    with arviz_without_numba():
        idata = converter.to_inference_data(pointwise)
    fit = Fit(model, idata, run_dir=run_dir, settings=settings)
    fit.stan_fit = mcmc
    fit.program = "general" if on_general else "specialized"  # which program sampled
    fit.specialized_compile = background  # the background compile's subprocess.Popen, or None
    timings["convert"] = time.perf_counter() - t2
    timings["pointwise"] = converter.pointwise_s
    timings["effects"] = converter.effects_s
    fit.timings = timings
    t3 = time.perf_counter()
    fit.warn_if_unhealthy()
    timings["diagnose"] = time.perf_counter() - t3
    return fit


def _on_general_program(model: ModelSpec, code: str, cpp: dict[str, Any] | None, program: str, threads: bool) -> bool:
    """Whether this fit samples on the family's general program (:mod:`hbstan.general`).

    ``program="auto"``: when the specialized program ``code`` is not compiled yet, the general
    program is built and supports the model; the specialized program then compiles in the
    background once this fit has sampled, for the next fit. ``"general"``: always (an error naming the reason when the
    model is not supported; it is compiled first if need be; nothing compiles in the
    background). ``"specialized"``: never.
    """
    if program not in general_programs.PROGRAMS:
        raise ValueError(f"unknown program {program!r}; valid values: {list(general_programs.PROGRAMS)}")
    if program == "specialized":
        return False
    reason = general_programs.unsupported(model)
    if threads and reason is None:
        reason = "threads_per_chain (reduce_sum) needs the specialized program"
    if program == "general":
        if reason is not None:
            raise ValueError(f"program='general' cannot run this model: {reason}; use program='auto' or 'specialized'")
        return True
    if reason is not None or is_compiled(code, cpp_options=cpp) or not general_programs.is_built(model.family.name, model.family.link):
        if reason is not None:
            log.debug("hbstan: the specialized program runs: %s", reason)
        return False
    log.warning(
        "hbstan: sampling on the general %s program (%s link; precompiled, no compile wait); the program specialized "
        "to this model compiles in the background, and later fits use it once it is ready "
        "(Model.sample(program='specialized') waits for it instead)",
        model.family.name, model.family.link,
    )
    return True


def _failure_message(text: str, run_dir: Path) -> str:
    """Which chains failed, CmdStan's own reason, and where the files are."""
    import re

    codes = re.search(r"retcodes=\[([^\]]*)\]", text)
    retcodes = [int(c) for c in codes.group(1).split(",")] if codes else []
    failed = [i + 1 for i, c in enumerate(retcodes) if c != 0]
    reasons = []
    for line in text.splitlines():
        line = line.strip()
        if (line.startswith(("Exception:", "Rejecting", "Initialization", "Error")) or "failed" in line) and line not in reasons:
            reasons.append(line)
    head = f"CmdStan failed in chain(s) {failed} (exit codes {retcodes})" if failed else "CmdStan sampling failed"
    if any(c < 0 for c in retcodes):
        head += "; a negative exit code means the process was killed by a signal"
    why = "\n  ".join(reasons[:3]) or text.strip().splitlines()[0]
    return f"{head}:\n  {why}\nCmdStan's output files (CSV and console logs) are kept in {run_dir}"


class _CmdStanConverter:
    """Reads a CmdStanMCMC into InferenceData with hbstan's user-facing names."""

    def __init__(
        self,
        model: ModelSpec,
        mcmc: Any,
        prior_only: bool = False,
        seed: int | None = None,
        general: bool = False,
        marginal: bool | None = None,
    ) -> None:
        self.model = model
        self.mcmc = mcmc
        self.prior_only = prior_only
        self.seed = seed
        self.draws = mcmc.draws(concat_chains=False)  # (iter, chain, column)
        # a run of the general program: its flat vectors read under the specialized names;
        # marginal: whether it integrated the group effects out (None: a specialized run)
        self._marginal = marginal
        self._general = (
            general_programs.specialized_names(model, self._var, marginal=bool(marginal)) if general else None
        )
        self.pointwise_s = 0.0  # seconds spent computing log_lik and y_rep in Python
        self.effects_s = 0.0  # seconds spent drawing integrated-out group effects in Python

    def _var(self, name: str) -> np.ndarray:
        meta = self.mcmc.metadata
        var = meta.stan_vars.get(name) or meta.method_vars.get(name)
        arr = var.extract_reshape(self.draws)  # (iter, chain, ...)
        return np.swapaxes(np.asarray(arr, dtype=float), 0, 1)

    def _get(self, name: str) -> np.ndarray:
        """Return a Stan variable's draws, drawing integrated-out group effects here.

        A program with draw_effects = 0 leaves r_1 out of its output, as does the general
        program where it integrates the group effects out; :mod:`hbstan.marginal` draws it
        from the population-level draws.
        """
        read = self._general if self._general is not None else self._var
        if name == "r_1" and self.model.marginalized:
            if self._marginal is None:  # a specialized program: r_1 is drawn there or not at all
                var = self.mcmc.metadata.stan_vars.get(name)
                drawn_here = var is None or not var.dimensions or var.dimensions[0] == 0
            else:
                drawn_here = self._marginal
            if drawn_here:
                t0 = time.perf_counter()
                # a stream of its own, apart from the pointwise arrays' (default_rng(seed))
                rng = np.random.default_rng(None if self.seed is None else [self.seed, 1])
                r = group_effect_draws(self.model, read, rng, prior_only=self.prior_only)
                self.effects_s = time.perf_counter() - t0
                return r
        return read(name)

    def to_inference_data(self, pointwise: str | bool = "stan") -> az.InferenceData:
        post = params_from_stan(self.model, self._get)
        stats = {az_name: self._var(stan_name) for stan_name, az_name in SAMPLE_STATS.items()}
        groups: dict[str, Any] | None = None
        if pointwise == "stan":
            groups = {
                "posterior_predictive": {self.model.design.response: self._var("y_rep")},
                "log_likelihood": {"log_lik": self._var("log_lik")},
            }
        elif pointwise == "python":
            t0 = time.perf_counter()
            groups = pointwise_groups(self.model, post, self.seed)
            self.pointwise_s = time.perf_counter() - t0
        return build_idata(self.model, post, stats, pointwise=groups, attrs={"inference_library": "cmdstanpy"})


def params_from_stan(model: ModelSpec, get: Any) -> dict[str, np.ndarray]:
    """User-facing posterior arrays from Stan-named draws (``get(name)`` -> (chain, draw, ...))."""
    post: dict[str, np.ndarray] = {}
    cache: dict[str, np.ndarray] = {}
    for p in model.params:
        if p.stan not in cache:
            cache[p.stan] = get(p.stan)
            if p.per_category:
                cache[p.stan] = _entries_by_category(cache[p.stan], p)
        arr = cache[p.stan]
        cat = int(p.per_category)  # a last axis of categories
        if p.kind == "scalar":
            val = arr
        elif p.kind == "vector":
            val = arr[:, :, p.cols]
            if len(p.dims) == cat:
                val = val[:, :, 0]
        elif p.kind == "matrix_cols":  # (chain, draw, J, M)
            val = arr[:, :, :, p.cols]
            if len(p.dims) == 1 + cat:
                val = val[:, :, :, 0]
        else:  # corr
            val = arr
        post[p.name] = val
    return post


def _entries_by_category(arr: np.ndarray, p: ParamInfo) -> np.ndarray:
    """Put a per-category Stan variable's categories on a last axis.

    The coefficients ``b`` (matrix[K, ncat - 1]) are so already; the group effects
    (matrix[J, M * (ncat - 1)]) and their SDs (vector[M * (ncat - 1)]) hold one block of M
    columns per category, which becomes (..., M, ncat - 1).
    """
    flat = (p.kind == "vector" and arr.ndim == 3) or (p.kind == "matrix_cols" and arr.ndim == 4)
    if not flat:
        return arr
    kc = len((p.coords or {})["category"])
    return np.swapaxes(arr.reshape(*arr.shape[:-1], kc, -1), -1, -2)
