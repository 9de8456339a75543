"""Sampling with CmdStan, conversion to ArviZ, diagnostics and predictions."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .backend import compiled_model, new_run_dir, program_hash, quiet_cmdstanpy
from .design import DataError

if TYPE_CHECKING:
    import arviz as az

    from .model import Model

__all__ = ["Fit", "Diagnostics", "SamplingError", "SamplingWarning", "run_stan"]

log = logging.getLogger("hbstan")

OBS_DIM = "__obs__"

_SAMPLE_STATS = {
    "lp__": "lp",
    "accept_stat__": "acceptance_rate",
    "stepsize__": "step_size",
    "treedepth__": "tree_depth",
    "n_leapfrog__": "n_steps",
    "divergent__": "diverging",
    "energy__": "energy",
}


def obs_coords_dims(model: Model) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Coords and dims of the per-observation variables (``log_lik``, the response).

    Both the observed and the replicated response run along the rows of the model's data.
    """
    return {OBS_DIM: np.arange(model.design.N)}, {"log_lik": [OBS_DIM], model.design.response: [OBS_DIM]}


def param_coords_dims(model: Model) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Coords and dims of the user-facing posterior variables (group labels as coordinates)."""
    coords: dict[str, Any] = {}
    dims: dict[str, list[str]] = {}
    for p in model._params:
        if p.dims:
            dims[p.name] = list(p.dims)
            coords.update(p.coords or {})
    return coords, dims


class SamplingError(RuntimeError):
    """CmdStan failed; the message says which chain and where its output files are."""


class SamplingWarning(UserWarning):
    """The sampler finished but a diagnostic says the draws may not be trustworthy."""


def run_stan(model: "Model", **opts: Any) -> "Fit":
    """Compile (or reuse) the program, write the run directory, sample, and convert."""
    import cmdstanpy

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    threads = opts.pop("threads_per_chain")
    grainsize = opts.pop("grainsize")
    # any explicit threads_per_chain (1 included, the baseline) renders the reduce_sum program
    use_threads = threads is not None and threads >= 1 and not model.suff_stats
    code = model.program(threads=use_threads)
    cpp = {"STAN_THREADS": True} if use_threads else None
    cm = compiled_model(code, cpp_options=cpp)
    timings["compile"] = time.perf_counter() - t0
    run_dir = new_run_dir(program_hash(code, cpp), opts.pop("output_dir"))
    (run_dir / "model.stan").write_text(code)
    prior_only = opts.pop("prior_only")
    pointwise = opts.pop("pointwise")
    if pointwise not in ("auto", "python", "stan", False):
        raise ValueError(f"pointwise must be 'auto', 'python', 'stan' or False, got {pointwise!r}")
    if pointwise == "stan" and model.aggregated and not use_threads:
        raise ValueError(
            "pointwise='stan' computes log_lik per row of the data CmdStan sees, but this Bernoulli "
            "model sums identical rows into counts; use pointwise='python' or Model(..., aggregate=False)"
        )
    data_file = run_dir / "data.json"
    cmdstanpy.write_stan_json(
        str(data_file),
        model.stan_data_for(
            prior_only=prior_only,
            threads=use_threads,
            grainsize=grainsize,
            pointwise=pointwise == "stan",
            draw_effects=pointwise == "stan",
        ),
    )
    if use_threads:
        opts["threads_per_chain"] = threads
    chains = opts.pop("chains")
    parallel = opts.pop("parallel_chains") or min(chains, os.cpu_count() or 1)
    settings = {
        "chains": chains,
        "draws": opts.pop("draws"),
        "warmup": opts.pop("warmup"),
        "seed": opts.pop("seed"),
        "adapt_delta": opts.pop("adapt_delta"),
        "max_treedepth": opts.pop("max_treedepth"),
        "prior_only": prior_only,
    }
    t1 = time.perf_counter()
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
    t2 = time.perf_counter()
    pointwise = settings["pointwise"] = _resolve_pointwise(pointwise, model, chains, settings["draws"])
    converter = _CmdStanConverter(model, mcmc, prior_only=prior_only, seed=settings["seed"])
    with _arviz_without_numba():
        idata = converter.to_inference_data(pointwise)
    fit = Fit(model, idata, run_dir=run_dir, settings=settings)
    fit.stan_fit = mcmc
    timings["convert"] = time.perf_counter() - t2
    timings["pointwise"] = converter.pointwise_s
    timings["effects"] = converter.effects_s
    fit.timings = timings
    t3 = time.perf_counter()
    fit._warn_if_unhealthy()
    timings["diagnose"] = time.perf_counter() - t3
    return fit


def _resolve_pointwise(pointwise: str | bool, model: "Model", chains: int, draws: int) -> str | bool:
    """``"auto"`` as ``"python"`` or, for arrays too large to build by default, False (with a note)."""
    from .pointwise import AUTO_MAX_VALUES

    if pointwise != "auto":
        return pointwise
    n_values = model.design.N * chains * draws
    if n_values <= AUTO_MAX_VALUES:
        return "python"
    log.warning(
        "hbstan: log_lik and the replicated data (%d rows x %d draws = %.0f MB each, over pointwise='auto''s "
        "%d values) were not computed; fit.add_pointwise() adds them (az.loo and az.plot_ppc need them), "
        "or pass pointwise='python' to compute them while fitting",
        model.design.N, chains * draws, n_values * 8 / 2**20, AUTO_MAX_VALUES,
    )
    return False


def _above(value: float, limit: float) -> str:
    """``value`` with enough decimals to show that it exceeds ``limit`` (1.0103, not 1.010)."""
    for digits in range(3, 8):
        text = f"{value:.{digits}f}"
        if float(text) > limit:
            return text
    return repr(value)


@contextlib.contextmanager
def _arviz_without_numba() -> Iterator[None]:
    """ArviZ's NumPy code paths instead of its numba ones, for hbstan's own calls.

    Where numba is installed, ArviZ jit-compiles its variance kernels on first use in each
    process (about 0.2 s), which is most of the cost of a post-sampling check on a sub-second
    fit; its NumPy path (``np.var``) gives the same diagnostics and is fast on any size. The
    user's own ArviZ calls are untouched: the flag is restored on exit.
    """
    try:
        from arviz.utils import Numba
    except ImportError:  # pragma: no cover (arviz is a dependency)
        yield
        return
    previous = Numba.numba_flag
    Numba.numba_flag = False
    try:
        yield
    finally:
        Numba.numba_flag = previous


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

    def __init__(self, model: "Model", mcmc: Any, prior_only: bool = False, seed: int | None = None) -> None:
        self.model = model
        self.mcmc = mcmc
        self.prior_only = prior_only
        self.seed = seed
        self.draws = mcmc.draws(concat_chains=False)  # (iter, chain, column)
        self.pointwise_s = 0.0  # seconds spent computing log_lik and y_rep in Python
        self.effects_s = 0.0  # seconds spent drawing integrated-out group effects in Python

    def _var(self, name: str) -> np.ndarray:
        meta = self.mcmc.metadata
        var = meta.stan_vars.get(name) or meta.method_vars.get(name)
        arr = var.extract_reshape(self.draws)  # (iter, chain, ...)
        return np.swapaxes(np.asarray(arr, dtype=float), 0, 1)

    def _get(self, name: str) -> np.ndarray:
        """Return a Stan variable's draws, drawing integrated-out group effects here.

        A program with draw_effects = 0 leaves r_1 out of its output; :mod:`hbstan.marginal`
        draws it from the population-level draws.
        """
        if name == "r_1" and self.model.marginalized:
            var = self.mcmc.metadata.stan_vars.get(name)
            if var is None or not var.dimensions or var.dimensions[0] == 0:
                from .marginal import group_effect_draws

                t0 = time.perf_counter()
                # a stream of its own, apart from the pointwise arrays' (default_rng(seed))
                rng = np.random.default_rng(None if self.seed is None else [self.seed, 1])
                r = group_effect_draws(self.model, self._var, rng, prior_only=self.prior_only)
                self.effects_s = time.perf_counter() - t0
                return r
        return self._var(name)

    def posterior(self) -> tuple[dict[str, np.ndarray], dict[str, list[str]], dict[str, Any]]:
        return params_from_stan(self.model, self._get)

    def to_inference_data(self, pointwise: str | bool = "stan") -> "az.InferenceData":
        import arviz as az

        post, dims, coords = self.posterior()
        m = self.model
        resp = m.design.response
        # arrays, not lists: ArviZ deep-copies the coords once per variable
        coords = {k: np.asarray(v) if isinstance(v, list) else v for k, v in coords.items()}
        obs_coords, obs_dims = obs_coords_dims(m)
        coords.update(obs_coords)
        dims = {**dims, **obs_dims}
        stats = {}
        for stan_name, az_name in _SAMPLE_STATS.items():
            v = self._var(stan_name)
            stats[az_name] = v.astype(bool) if az_name == "diverging" else v
        stats["tree_depth"] = stats["tree_depth"].astype(int)
        stats["n_steps"] = stats["n_steps"].astype(int)
        groups: dict[str, Any] = {}
        if pointwise == "stan":
            groups = {"posterior_predictive": {resp: self._var("y_rep")}, "log_likelihood": {"log_lik": self._var("log_lik")}}
        elif pointwise == "python":
            from .pointwise import pointwise_groups

            t0 = time.perf_counter()
            groups = pointwise_groups(m, post, self.seed)
            self.pointwise_s = time.perf_counter() - t0
        return az.from_dict(
            posterior=post,
            **groups,
            observed_data={resp: m.design.y},
            sample_stats=stats,
            coords=coords,
            dims=dims,
            attrs={"inference_library": "cmdstanpy", "hbstan_formula": m.formula, "family": m.family.name},
        )


def params_from_stan(model: "Model", get: Any) -> tuple[dict[str, np.ndarray], dict[str, list[str]], dict[str, Any]]:
    """User-facing posterior arrays from Stan-named draws (``get(name)`` -> (chain, draw, ...))."""
    post: dict[str, np.ndarray] = {}
    cache: dict[str, np.ndarray] = {}
    for p in model._params:
        if p.stan not in cache:
            cache[p.stan] = get(p.stan)
        arr = cache[p.stan]
        if p.kind == "scalar":
            val = arr
        elif p.kind == "vector":
            val = arr[:, :, p.cols]
            if not p.dims:
                val = val[:, :, 0]
        elif p.kind == "matrix_cols":  # (chain, draw, J, M)
            val = arr[:, :, :, p.cols]
            if len(p.dims) == 1:
                val = val[..., 0]
        else:  # corr
            val = arr
        post[p.name] = val
    coords, dims = param_coords_dims(model)
    return post, dims, coords


@dataclass
class Diagnostics:
    """Sampler diagnostics with advice. ``ok`` is False when any check failed."""

    divergences: list[int]
    treedepth_hits: list[int]
    max_treedepth: int
    ebfmi: list[float]
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    worst_rhat: str
    messages: list[str] = field(default_factory=list)
    suggestion: dict[str, Any] | None = None  # model options that should help (Fit.refit() applies them)

    @property
    def ok(self) -> bool:
        """True when no diagnostic raised a concern."""
        return not self.messages

    def __str__(self) -> str:
        lines = [
            f"divergent transitions per chain: {self.divergences}",
            f"transitions hitting max tree depth ({self.max_treedepth}) per chain: {self.treedepth_hits}",
            "E-BFMI per chain: " + ", ".join(f"{v:.2f}" for v in self.ebfmi),
            f"max R-hat: {self.max_rhat:.3f} ({self.worst_rhat})",
            f"min bulk ESS: {self.min_ess_bulk:.0f}; min tail ESS: {self.min_ess_tail:.0f}",
        ]
        lines += ["OK: no problems found."] if self.ok else [f"WARNING: {m}" for m in self.messages]
        return "\n".join(lines)


class Fit:
    """The result of sampling: an ArviZ InferenceData plus the model that made it.

    Attributes
    ----------
    idata : arviz.InferenceData
        Posterior (user-facing names, group labels as coordinates), posterior predictive,
        log likelihood (``log_lik``), observed data and sample stats.
    run_dir : pathlib.Path
        Directory holding the Stan program, the data JSON and CmdStan's CSV files.
    timings : dict of str to float
        Seconds spent in each step of the fit: ``compile`` (render, hash, and find or build
        the executable), ``sample`` (CmdStan's run, as CmdStanPy reports it), ``convert``
        (reading CmdStan's output into InferenceData; of it, ``pointwise`` computed log_lik and
        the replicated data and ``effects`` drew the integrated-out group effects) and
        ``diagnose`` (the post-fit checks).
        A PyMC fit has ``compile``, ``sample`` and ``convert``.
    warnings : list of str
        The sampling problems found right after sampling (also raised as SamplingWarning).
    suggestion : dict or None
        Model options that should cure them, where the diagnostics can tell (divergences in
        a centered term's funnel: ``{"centered": {...}}``); :meth:`refit` applies it.
    """

    def __init__(self, model: "Model", idata: "az.InferenceData", *, run_dir: Path | None, settings: dict[str, Any]) -> None:
        self.model = model
        self.idata = idata
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.settings = settings
        self.stan_fit: Any = None
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self.suggestion: dict[str, Any] | None = None  # what the diagnostics suggest for a refit
        self.backend = "stan"

    def __repr__(self) -> str:
        s = self.settings
        return f"<hbstan.Fit {self.model!r}: {s.get('chains')} chains x {s.get('draws')} draws, run_dir={self.run_dir}>"

    @property
    def posterior(self) -> Any:
        """The posterior group of ``idata``."""
        return self.idata.posterior

    def summary(self, var_names: list[str] | None = None, **kwargs: Any) -> pd.DataFrame:
        """ArviZ summary: mean, sd, HDI, MCSE, bulk/tail ESS and R-hat per parameter."""
        import arviz as az

        return az.summary(self.idata, var_names=var_names, **kwargs)

    def diagnose(
        self, *, ess_min: float = 400.0, rhat_max: float = 1.01, var_names: list[str] | None = None
    ) -> Diagnostics:
        """Check divergences, tree depth, E-BFMI, R-hat and ESS, and say what to do.

        Parameters
        ----------
        ess_min : float, default 400
            Bulk and tail ESS below this are reported.
        rhat_max : float, default 1.01
            R-hat (ArviZ's rank-normalized split R-hat) above this is reported.
        var_names : list of str, optional
            Posterior variables whose R-hat and ESS are checked (default: all).
        """
        import arviz as az

        ss = self.idata.sample_stats
        div = ss["diverging"].sum("draw").values.astype(int).tolist()
        mtd = self.settings.get("max_treedepth") or 10
        hits = (ss["tree_depth"] >= mtd).sum("draw").values.astype(int).tolist()
        with warnings.catch_warnings(), _arviz_without_numba():
            warnings.simplefilter("ignore")
            ebfmi = np.atleast_1d(az.bfmi(self.idata)).tolist()
            rhat = az.rhat(self.idata, var_names=var_names)
            ess_b = az.ess(self.idata, method="bulk", var_names=var_names)
            ess_t = az.ess(self.idata, method="tail", var_names=var_names)
        max_rhat, worst = 1.0, ""
        min_b = min_t = float("inf")
        for v in rhat.data_vars:
            vals = rhat[v].values[np.isfinite(rhat[v].values)]  # constant entries give NaN
            if vals.size and vals.max() > max_rhat:
                max_rhat, worst = float(vals.max()), v
            for arr, which in ((ess_b[v].values, "b"), (ess_t[v].values, "t")):
                arr = arr[np.isfinite(arr)]
                if arr.size and which == "b":
                    min_b = min(min_b, float(arr.min()))
                elif arr.size:
                    min_t = min(min_t, float(arr.min()))
        msgs = []
        n_div = sum(div)
        suggestion = None
        if n_div:
            where, suggestion = self._locate_divergences()
            msgs.append(
                f"{n_div} divergent transitions (per chain {div}): the posterior has regions the "
                "sampler cannot explore; "
                + (where or "raise adapt_delta (e.g. 0.95 or 0.99), or switch the group terms' "
                   "parameterization (centered=True/False)")
            )
        if sum(hits):
            msgs.append(
                f"{sum(hits)} transitions hit the maximum tree depth {mtd} (per chain {hits}): "
                "sampling is inefficient; raise max_treedepth or reparameterize"
            )
        low = [i for i, v in enumerate(ebfmi) if v < 0.3]
        if low:
            msgs.append(
                f"E-BFMI below 0.3 in chains {low}: the sampler explores the energy poorly; "
                "consider a non-centered parameterization or tighter priors"
            )
        if max_rhat > rhat_max:
            msgs.append(
                f"R-hat {_above(max_rhat, rhat_max)} > {rhat_max} for {worst!r}: the chains disagree; run "
                "longer (more warmup and draws) and check the model"
            )
        if min_b < ess_min or min_t < ess_min:
            msgs.append(
                f"effective sample size is low (min bulk {min_b:.0f}, tail {min_t:.0f} < {ess_min:.0f}): "
                "draw more samples before trusting tail quantities"
            )
        return Diagnostics(div, hits, mtd, ebfmi, max_rhat, min_b, min_t, worst, msgs, suggestion)

    def _locate_divergences(self) -> tuple[str, dict[str, Any] | None]:
        """Which centered term's funnel the divergent transitions sit in, and the refit that helps.

        A centered term's posterior has a funnel: where its SD is small the effects are squeezed
        together and the step size that suits the rest of the posterior is too large, so NUTS
        diverges there. The signature is divergent transitions at small values of that SD: the
        mean of log SD over the divergent draws lies well below its mean over all draws (by more
        than half its posterior SD). Returns the advice and the ``centered`` option that makes the
        term non-centered (the other terms keep their current parameterization).
        """
        div = self.idata.sample_stats["diverging"].values.astype(bool)
        post = self.idata.posterior
        m = self.model
        worst: tuple[float, Any] | None = None
        for i, blk in enumerate(m.design.blocks, start=1):
            if not blk.centered or blk.pooling == "unpooled" or (m.marginalized and i == 1):
                continue
            for term, _, _ in blk.effects:
                name = f"{blk.effect_name(term)}_sigma"
                if name not in post:
                    continue
                x = np.log(np.maximum(post[name].values, 1e-300))
                x = x.reshape(x.shape[0], x.shape[1], -1)
                for k in range(x.shape[2]):
                    xk, sd = x[..., k], float(np.std(x[..., k]))
                    shift = (float(xk[div].mean()) - float(xk.mean())) / sd if sd > 0 else 0.0
                    if worst is None or shift < worst[0]:
                        worst = (shift, blk)
        if worst is None or worst[0] > -0.5:
            return "", None
        blk = worst[1]
        flags: dict[str, Any] = {b.factor: bool(b.centered) for b in m.design.blocks}
        flags[blk.factor] = False
        return (
            f"they sit where the SD of the centered term ({blk.expr} | {blk.factor}) is small "
            f"(the funnel of a centered parameterization); fit.refit() samples again with that term "
            f"non-centered (centered={flags!r})",
            {"centered": flags},
        )

    def refit(self, **changes: Any) -> "Fit":
        """Sample again with the same settings, changing model options or sampler settings.

        Without arguments, applies the change the diagnostics suggest (``fit.suggestion``, e.g.
        a term that diverged in its centered parameterization made non-centered). Model options
        (see ``fit.model.options``) rebuild the model; the others (``chains``, ``draws``,
        ``warmup``, ``seed``, ``adapt_delta``, ``max_treedepth``, ...) go to ``Model.sample``.
        """
        if not changes:
            if not self.suggestion:
                raise ValueError(
                    "the diagnostics suggest no change to refit with; pass model options "
                    "(e.g. centered={...}) or sampler settings (e.g. adapt_delta=0.95)"
                )
            changes = dict(self.suggestion)
        model_changes = {k: v for k, v in changes.items() if k in self.model.options}
        keep = ("chains", "draws", "warmup", "seed", "adapt_delta", "max_treedepth", "prior_only", "pointwise")
        settings = {k: self.settings[k] for k in keep if k in self.settings}
        settings.update({k: v for k, v in changes.items() if k not in model_changes})
        model = self.model.replace(**model_changes) if model_changes else self.model
        return model.sample(backend="pymc" if self.backend == "pymc" else "stan", **settings)

    def _warn_if_unhealthy(self) -> None:
        """Warn right after sampling. To keep this cheap, R-hat and ESS are checked on the
        population-level quantities (coefficients, sigma, group SDs, correlations), where
        sampling problems show first; ``fit.diagnose()`` checks every variable."""
        total = self.settings.get("chains", 1) * self.settings.get("draws", 0)
        group_vars = {p.name for p in self.model._params if p.kind == "matrix_cols"}
        names = [v for v in self.idata.posterior.data_vars if v not in group_vars]
        diag = self.diagnose(ess_min=min(400.0, 0.1 * total), var_names=names or None)
        self.suggestion = diag.suggestion
        for msg in diag.messages:
            self.warnings.append(msg)
            warnings.warn(msg, SamplingWarning, stacklevel=4)
        if self.run_dir is not None:
            log.info("hbstan: CmdStan output in %s", self.run_dir)

    def add_pointwise(self, seed: int | None = None) -> "az.InferenceData":
        """Add the ``log_likelihood`` (``log_lik``) and ``posterior_predictive`` groups to ``idata``.

        A fit made with ``pointwise=False``, or with ``pointwise="auto"`` on data too large for
        them to be computed by default, lacks them; ``az.loo``, ``az.compare`` and
        ``az.plot_ppc`` need them. They are computed from the posterior draws with the
        formulas of ``pointwise="python"``. Groups the fit already has are kept as they are.

        Parameters
        ----------
        seed : int, optional
            Seed of the replicated data (default: the fit's seed, which gives the arrays that
            ``pointwise="python"`` gives while fitting).

        Returns
        -------
        arviz.InferenceData
            ``fit.idata``, extended in place.
        """
        import arviz as az

        from .pointwise import pointwise_groups

        if {"log_likelihood", "posterior_predictive"} <= set(self.idata.groups()):
            return self.idata
        post = {v: self.idata.posterior[v].values for v in self.idata.posterior.data_vars}
        groups = pointwise_groups(self.model, post, self.settings.get("seed") if seed is None else seed)
        coords, dims = obs_coords_dims(self.model)
        extra = az.from_dict(**groups, coords=coords, dims=dims)
        self.idata.extend(extra)
        return self.idata

    def save(self, run_dir: "str | os.PathLike[str]", *, figures: bool = True, overwrite: bool = False) -> Path:
        """Save this fit as a run directory (see :func:`hbstan.io.save_fit`); read it back with :func:`hbstan.load`."""
        from .io import save_fit

        return save_fit(self, run_dir, figures=figures, overwrite=overwrite)

    # ------------------------------------------------------------------ prediction
    def predict(
        self,
        data: pd.DataFrame,
        *,
        kind: str = "response",
        seed: int | None = None,
    ) -> Any:
        """Posterior predictive draws for new rows.

        Parameters
        ----------
        data : pandas.DataFrame
            New rows with the model's predictor and grouping columns (and trials/offset
            columns where the model uses them).
        kind : {"response", "mean"}, default "response"
            ``"response"`` draws new observations; ``"mean"`` returns the expected value
            (inverse link of the linear predictor).
        seed : int, optional
            Seed of the random draws (new groups' effects and new observations).

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, __obs__)``. Rows of groups not seen in fitting get group
            effects drawn from the population (hierarchical and correlated designs); in an
            unpooled design they raise an error.
        """
        from .predict import predict

        return predict(self, data, kind=kind, seed=seed)

    # ------------------------------------------------------------------ plots
    def plot_trace(self, var_names: list[str] | None = None, **kwargs: Any) -> Any:
        """Trace plot of the population-level parameters; see :func:`hbstan.plots.plot_trace`."""
        from .plots import plot_trace

        return plot_trace(self, var_names, **kwargs)

    def plot_forest(self, var_names: list[str] | None = None, **kwargs: Any) -> Any:
        """Forest plot (posterior means and HDIs); see :func:`hbstan.plots.plot_forest`."""
        from .plots import plot_forest

        return plot_forest(self, var_names, **kwargs)

    def plot_ppc(self, **kwargs: Any) -> Any:
        """Posterior predictive check; see :func:`hbstan.plots.plot_ppc`."""
        from .plots import plot_ppc

        return plot_ppc(self, **kwargs)

    def plot_shrinkage(self, group: str | None = None, **kwargs: Any) -> Any:
        """No-pooling vs partial-pooling group estimates against group size; see :func:`hbstan.plots.plot_shrinkage`."""
        from .plots import plot_shrinkage

        return plot_shrinkage(self, group, **kwargs)
