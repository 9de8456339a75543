"""``Fit``: a posterior (ArviZ InferenceData) with the model that made it, its diagnostics and advice.

Every backend returns one; the consumers (predictions, plots, run directories, comparisons)
read it. Nothing here knows which sampler made the draws.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .idata import obs_coords_dims
from .options import SAMPLER_OPTIONS

if TYPE_CHECKING:
    import arviz as az

    from .spec import ModelSpec as Model

__all__ = ["Fit", "Diagnostics", "SamplingError", "SamplingWarning", "summary_table"]

log = logging.getLogger("hbstan")

class SamplingError(RuntimeError):
    """CmdStan failed; the message says which chain and where its output files are."""


class SamplingWarning(UserWarning):
    """The sampler finished but a diagnostic says the draws may not be trustworthy."""


def _above(value: float, limit: float) -> str:
    """``value`` with enough decimals to show that it exceeds ``limit`` (1.0103, not 1.010)."""
    for digits in range(3, 8):
        text = f"{value:.{digits}f}"
        if float(text) > limit:
            return text
    return repr(value)


@contextlib.contextmanager
def arviz_without_numba() -> Iterator[None]:
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

    def __str__(self) -> str:
        """A summary in the manner of brms's: the model, the draws, then each kind of parameter.

        Population-level effects, group-level SDs, correlations and group-level predictors
        (per grouping factor), and the family's parameters, each with its posterior mean
        (Estimate), SD (Est.Error), equal-tailed 95% interval, R-hat, bulk and tail ESS; then
        the warnings raised after sampling, with their advice.
        """
        m = self.model
        s = self.settings
        fam = m.family
        links = m.link_summary()
        factors = ", ".join(f"{b.factor}: {b.J}" for b in m.design.blocks)
        warmup = s.get("warmup")
        lines = [
            f" Family: {fam.name}",
            f"  Links: {links}",
            f"Formula: {m.formula}",
            f"   Data: {m.design.N} rows" + (f" (groups: {factors})" if factors else ""),
            f"  Draws: {s.get('chains')} chains, each with {s.get('draws')} draws after "
            f"{'?' if warmup is None else warmup} warm-up; {self.backend} backend",
        ]
        if s.get("prior_only"):
            lines.append("  (prior only: the likelihood was left out)")
        sections = summary_sections(self)
        for title, table in sections:
            lines += ["", title, table.to_string(float_format=lambda v: f"{v:.2f}")]
        lines.append("")
        if self.warnings:
            lines += [f"Warning: {w}" for w in self.warnings]
        else:
            lines.append("No sampler warnings (divergences, tree depth, E-BFMI, R-hat, ESS) were raised.")
        return "\n".join(lines)

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
        with warnings.catch_warnings(), arviz_without_numba():
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
        keep = (*(o.name for o in SAMPLER_OPTIONS), "pointwise")
        settings = {k: self.settings[k] for k in keep if k in self.settings}
        settings.update({k: v for k, v in changes.items() if k not in model_changes})
        if getattr(self, "program", None) is not None and not model_changes:
            settings.setdefault("program", self.program)  # the same Stan program (general or specialized)
        model = self.model.replace(**model_changes) if model_changes else self.model
        return model.sample(backend="pymc" if self.backend == "pymc" else "stan", **settings)

    def warn_if_unhealthy(self) -> None:
        """Warn right after sampling (each backend calls it once).

        To keep this cheap, R-hat and ESS are checked on the population-level quantities (coefficients, sigma, group SDs, correlations), where
        sampling problems show first; ``fit.diagnose()`` checks every variable."""
        total = self.settings.get("chains", 1) * self.settings.get("draws", 0)
        group_vars = {p.name for p in self.model.params if p.kind == "matrix_cols"}
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
        kind : {"response", "mean", "link", "probs"} or an auxiliary parameter, default "response"
            ``"response"`` draws new observations; ``"mean"`` returns the expected value
            (inverse link of the linear predictor; for an ordinal family the expected
            category number, 1..K; ``family="categorical"`` has none); ``"link"`` the linear
            predictor (for ``categorical`` the log odds of each non-reference category against
            the reference, dim ``category``); ``"probs"`` (ordinal and categorical families)
            the probability of each response category; the name of one of the
            family's auxiliary parameters (``"sigma"``) its value in each row (from its
            formula, where it has one).
        seed : int, optional
            Seed of the random draws (new groups' effects and new observations).

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, __obs__)``, and ``category`` last for ``kind="probs"`` (its
            coordinates are the response's category labels). Rows of groups not seen in fitting get group
            effects drawn from the population (hierarchical and correlated designs); in an
            unpooled design they raise an error.
        """
        from .predict import predict

        return predict(self, data, kind=kind, seed=seed)

    def predictions(
        self,
        data: pd.DataFrame | None = None,
        *,
        grid: Any = None,
        kind: str = "mean",
        prob: float = 0.95,
        re_formula: Any = "auto",
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Posterior summaries of predictions: one row per new row, with its interval.

        As marginaleffects' ``predictions`` (and the table behind brms's
        ``conditional_effects``): each row's predictive distribution over the posterior draws,
        summarized by its mean, SD and equal-tailed interval.

        Parameters
        ----------
        data : pandas.DataFrame, optional
            The rows to predict. Default: the grid given by ``grid``, or, without one, the
            fitted rows.
        grid : str, list of str or dict, optional
            Columns to vary on a grid built by :func:`hbstan.datagrid` (the model's other
            columns held at their mean or most common value): names vary over their default
            span (50 points over the observed range for numbers, every level for categories);
            a dict maps a column to its values (None: the default span), e.g.
            ``grid={"x": None, "g": ["a", "b"]}``.
        kind : {"mean", "response", "link", "probs"}, default "mean"
            ``"mean"``: the expected value on the response scale (the inverse link of the
            linear predictor; for binomial models the expected successes of the row's trials,
            which a grid holds at 1: the probability); ``"response"``: new observations drawn
            from the model (the posterior predictive); ``"link"``: the linear predictor;
            ``"probs"`` (ordinal and categorical families): each response category's
            probability, one output row per data row and category (column ``category``; for
            ``categorical`` also ``"link"``, per non-reference category).
        prob : float, default 0.95
            Mass of the equal-tailed interval.
        re_formula : "auto", None, or grouping factors / varying terms, default "auto"
            Which varying terms' group effects enter. ``"auto"``: the terms whose grouping
            columns the rows hold, with the fitted groups' effects (new levels get effects drawn
            from the population); terms whose columns are absent are left out. ``None`` (brms's
            ``re_formula = NA``): no group effects, the population-level prediction at the
            mean of the group effects. A factor name or varying term (``"g"``, ``"(1 | g)"``,
            or a list): only those terms. Group-level predictors always enter.
        seed : int, optional
            Seed of the random draws (new groups' effects, and new observations for
            ``kind="response"``).

        Returns
        -------
        pandas.DataFrame
            The rows' columns, then ``estimate`` (posterior mean), ``std_error`` (posterior SD),
            ``lower`` and ``upper`` (the equal-tailed ``prob`` interval).

        See Also
        --------
        hbstan.datagrid, hbstan.avg_comparisons, hbstan.avg_slopes, hbstan.plots.plot_conditional
        """
        from .effects import predictions

        return predictions(self, data, grid=grid, kind=kind, prob=prob, re_formula=re_formula, seed=seed)


SUMMARY_COLUMNS = ["Estimate", "Est.Error", "l-95% CI", "u-95% CI", "Rhat", "Bulk_ESS", "Tail_ESS"]


def posterior_entries(post: Any, names: list[str]) -> Iterator[tuple[str, np.ndarray, dict[str, Any], str, np.ndarray]]:
    """Yield each entry of each posterior variable in ``names``.

    As (name, its coordinates, the ``.sel`` selection of them, the label ``name[coord, ...]``
    (``name`` for a scalar), its draws flat).
    """
    for name in names:
        da = post[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        flat = da.stack(__entry__=extra) if extra else da.expand_dims(__entry__=[0])
        for k in range(flat.sizes["__entry__"]):
            x = flat.isel(__entry__=k).values.reshape(-1)
            key = np.atleast_1d(flat["__entry__"].values[k])
            pick = dict(zip(extra, key)) if extra else {}
            label = f"{name}[{', '.join(map(str, key))}]" if extra else name
            yield name, key, pick, label, x


def _rows(fit: Fit, names: list[str], corr: frozenset[str] = frozenset()) -> pd.DataFrame:
    """One row per entry of each posterior variable in ``names`` (labels ``name[coord]``);
    of the correlation matrices in ``corr``, each pair once."""
    import arviz as az

    post = fit.idata.posterior[names]
    with warnings.catch_warnings(), arviz_without_numba():
        warnings.simplefilter("ignore")
        rhat, bulk, tail = az.rhat(post), az.ess(post, method="bulk"), az.ess(post, method="tail")
    rows = {}
    for name, key, pick, label, x in posterior_entries(post, names):
        if name in corr:  # each correlation once, as brms's cor(a, b)
            a, b = (list(post[name][dim].values).index(v) for dim, v in pick.items())
            if a >= b:
                continue
            label = f"cor({key[0]}, {key[1]})"
        rows[label] = [
            float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0,
            float(np.quantile(x, 0.025)), float(np.quantile(x, 0.975)),
            float(rhat[name].sel(pick).values), float(bulk[name].sel(pick).values),
            float(tail[name].sel(pick).values),
        ]
    out = pd.DataFrame.from_dict(rows, orient="index", columns=SUMMARY_COLUMNS)
    for col in ("Bulk_ESS", "Tail_ESS"):
        out[col] = out[col].round().astype("Int64")
    return out


def summary_table(fit: Fit, names: list[str], corr: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Return the rows of ``print(fit)`` for the posterior variables ``names`` (each correlation in ``corr`` once)."""
    return _rows(fit, names, corr)


def summary_sections(fit: Fit) -> list[tuple[str, pd.DataFrame]]:
    """The tables of ``print(fit)``: (title, DataFrame) per kind of parameter, in brms's order."""
    m = fit.model
    aux = {a.name for a in m.family.aux}
    out: list[tuple[str, pd.DataFrame]] = []
    # the distributional formulas' group terms after the mean's, as the program numbers them
    for i, blk in enumerate(m.design.all_blocks, start=1):
        names = [p.name for p in m.params if p.stan in (f"sd_{i}", f"Cor_{i}", f"gamma_{i}")]
        if blk.pooling == "unpooled":
            names = [p.name for p in m.params if p.stan == f"r_{i}"]
        if names:
            title = f"Group-level effects: ~{blk.factor} ({blk.J} levels, {blk.pooling}" + (
                ", centered)" if blk.centered else ")"
            ) + (f" in the formula of {blk.dpar}" if blk.dpar else "")
            corr = frozenset(p.name for p in m.params if p.stan == f"Cor_{i}")
            out.append((title, _rows(fit, names, corr)))
    # brms lists the coefficients of the distributional formulas (sigma_Intercept, sigma_x) here too
    dpar_stan = {f"b_{n}{suffix}" for n in m.design.dpars for suffix in ("_Intercept", "")}
    population = [p.name for p in m.params if p.stan in ("b_Intercept", "b") or p.stan in dpar_stan]
    if population:
        out.append(("Population-level effects:", _rows(fit, population)))
    family = [p.name for p in m.params if p.stan in aux]
    if family:
        out.append(("Family-specific parameters:", _rows(fit, family)))
    return out
