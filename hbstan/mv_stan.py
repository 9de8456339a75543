"""CmdStan for a multivariate model: one program, one run, one InferenceData.

As :mod:`hbstan.stan_backend`: the program and data come from the spec
(:meth:`~hbstan.mvspec.MultiSpec.program`, :meth:`~hbstan.mvspec.MultiSpec.stan_data_for`),
the executable from the compile cache, the draws are renamed with
:func:`hbstan.stan_backend.params_from_stan`, and :func:`hbstan.mvfit.build_mv_idata` lays them
out. The pointwise log-likelihood and replicated data are computed by the program
(``pointwise="stan"``, the default here).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import compiled_model, new_run_dir, program_hash, quiet_cmdstanpy
from .fit import SamplingError, arviz_without_numba
from .idata import SAMPLE_STATS
from .mvfit import MultivariateFit, build_mv_idata
from .options import recorded_settings
from .stan_backend import params_from_stan

if TYPE_CHECKING:
    from .mvspec import MultiSpec

__all__ = ["sample_mv_stan"]

log = logging.getLogger("hbstan")


def sample_mv_stan(
    model: MultiSpec,
    *,
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed: int | None = None,
    adapt_delta: float | None = None,
    max_treedepth: int | None = None,
    prior_only: bool = False,
    output_dir: str | None = None,
    parallel_chains: int | None = None,
    show_progress: bool = False,
    inits: Any = None,
    pointwise: str | bool = "auto",
    **kwargs: Any,
) -> MultivariateFit:
    """Compile (or reuse) the program, sample it with CmdStan, and convert the draws."""
    import cmdstanpy

    if pointwise not in ("auto", "stan", False):
        raise ValueError(
            f"pointwise must be 'auto', 'stan' or False for a multivariate model (its program computes them), "
            f"got {pointwise!r}"
        )
    pointwise_on = pointwise in ("auto", "stan")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    code = model.program()
    cm = compiled_model(code)
    timings["compile"] = time.perf_counter() - t0
    run_dir = new_run_dir(program_hash(code), output_dir)
    (run_dir / "model.stan").write_text(code)
    data_file = run_dir / "data.json"
    cmdstanpy.write_stan_json(str(data_file), model.stan_data_for(prior_only=prior_only, pointwise=pointwise_on))
    settings = {**recorded_settings(locals()), "pointwise": "stan" if pointwise_on else False}
    t1 = time.perf_counter()
    quiet = contextlib.nullcontext() if log.isEnabledFor(logging.DEBUG) else quiet_cmdstanpy(logging.ERROR)
    try:
        with quiet:
            mcmc = cm.sample(
                data=str(data_file), chains=chains, parallel_chains=parallel_chains or min(chains, os.cpu_count() or 1),
                iter_sampling=draws, iter_warmup=warmup, seed=seed, adapt_delta=adapt_delta,
                max_treedepth=max_treedepth, output_dir=str(run_dir), show_progress=show_progress, inits=inits,
                **kwargs,
            )
    except (RuntimeError, ValueError) as err:
        raise SamplingError(f"CmdStan sampling failed: {err}\nCmdStan's output files are kept in {run_dir}") from None
    timings["sample"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    raw = mcmc.draws(concat_chains=False)  # (iter, chain, column)
    meta = mcmc.metadata

    def get(name: str) -> np.ndarray:
        var = meta.stan_vars.get(name) or meta.method_vars.get(name)
        return np.swapaxes(np.asarray(var.extract_reshape(raw), dtype=float), 0, 1)  # (chain, draw, ...)

    post = params_from_stan(model, get)
    stats = {az_name: get(stan_name) for stan_name, az_name in SAMPLE_STATS.items()}
    extra: dict[str, Any] = {}
    if pointwise_on:
        extra["log_lik"] = get("log_lik")
        extra["log_lik_responses"] = {r.name: get(f"log_lik_{r.k}") for r in model.responses}
        extra["y_rep"] = {r.name: get(f"y_rep_{r.k}") for r in model.responses}
    with arviz_without_numba():
        idata = build_mv_idata(model, post, stats, attrs={"inference_library": "cmdstanpy"}, **extra)
    fit = MultivariateFit(model, idata, run_dir=run_dir, settings=settings)
    fit.stan_fit = mcmc
    timings["convert"] = time.perf_counter() - t2
    fit.timings = timings
    fit.warn_if_unhealthy()
    return fit
