"""Plots of a fit: trace, forest, posterior predictive check, shrinkage and conditional effects.

Every helper draws on a fresh :class:`matplotlib.figure.Figure` with its own Agg canvas (or
on the ``ax`` you pass), never through ``pyplot``: plotting neither needs nor changes the
session's matplotlib backend, works on headless machines, and leaves no figure open. Each
returns the Figure (Jupyter displays it; ``fig.savefig(...)`` writes it) and takes
``save="path.png"`` to write a PNG directly.

>>> fig = hbstan.plots.plot_shrinkage(fit, save="shrinkage.png")     # doctest: +SKIP

The shrinkage plot is the classic multilevel-model figure (Gelman & Hill, ch. 12): for each
group, the no-pooling estimate (the group's own data only) and the partial-pooling estimate
(the posterior mean of the group's intercept), against the group's sample size on a log axis,
with the population mean as a line. Small groups are pulled strongly towards the population
mean, large ones hardly at all. :func:`shrinkage_table` returns the numbers it draws.

The conditional-effects plot (brms's ``conditional_effects``) draws the predictions of a grid
(:meth:`hbstan.Fit.predictions`): one predictor varies, one more optionally sets the colours,
the others are held at their mean or most common value.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import matplotlib.axes
    import matplotlib.figure

    from .fit import Fit

__all__ = [
    "plot_trace",
    "plot_forest",
    "plot_ppc",
    "plot_shrinkage",
    "shrinkage_table",
    "plot_conditional",
    "plot_mediation",
    "headline_vars",
    "new_figure",
]

log = logging.getLogger("hbstan")

PathLike = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------------------------- helpers
def new_figure(figsize: tuple[float, float] = (7.0, 4.5)) -> "matplotlib.figure.Figure":
    """A matplotlib Figure on its own Agg canvas: no pyplot, no global state, no open window.

    Parameters
    ----------
    figsize : (float, float), default (7, 4.5)
        Size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Add axes with ``fig.subplots(...)``; write it with ``fig.savefig("file.png")``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def finish_figure(fig: "matplotlib.figure.Figure", save: PathLike | None, dpi: int, *, tight: bool = True) -> "matplotlib.figure.Figure":
    if tight:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "not compatible with tight_layout"
            fig.tight_layout()
    if save is not None:
        path = Path(save)
        if path.suffix == "":
            raise ValueError(f"save={str(save)!r} has no file extension; give a path such as 'trace.png'")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        log.info("hbstan: wrote %s", path)
    return fig


def _check_fit(fit: Any, what: str) -> "Fit":
    if not (hasattr(fit, "idata") and hasattr(fit, "model")):
        raise TypeError(
            f"{what} needs an hbstan Fit (the result of Model.sample or sample_pymc), got "
            f"{type(fit).__name__}; for a bare InferenceData use arviz's own plots"
        )
    return fit


def headline_vars(fit: "Fit", limit: int | None = 12) -> list[str]:
    """Population-level parameters and hyperparameters of a fit (no per-group effects).

    Parameters
    ----------
    fit : hbstan.Fit
        The fit.
    limit : int, optional
        Return at most this many names (None: all).

    Returns
    -------
    list of str
        Posterior variable names, in the order of the posterior (e.g. ``Intercept``, slopes,
        ``sigma``, group SDs, correlations). If every variable is per group (an unpooled
        model without population-level terms) all variables are returned.
    """
    post = fit.idata.posterior
    m = fit.model
    specs = [r.spec for r in m.responses] if hasattr(m, "responses") else [m]  # several responses: each one's
    factors = {blk.factor for s in specs for blk in s.design.blocks}
    names = [str(v) for v in post.data_vars if not (set(map(str, post[v].dims)) & factors)]
    names = names or [str(v) for v in post.data_vars]
    return names if limit is None else names[:limit]


def _check_vars(fit: "Fit", var_names: Sequence[str] | str | None, what: str) -> list[str]:
    if var_names is None:
        return headline_vars(fit)
    if isinstance(var_names, str):
        var_names = [var_names]
    names = list(var_names)
    have = [str(v) for v in fit.idata.posterior.data_vars]
    bad = [n for n in names if n not in have]
    if bad:
        raise ValueError(f"{what}: {bad} not in the posterior; its variables are {have}")
    if not names:
        raise ValueError(f"{what}: var_names is empty; give at least one of {have}")
    return names


def _width(fit: "Fit", names: Sequence[str]) -> int:
    """Number of scalar entries of the named variables."""
    post = fit.idata.posterior
    return int(sum(np.prod([post.sizes[d] for d in post[n].dims[2:]] or [1]) for n in names))


# ---------------------------------------------------------------------------------- trace
def plot_trace(
    fit: "Fit",
    var_names: Sequence[str] | str | None = None,
    *,
    compact: bool = True,
    figsize: tuple[float, float] | None = None,
    save: PathLike | None = None,
    dpi: int = 100,
    **kwargs: Any,
) -> "matplotlib.figure.Figure":
    """Trace plot: per variable, the marginal density per chain and the draws in order.

    Parameters
    ----------
    fit : hbstan.Fit
        The fit.
    var_names : list of str, optional
        Posterior variables to show (default: the population-level parameters and
        hyperparameters, see :func:`headline_vars`; per-group effects are left out since a
        model with 85 counties would give 85 rows).
    compact : bool, default True
        One row per variable, its entries overlaid (ArviZ's ``compact``).
    figsize : (float, float), optional
        Figure size in inches (default: 10 wide, 2.2 per row).
    save : str or path, optional
        Write the figure to this file (PNG for ``.png``).
    dpi : int, default 100
        Resolution of the saved file.
    **kwargs
        Passed on to :func:`arviz.plot_trace` (e.g. ``divergences``, ``kind="rank_bars"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz as az

    fit = _check_fit(fit, "plot_trace")
    names = _check_vars(fit, var_names, "plot_trace")
    rows = len(names) if compact else _width(fit, names)
    fig = new_figure(figsize or (10.0, max(2.4, 2.2 * rows)))
    axes = fig.subplots(rows, 2, squeeze=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        az.plot_trace(fit.idata, var_names=names, axes=axes, compact=compact, **kwargs)
    return finish_figure(fig, save, dpi)


# ---------------------------------------------------------------------------------- forest
def _as_fits(fit: Any) -> tuple[list["Fit"], list[str] | None]:
    if isinstance(fit, Mapping):
        if not fit:
            raise ValueError("plot_forest got an empty mapping of fits")
        return [_check_fit(f, "plot_forest") for f in fit.values()], [str(k) for k in fit]
    if isinstance(fit, (list, tuple)):
        if not fit:
            raise ValueError("plot_forest got an empty list of fits")
        fits = [_check_fit(f, "plot_forest") for f in fit]
        return fits, [f"{getattr(f, 'backend', 'fit')} {i}" for i, f in enumerate(fits)]
    return [_check_fit(fit, "plot_forest")], None


def plot_forest(
    fit: "Fit | Mapping[str, Fit] | Sequence[Fit]",
    var_names: Sequence[str] | str | None = None,
    *,
    combined: bool = True,
    hdi_prob: float = 0.94,
    figsize: tuple[float, float] | None = None,
    ax: "matplotlib.axes.Axes | None" = None,
    save: PathLike | None = None,
    dpi: int = 100,
    **kwargs: Any,
) -> "matplotlib.figure.Figure":
    """Forest plot: posterior mean and HDI of each scalar, one line per entry.

    Parameters
    ----------
    fit : hbstan.Fit, or dict of name -> Fit, or list of Fit
        One fit, or several fits to compare side by side (e.g. ``{"pooled": f1,
        "hierarchical": f2}``; only variables all of them hold are shown by default).
    var_names : list of str, optional
        Variables to show (default: the population-level parameters and hyperparameters of
        the first fit that every fit holds). Per-group effects such as ``"1|county"`` give
        one line per group.
    combined : bool, default True
        Pool the chains into one line per entry.
    hdi_prob : float, default 0.94
        Probability mass of the highest-density interval.
    figsize : (float, float), optional
        Figure size (default: 7 wide, 0.3 inch per line).
    ax : matplotlib Axes, optional
        Draw into this Axes instead of a new figure.
    save : str or path, optional
        Write the figure to this file.
    dpi : int, default 100
        Resolution of the saved file.
    **kwargs
        Passed on to :func:`arviz.plot_forest` (e.g. ``r_hat=True``, ``ess=True``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz as az

    fits, model_names = _as_fits(fit)
    if var_names is None:
        names = [n for n in headline_vars(fits[0]) if all(n in f.idata.posterior for f in fits)]
        if not names:
            raise ValueError(
                "plot_forest: the fits share no population-level parameter; pass var_names= "
                "with variables every fit holds"
            )
    else:
        names = [var_names] if isinstance(var_names, str) else list(var_names)
        for f, label in zip(fits, model_names or ["fit"]):
            _check_vars(f, names, f"plot_forest ({label})")
    if not 0 < hdi_prob < 1:
        raise ValueError(f"hdi_prob must be between 0 and 1 (e.g. 0.94), got {hdi_prob!r}")
    lines = _width(fits[0], names) * len(fits)
    if ax is None:
        fig = new_figure(figsize or (7.0, max(2.5, 0.3 * lines + 1.2)))
        ax = fig.subplots()
    else:
        fig = ax.figure
    data = [f.idata for f in fits] if len(fits) > 1 else fits[0].idata
    extra = {"model_names": model_names} if model_names else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        az.plot_forest(data, var_names=names, combined=combined, hdi_prob=hdi_prob, ax=ax, **extra, **kwargs)
    return finish_figure(fig, save, dpi)


# ---------------------------------------------------------------------------------- PPC
def plot_ppc(
    fit: "Fit",
    *,
    kind: str = "kde",
    num_pp_samples: int = 100,
    seed: int | None = 0,
    figsize: tuple[float, float] = (7.0, 4.5),
    ax: "matplotlib.axes.Axes | None" = None,
    save: PathLike | None = None,
    dpi: int = 100,
    **kwargs: Any,
) -> "matplotlib.figure.Figure":
    """Posterior predictive check: the observed response against replicated data sets.

    Parameters
    ----------
    fit : hbstan.Fit
        The fit (its ``idata`` holds ``y_rep`` as the posterior predictive group).
    kind : {"kde", "cumulative", "scatter"}, default "kde"
        ArviZ's plot kind. Counts and 0/1 responses (non-gaussian families) are drawn as
        discrete data (histograms), whatever the kind.
    num_pp_samples : int, default 100
        Number of replicated data sets drawn.
    seed : int, optional
        Seed of the choice of replicated data sets.
    figsize : (float, float), default (7, 4.5)
        Figure size.
    ax : matplotlib Axes, optional
        Draw into this Axes instead of a new figure.
    save : str or path, optional
        Write the figure to this file.
    dpi : int, default 100
        Resolution of the saved file.
    **kwargs
        Passed on to :func:`arviz.plot_ppc`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz as az

    fit = _check_fit(fit, "plot_ppc")
    idata = fit.add_pointwise()  # the replicated data, if the fit left them out
    if "observed_data" not in idata.groups():
        raise ValueError(
            "plot_ppc needs the observed data, which this fit's idata lacks; fits made by "
            "Model.sample (or sample_pymc) have them"
        )
    total = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]
    if fit.model.family.integer_response:  # discrete data: integer dtype makes ArviZ use histograms
        idata = az.InferenceData(
            posterior_predictive=idata.posterior_predictive.astype(np.int64),
            observed_data=idata.observed_data.astype(np.int64),
        )
    if ax is None:
        fig = new_figure(figsize)
        ax = fig.subplots()
    else:
        fig = ax.figure
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        az.plot_ppc(
            idata,
            kind=kind,
            num_pp_samples=min(num_pp_samples, total),
            random_seed=seed,
            ax=ax,
            **kwargs,
        )
    return finish_figure(fig, save, dpi)


# ---------------------------------------------------------------------------------- mediation
MEDIATION_EFFECTS = ("indirect", "direct", "total")


def plot_mediation(
    effects: pd.DataFrame,
    *,
    prob: float = 0.95,
    bins: int = 60,
    figsize: tuple[float, float] | None = None,
    save: PathLike | None = None,
    dpi: int = 100,
) -> matplotlib.figure.Figure:
    """Plot the posteriors of a mediation's indirect, direct and total effects, one panel each.

    Each panel is the histogram (a density) of the effect's posterior draws, with its
    posterior mean (solid line), its equal-tailed ``prob`` interval (shaded) and zero (dashed).

    Parameters
    ----------
    effects : pandas.DataFrame
        Every posterior draw of the effects: ``hbstan.mediation(fit, ..., draws=True)``
        (columns ``indirect``, ``direct``, ``total``; its ``attrs`` name the treatment, the
        mediator, the outcome and the contrast for the title).
    prob : float, default 0.95
        Mass of the shaded interval.
    bins : int, default 60
        Histogram bins.
    figsize : (float, float), optional
        Figure size (default: 7 wide, 2 per panel).
    save : str or path, optional
        Write the figure to this file.
    dpi : int, default 100
        Resolution of the saved file.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(effects, pd.DataFrame) or not set(MEDIATION_EFFECTS) <= set(effects.columns):
        got = list(effects.columns) if isinstance(effects, pd.DataFrame) else type(effects).__name__
        raise ValueError(
            "plot_mediation draws the posterior draws of the effects: pass hbstan.mediation(fit, ..., draws=True) "
            f"(columns {list(MEDIATION_EFFECTS)}), got {got}"
        )
    if not 0 < prob < 1:
        raise ValueError(f"prob must be between 0 and 1, got {prob!r}")
    fig = new_figure(figsize or (7.0, 2.0 * len(MEDIATION_EFFECTS) + 0.6))
    axes = fig.subplots(len(MEDIATION_EFFECTS), 1, sharex=True, squeeze=False)[:, 0]
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    for ax, name in zip(axes, MEDIATION_EFFECTS, strict=True):
        x = effects[name].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        lo, hi = np.quantile(x, [lo_q, hi_q])
        ax.hist(x, bins=bins, density=True, color="0.75", edgecolor="none")
        ax.axvspan(lo, hi, color="C0", alpha=0.2, label=f"{prob:.0%} interval")
        ax.axvline(float(x.mean()), color="C0", lw=1.5, label="posterior mean")
        ax.axvline(0.0, color="0.3", lw=1, ls="--")
        ax.set_ylabel("density")
        ax.set_title(f"{name} effect: {x.mean():.3g} [{lo:.3g}, {hi:.3g}]", fontsize=10, loc="left")
    axes[0].legend(loc="upper right", fontsize=8, frameon=False)
    a = effects.attrs
    if {"treatment", "mediator", "outcome"} <= set(a):
        contrast = f"{a['treatment']}: {a.get('control', 0):.3g} -> {a.get('treated', 1):.3g}"
        fig.suptitle(
            f"Effects of {a['treatment']} on {a['outcome']} through {a['mediator']} ({contrast}; "
            f"{a.get('method', '')})", fontsize=11,
        )
    axes[-1].set_xlabel(f"effect on {a.get('outcome', 'the outcome')}")
    return finish_figure(fig, save, dpi)


# ---------------------------------------------------------------------------------- shrinkage
def _block(fit: "Fit", group: str | None) -> tuple[int, Any]:
    """(1-based index, Block) of the grouping factor ``group`` (default: the first one)."""
    blocks = fit.model.design.blocks
    if fit.model.family.per_category:
        raise ValueError(
            f"the shrinkage plot shows one group intercept per group; family={fit.model.family.name!r} has "
            "one per group and category, without a no-pooling estimate of each: plot the posterior "
            "of the group effects instead, e.g. hbstan.plots.plot_forest(fit, var_names=['1|g'])"
        )
    if not blocks:
        raise ValueError(
            f"the shrinkage plot needs a model with a varying intercept such as (1 | group); "
            f"{fit.model.formula!r} fitted with complete pooling has no groups"
        )
    with_int = [(i, b) for i, b in enumerate(blocks, start=1) if b.has_intercept]
    if group is None:
        if not with_int:
            raise ValueError(
                f"the shrinkage plot needs a varying intercept; the varying terms of "
                f"{fit.model.formula!r} ({[b.expr + ' | ' + b.factor for b in blocks]}) have none: "
                "add 1 to one of them, e.g. (1 + x | g)"
            )
        return with_int[0]
    for i, b in with_int:
        if b.factor == group:
            return i, b
    if any(b.factor == group for b in blocks):
        raise ValueError(f"the varying term of {group!r} has no intercept: write (1 + ... | {group})")
    raise ValueError(
        f"group {group!r} is not a grouping factor of {fit.model.formula!r}; grouping factors "
        f"with a varying intercept: {[b.factor for _, b in with_int]}"
    )


def _group_intercept_draws(fit: "Fit", i: int, blk: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Draws (chain*draw, J) of each group's intercept at predictors 0, and of the population mean.

    The group intercept is ``Intercept + 1|g[j] + gamma . u_j``; the population mean is
    ``Intercept + gamma . mean(u)`` (None for an unpooled design, which has no population).
    """
    post = fit.idata.posterior
    model = fit.model
    ename = blk.effect_name("Intercept")
    r = post[ename].values  # (chain, draw, J)
    r = r.reshape(-1, r.shape[-1])
    S = r.shape[0]
    # (an ordinal family's thresholds are not part of eta: its group intercepts are shifts from 0)
    base = post["Intercept"].values.reshape(S) if model.design.has_intercept else np.zeros(S)
    group = base[:, None] + r
    pop: np.ndarray | None = base.copy()
    if blk.U is not None:
        names = [p.name for p in model.params if p.stan == f"gamma_{i}"]
        gamma = np.stack([post[n].values.reshape(S) for n in names], axis=-1)  # (S, P)
        group = group + gamma @ blk.U.T
        pop = pop + gamma @ blk.U.mean(axis=0)
    if blk.pooling == "unpooled":
        pop = None
    return group, pop


def _empirical(fit: "Fit", blk: Any) -> tuple[np.ndarray, np.ndarray, str, str]:
    """No-pooling estimates per group from the data alone, group sizes, and axis labels."""
    m = fit.model
    y = m.design.y
    idx = blk.index
    J = blk.J
    return m.family.empirical(y, idx, J, m.offset, m.trials, m.design.response)


def shrinkage_table(
    fit: "Fit",
    group: str | None = None,
    *,
    no_pooling: "Fit | Mapping[str, float] | pd.Series | None" = None,
) -> pd.DataFrame:
    """The numbers of the shrinkage plot: per group, no-pooling and partial-pooling estimates.

    Parameters
    ----------
    fit : hbstan.Fit
        A fit with a varying intercept ``(1 | group)`` (hierarchical or correlated design;
        an unpooled fit works too, with no population mean).
    group : str, optional
        Grouping factor (default: the first one with a varying intercept).
    no_pooling : hbstan.Fit or mapping of label -> value, optional
        Where the no-pooling estimates come from. Default: the data alone, i.e. each group's
        sample mean of the response (gaussian), its empirical logit
        ``log((s + 0.5) / (n - s + 0.5))`` (bernoulli, binomial) or its log rate
        ``log(max(sum y, 0.5) / sum exposure)`` (poisson). Give an unpooled fit of the same
        data (``pooling="unpooled"``) to use its group intercepts instead, which is the
        like-for-like comparison when the model has population-level predictors (the group
        mean of the response mixes in the predictors; the intercept is at predictors = 0).

    Returns
    -------
    pandas.DataFrame
        Indexed by group label, columns ``n`` (observations, or trials for binomial),
        ``no_pooling``, ``partial_pooling`` (posterior mean of the group's intercept,
        ``Intercept + 1|g + gamma . u_g``), ``partial_pooling_sd``, ``population`` (posterior
        mean of the population mean of the intercepts, ``Intercept + gamma . mean(u)``; NaN
        for an unpooled fit) and ``shrinkage``: the fraction of the distance from the
        no-pooling estimate to the population mean that the partial-pooling estimate moved
        (0: none, 1: all the way; NaN where undefined).
    """
    fit = _check_fit(fit, "shrinkage_table")
    i, blk = _block(fit, group)
    draws, pop = _group_intercept_draws(fit, i, blk)
    est, sizes, _, _ = _empirical(fit, blk)
    if no_pooling is not None:
        if hasattr(no_pooling, "idata"):
            other = _check_fit(no_pooling, "shrinkage_table(no_pooling=...)")
            try:
                j2, blk2 = _block(other, blk.factor)
            except ValueError as err:
                raise ValueError(f"no_pooling fit has no varying intercept for {blk.factor!r}: {err}") from None
            d2, _ = _group_intercept_draws(other, j2, blk2)
            values = dict(zip(blk2.levels, d2.mean(axis=0)))
        elif isinstance(no_pooling, (Mapping, pd.Series)):
            values = {str(k): float(v) for k, v in dict(no_pooling).items()}
        else:
            raise TypeError(
                f"no_pooling must be an hbstan Fit (unpooled design) or a mapping of group label to "
                f"estimate, got {type(no_pooling).__name__}"
            )
        missing = [lab for lab in blk.levels if lab not in values]
        if missing:
            raise ValueError(f"no_pooling has no estimate for {blk.factor} level(s) {missing[:5]}")
        est = np.array([values[lab] for lab in blk.levels], dtype=float)
    partial = draws.mean(axis=0)
    population = float(pop.mean()) if pop is not None else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = est - population
        shrink = np.where(np.abs(gap) > 1e-12, (est - partial) / gap, np.nan)
    return pd.DataFrame(
        {
            "n": sizes,
            "no_pooling": est,
            "partial_pooling": partial,
            "partial_pooling_sd": draws.std(axis=0, ddof=1) if draws.shape[0] > 1 else np.zeros(blk.J),
            "population": population,
            "shrinkage": shrink,
        },
        index=pd.Index(blk.levels, name=blk.factor),
    )


def _pooled_value(pooled: Any) -> float | None:
    if pooled is None:
        return None
    if hasattr(pooled, "idata"):
        post = pooled.idata.posterior
        if "Intercept" not in post:
            raise ValueError("pooled= fit has no Intercept to draw as the complete-pooling line")
        if pooled.model.design.blocks:
            log.warning("hbstan: the pooled= fit has varying terms; its Intercept is drawn as the pooled line")
        return float(post["Intercept"].mean())
    try:
        return float(pooled)
    except (TypeError, ValueError):
        raise TypeError(f"pooled must be a number or an hbstan Fit (pooled design), got {type(pooled).__name__}") from None


def _plain_log_ticks(ax: "matplotlib.axes.Axes", values: np.ndarray) -> None:
    """Label a log x axis with plain numbers (2, 5, 10, 50) instead of 2x10^0."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    span = np.log10(values.max() / values.min()) if values.min() > 0 else np.inf

    def minor(v: float, _: Any) -> str:  # label 2x and 5x ticks only
        lead = round(v / 10 ** np.floor(np.log10(v))) if v > 0 else 0
        return f"{v:g}" if lead in (2, 5) else ""

    ax.xaxis.set_minor_formatter(FuncFormatter(minor) if span < 2.5 else NullFormatter())


def plot_shrinkage(
    fit: "Fit",
    group: str | None = None,
    *,
    no_pooling: "Fit | Mapping[str, float] | pd.Series | None" = None,
    pooled: "Fit | float | None" = None,
    jitter: float = 0.04,
    seed: int = 0,
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 5.0),
    ax: "matplotlib.axes.Axes | None" = None,
    save: PathLike | None = None,
    dpi: int = 100,
) -> "matplotlib.figure.Figure":
    """Shrinkage plot: no-pooling vs partial-pooling estimates per group, against group size.

    Each group is a vertical pair: an open circle at its no-pooling estimate and a filled
    one at the posterior mean of its intercept, joined by a line, at x = the group's sample
    size (log axis). A solid line marks the population mean of the intercepts and, with
    ``pooled=``, a dashed one the complete-pooling estimate. See :func:`shrinkage_table` for
    what the estimates are.

    Parameters
    ----------
    fit : hbstan.Fit
        A fit with a varying intercept ``(1 | group)``.
    group : str, optional
        Grouping factor (default: the first one with a varying intercept).
    no_pooling : hbstan.Fit or mapping, optional
        Source of the no-pooling estimates (default: the data alone); see
        :func:`shrinkage_table`.
    pooled : hbstan.Fit or float, optional
        Complete-pooling estimate to draw as a dashed line: a number, or a pooled fit (its
        ``Intercept``).
    jitter : float, default 0.04
        Random horizontal spread (fraction of a log unit) so that groups of equal size do
        not hide each other; 0 turns it off.
    seed : int, default 0
        Seed of the jitter.
    title : str, optional
        Axes title (default names the grouping factor).
    figsize : (float, float), default (8, 5)
        Figure size.
    ax : matplotlib Axes, optional
        Draw into this Axes instead of a new figure.
    save : str or path, optional
        Write the figure to this file.
    dpi : int, default 100
        Resolution of the saved file.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.shrinkage_table`` holds the table drawn.
    """
    from matplotlib.collections import LineCollection

    fit = _check_fit(fit, "plot_shrinkage")
    table = shrinkage_table(fit, group, no_pooling=no_pooling)
    i, blk = _block(fit, group)
    _, _, ylabel, xlabel = _empirical(fit, blk)
    if no_pooling is not None:
        ylabel = ylabel.split(" (")[0] + f" ({blk.factor} intercept)"
    pooled_value = _pooled_value(pooled)
    if ax is None:
        fig = new_figure(figsize)
        ax = fig.subplots()
        own = True
    else:
        fig = ax.figure
        own = False
    n = table["n"].to_numpy(float)
    if np.any(n <= 0):
        raise ValueError(f"groups with no observations cannot be placed on the log axis: {list(table.index[n <= 0][:5])}")
    rng = np.random.default_rng(seed)
    x = n * np.exp(rng.uniform(-jitter, jitter, size=n.size)) if jitter > 0 else n
    lo, hi = table["no_pooling"].to_numpy(float), table["partial_pooling"].to_numpy(float)
    ax.add_collection(
        LineCollection([[(a, b), (a, c)] for a, b, c in zip(x, lo, hi)], colors="0.6", linewidths=0.8, zorder=1)
    )
    src = "unpooled fit" if hasattr(no_pooling, "idata") else "data only" if no_pooling is None else "given"
    ax.scatter(x, lo, s=22, facecolors="none", edgecolors="C0", linewidths=1.0, zorder=2, label=f"no pooling ({src})")
    ax.scatter(x, hi, s=22, color="C3", zorder=3, label="partial pooling (posterior mean)")
    pop = float(table["population"].iloc[0])
    if np.isfinite(pop):
        ax.axhline(pop, color="k", lw=1.2, zorder=0, label=f"population mean {pop:.3g}")
    if pooled_value is not None:
        ax.axhline(pooled_value, color="k", lw=1.0, ls="--", zorder=0, label=f"complete pooling {pooled_value:.3g}")
    ax.set_xscale("log")
    _plain_log_ticks(ax, n)
    ax.set_xlabel(f"{xlabel} (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else f"Shrinkage of the {blk.factor} intercepts ({blk.J} groups)")
    ax.legend(loc="best", fontsize="small", frameon=False)
    ax.autoscale_view()
    fig.shrinkage_table = table  # type: ignore[attr-defined]
    return finish_figure(fig, save, dpi, tight=own)


# ---------------------------------------------------------------------------------- conditional effects
def _colours(k: int) -> list[Any]:
    """Matplotlib's default cycle for up to 10 series, evenly spaced viridis colours beyond."""
    if k <= 10:
        return [f"C{i}" for i in range(k)]
    from matplotlib import colormaps

    return [colormaps["viridis"](v) for v in np.linspace(0.0, 0.95, k)]


def plot_conditional(
    fit: Fit,
    x: str,
    by: str | None = None,
    *,
    kind: str = "mean",
    prob: float = 0.95,
    values: Mapping[str, Any] | None = None,
    n: int = 50,
    points: bool = False,
    re_formula: Any = "auto",
    seed: int | None = 0,
    title: str | None = None,
    figsize: tuple[float, float] = (7.0, 4.5),
    ax: matplotlib.axes.Axes | None = None,
    save: PathLike | None = None,
    dpi: int = 100,
) -> matplotlib.figure.Figure:
    """Conditional-effects plot: the prediction as one predictor varies, the others held fixed.

    As brms's ``conditional_effects``. The predictions of a grid (:func:`hbstan.datagrid`:
    ``x`` over its span, ``by`` over its levels, every other column the model reads at its
    mean or most common value) are drawn with their equal-tailed intervals: a line and a
    ribbon per ``by`` level for a numeric ``x``, a point with error bars for a categorical,
    boolean or 0/1 ``x``. Group effects enter for the grouping columns on the grid (``x``,
    ``by`` or ``values``) and are otherwise left out, so the default is the population-level
    effect (see ``re_formula`` in :meth:`hbstan.Fit.predictions`).

    Parameters
    ----------
    fit : hbstan.Fit
        The fit.
    x : str
        The predictor on the horizontal axis (a column the model reads).
    by : str, optional
        A second column, one colour per value: every level of a categorical, boolean or 0/1
        column or of a grouping column (its groups' effects included), and the mean and the
        mean +/- one SD of a numeric one.
    kind : {"mean", "response", "link", "probs"}, default "mean"
        Expected value on the response scale (for binomial models with trials held at 1: the
        probability), new observations (the posterior predictive) or the linear predictor.
        ``"probs"`` (ordinal and categorical families; as brms's ``categorical = TRUE``): each
        response category's probability, one colour per category; ``by`` is then not
        available (hold another column with ``values``, one panel per value with ``ax``).
    prob : float, default 0.95
        Mass of the intervals.
    values : dict, optional
        Values for the grid: of ``x`` and ``by`` (instead of their default span), or the one
        value another column is held at (e.g. ``{"floor": 1}`` or ``{"county": "HENNEPIN"}``
        for one group's curve).
    n : int, default 50
        Points over the observed range of a numeric ``x``.
    points : bool, default False
        Overlay the observed data (the response, or successes / trials for binomial models;
        coloured by ``by`` where it is categorical).
    re_formula : default "auto"
        Which varying terms' group effects enter (see :meth:`hbstan.Fit.predictions`).
    seed : int, optional
        Seed of new groups' effects and of ``kind="response"`` draws, and of the jitter of
        the observed points at a categorical ``x``.
    title : str, optional
        Axes title (default names ``x``, ``by`` and the interval).
    figsize : (float, float), default (7, 4.5)
        Figure size.
    ax : matplotlib Axes, optional
        Draw into this Axes instead of a new figure.
    save : str or path, optional
        Write the figure to this file.
    dpi : int, default 100
        Resolution of the saved file.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.conditional_effects`` holds the table drawn (the grid with ``estimate``,
        ``std_error``, ``lower`` and ``upper``).
    """
    from .effects import datagrid, is_continuous, model_columns, predictions

    fit = _check_fit(fit, "plot_conditional")
    m = fit.model
    probs = kind == "probs"
    if m.family.per_category and not probs:
        raise ValueError(
            f"plot_conditional(kind={kind!r}) draws one prediction per row; family={m.family.name!r} has one "
            "per category: use kind='probs' (each category's probability)"
        )
    if probs and by is not None:
        raise ValueError(
            f"plot_conditional(kind='probs') colours the response categories, so by={by!r} is not available: "
            f"hold {by!r} at one value with values={{{by!r}: ...}}, one panel per value (ax=)"
        )
    roles = model_columns(fit)
    for name, what in ((x, "x"), (by, "by")):
        if name is not None and name not in roles:
            raise ValueError(
                f"plot_conditional: {what}={name!r} is not a column the model {m.formula!r} reads; "
                f"its columns are {list(roles)}"
            )
    if by is not None and by == x:
        raise ValueError(f"plot_conditional: by={by!r} is the same column as x")
    data = m.data
    given = dict(values or {})
    for name, v in given.items():
        if name not in (x, by) and np.ndim(v) > 0 and len(v) != 1:
            raise ValueError(
                f"plot_conditional: values[{name!r}] must be one value (only x and by vary), got {list(v)}"
            )
        if name not in (x, by) and np.ndim(v) > 0:
            given[name] = v[0]
    vary = [x] if x not in given else []
    by_labels: dict[Any, str] = {}
    if by is not None and by not in given:
        col = data[by]
        if is_continuous(col) and roles[by] != "group":
            mu, sd = float(col.mean()), float(col.std())
            given[by] = [mu - sd, mu, mu + sd]
            by_labels = {mu - sd: f"{mu - sd:.3g} (mean - SD)", mu: f"{mu:.3g} (mean)", mu + sd: f"{mu + sd:.3g} (mean + SD)"}
        else:
            vary.append(by)
    table = predictions(
        fit, datagrid(fit, *vary, n=n, **given), kind=kind, prob=prob, re_formula=re_formula, seed=seed
    )
    if ax is None:
        fig = new_figure(figsize)
        ax = fig.subplots()
        own = True
    else:
        fig = ax.figure
        own = False
    # the coloured series: the response categories (kind="probs"), the levels of `by`, or one
    key = "category" if probs else by
    series = [None] if key is None else list(pd.unique(table[key]))
    colours = _colours(len(series))
    continuous_x = is_continuous(data[x]) and roles[x] != "group"
    x_levels = list(pd.unique(table[x]))
    where = {lev: k for k, lev in enumerate(x_levels)}
    width = min(0.6 / max(len(series), 1), 0.2)
    for k, (lev, colour) in enumerate(zip(series, colours, strict=True)):
        sub = table if lev is None else table[table[key] == lev]
        label = None if lev is None else by_labels.get(lev, str(lev))
        if continuous_x:
            sub = sub.sort_values(x)
            xs = sub[x].to_numpy(float)
            ax.fill_between(xs, sub["lower"].to_numpy(float), sub["upper"].to_numpy(float), color=colour, alpha=0.2, lw=0)
            ax.plot(xs, sub["estimate"].to_numpy(float), color=colour, lw=1.8, label=label)
        else:
            pos = np.array([where[v] for v in sub[x]], dtype=float) + (k - (len(series) - 1) / 2) * width
            est = sub["estimate"].to_numpy(float)
            err = np.vstack([est - sub["lower"].to_numpy(float), sub["upper"].to_numpy(float) - est])
            ax.errorbar(pos, est, yerr=err, fmt="o", color=colour, ms=5, capsize=3, lw=1.4, label=label)
    if points and probs:
        log.warning("hbstan: plot_conditional(points=True) draws no data with kind='probs'")
    elif points:
        _overlay_observed(fit, ax, x, None if by_labels else by, series, colours, where, continuous_x, kind, seed)
    if not continuous_x:
        ax.set_xticks(range(len(x_levels)))
        ax.set_xticklabels([str(v) for v in x_levels])
        ax.set_xlim(-0.6, len(x_levels) - 0.4)
    resp = m.design.response
    ylabel = {
        "mean": f"{resp} (expected value{' per trial' if m.family.trials else ''})",
        "response": f"{resp} (posterior predictive)",
        "link": f"{resp} (linear predictor, {m.family.link} link)",
        "probs": f"P({resp} = category)",
    }[kind]
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.set_title(
        title if title is not None else f"Conditional effect of {x}" + (f" by {by}" if by else "") + f" ({prob:.0%} intervals)"
    )
    if key is not None:
        ax.legend(title=resp if probs else by, loc="best", fontsize="small", frameon=False, ncol=1 if len(series) <= 12 else 2)
    fig.conditional_effects = table  # type: ignore[attr-defined]
    return finish_figure(fig, save, dpi, tight=own)


def _overlay_observed(
    fit: Fit,
    ax: matplotlib.axes.Axes,
    x: str,
    by: str | None,
    series: list[Any],
    colours: list[Any],
    where: dict[Any, int],
    continuous_x: bool,
    kind: str,
    seed: int | None,
) -> None:
    """Draw the fitted rows as points behind the predictions (response scale; not for kind='link')."""
    m = fit.model
    if kind == "link":
        log.warning("hbstan: plot_conditional(points=True) draws no data on the link scale")
        return
    data = m.data.reset_index(drop=True)
    y = m.design.y / m.trials if (m.family.trials and kind == "mean" and m.trials is not None) else m.design.y
    if continuous_x:
        xs = data[x].to_numpy(float)
    else:
        known = data[x].map(lambda v: where.get(v, np.nan)).to_numpy(float)
        rng = np.random.default_rng(seed)
        xs = known + rng.uniform(-0.08, 0.08, size=len(known))
    colour: Any = "0.5"
    if by is not None:  # a categorical by: each row in its level's colour
        lookup = dict(zip(series, colours, strict=True))
        colour = [lookup.get(v, "0.5") for v in data[by]]
    keep = np.isfinite(xs)
    if not isinstance(colour, str):
        colour = [c for c, k in zip(colour, keep, strict=True) if k]
    ax.scatter(xs[keep], y[keep], s=10, c=colour, alpha=0.35, lw=0, zorder=0)
