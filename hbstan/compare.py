"""Compare two posterior fits of the same model (e.g. CmdStan against PyMC).

:func:`compare_fits` puts every scalar element of every posterior variable the two fits share
side by side and decides, with a test that accounts for Monte Carlo error and for the number
of comparisons, whether the fits agree. :func:`compare_backends` samples a model with both
backends and compares them.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import arviz as az
    import matplotlib.figure

    from .fit import Fit
    from .model import Model

__all__ = ["Comparison", "compare_fits", "compare_backends", "VERDICTS"]

log = logging.getLogger("hbstan")

VERDICTS = ("agree", "disagree", "not converged")
_TIMING_KEYS = ("compile", "sample", "convert")


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


@dataclass
class Comparison:
    """The result of :func:`compare_fits`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per compared scalar (index: ArviZ-style labels such as ``"1|g[a]"``) with
        the columns ``mean_<a>``, ``mean_<b>``, ``sd_<a>``, ``sd_<b>``, ``mcse_<a>``,
        ``mcse_<b>`` (MCSE of the mean), ``z`` (difference of the means over the combined
        MCSE), ``z_sd`` (difference of the sds over the combined MCSE of the sd), ``sd_ratio``
        (``sd_<a> / sd_<b>``), ``r_hat_<a>``, ``r_hat_<b>``, ``ess_bulk_<a>``,
        ``ess_bulk_<b>`` and ``verdict``, where ``<a>`` and ``<b>`` are the ``labels``.
    verdict : {"agree", "disagree", "not converged"}
        Overall verdict (see :func:`compare_fits` for the rule).
    labels : tuple of str
        Names of the two fits in the columns (default: their backends).
    timings : pandas.DataFrame
        One row per fit: ``compile``, ``sample`` (warm-up and sampling) and ``convert``
        seconds, their ``total``, the minimum bulk ESS over the compared scalars and that
        minimum per second of sampling (``min_ess_bulk_per_s``).
    threshold : float
        Critical value of ``|z|`` (and ``|z_sd|``) used for the verdicts.
    alpha : float
        Family-wise false-alarm probability the threshold was set for.
    n_tests : int
        Number of z statistics the threshold accounts for.
    """

    table: pd.DataFrame
    verdict: str
    labels: tuple[str, str]
    timings: pd.DataFrame
    threshold: float
    alpha: float
    n_tests: int
    rhat_max: float
    ess_min: float
    idatas: tuple[Any, Any] = field(repr=False, default=(None, None))

    @property
    def n_params(self) -> int:
        """Number of compared scalars."""
        return len(self.table)

    def __repr__(self) -> str:
        counts = self.table["verdict"].value_counts().to_dict()
        parts = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
        return (
            f"<hbstan.Comparison {self.labels[0]} vs {self.labels[1]}: {self.verdict!r} "
            f"({self.n_params} scalars: {parts}; |z| threshold {self.threshold:.2f})>"
        )

    # ------------------------------------------------------------------ report
    def to_markdown(self, digits: int = 3, max_rows: int | None = None) -> str:
        """The comparison as Markdown: verdict, parameter table and timings.

        Parameters
        ----------
        digits : int, default 3
            Significant digits of the numbers.
        max_rows : int, optional
            Show at most this many parameter rows, those with the largest ``|z|`` first
            (all rows, in the table's order, by default).

        Returns
        -------
        str
            GitHub-flavoured Markdown (no third-party formatter needed).
        """
        a, b = self.labels
        lines = [
            f"**{a} vs {b}: {self.verdict}** ({self.n_params} scalars compared; "
            f"|z| threshold {self.threshold:.2f} for a family-wise false-alarm rate of "
            f"{self.alpha:g} over {self.n_tests} tests; R-hat <= {self.rhat_max:g} and bulk ESS >= "
            f"{self.ess_min:g} required)",
            "",
        ]
        table = self.table
        if max_rows is not None and len(table) > max_rows:
            order = table["z"].abs().fillna(-1.0).sort_values(ascending=False, kind="stable").index[:max_rows]
            table = table.loc[order]
            lines[0] += f"; the {max_rows} largest |z| shown"
        lines += _markdown_table(table.reset_index().rename(columns={"index": "parameter"}), digits)
        lines += ["", "Timings (seconds):", ""]
        lines += _markdown_table(self.timings.reset_index().rename(columns={"index": "fit"}), digits)
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_markdown(max_rows=20)

    def plot(self, var_names: Sequence[str] | None = None, **kwargs: Any) -> "matplotlib.figure.Figure":
        """ArviZ forest plot of both posteriors, one colour per fit.

        Parameters
        ----------
        var_names : list of str, optional
            Variables to show (default: every variable the two fits share).
        **kwargs
            Passed on to ``arviz.plot_forest`` (e.g. ``figsize``, ``hdi_prob``).

        Returns
        -------
        matplotlib.figure.Figure
            The figure; ``fig.savefig("comparison.png")`` writes it.
        """
        import arviz as az

        ia, ib = self.idatas
        if ia is None or ib is None:
            raise ValueError("this Comparison holds no posteriors to plot (it was built without them)")
        shared = _shared_vars(ia, ib)
        names = list(var_names) if var_names is not None else shared
        bad = [n for n in names if n not in shared]
        if bad:
            raise ValueError(f"cannot plot {bad}: not a variable of both fits; shared variables: {shared}")
        kwargs.setdefault("combined", True)
        axes = az.plot_forest([ia, ib], model_names=list(self.labels), var_names=names, **kwargs)
        fig = np.ravel(axes)[0].figure
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # layout engines may warn on ArviZ's gridspec
            fig.tight_layout()  # keep long labels such as "1|county[...]" inside the figure
        return fig


def _fmt(v: Any, digits: int) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{digits}g}"
    return str(v).replace("|", "\\|")


def _markdown_table(df: pd.DataFrame, digits: int) -> list[str]:
    cols = [str(c) for c in df.columns]
    out = ["| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |"]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    out.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")

    def cell(col: str, v: Any) -> str:
        if isinstance(v, (float, np.floating)) and math.isfinite(v):
            if col.startswith("r_hat"):
                return f"{v:.3f}"  # 1.0099 must not read as 1.01
            if col.startswith(("ess", "min_ess")):
                return f"{v:.0f}"
        return _fmt(v, digits)

    for row in df.itertuples(index=False):
        out.append("| " + " | ".join(cell(c, v) for c, v in zip(cols, row)) + " |")
    return out


# ---------------------------------------------------------------------------------------------
def _idata(fit: Any) -> "az.InferenceData":
    idata = getattr(fit, "idata", fit)
    if not hasattr(idata, "posterior"):
        raise ValueError(
            f"compare_fits needs hbstan Fit objects (or ArviZ InferenceData with a posterior), "
            f"got {type(fit).__name__}"
        )
    return idata


def _shared_vars(ia: Any, ib: Any) -> list[str]:
    pa, pb = ia.posterior, ib.posterior
    out = []
    for v in pa.data_vars:
        if v in pb.data_vars:
            da, db = pa[v], pb[v]
            if da.dims == db.dims and all(
                d in ("chain", "draw") or (da.sizes[d] == db.sizes[d] and np.array_equal(da[d].values, db[d].values))
                for d in da.dims
            ):
                out.append(str(v))
            else:
                log.warning("hbstan: %r has different dims or coordinates in the two fits; not compared", v)
    return out


def _summary(idata: Any, names: list[str]) -> pd.DataFrame:
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat of constants (correlation diagonals) is 0/0
        return az.summary(idata, var_names=names, kind="all", round_to="none", hdi_prob=0.9)


def _timing_row(fit: Any, min_ess: float) -> dict[str, float]:
    t = dict(getattr(fit, "timings", {}) or {})
    row = {k: float(t.get(k, np.nan)) for k in _TIMING_KEYS}
    row["total"] = float(np.nansum([row[k] for k in _TIMING_KEYS])) if t else np.nan
    row["min_ess_bulk"] = min_ess
    s = row["sample"]
    row["min_ess_bulk_per_s"] = min_ess / s if s and np.isfinite(s) and s > 0 else np.nan
    return row


def _labels(fit_a: Any, fit_b: Any, labels: Sequence[str] | None) -> tuple[str, str]:
    if labels is not None:
        if len(labels) != 2 or labels[0] == labels[1]:
            raise ValueError(f"labels must be two different names, got {labels!r}")
        return str(labels[0]), str(labels[1])
    a = str(getattr(fit_a, "backend", "a"))
    b = str(getattr(fit_b, "backend", "b"))
    if a == b:
        a, b = f"{a}_a", f"{b}_b"
    return a, b


def compare_fits(
    fit_a: "Fit",
    fit_b: "Fit",
    *,
    alpha: float = 0.01,
    rhat_max: float = 1.01,
    ess_min: float = 100.0,
    check_sd: bool = True,
    labels: Sequence[str] | None = None,
) -> Comparison:
    """Compare two fits of the same model, parameter by parameter.

    Every scalar element of every posterior variable both fits hold (same name, dims and
    coordinates) is compared: the two posterior means and sds, their Monte Carlo standard
    errors (MCSE, from ArviZ), R-hat and bulk ESS on each side.

    The decision rule is in the Notes below.

    Parameters
    ----------
    fit_a, fit_b : hbstan.Fit or arviz.InferenceData
        The two fits (any backends; both of the same model and data).
    alpha : float, default 0.01
        Family-wise probability of a false "disagree" for a correct pair.
    rhat_max : float, default 1.01
        Largest acceptable rank-normalized R-hat.
    ess_min : float, default 100
        Smallest acceptable bulk ESS of a compared scalar.
    check_sd : bool, default True
        Also test the posterior sds (doubles ``n``).
    labels : pair of str, optional
        Names of the fits in the table (default: their backends, e.g. "stan" and "pymc").

    Returns
    -------
    Comparison
        ``.table``, ``.verdict``, ``.timings``, ``.to_markdown()`` and ``.plot()``.

    Raises
    ------
    ValueError
        The fits share no posterior variable, or an option is out of range.

    Notes
    -----
    For each scalar, ``z = (mean_a - mean_b) / sqrt(mcse_a**2 + mcse_b**2)`` with the MCSE
    of the mean, and (``check_sd=True``) ``z_sd = (sd_a - sd_b) / sqrt(mcse_sd_a**2 +
    mcse_sd_b**2)`` with the MCSE of the sd. If both fits sample the same posterior, the
    chains are independent and each z is approximately standard normal. With ``n`` such
    statistics, the threshold is the Bonferroni bound
    ``z* = Phi^-1(1 - alpha / (2 n))``, so that a correct pair is flagged with probability
    at most about ``alpha`` (default 1%) in all, however many parameters the model has;
    a wrong prior or likelihood shifts some mean by many MCSEs and exceeds it.

    Per scalar the verdict is:

    * ``"not converged"`` if on either side R-hat > ``rhat_max`` or bulk ESS <
      ``ess_min`` (the MCSE is then not trustworthy, so neither is z);
    * else ``"disagree"`` if ``|z| > z*`` (or ``|z_sd| > z*``);
    * else ``"agree"``.

    Scalars that are constant in both fits (the unit diagonal of a correlation matrix)
    agree when their values match to 1e-8 and do not count in ``n``. The overall verdict is
    ``"not converged"`` if any scalar is, else ``"disagree"`` if any scalar is, else
    ``"agree"``.
    """
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not (rhat_max >= 1):
        raise ValueError(f"rhat_max must be at least 1, got {rhat_max!r}")
    if not (ess_min >= 0):
        raise ValueError(f"ess_min must be non-negative, got {ess_min!r}")
    ia, ib = _idata(fit_a), _idata(fit_b)
    la, lb = _labels(fit_a, fit_b, labels)
    shared = _shared_vars(ia, ib)
    if not shared:
        raise ValueError(
            f"the fits share no posterior variable: {la} has {list(ia.posterior.data_vars)}, "
            f"{lb} has {list(ib.posterior.data_vars)}"
        )
    sa, sb = _summary(ia, shared), _summary(ib, shared)
    rows = [r for r in sa.index if r in sb.index]
    sa, sb = sa.loc[rows], sb.loc[rows]

    ma, mb = sa["mean"].to_numpy(float), sb["mean"].to_numpy(float)
    sda, sdb = sa["sd"].to_numpy(float), sb["sd"].to_numpy(float)
    scale = np.maximum(1.0, np.maximum(np.abs(ma), np.abs(mb)))
    const = (sda <= 1e-10 * scale) & (sdb <= 1e-10 * scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (ma - mb) / np.sqrt(sa["mcse_mean"].to_numpy(float) ** 2 + sb["mcse_mean"].to_numpy(float) ** 2)
        z_sd = (sda - sdb) / np.sqrt(sa["mcse_sd"].to_numpy(float) ** 2 + sb["mcse_sd"].to_numpy(float) ** 2)
        ratio = sda / sdb
    z[const] = np.nan
    z_sd[const] = np.nan
    ratio[const] = np.nan
    n_tests = int((~const).sum()) * (2 if check_sd else 1)
    threshold = _normal_quantile(1 - alpha / (2 * max(n_tests, 1)))

    rha, rhb = sa["r_hat"].to_numpy(float), sb["r_hat"].to_numpy(float)
    esa, esb = sa["ess_bulk"].to_numpy(float), sb["ess_bulk"].to_numpy(float)
    verdicts = []
    for k in range(len(rows)):
        if const[k]:
            same = abs(ma[k] - mb[k]) <= 1e-8 * scale[k]
            verdicts.append("agree" if same else "disagree")
            continue
        conv = all(np.isfinite(v) for v in (rha[k], rhb[k], esa[k], esb[k], z[k]))
        conv = conv and max(rha[k], rhb[k]) <= rhat_max and min(esa[k], esb[k]) >= ess_min
        if not conv:
            verdicts.append("not converged")
        elif abs(z[k]) > threshold or (check_sd and np.isfinite(z_sd[k]) and abs(z_sd[k]) > threshold):
            verdicts.append("disagree")
        else:
            verdicts.append("agree")
    table = pd.DataFrame(
        {
            f"mean_{la}": ma,
            f"mean_{lb}": mb,
            f"sd_{la}": sda,
            f"sd_{lb}": sdb,
            f"mcse_{la}": sa["mcse_mean"].to_numpy(float),
            f"mcse_{lb}": sb["mcse_mean"].to_numpy(float),
            "z": z,
            "z_sd": z_sd,
            "sd_ratio": ratio,
            f"r_hat_{la}": rha,
            f"r_hat_{lb}": rhb,
            f"ess_bulk_{la}": esa,
            f"ess_bulk_{lb}": esb,
            "verdict": verdicts,
        },
        index=pd.Index(rows, name=None),
    )
    if "not converged" in verdicts:
        verdict = "not converged"
    elif "disagree" in verdicts:
        verdict = "disagree"
    else:
        verdict = "agree"
    live = ~const
    min_a = float(np.nanmin(esa[live])) if live.any() else np.nan
    min_b = float(np.nanmin(esb[live])) if live.any() else np.nan
    timings = pd.DataFrame([_timing_row(fit_a, min_a), _timing_row(fit_b, min_b)], index=[la, lb])
    log.info(
        "hbstan: %s vs %s: %s (%d scalars, max |z| %.2f, threshold %.2f)",
        la, lb, verdict, len(rows), float(np.nanmax(np.abs(z))) if live.any() else 0.0, threshold,
    )
    return Comparison(
        table=table,
        verdict=verdict,
        labels=(la, lb),
        timings=timings,
        threshold=threshold,
        alpha=alpha,
        n_tests=n_tests,
        rhat_max=rhat_max,
        ess_min=ess_min,
        idatas=(ia, ib),
    )


def compare_backends(
    m: "Model",
    chains: int = 4,
    draws: int = 1000,
    seed: int | None = 1,
    *,
    warmup: int | None = None,
    stan_kwargs: dict[str, Any] | None = None,
    pymc_kwargs: dict[str, Any] | None = None,
    **compare_kwargs: Any,
) -> Comparison:
    """Sample ``m`` with CmdStan and with PyMC, and compare the two fits.

    Parameters
    ----------
    m : hbstan.Model
        The model.
    chains, draws : int
        Chains and post-warm-up draws per chain, for both backends.
    seed : int, optional
        Seed of both samplers.
    warmup : int, optional
        Warm-up iterations per chain (default: ``draws``).
    stan_kwargs, pymc_kwargs : dict, optional
        Extra options of ``Model.sample`` and of :func:`hbstan.pymc_backend.sample_pymc`
        (e.g. ``{"nuts_sampler": "nutpie"}``).
    **compare_kwargs
        Options of :func:`compare_fits` (``alpha``, ``rhat_max``, ``ess_min``, ``check_sd``).

    Returns
    -------
    Comparison
        Labels ``"stan"`` and ``"pymc"``; see :func:`compare_fits` for the decision rule.
    """
    from .pymc_backend import sample_pymc

    warmup = draws if warmup is None else warmup
    fit_stan = m.sample(chains=chains, draws=draws, warmup=warmup, seed=seed, **(stan_kwargs or {}))
    fit_pymc = sample_pymc(m, chains=chains, draws=draws, warmup=warmup, seed=seed, **(pymc_kwargs or {}))
    return compare_fits(fit_stan, fit_pymc, labels=("stan", "pymc"), **compare_kwargs)
