"""Complete, no and partial pooling of one formula, fitted side by side and compared by LOO.

>>> res = hbstan.compare_pooling("log_radon ~ floor + (1 | county)", df, seed=1)   # doctest: +SKIP
>>> print(res.to_markdown())                                                        # doctest: +SKIP
>>> res.plot(save="pooling.png")                                                    # doctest: +SKIP

The designs are those of ``Model(pooling=...)``:

* ``pooled``: complete pooling, the group terms dropped (one set of coefficients for all);
* ``unpooled``: no pooling, every group's effects with their own independent prior;
* ``hierarchical``: partial pooling, group effects drawn from a population distribution;
* ``correlated``: partial pooling with correlated varying effects (an LKJ prior), fitted
  only where the formula lets more than one effect vary by a group (varying slopes).

Models are compared by approximate leave-one-out cross-validation (PSIS-LOO, ArviZ's
``az.loo`` and ``az.compare``): higher ``elpd_loo`` predicts new observations better, and an
``elpd_diff`` smaller than about two ``dse`` does not separate two models.
"""

from __future__ import annotations

import inspect
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .design import FormulaError, parse_formula
from .tables import markdown_table

if TYPE_CHECKING:
    import matplotlib.figure

    from .fit import Fit

__all__ = ["compare_pooling", "PoolingComparison", "DESIGNS"]

log = logging.getLogger("hbstan")

DESIGNS: dict[str, str] = {
    "pooled": "complete pooling: one set of coefficients for all groups",
    "unpooled": "no pooling: each group's effects estimated on their own",
    "hierarchical": "partial pooling: group effects drawn from a population distribution",
    "correlated": "partial pooling with correlated varying effects (LKJ prior)",
}

_PARETO_K_BAD = 0.7


def _markdown_table(df: pd.DataFrame, digits: int = 3) -> list[str]:
    """GitHub Markdown rows of a DataFrame (its index as the first column)."""

    def fmt(col: str, v: Any) -> str:
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            if math.isnan(v):
                return ""
            return f"{v:.{digits}g}" if abs(v) < 10 ** digits else f"{v:.0f}"
        return str(v).replace("|", "\\|")

    return markdown_table(df, fmt, index=True)


@dataclass
class PoolingComparison:
    """The result of :func:`compare_pooling`.

    Attributes
    ----------
    formula : str
        The formula, as given.
    family : str
        Response family.
    fits : dict of str -> hbstan.Fit
        One fit per design, keyed ``"pooled"``, ``"unpooled"``, ``"hierarchical"`` (and
        ``"correlated"``), in that order.
    loo : pandas.DataFrame
        ``az.compare`` of the fits by PSIS-LOO: index = design, best first; columns ``rank``,
        ``elpd_loo``, ``p_loo``, ``elpd_diff``, ``weight``, ``se``, ``dse``, ``warning``,
        ``scale``.
    loo_details : dict of str -> arviz.ELPDData
        ``az.loo(..., pointwise=True)`` of each fit (Pareto k per observation in
        ``.pareto_k``).
    warnings : list of str
        Sampler and LOO warnings, prefixed with the design they concern.
    """

    formula: str
    family: str
    fits: dict[str, "Fit"]
    loo: pd.DataFrame
    loo_details: dict[str, Any] = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list)

    @property
    def best(self) -> str:
        """The design ranked first by LOO."""
        return str(self.loo.index[0])

    @property
    def designs(self) -> list[str]:
        """The designs fitted, in fitting order."""
        return list(self.fits)

    def __repr__(self) -> str:
        return (
            f"<hbstan.PoolingComparison {self.formula!r} ({self.family}): designs {self.designs}, "
            f"best by LOO: {self.best!r}>"
        )

    def __str__(self) -> str:
        return self.to_markdown()

    # ------------------------------------------------------------------ tables
    def table(self) -> pd.DataFrame:
        """One row per design (LOO rank order): LOO columns plus sampler health.

        Returns
        -------
        pandas.DataFrame
            ``elpd_loo``, ``se``, ``elpd_diff``, ``dse``, ``p_loo``, ``weight``, ``pareto_k_bad``
            (observations with Pareto k > 0.7, whose LOO estimate is unreliable),
            ``divergences`` and ``max_rhat``.
        """
        rows = []
        for design in self.loo.index:
            fit = self.fits[design]
            lo = self.loo.loc[design]
            k = np.asarray(getattr(self.loo_details.get(design), "pareto_k", np.array([])))
            diag = fit.diagnose()
            rows.append(
                {
                    "design": design,
                    "elpd_loo": float(lo["elpd_loo"]),
                    "se": float(lo["se"]),
                    "elpd_diff": float(lo["elpd_diff"]),
                    "dse": float(lo["dse"]),
                    "p_loo": float(lo["p_loo"]),
                    "weight": float(lo["weight"]),
                    "pareto_k_bad": int(np.sum(k > _PARETO_K_BAD)),
                    "divergences": int(sum(diag.divergences)),
                    "max_rhat": float(diag.max_rhat),
                }
            )
        return pd.DataFrame(rows).set_index("design")

    def estimates(self, var_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Posterior mean (sd) of the population-level parameters, one column per design.

        Parameters
        ----------
        var_names : list of str, optional
            Variables to tabulate (default: every scalar or population-level variable that
            some design has, group effects excluded).

        Returns
        -------
        pandas.DataFrame
            Index: parameter labels (``floor``, ``1|county_sigma``, ``county_corr[...]``);
            columns: designs; cells: ``"mean (sd)"`` strings, empty where a design lacks the
            parameter.
        """
        from .plots import headline_vars

        names: list[str] = []
        for fit in self.fits.values():
            for n in var_names if var_names is not None else headline_vars(fit, limit=None):
                if n not in names and n in fit.idata.posterior:
                    names.append(n)
        cols: dict[str, dict[str, str]] = {}
        for design, fit in self.fits.items():
            have = [n for n in names if n in fit.idata.posterior]
            col: dict[str, str] = {}
            if have:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    s = fit.summary(var_names=have, kind="stats", round_to="none")
                for lab, row in s.iterrows():
                    if "corr" in str(lab) and row["sd"] == 0:  # unit diagonal of a correlation
                        continue
                    col[str(lab)] = f"{row['mean']:.3g} ({row['sd']:.2g})"
            cols[design] = col
        labels: list[str] = []
        for col in cols.values():
            labels += [lab for lab in col if lab not in labels]
        out = pd.DataFrame({d: [cols[d].get(lab, "") for lab in labels] for d in cols}, index=labels)
        out.index.name = "parameter"
        return out

    def to_markdown(self, digits: int = 3) -> str:
        """The comparison as GitHub Markdown: LOO table, verdict and estimates per design.

        Parameters
        ----------
        digits : int, default 3
            Significant digits.

        Returns
        -------
        str
        """
        some = next(iter(self.fits.values()))
        blocks = [b for f in self.fits.values() for b in f.model.design.blocks]
        groups = {b.factor: b.J for b in blocks}
        head = (
            f"**Pooling comparison** of `{self.formula}` ({self.family}, {some.model.design.N} rows; "
            + ", ".join(f"{g}: {j} groups" for g, j in groups.items())
            + ")"
        )
        lines = [head, ""]
        lines += _markdown_table(self.table(), digits)
        lines += ["", self.verdict(), ""]
        lines += ["Designs: " + "; ".join(f"`{d}`: {DESIGNS[d]}" for d in self.fits) + ".", ""]
        lines += ["Posterior mean (sd) of the population-level parameters:", ""]
        lines += _markdown_table(self.estimates(), digits)
        if self.warnings:
            lines += ["", "Warnings:", ""] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"

    def verdict(self) -> str:
        """One sentence: the best design by LOO and whether the others are clearly worse.

        A design is called clearly worse when its ``elpd_diff`` exceeds both 4 and twice its
        ``dse`` (the LOO FAQ's rule of thumb: smaller differences are small however precisely
        they are estimated), slightly worse when it exceeds 2 dse only, and not clearly
        different otherwise.
        """
        best = self.best
        parts = []
        for design in self.loo.index[1:]:
            diff, dse = float(self.loo.loc[design, "elpd_diff"]), float(self.loo.loc[design, "dse"])
            if diff > 2 * dse and diff > 4:
                parts.append(f"{design} is clearly worse by {diff:.1f} (dse {dse:.1f})")
            elif diff > 2 * dse:
                parts.append(f"{design} is slightly worse by {diff:.1f} (dse {dse:.1f}; a difference under 4 is small)")
            else:
                parts.append(f"{design} is worse by {diff:.1f} (dse {dse:.1f}, within 2 dse: not clearly different)")
        return f"Best by LOO: {best}" + ("; " + "; ".join(parts) if parts else "") + "."

    # ------------------------------------------------------------------ figure
    def plot(
        self,
        *,
        group: str | None = None,
        figsize: tuple[float, float] | None = None,
        save: Any = None,
        dpi: int = 100,
    ) -> "matplotlib.figure.Figure":
        """LOO comparison (left) and the shrinkage plot of the partial-pooling fit (right).

        Parameters
        ----------
        group : str, optional
            Grouping factor of the shrinkage panel (default: the first with a varying
            intercept).
        figsize : (float, float), optional
            Figure size (default 13 x 5, or 6 x 4 without a shrinkage panel).
        save : str or path, optional
            Write the figure to this file.
        dpi : int, default 100
            Resolution of the saved file.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from . import plots

        partial = next((self.fits[d] for d in ("hierarchical", "correlated") if d in self.fits), None)
        shrink = partial is not None and any(b.has_intercept for b in partial.model.design.blocks)
        fig = plots.new_figure(figsize or ((13.0, 5.0) if shrink else (6.0, 4.0)))
        axes = fig.subplots(1, 2 if shrink else 1, squeeze=False,
                            gridspec_kw={"width_ratios": [1, 1.6]} if shrink else None)[0]
        ax = axes[0]
        order = list(self.loo.index)
        y = np.arange(len(order))[::-1]
        elpd = self.loo["elpd_loo"].to_numpy(float)
        ax.errorbar(elpd, y, xerr=self.loo["se"].to_numpy(float), fmt="o", color="k", capsize=3, label="elpd_loo ± se")
        best = elpd[0]
        diff = best - self.loo["elpd_diff"].to_numpy(float)
        ax.errorbar(diff[1:], y[1:] - 0.2, xerr=self.loo["dse"].to_numpy(float)[1:], fmt="^", color="0.5",
                    capsize=3, label="difference to best ± dse")
        ax.axvline(best, color="0.7", ls="--", lw=1)
        ax.set_yticks(y)
        ax.set_yticklabels(order)
        ax.set_xlabel("elpd_loo (higher predicts better)")
        ax.set_title("LOO comparison")
        ax.legend(loc="best", fontsize="small", frameon=False)
        if shrink:
            unpooled = self.fits.get("unpooled")
            pooled = self.fits.get("pooled")
            try:
                plots.plot_shrinkage(partial, group, no_pooling=unpooled, pooled=pooled, ax=axes[1])
            except ValueError as err:  # e.g. the unpooled fit lacks an intercept for the group
                log.warning("hbstan: shrinkage panel drawn from the data alone (%s)", err)
                axes[1].cla()
                plots.plot_shrinkage(partial, group, pooled=pooled, ax=axes[1])
        return plots.finish_figure(fig, save, dpi)


# ---------------------------------------------------------------------------------------------
def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model options (those ``Model.__init__`` takes) and sampler options (everything else)."""
    from .model import Model

    model_keys = set(inspect.signature(Model.__init__).parameters) - {"self", "formula", "data", "family"}
    model_kw = {k: v for k, v in kwargs.items() if k in model_keys}
    sample_kw = {k: v for k, v in kwargs.items() if k not in model_keys}
    return model_kw, sample_kw


def _valid_prior_names(model: Any) -> set[str]:
    return set(model.priors) | set(model.prior_classes())


def _build(formula: str, data: pd.DataFrame, family: str, design: str, model_kw: dict[str, Any]) -> Any:
    """The Model of one design, with the options that apply to it."""
    from .model import Model

    kw = dict(model_kw)
    gp = kw.pop("group_predictors", None)
    priors = dict(kw.pop("priors", None) or {})
    if gp and design in ("pooled", "unpooled"):
        log.info(
            "hbstan: the %s design has no population of group effects, so group_predictors %s "
            "are left out of it", design, dict(gp),
        )
        gp = None
    base = Model(formula, data, family=family, pooling=design, group_predictors=gp, **kw)
    if priors:
        valid = _valid_prior_names(base)
        used = {k: v for k, v in priors.items() if k in valid}
        skipped = sorted(set(priors) - set(used))
        if skipped:
            log.info("hbstan: priors %s do not apply to the %s design and are left out of it", skipped, design)
        if used:
            base = Model(formula, data, family=family, pooling=design, group_predictors=gp, priors=used, **kw)
    return base


def compare_pooling(
    formula: str,
    data: pd.DataFrame,
    family: str = "gaussian",
    *,
    designs: Sequence[str] | None = None,
    **kwargs: Any,
) -> PoolingComparison:
    """Fit one formula with complete, no and partial pooling, and compare the fits by LOO.

    Parameters
    ----------
    formula : str
        A formula with at least one varying term, e.g. ``"y ~ x + (1 | g)"``. With varying
        slopes (``(1 + x | g)``) the correlated design is fitted too.
    data : pandas.DataFrame
        One row per observation.
    family : {"gaussian", "bernoulli", "binomial", "poisson"}, default "gaussian"
        Response family.
    designs : list of str, optional
        Which designs to fit, a subset of ``["pooled", "unpooled", "hierarchical",
        "correlated"]`` (default: the first three, plus ``"correlated"`` when a group term
        has more than one varying effect). At least two are needed for a comparison.
    **kwargs
        Options of :class:`hbstan.Model` (``group_predictors``, ``priors``, ``sigma``,
        ``trials``, ``offset``, ``exposure``, ``centered``, ``marginalize``, ``dropna``) and of
        :meth:`hbstan.Model.sample` (``chains``, ``draws``, ``warmup``, ``seed``,
        ``adapt_delta``, ...), applied to every design. ``group_predictors`` need a
        population of group effects, so the pooled and unpooled fits leave them out; priors
        apply to the designs that have the parameter (e.g. ``"1|g_sigma"`` only to partial
        pooling). With ``output_dir=DIR`` each design's CmdStan files go to ``DIR/<design>``.

    Returns
    -------
    PoolingComparison
        ``.fits`` (design -> Fit), ``.loo`` (``az.compare`` table), ``.table()``,
        ``.estimates()``, ``.to_markdown()``, ``.verdict()`` and ``.plot()``.

    Raises
    ------
    FormulaError
        The formula has no varying term, or ``pooling=`` was passed.
    ValueError
        Unknown or too few designs.
    """
    import arviz as az

    if "pooling" in kwargs:
        raise FormulaError(
            "compare_pooling fits every pooling design itself; drop pooling= and pass "
            "designs=['pooled', 'hierarchical', ...] to choose which"
        )
    parsed = parse_formula(formula)
    if not parsed.groups:
        raise FormulaError(
            f"compare_pooling needs a formula with a varying term such as (1 | group), to pool "
            f"over; {formula!r} has none (it is already complete pooling). Add e.g. '+ (1 | g)'"
        )
    model_kw, sample_kw = _split_kwargs(kwargs)
    if designs is None:
        designs = ["pooled", "unpooled", "hierarchical"]
        probe = _build(formula, data, family, "hierarchical", model_kw)
        if any(b.M > 1 for b in probe.design.blocks):
            designs.append("correlated")
    else:
        designs = list(designs)
        bad = [d for d in designs if d not in DESIGNS]
        if bad:
            raise ValueError(f"unknown design(s) {bad}; valid designs: {list(DESIGNS)}")
        if len(set(designs)) < 2:
            raise ValueError(f"compare_pooling needs at least two different designs to compare, got {designs}")
        designs = list(dict.fromkeys(designs))
    out_dir = sample_kw.pop("output_dir", None)
    fits: dict[str, Fit] = {}
    notes: list[str] = []
    for design in designs:
        model = _build(formula, data, family, design, model_kw)
        kw = dict(sample_kw)
        if out_dir is not None:
            kw["output_dir"] = str(Path(out_dir) / design)
        log.info("hbstan: fitting the %s design: %r", design, model)
        fit = model.sample(**kw)
        fits[design] = fit
        notes += [f"{design}: {w}" for w in fit.warnings]
    details: dict[str, Any] = {}
    for design, fit in fits.items():
        fit.add_pointwise()  # LOO needs log_lik (a no-op when the fit computed it)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            details[design] = az.loo(fit.idata, pointwise=True)
        k = np.asarray(details[design].pareto_k)
        nbad = int(np.sum(k > _PARETO_K_BAD))
        if nbad:
            notes.append(
                f"{design}: {nbad} observation(s) with Pareto k > {_PARETO_K_BAD}: their LOO terms are "
                "unreliable (typically observations in groups so small that leaving one out changes "
                "the group's own parameters a lot); K-fold cross-validation is the safe check"
            )
        for w in caught:
            if "Pareto" not in str(w.message):
                log.debug("hbstan: az.loo (%s): %s", design, w.message)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare(details, ic="loo")
    for note in notes:
        log.info("hbstan: %s", note)
    return PoolingComparison(formula, family, fits, table, details, notes)
