"""Compare two posterior fits of the same model (e.g. CmdStan against PyMC).

:func:`compare_fits` puts every scalar element of every posterior variable the two fits share
side by side and decides whether the fits agree: each difference of posterior means (and sds)
is tested against the Monte Carlo errors of both fits, allowing for the error in those
error estimates and for the number of comparisons; a difference that the test flags is then
confirmed, or not, by fresh longer runs of both fits before the fits are said to disagree,
and a fit that has not converged is run longer before that is reported.
:func:`compare_backends` samples a model with both backends and compares them the same way.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from .tables import markdown_table

if TYPE_CHECKING:
    import arviz as az
    import matplotlib.figure

    from .fit import Fit
    from .model import Model

__all__ = ["Comparison", "Round", "compare_fits", "compare_backends", "VERDICTS"]

log = logging.getLogger("hbstan")

VERDICTS = ("agree", "disagree", "not converged")
_TIMING_KEYS = ("compile", "sample", "convert")
# Degrees of freedom of an MCSE estimate: nu = min(ESS, N / 2) / 6 (N draws in all). Calibrated
# on AR(1) chains (4 x 250 to 4 x 1000 and 2 x 200 draws, autocorrelation -0.3 to 0.95,
# Gaussian and t5 innovations): the spread of log(MCSE estimate) matches that of a scaled
# chi-square with this many degrees of freedom or more (nu ~ ESS / 5.5 for positively
# autocorrelated chains, ~ N / 10 for antithetic ones, whose ESS exceeds N).
_DRAWS_PER_DF = 6.0
# A difference beyond this many times its critical value is taken as confirmed without a
# further run: it would need Monte Carlo errors underestimated this many times over.
_CLEAR = 3.0
_GROWTH = 2  # a further run has this many times the draws (and warm-up) of the one before


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _t_quantile(p: float, df: np.ndarray) -> np.ndarray:
    from scipy.stats import t

    df = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(df) & (df > 0), t.ppf(p, np.where(df > 0, df, 1.0)), np.nan)


@dataclass(frozen=True)
class Round:
    """One pair of fits compared within :func:`compare_fits` (see ``Comparison.rounds``).

    Attributes
    ----------
    draws : tuple of int
        Chains x draws per chain of each fit, e.g. ``("4 x 1000", "4 x 2000")``.
    verdict : str
        What this pair alone says (the rule of :func:`compare_fits`, without confirmation).
    suspects : tuple of str
        Differences flagged in this pair, e.g. ``"1|lab[L4] (mean, z -4.02, critical 3.55)"``.
    unconverged : dict
        Per fit label, the scalars that failed R-hat or bulk ESS there, with their values.
    action : str
        What followed: a further run of one or both fits, or the final verdict and why.
    """

    draws: tuple[str, str]
    verdict: str
    suspects: tuple[str, ...]
    unconverged: dict[str, tuple[str, ...]]
    action: str


@dataclass
class Comparison:
    """The result of :func:`compare_fits` (and :func:`compare_backends`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per compared scalar of the last pair of fits (index: ArviZ-style labels such
        as ``"1|g[a]"``) with the columns ``mean_<a>``, ``mean_<b>``, ``sd_<a>``, ``sd_<b>``,
        ``mcse_<a>``, ``mcse_<b>`` (MCSE of the mean), ``z`` (difference of the means over
        the combined MCSE), ``z_crit`` (its critical value), ``z_sd`` and ``z_sd_crit``
        (the same for the sds, with the MCSE of the sd), ``df`` and ``df_sd`` (degrees of
        freedom of the t reference of each), ``sd_ratio`` (``sd_<a> / sd_<b>``),
        ``r_hat_<a>``, ``r_hat_<b>``, ``ess_bulk_<a>``, ``ess_bulk_<b>`` and ``verdict``,
        where ``<a>`` and ``<b>`` are the ``labels``.
    verdict : {"agree", "disagree", "not converged"}
        Overall verdict (see :func:`compare_fits` for the rule).
    labels : tuple of str
        Names of the two fits in the columns (default: their backends).
    timings : pandas.DataFrame
        One row per fit of the last pair: ``compile``, ``sample`` (warm-up and sampling) and
        ``convert`` seconds, their ``total``, the minimum bulk ESS over the compared scalars
        and that minimum per second of sampling (``min_ess_bulk_per_s``), and the number of
        divergent transitions (``divergences``: where there are any, a fit may miss part of
        the posterior even when R-hat and ESS look fine).
    threshold : float
        Critical value of ``|z|`` for a standard normal reference (the Bonferroni bound);
        each row's ``z_crit`` is the t-reference value, a little higher.
    alpha : float
        Family-wise false-alarm probability the thresholds were set for.
    n_tests : int
        Number of z statistics the thresholds account for.
    rounds : list of Round
        Every pair compared, in order: the first pair, then any further runs (to confirm a
        suspect difference, or to let a fit that had not converged run longer).
    note : str
        Why the verdict is what it is, in a sentence or two (which differences were or were not
        confirmed, which fit has not converged on which scalars).
    confirmed : tuple of str
        The scalars whose difference was confirmed (verdict "disagree").
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
    rounds: list[Round] = field(default_factory=list)
    note: str = ""
    confirmed: tuple[str, ...] = ()

    @property
    def n_params(self) -> int:
        """Number of compared scalars."""
        return len(self.table)

    @property
    def unconverged(self) -> dict[str, list[str]]:
        """Per fit label, the scalars of the last pair that failed R-hat or bulk ESS in that fit."""
        return {lab: _failing(self.table, lab, self.rhat_max, self.ess_min) for lab in self.labels}

    def __repr__(self) -> str:
        counts = self.table["verdict"].value_counts().to_dict()
        parts = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
        return (
            f"<hbstan.Comparison {self.labels[0]} vs {self.labels[1]}: {self.verdict!r} "
            f"({self.n_params} scalars: {parts}; |z| threshold {self.threshold:.2f}; "
            f"{len(self.rounds)} round{'s' if len(self.rounds) != 1 else ''})>"
        )

    # ------------------------------------------------------------------ report
    def to_markdown(self, digits: int = 3, max_rows: int | None = None) -> str:
        """The comparison as Markdown: verdict, rounds, parameter table and timings.

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
            f"|z| threshold {self.threshold:.2f} (normal; t with the MCSEs' degrees of freedom per row) "
            f"for a family-wise false-alarm rate of {self.alpha:g} over {self.n_tests} tests; "
            f"R-hat <= {self.rhat_max:g} and bulk ESS >= {self.ess_min:g} required)",
            "",
        ]
        if self.note:
            lines += [self.note, ""]
        if len(self.rounds) > 1:
            rounds = pd.DataFrame(
                [
                    {
                        "round": k,
                        f"draws {a}": r.draws[0],
                        f"draws {b}": r.draws[1],
                        "pair's verdict": r.verdict,
                        "suspects": "; ".join(r.suspects) or "-",
                        "not converged": "; ".join(f"{lab}: {', '.join(v)}" for lab, v in r.unconverged.items() if v)
                        or "-",
                        "then": r.action,
                    }
                    for k, r in enumerate(self.rounds, start=1)
                ]
            )
            lines += ["Rounds:", ""] + _markdown_table(rounds, digits) + [""]
        table = self.table.drop(columns=["df", "df_sd"], errors="ignore")
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
    def cell(col: str, v: Any) -> str:
        if isinstance(v, (float, np.floating)) and math.isfinite(v):
            if col.startswith("r_hat"):
                return f"{v:.3f}"  # 1.0099 must not read as 1.01
            if col.startswith(("ess", "min_ess", "divergences")):
                return f"{v:.0f}"
        return _fmt(v, digits)

    return markdown_table(df, cell)


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
    stats = getattr(_idata(fit), "sample_stats", None)
    div = stats["diverging"] if stats is not None and "diverging" in stats else None
    row["divergences"] = float(div.values.sum()) if div is not None else np.nan
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


def _total_draws(idata: Any) -> int:
    sizes = idata.posterior.sizes
    return int(sizes.get("chain", 1)) * int(sizes.get("draw", 1))


def _mcse_df(ess: np.ndarray, n_draws: int) -> np.ndarray:
    """Degrees of freedom of an MCSE estimate from its ESS (see ``_DRAWS_PER_DF``)."""
    with np.errstate(invalid="ignore"):
        return np.maximum(np.minimum(ess, n_draws / 2) / _DRAWS_PER_DF, 1.0)


def _welch(diff: np.ndarray, se_a: np.ndarray, se_b: np.ndarray, df_a: np.ndarray, df_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return diff / sqrt(se_a^2 + se_b^2) and the Welch-Satterthwaite degrees of freedom of its t reference."""
    with np.errstate(divide="ignore", invalid="ignore"):
        var = se_a**2 + se_b**2
        z = diff / np.sqrt(var)
        df = var**2 / (se_a**4 / df_a + se_b**4 / df_b)
    return z, df


def _failing(table: pd.DataFrame, label: str, rhat_max: float, ess_min: float) -> list[str]:
    """Scalars that failed R-hat or bulk ESS in the fit ``label``, with their values."""
    rh, ess = table[f"r_hat_{label}"], table[f"ess_bulk_{label}"]
    live = table["verdict"] == "not converged"
    bad = live & ~((rh <= rhat_max) & (ess >= ess_min))
    return [f"{k} (R-hat {rh[k]:.3f}, bulk ESS {ess[k]:.0f})" for k in table.index[bad]]


@dataclass(frozen=True)
class _Pair:
    table: pd.DataFrame
    n_tests: int
    threshold: float
    timings: pd.DataFrame
    idatas: tuple[Any, Any]

    @property
    def verdict(self) -> str:
        v = set(self.table["verdict"])
        return "not converged" if "not converged" in v else "disagree" if "disagree" in v else "agree"


@dataclass(frozen=True)
class _Suspect:
    row: str
    stat: str  # "mean" or "sd"
    z: float
    crit: float
    found: int  # the round it was flagged in

    def describe(self) -> str:
        return f"{self.row} ({self.stat}, z {self.z:+.2f}, critical {self.crit:.2f})"


def _compare_pair(
    fit_a: Any, fit_b: Any, la: str, lb: str, *, alpha: float, rhat_max: float, ess_min: float, check_sd: bool
) -> _Pair:
    """Test one pair of fits, without confirmation (the rule in :func:`compare_fits`)."""
    ia, ib = _idata(fit_a), _idata(fit_b)
    shared = _shared_vars(ia, ib)
    if not shared:
        raise ValueError(
            f"the fits share no posterior variable: {la} has {list(ia.posterior.data_vars)}, "
            f"{lb} has {list(ib.posterior.data_vars)}"
        )
    sa, sb = _summary(ia, shared), _summary(ib, shared)
    rows = [r for r in sa.index if r in sb.index]
    sa, sb = sa.loc[rows], sb.loc[rows]

    def col(s: pd.DataFrame, name: str) -> np.ndarray:
        return s[name].to_numpy(float)

    ma, mb, sda, sdb = col(sa, "mean"), col(sb, "mean"), col(sa, "sd"), col(sb, "sd")
    mca, mcb, msa, msb = col(sa, "mcse_mean"), col(sb, "mcse_mean"), col(sa, "mcse_sd"), col(sb, "mcse_sd")
    na, nb = _total_draws(ia), _total_draws(ib)
    scale = np.maximum(1.0, np.maximum(np.abs(ma), np.abs(mb)))
    const = (sda <= 1e-10 * scale) & (sdb <= 1e-10 * scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the ESS behind each MCSE of the mean (mcse = sd / sqrt(ess)); the sd's MCSE rests on
        # the tails, so its degrees of freedom come from the tail ESS
        df_a, df_b = _mcse_df((sda / mca) ** 2, na), _mcse_df((sdb / mcb) ** 2, nb)
        ratio = sda / sdb
    z, df = _welch(ma - mb, mca, mcb, df_a, df_b)
    z_sd, df_sd = _welch(sda - sdb, msa, msb, _mcse_df(col(sa, "ess_tail"), na), _mcse_df(col(sb, "ess_tail"), nb))
    for arr in (z, z_sd, ratio, df, df_sd):
        arr[const] = np.nan
    n_tests = int((~const).sum()) * (2 if check_sd else 1)
    p = 1 - alpha / (2 * max(n_tests, 1))
    threshold = _normal_quantile(p)
    z_crit, z_sd_crit = _t_quantile(p, df), _t_quantile(p, df_sd)

    rha, rhb = col(sa, "r_hat"), col(sb, "r_hat")
    esa, esb = col(sa, "ess_bulk"), col(sb, "ess_bulk")
    verdicts = []
    for k in range(len(rows)):
        if const[k]:
            verdicts.append("agree" if abs(ma[k] - mb[k]) <= 1e-8 * scale[k] else "disagree")
            continue
        conv = all(np.isfinite(v) for v in (rha[k], rhb[k], esa[k], esb[k], z[k], z_crit[k]))
        conv = conv and max(rha[k], rhb[k]) <= rhat_max and min(esa[k], esb[k]) >= ess_min
        if not conv:
            verdicts.append("not converged")
        elif abs(z[k]) > z_crit[k] or (check_sd and np.isfinite(z_sd[k]) and abs(z_sd[k]) > z_sd_crit[k]):
            verdicts.append("disagree")
        else:
            verdicts.append("agree")
    table = pd.DataFrame(
        {
            f"mean_{la}": ma,
            f"mean_{lb}": mb,
            f"sd_{la}": sda,
            f"sd_{lb}": sdb,
            f"mcse_{la}": mca,
            f"mcse_{lb}": mcb,
            "z": z,
            "z_crit": z_crit,
            "z_sd": z_sd,
            "z_sd_crit": z_sd_crit,
            "df": df,
            "df_sd": df_sd,
            "sd_ratio": ratio,
            f"r_hat_{la}": rha,
            f"r_hat_{lb}": rhb,
            f"ess_bulk_{la}": esa,
            f"ess_bulk_{lb}": esb,
            "verdict": verdicts,
        },
        index=pd.Index(rows, name=None),
    )
    live = ~const
    min_a = float(np.nanmin(esa[live])) if live.any() else np.nan
    min_b = float(np.nanmin(esb[live])) if live.any() else np.nan
    timings = pd.DataFrame([_timing_row(fit_a, min_a), _timing_row(fit_b, min_b)], index=[la, lb])
    return _Pair(table, n_tests, threshold, timings, (ia, ib))


def _suspects(pair: _Pair, check_sd: bool, found: int) -> list[_Suspect]:
    """List the differences a pair flags: one per scalar and statistic beyond its critical value."""
    t = pair.table
    out = []
    for row in t.index[t["verdict"] == "disagree"]:
        tests = [("mean", "z", "z_crit")] + ([("sd", "z_sd", "z_sd_crit")] if check_sd else [])
        for stat, zc, cc in tests:
            z, crit = float(t.at[row, zc]), float(t.at[row, cc])
            if np.isfinite(z) and abs(z) > crit:
                out.append(_Suspect(str(row), stat, z, crit, found))
        if not np.isfinite(t.at[row, "z"]):  # constants that differ
            out.append(_Suspect(str(row), "mean", math.inf, 0.0, found))
    return out


def _confirms(pair: _Pair, s: _Suspect, n: int, alpha: float) -> bool | None:
    """Tell whether a fresh pair confirms the suspect ``s`` (one of ``n`` confirmed at once).

    Confirmed: the same statistic differs in the same direction beyond the Bonferroni bound
    over those ``n`` tests. None when the scalar has not converged in this pair (it cannot say).
    """
    t = pair.table
    if s.row not in t.index or t.at[s.row, "verdict"] == "not converged":
        return None
    z = float(t.at[s.row, "z" if s.stat == "mean" else "z_sd"])
    if not np.isfinite(z):
        return bool(t.at[s.row, "verdict"] == "disagree") if math.isinf(s.z) else False
    crit = float(_t_quantile(1 - alpha / (2 * n), t.at[s.row, "df" if s.stat == "mean" else "df_sd"]))
    return bool(np.sign(z) == np.sign(s.z) and abs(z) > crit)


# a further run of one fit: (draws, warmup, seed) -> a new fit
Resampler = Callable[[int, int, "int | None"], Any]


def _fit_resampler(fit: Any) -> tuple[Resampler | None, dict[str, Any]]:
    """How to sample a Fit again with more draws (``fit.refit``), and its current settings."""
    settings = dict(getattr(fit, "settings", None) or {})
    refit = getattr(fit, "refit", None)
    if not callable(refit) or not all(k in settings for k in ("chains", "draws", "warmup")):
        return None, settings

    def again(draws: int, warmup: int, seed: int | None) -> Any:
        return refit(draws=draws, warmup=warmup, seed=seed)

    return again, settings


def _listed(items: Sequence[str], most: int = 4) -> str:
    extra = len(items) - most
    return ", ".join(items[:most]) + (f" and {extra} more" if extra > 0 else "")


def _size(fit: Any) -> str:
    sizes = _idata(fit).posterior.sizes
    return f"{int(sizes.get('chain', 1))} x {int(sizes.get('draw', 1))}"


def _next_seed(seed: Any, k: int) -> int | None:
    return None if seed is None else (int(seed) + 7919 * k) % (2**31 - 1)


def _decide(
    fits: list[Any],
    labels: tuple[str, str],
    resample: list[Resampler | None],
    settings: list[dict[str, Any]],
    *,
    alpha: float,
    rhat_max: float,
    ess_min: float,
    check_sd: bool,
    confirm: bool,
    max_draws: int | Sequence[int] | None,
) -> Comparison:
    """Compare, confirm suspect differences by fresh longer runs, and extend unconverged fits."""
    opts = dict(alpha=alpha, rhat_max=rhat_max, ess_min=ess_min, check_sd=check_sd)
    draws = [int(s.get("draws", 0) or 0) for s in settings]
    warmup = [int(s.get("warmup", 0) or 0) for s in settings]
    seeds = [s.get("seed") for s in settings]
    if max_draws is None:
        limit = [(_GROWTH**2) * d for d in draws]
    elif isinstance(max_draws, (int, np.integer)):
        limit = [int(max_draws)] * 2
    else:
        limit = [int(x) for x in max_draws]
    can_rerun = [confirm and r is not None and d > 0 for r, d in zip(resample, draws, strict=True)]
    reruns = [0, 0]
    born = [1, 1]  # the round in which each side's current fit was first compared
    pending: list[_Suspect] = []
    rounds: list[Round] = []
    k = 0

    def grow(i: int) -> bool:
        return can_rerun[i] and draws[i] * _GROWTH <= limit[i]

    def rerun(i: int, longer_warmup: bool, why: str) -> str:
        reruns[i] += 1
        draws[i] *= _GROWTH
        if longer_warmup:
            warmup[i] *= _GROWTH
        seed = _next_seed(seeds[i], reruns[i])
        log.info("hbstan: %s: %s; sampling %s again with %d draws per chain", " vs ".join(labels), why, labels[i], draws[i])
        fn = resample[i]
        assert fn is not None
        fits[i] = fn(draws[i], warmup[i], seed)
        born[i] = k + 1
        return f"{labels[i]} again: {_size(fits[i])} draws, warm-up {warmup[i]}, seed {seed}"

    def finish(
        pair: _Pair, round_: Round, verdict: str, note: str, confirmed_rows: Sequence[_Suspect] = ()
    ) -> Comparison:
        rounds.append(round_)
        table = pair.table.copy()
        for s in confirmed_rows:
            table.at[s.row, "verdict"] = "disagree"
        n = len(rounds)
        log.info("hbstan: %s vs %s: %s (%d round%s). %s", *labels, verdict, n, "s" if n > 1 else "", note)
        return Comparison(
            table=table,
            verdict=verdict,
            labels=labels,
            timings=pair.timings,
            threshold=pair.threshold,
            alpha=alpha,
            n_tests=pair.n_tests,
            rhat_max=rhat_max,
            ess_min=ess_min,
            idatas=pair.idatas,
            rounds=rounds,
            note=note,
            confirmed=tuple(dict.fromkeys(s.row for s in confirmed_rows)),
        )

    while True:
        k += 1
        pair = _compare_pair(fits[0], fits[1], *labels, **opts)
        unconv = {lab: tuple(_failing(pair.table, lab, rhat_max, ess_min)) for lab in labels}
        # 1. earlier suspects, now seen in a pair of fresh fits: confirmed or not
        confirmed: list[_Suspect] = []
        dropped: list[_Suspect] = []
        ready = [s for s in pending if min(born) > s.found]
        for s in ready:
            ok = _confirms(pair, s, len(ready), alpha)
            if ok is None:
                continue  # not converged here: stays pending
            pending.remove(s)
            (confirmed if ok else dropped).append(s)
        new = [s for s in _suspects(pair, check_sd, k) if (s.row, s.stat) not in {(c.row, c.stat) for c in confirmed}]
        clear = [s for s in new if abs(s.z) > _CLEAR * s.crit]
        sizes = (_size(fits[0]), _size(fits[1]))
        seen = (sizes, pair.verdict, tuple(s.describe() for s in new), unconv)  # this round, but its action

        if confirmed or clear:
            parts = []
            if confirmed:
                zs = ", ".join(
                    f"{s.row} ({s.stat}: z {s.z:+.2f}, then {float(pair.table.at[s.row, 'z' if s.stat == 'mean' else 'z_sd']):+.2f})"
                    for s in confirmed
                )
                parts.append(f"confirmed by a fresh run of both fits: {zs}")
            if clear:
                parts.append(
                    "beyond " + f"{_CLEAR:g} times the critical value, no further run needed: "
                    + ", ".join(s.describe() for s in clear)
                )
            note = "The fits disagree: " + "; ".join(parts) + "."
            return finish(pair, Round(*seen, "verdict: disagree"), "disagree", note, [*confirmed, *clear])
        failing = [i for i, lab in enumerate(labels) if unconv[lab]]
        if failing:
            pending += new
            longer = [i for i in failing if grow(i)]
            if longer:
                what = "; ".join(f"{labels[i]} has not converged on {len(unconv[labels[i]])} scalar(s)" for i in failing)
                actions = [rerun(i, True, what) for i in longer]
                rounds.append(Round(*seen, "; ".join(actions)))
                continue
            who = "; ".join(f"{labels[i]} on {_listed(unconv[labels[i]])}" for i in failing)
            tried = " after longer runs" if any(reruns[i] for i in failing) else ""
            limit_txt = (
                "no further run allowed (max_draws)" if all(can_rerun[i] for i in failing)
                else "these fits cannot be sampled again here (confirm=False, or not hbstan Fits)"
            )
            note = f"Not converged{tried}: {who} ({limit_txt})."
            if pending:
                note += " Unresolved suspect differences: " + "; ".join(s.describe() for s in pending) + "."
            return finish(pair, Round(*seen, "verdict: not converged"), "not converged", note)
        pending += new
        if pending:
            if grow(0) and grow(1):
                what = "suspect difference(s): " + "; ".join(s.describe() for s in pending)
                actions = [rerun(i, False, what) for i in (0, 1)]
                rounds.append(Round(*seen, "confirmation: " + "; ".join(actions)))
                continue
            why = (
                "no further run allowed (max_draws)" if all(can_rerun)
                else "the fits cannot be sampled again here (confirm=False, or not hbstan Fits)"
            )
            note = (
                "Suspect difference(s), NOT confirmed by a fresh run (" + why + "): "
                + "; ".join(s.describe() for s in pending) + "."
            )
            return finish(pair, Round(*seen, "verdict: disagree (unconfirmed)"), "disagree", note, pending)
        note = ""
        if dropped:
            note = (
                "Agree: the suspect difference(s) "
                + "; ".join(s.describe() for s in dropped)
                + f" were not confirmed by fresh runs of both fits ({sizes[0]} and {sizes[1]} draws)."
            )
        elif k > 1:
            note = "Agree after longer runs."
        return finish(pair, Round(*seen, "verdict: agree"), "agree", note)


def _check_options(alpha: float, rhat_max: float, ess_min: float) -> None:
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not (rhat_max >= 1):
        raise ValueError(f"rhat_max must be at least 1, got {rhat_max!r}")
    if not (ess_min >= 0):
        raise ValueError(f"ess_min must be non-negative, got {ess_min!r}")


def compare_fits(
    fit_a: "Fit",
    fit_b: "Fit",
    *,
    alpha: float = 0.01,
    rhat_max: float = 1.01,
    ess_min: float = 100.0,
    check_sd: bool = True,
    labels: Sequence[str] | None = None,
    confirm: bool = True,
    max_draws: int | Sequence[int] | None = None,
) -> Comparison:
    """Compare two fits of the same model, parameter by parameter.

    Every scalar element of every posterior variable both fits hold (same name, dims and
    coordinates) is compared: the two posterior means and sds, their Monte Carlo standard
    errors (MCSE, from ArviZ), R-hat and bulk ESS on each side. A difference the test flags
    is confirmed by fresh, longer runs of both fits before the fits are said to disagree,
    and a fit that has not converged is run longer before that is the verdict (both with
    ``fit.refit``, so only for hbstan Fits, and only with ``confirm=True``).

    The decision rule is in the Notes below.

    Parameters
    ----------
    fit_a, fit_b : hbstan.Fit or arviz.InferenceData
        The two fits (any backends; both of the same model and data).
    alpha : float, default 0.01
        Family-wise probability of a false "disagree" for a correct pair in one round of the
        test (the confirmation makes the overall probability far smaller).
    rhat_max : float, default 1.01
        Largest acceptable rank-normalized R-hat.
    ess_min : float, default 100
        Smallest acceptable bulk ESS of a compared scalar.
    check_sd : bool, default True
        Also test the posterior sds (doubles ``n``).
    labels : pair of str, optional
        Names of the fits in the table (default: their backends, e.g. "stan" and "pymc").
    confirm : bool, default True
        Sample again to confirm a suspect difference and to extend a fit that has not
        converged. False (or fits that cannot be sampled again, such as bare InferenceData)
        gives the verdict of the first pair, a "disagree" then being unconfirmed (``.note``
        says so).
    max_draws : int or pair of int, optional
        Most draws per chain a further run of each fit may have (default: 4 times the fit's
        own, i.e. at most two further runs, each doubling the draws).

    Returns
    -------
    Comparison
        ``.table`` (of the last pair), ``.verdict``, ``.note``, ``.rounds``, ``.timings``,
        ``.unconverged``, ``.to_markdown()`` and ``.plot()``.

    Raises
    ------
    ValueError
        The fits share no posterior variable, or an option is out of range.

    Notes
    -----
    **One pair.** For each scalar, ``z = (mean_a - mean_b) / sqrt(mcse_a**2 + mcse_b**2)``
    with the MCSE of the mean, and (``check_sd=True``) ``z_sd`` likewise with the sds and
    their MCSEs. If both fits sample the same posterior, their chains are independent and z
    is approximately standard normal, except that the MCSEs are themselves estimates, noisy
    where the ESS is small: z is referred to a t distribution whose degrees of freedom
    combine (Welch-Satterthwaite) those of the two MCSE estimates, ``min(ESS, N / 2) / 6``
    each (N draws in all; calibrated on autocorrelated chains; the ESS of the mean, and the
    tail ESS for the sd). With ``n`` statistics in all, each is tested at level
    ``alpha / n`` (Bonferroni; ``.threshold`` is the normal value of that bound, each row's
    ``z_crit`` the t value). Bonferroni holds however the statistics are correlated: effects
    that move with the intercept share its Monte Carlo error, so one unlucky estimate of the
    intercept can push many z's up together, but counts as a single false alarm.

    Per scalar the verdict is ``"not converged"`` if on either side R-hat > ``rhat_max``
    or bulk ESS < ``ess_min`` (the MCSE is then not trustworthy, so neither is z), else
    ``"disagree"`` if ``|z| > z_crit`` (or ``|z_sd| > z_sd_crit``), else ``"agree"``.
    Scalars that are constant in both fits (the unit diagonal of a correlation matrix)
    agree when their values match to 1e-8 and do not count in ``n``.

    **Confirmation and longer runs** (``confirm=True`` and hbstan Fits):

    * a fit with unconverged scalars is sampled again with twice the draws and warm-up (a
      new seed), up to ``max_draws``, and compared anew; only when it cannot be extended
      further is the verdict ``"not converged"``, and ``.note`` and ``.unconverged`` say
      which fit and which scalars;
    * a flagged difference (a "suspect") is confirmed by a fresh pair: both fits sampled
      again with twice the draws and new seeds. It is confirmed if the same statistic of the
      same scalar differs again in the same direction beyond the Bonferroni bound over the
      suspects being confirmed. The two pairs are independent, so a correct pair is reported
      as disagreeing with probability about ``alpha`` times that of the second test; a real
      difference grows in z with the draws and is confirmed. A difference beyond 3 times
      its critical value is taken as confirmed at once (the MCSEs would have to be
      underestimated threefold);
    * the verdict is ``"disagree"`` once a suspect is confirmed, ``"agree"`` when a pair of
      converged fits flags nothing (earlier suspects not confirmed), and ``"disagree"``
      (unconfirmed, said in ``.note``) when suspects remain and no further run is allowed.
    """
    _check_options(alpha, rhat_max, ess_min)
    la, lb = _labels(fit_a, fit_b, labels)
    ra, sa = _fit_resampler(fit_a)
    rb, sb = _fit_resampler(fit_b)
    return _decide(
        [fit_a, fit_b], (la, lb), [ra, rb], [sa, sb], alpha=alpha, rhat_max=rhat_max, ess_min=ess_min,
        check_sd=check_sd, confirm=confirm, max_draws=max_draws,
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
    confirm: bool = True,
    max_draws: int | None = None,
    **compare_kwargs: Any,
) -> Comparison:
    """Sample ``m`` with CmdStan and with PyMC, and compare the two fits.

    Parameters
    ----------
    m : hbstan.Model or hbstan.multivariate.MultivariateModel
        The model (one response or several).
    chains, draws : int
        Chains and post-warm-up draws per chain, for both backends.
    seed : int, optional
        Seed of both samplers (further runs use seeds derived from it).
    warmup : int, optional
        Warm-up iterations per chain (default: ``draws``).
    stan_kwargs, pymc_kwargs : dict, optional
        Extra options of ``Model.sample`` and of :func:`hbstan.pymc_backend.sample_pymc`
        (e.g. ``{"nuts_sampler": "nutpie"}``); further runs use them too.
    confirm : bool, default True
        Confirm a suspect difference by fresh longer runs of both backends, and run a
        backend that has not converged longer, before saying so (see :func:`compare_fits`).
    max_draws : int, optional
        Most draws per chain of a further run (default ``4 * draws``).
    **compare_kwargs
        Options of :func:`compare_fits` (``alpha``, ``rhat_max``, ``ess_min``, ``check_sd``).

    Returns
    -------
    Comparison
        Labels ``"stan"`` and ``"pymc"``; see :func:`compare_fits` for the decision rule.
        ``.rounds`` lists each pair of runs and why the next was made.
    """
    alpha = compare_kwargs.pop("alpha", 0.01)
    rhat_max = compare_kwargs.pop("rhat_max", 1.01)
    ess_min = compare_kwargs.pop("ess_min", 100.0)
    check_sd = compare_kwargs.pop("check_sd", True)
    if compare_kwargs:
        raise TypeError(f"compare_backends got unexpected options {sorted(compare_kwargs)}")
    _check_options(alpha, rhat_max, ess_min)
    warmup = draws if warmup is None else warmup
    skw, pkw = dict(stan_kwargs or {}), dict(pymc_kwargs or {})

    def stan(d: int, w: int, s: int | None) -> Any:
        return m.sample(chains=chains, draws=d, warmup=w, seed=s, **skw)

    def pymc(d: int, w: int, s: int | None) -> Any:
        # the model's own backend switch: a model of one response or of several
        return m.sample(chains=chains, draws=d, warmup=w, seed=s, backend="pymc", **pkw)

    settings = {"chains": chains, "draws": draws, "warmup": warmup, "seed": seed}
    return _decide(
        [stan(draws, warmup, seed), pymc(draws, warmup, seed)], ("stan", "pymc"), [stan, pymc],
        [settings, dict(settings)], alpha=alpha, rhat_max=rhat_max, ess_min=ess_min, check_sd=check_sd,
        confirm=confirm, max_draws=max_draws,
    )
