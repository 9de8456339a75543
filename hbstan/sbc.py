"""Simulation-based calibration (Talts et al. 2018; Modrák et al. 2023).

Does the program sample the posterior it claims to?
Parameters and data are drawn from the prior predictive (the model's own program in its
``prior_only`` mode, non-centered, thinned to near-independent draws), the model is refitted to each
simulated data set, and each parameter's rank among its (thinned) posterior draws is
recorded. If the fits are right, the ranks are uniform. The refits are one batch of
:func:`hbstan.many.run_tasks`: a local pool or a Dask cluster, one program, one seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .design import DataError
from .fit import SamplingWarning
from .many import BATCH_SAMPLER_DEFAULTS, Failure, pinned_options, run_tasks, task_seeds
from .model import Model
from .priors import Prior

__all__ = ["SBCResult", "sbc"]


def _md_cell(text: Any) -> str:
    r"""Text for a Markdown table cell: a ``|`` (as in ``1|g_sigma``) written ``\|``."""
    return str(text).replace("|", "\\|")


def _entries(post: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Each entry of each variable as (chain, draw) draws, labelled ``name`` or ``name[coord, ...]``."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        da = post[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            out[name] = np.asarray(da.values, dtype=float)
            continue
        flat = da.stack(__entry__=extra)
        for k in range(flat.sizes["__entry__"]):
            key = np.atleast_1d(flat["__entry__"].values[k])
            out[f"{name}[{', '.join(map(str, key))}]"] = np.asarray(flat.isel(__entry__=k).values, dtype=float)
    return out


def distinct_entries(entries: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop each entry equal in every draw to an earlier one: the same quantity under two names.

    A correlation matrix's ``[a, b]`` and ``[b, a]``: ranked twice, it would count twice in the
    family-wise uniformity test and make it stricter than its level.
    """
    seen: set[bytes] = set()
    out = {}
    for k, v in entries.items():
        key = np.ascontiguousarray(v).tobytes()
        if key not in seen:
            seen.add(key)
            out[k] = v
    return out


def _sbc_fit(
    formula: str, data: pd.DataFrame, options: dict[str, Any], sampler: dict[str, Any], truth: dict[str, float],
    thin: int, *, seed: int,
) -> dict[str, Any]:
    """Worker side of one simulation: fit the simulated data, rank each true value among the thinned draws.

    Ties (a parameter stuck at one value) are broken at random, with a generator seeded by ``seed``.
    """
    fit = Model(formula, data, **options).sample(seed=seed, pointwise=False, **sampler)
    base = {k.split("[", 1)[0] for k in truth}
    draws = _entries(fit.idata.posterior, sorted(base))
    rng = np.random.default_rng([seed, 3])
    ranks = {}
    L = 0
    for name, value in truth.items():
        x = draws[name][:, ::thin].reshape(-1)
        L = x.size
        below, ties = int(np.sum(x < value)), int(np.sum(x == value))
        ranks[name] = below + (int(rng.integers(0, ties + 1)) if ties else 0)
    div = int(fit.idata.sample_stats["diverging"].values.sum())
    return {"ranks": ranks, "L": L, "divergences": div, "warnings": list(fit.warnings)}


def _as_column(y: np.ndarray, like: pd.Series) -> Any:
    """Return simulated responses in the form of the data's column (a pandas Categorical's codes 1..K as its categories)."""
    if isinstance(like.dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(np.rint(y).astype(int) - 1, dtype=like.dtype)
    return y


class SBCResult:
    """The ranks of a simulation-based calibration and their uniformity tests.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per simulation, one column per parameter entry: the rank of the true value
        among the ``max_rank`` thinned posterior draws (0..max_rank); NaN where the fit failed.
    truth : pandas.DataFrame
        The parameters each data set was simulated from.
    max_rank : int
        The number of thinned posterior draws per fit (ranks run from 0 to it).
    failures : list of Failure
        Simulations whose fit failed.
    divergences : numpy.ndarray
        Divergent transitions per simulation's fit.
    alpha : float
        Family-wise level of the uniformity tests (Bonferroni over the parameters).
    seconds : float
        Wall time, prior draws and refits.
    simulated : numpy.ndarray or None
        The simulated responses, one row per simulation (n_sims x rows of the data). Ranks are
        uniform given the data too, so a subset of simulations chosen by their data (never by
        their true parameters) is itself a valid SBC: ``result.subset(mask)``.
    fit_warnings : list of list of str or None
        Each simulation's sampler warnings (R-hat, ESS, divergences; empty where the fit failed).
    """

    def __init__(
        self, ranks: pd.DataFrame, truth: pd.DataFrame, max_rank: int, failures: list[Failure], divergences: np.ndarray,
        alpha: float, seconds: float, settings: dict[str, Any], simulated: np.ndarray | None = None,
        fit_warnings: list[list[str]] | None = None,
    ) -> None:
        self.ranks = ranks
        self.truth = truth
        self.max_rank = max_rank
        self.failures = failures
        self.divergences = divergences
        self.alpha = alpha
        self.seconds = seconds
        self.settings = settings
        self.simulated = simulated
        self.fit_warnings = fit_warnings

    def subset(self, mask: np.ndarray) -> SBCResult:
        """Keep the simulations where ``mask`` (one bool per simulation) holds, as an SBC of their own.

        Choose them by their simulated data (``self.simulated``), not by their true parameters:
        given the data, the true value and the posterior draws are exchangeable, so the ranks
        of any data-chosen subset are uniform for a correct program; a subset chosen by the
        true parameters is not.
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self.ranks),):
            raise ValueError(f"mask must hold one bool per simulation ({len(self.ranks)}), got shape {mask.shape}")
        failed = set(np.flatnonzero(self.ranks.isna().all(axis=1)))
        keep = [f for f, i in zip(self.failures, sorted(failed), strict=True) if mask[i]] if failed else []
        return SBCResult(
            self.ranks[mask].reset_index(drop=True), self.truth[mask].reset_index(drop=True), self.max_rank, keep,
            self.divergences[mask], self.alpha, self.seconds, dict(self.settings),
            None if self.simulated is None else self.simulated[mask],
            None if self.fit_warnings is None else [w for w, m in zip(self.fit_warnings, mask, strict=True) if m],
        )

    def __repr__(self) -> str:
        return (
            f"<hbstan.SBCResult: {len(self.ranks)} simulations ({len(self.failures)} failed), "
            f"{self.ranks.shape[1]} parameters, {'uniform' if self.ok else 'NOT uniform'}>"
        )

    def uniformity(self, bins: int | None = None) -> pd.DataFrame:
        """Chi-square test of uniform ranks, and the ECDF's simultaneous band, per parameter.

        The ranks 0..max_rank are pooled into ``bins`` bins of near-equal width (default: about
        n / 5, so that each expects five or more simulations, at most 20); each bin's expected
        count is its share of the max_rank + 1 possible ranks. ``uniform`` holds where the
        p-value exceeds ``alpha`` divided by the number of parameters (Bonferroni). ``in_band``
        says whether the ranks' ECDF stays inside its simultaneous 1 - alpha band (Säilynoja,
        Bürkner & Vehtari 2022, computed with ArviZ), the check the plot shows.

        Returns
        -------
        pandas.DataFrame
            Per parameter: ``chi2``, ``df``, ``p_value``, ``uniform``, ``in_band``.
        """
        from scipy.stats import chi2

        rows = {}
        n_par = self.ranks.shape[1]
        for name in self.ranks.columns:
            r = self.ranks[name].dropna().to_numpy(dtype=int)
            n = r.size
            B = bins or max(2, min(20, n // 5))
            B = min(B, self.max_rank + 1)
            edges = np.floor(np.arange(self.max_rank + 1) * B / (self.max_rank + 1)).astype(int)  # bin of each rank
            observed = np.bincount(edges[r], minlength=B)
            expected = n * np.bincount(edges, minlength=B) / (self.max_rank + 1)
            stat = float(np.sum((observed - expected) ** 2 / expected))
            p = float(chi2.sf(stat, B - 1))
            lower, upper, ecdf = self._band(r)
            rows[name] = {
                "chi2": stat, "df": B - 1, "p_value": p, "uniform": p > self.alpha / n_par,
                "in_band": bool(np.all((ecdf >= lower - 1e-12) & (ecdf <= upper + 1e-12))),
            }
        return pd.DataFrame.from_dict(rows, orient="index")

    def _band(self, r: np.ndarray, prob: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Simultaneous band of the ranks' ECDF at (k + 1) / (max_rank + 1), k = 0..max_rank, and the ECDF."""
        from arviz.stats.ecdf_utils import ecdf_confidence_band

        m = self.max_rank + 1
        z = np.arange(1, m + 1) / m  # the uniform CDF of the fractional rank (r + 1) / m at each point
        ecdf = np.searchsorted(np.sort(r + 1), np.arange(1, m + 1), side="right") / r.size
        lower, upper = ecdf_confidence_band(r.size, z, z, prob=1 - self.alpha if prob is None else prob, method="optimized")
        return lower, upper, ecdf

    @property
    def ok(self) -> bool:
        """Whether every parameter's ranks pass the chi-square test of uniformity."""
        return bool(self.uniformity()["uniform"].all())

    def to_markdown(self, digits: int = 3) -> str:
        """Report in Markdown: the set-up, the per-parameter tests, failures and divergences."""
        u = self.uniformity()
        s = self.settings
        lines = [
            f"Simulation-based calibration of `{s['formula']}` ({s['family']}): {len(self.ranks)} simulations, "
            f"{len(self.failures)} failed; each refit {s['chains']} chains x {s['draws']} draws after {s['warmup']} "
            f"warm-up, ranks among {self.max_rank} draws (every {s['thin']}th); {self.seconds:.0f} s.",
            "",
            f"Uniformity: chi-square test of the binned ranks, Bonferroni over {len(u)} parameters at "
            f"alpha = {self.alpha}; `in_band`: the ECDF inside its simultaneous {1 - self.alpha:.0%} band.",
            "",
            "| parameter | chi2 | df | p-value | uniform | in band |",
            "|---|---:|---:|---:|---|---|",
        ]
        for name, row in u.iterrows():
            lines.append(
                f"| `{_md_cell(name)}` | {row['chi2']:.{digits}g} | {int(row['df'])} | {row['p_value']:.{digits}g} | "
                f"{'yes' if row['uniform'] else '**no**'} | {'yes' if row['in_band'] else '**no**'} |"
            )
        lines += ["", f"Divergent transitions: {int(np.nansum(self.divergences))} in "
                  f"{int(np.sum(np.nan_to_num(self.divergences) > 0))} of {len(self.ranks)} fits."]
        if self.settings.get("prior_program") == "non-centered":
            lines.append("- the prior draws: from the non-centered program (the fitted one centers its group effects)")
        if self.settings.get("dropped"):
            lines.append(
                f"- {self.settings['dropped']} simulated data sets missed a category and were replaced by further prior "
                "draws (a choice made by the data alone, so the ranks stay uniform for a correct program)"
            )
        for w in self.settings.get("prior_warnings", []):
            lines.append(f"- the prior draws: {w}")
        for f in self.failures:
            lines.append(f"- failed: {f}")
        return "\n".join(lines)

    def plot(self, params: Sequence[str] | None = None, *, ax: Any = None, prob: float | None = None) -> Any:
        """ECDF-difference plot of the ranks with simultaneous bands (Säilynoja et al. 2022).

        Per parameter, the ECDF of the fractional ranks minus the uniform CDF, inside the
        simultaneous ``prob`` band (default 1 - alpha) within which a uniform sample's ECDF
        difference stays with that probability: a curve leaving the band (drawn red) is a
        calibration failure; a curve above zero means too many low ranks (the posterior sits
        above the truth), below zero too many high ranks.

        Returns
        -------
        numpy.ndarray of matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        names = list(self.ranks.columns if params is None else params)
        if ax is None:
            ncol = min(4, len(names))
            nrow = math.ceil(len(names) / ncol)
            _, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False, sharey=True)
        else:
            axes = np.atleast_1d(ax).reshape(1, -1)
        flat = axes.reshape(-1)
        m = self.max_rank + 1
        z = np.arange(1, m + 1) / m
        for a, name in zip(flat, names, strict=False):
            r = self.ranks[name].dropna().to_numpy(dtype=int)
            lower, upper, ecdf = self._band(r, prob)
            a.fill_between(z, lower - z, upper - z, step="post", color="C0", alpha=0.25, linewidth=0)
            a.step(z, ecdf - z, where="post", color="C0" if np.all((ecdf >= lower) & (ecdf <= upper)) else "C3")
            a.axhline(0, color="0.5", linewidth=0.8)
            a.set_title(name, fontsize=9)
            a.set_xlabel("fractional rank")
        for a in flat[len(names):]:
            a.set_visible(False)
        flat[0].set_ylabel("ECDF difference")
        return axes


def sbc(
    model: Model,
    n_sims: int = 100,
    *,
    client: Any = None,
    workers: int | None = None,
    seed: int | None = None,
    chains: int = 2,
    draws: int = 200,
    warmup: int = 200,
    thin: int = 4,
    fit_priors: Mapping[str, Prior | str] | None = None,
    params: Sequence[str] | None = None,
    prior_chains: int = 4,
    prior_thin: int = 10,
    alpha: float = 0.01,
    progress: bool | str | Callable[[int, int, int], None] = "auto",
    **sampler: Any,
) -> SBCResult:
    """Simulation-based calibration of a model on its data's design.

    1. ``n_sims`` parameter sets and data sets are drawn from the prior predictive: the
       model's program in its ``prior_only`` mode (``prior_chains`` chains, every
       ``prior_thin``-th draw, so the draws are near-independent), with the model's predictors,
       groups and priors (default priors are those of the model's data, fixed for every
       simulation); the simulated responses replace the response column. Where the model
       centers a term's group effects, the draws come from its non-centered program (the same
       prior without the funnel that NUTS samples badly; one more compile). For ``cumulative``
       and ``categorical``, a simulated data set that misses a category would be another model
       (fewer thresholds) or refused: it is dropped and the next prior draw taken (a choice by
       the data alone; ``settings["dropped"]`` counts them).
    2. Each simulated data set is fitted (one compiled program; a batch on a local pool or
       a Dask cluster, :func:`hbstan.many.run_tasks`), with the same priors, or with
       ``fit_priors`` replacing some of them (a deliberately wrong prior, to see the test
       fail).
    3. Each parameter's rank among every ``thin``-th posterior draw is recorded; uniform ranks
       are what a correct program gives (:meth:`SBCResult.uniformity`).

    Parameters
    ----------
    model : hbstan.Model
        The model; its data give the design (predictors, groups, trials) of the simulations.
    n_sims : int, default 100
        Number of simulations (refits).
    client : dask.distributed.Client, optional
        Run the refits on its workers; None: a local pool of threads (``workers``).
    seed : int, optional
        One seed for the prior draws and every refit: the same result on any number of workers.
    chains, draws, warmup : int
        Sampler settings of each refit; further keywords go to :meth:`hbstan.Model.sample`.
    thin : int, default 4
        Every ``thin``-th draw of each chain enters the ranks (near-independent draws: the
        ranks of autocorrelated draws are not uniform even for a correct program). Ranks run
        from 0 to chains x draws / thin.
    fit_priors : dict, optional
        Priors of the refits that differ from the generating ones (keys as ``Model(priors=)``).
    params : list of str, optional
        Posterior variables to rank (default: every population-level coefficient, family
        parameter, group-level SD and correlation; not the group effects). Entries that are
        constant under the prior (a correlation matrix's diagonal) are left out.
    prior_chains, prior_thin : int
        Chains and thinning of the prior draws.
    alpha : float, default 0.01
        Family-wise level of the uniformity tests.
    progress : bool, "auto" or callable
        The count of finished refits (see :func:`hbstan.many.run_tasks`).

    Returns
    -------
    SBCResult
        ``.ranks``, ``.uniformity()``, ``.ok``, ``.to_markdown()``, ``.plot()``.
    """
    import time

    t0 = time.perf_counter()
    if n_sims < 2:
        raise ValueError(f"n_sims must be at least 2, got {n_sims!r}")
    for name, value in (("thin", thin), ("prior_thin", prior_thin), ("chains", chains), ("prior_chains", prior_chains)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    resp = model.design.response
    if resp not in model.data.columns:
        raise DataError(
            f"sbc replaces the response column with simulated data, but the response {resp!r} is not a "
            "column of the data (an expression?): compute it as a column first"
        )
    priors = dict(model.priors)
    gen_options = pinned_options(model, priors=priors)
    fit_options = pinned_options(model, priors={**priors, **dict(fit_priors or {})})
    if fit_priors:
        Model(model.formula, model.data, **fit_options)  # unknown keys or bad priors: an error now, not in n_sims fits
    names = list(params) if params is not None else [p.name for p in model.params if p.kind != "matrix_cols"]
    seed_prior, seed_fits = task_seeds(seed, 2)
    # 1. prior predictive draws, thinned to near-independence. Under the prior alone a centered
    # term's effects and their SD form a funnel that NUTS samples badly (R-hat 1.19 on the group
    # SD of a centered lognormal model); the non-centered program's prior is a product of
    # independent priors, so the draws come from it (the same model, another parameterization).
    centered = any(blk.centered for blk in model.design.blocks)
    gen = Model(model.formula, model.data, **({**gen_options, "centered": False} if centered else gen_options))
    # a family of categories: a simulated data set that misses a category is another model
    # (fewer thresholds, or refused); such data sets are dropped and others drawn in their place
    ncat = model.ncat
    n_draw = n_sims if not ncat else 3 * n_sims
    per_chain = math.ceil(n_draw / prior_chains)
    with warnings.catch_warnings():  # kept in the result (settings["prior_warnings"]), not raised
        warnings.simplefilter("ignore", SamplingWarning)
        prior = gen.sample(
            chains=prior_chains, draws=per_chain * prior_thin, warmup=max(warmup, 200), seed=seed_prior,
            prior_only=True, pointwise="python", show_progress=False,
        )
    post = prior.idata.posterior.isel(draw=slice(prior_thin - 1, None, prior_thin))
    truth_all = {k: v.reshape(-1) for k, v in _entries(post, names).items()}
    y = prior.idata.posterior_predictive[resp].isel(draw=slice(prior_thin - 1, None, prior_thin)).values
    y = y.reshape(-1, y.shape[-1])
    keep = np.arange(len(y))
    dropped = 0
    if ncat:  # every category 1..K observed
        complete = np.array([np.unique(row).size == ncat for row in np.rint(y).astype(int)])
        keep = np.flatnonzero(complete)[:n_sims]
        dropped = int(np.sum(~complete[: (keep[-1] + 1 if keep.size else len(y))]))
        if keep.size < n_sims:
            raise RuntimeError(
                f"only {keep.size} of {len(y)} prior predictive data sets hold every one of the {ncat} categories "
                f"(n_sims={n_sims}): the design is too small for the prior; use more rows or fewer categories"
            )
    keep = keep[:n_sims]
    y = y[keep]
    truth_all = {k: v[keep] for k, v in truth_all.items()}
    truth_all = {k: v for k, v in truth_all.items() if np.ptp(v) > 0}  # constant entries cannot be ranked
    truth_all = distinct_entries(truth_all)
    truth = pd.DataFrame(truth_all)
    base = model.data.reset_index(drop=True)
    fit_program = Model(model.formula, model.data, **fit_options).program()
    run = dict(BATCH_SAMPLER_DEFAULTS, chains=chains, draws=draws, warmup=warmup, **sampler)
    args = []
    for s in range(n_sims):
        df = base.copy()
        df[resp] = _as_column(y[s], base[resp])
        args.append((model.formula, df, fit_options, run, {k: float(v[s]) for k, v in truth_all.items()}, thin))
    # 2. the refits
    results = run_tasks(
        _sbc_fit, args, seed=seed_fits, client=client, workers=workers, programs=[(fit_program, None)],
        progress=progress, what="SBC fits",
    )
    failures = [r for r in results if isinstance(r, Failure)]
    ok = [r for r in results if not isinstance(r, Failure)]
    if not ok:
        raise RuntimeError("every SBC fit failed; the first: " + str(failures[0]))
    max_rank = ok[0]["L"]
    ranks = pd.DataFrame(
        [r["ranks"] if not isinstance(r, Failure) else dict.fromkeys(truth.columns, np.nan) for r in results],
        columns=truth.columns,
    )
    div = np.array([np.nan if isinstance(r, Failure) else r["divergences"] for r in results], dtype=float)
    settings = {
        "formula": str(model.formula), "family": model.family.name, "chains": chains, "draws": draws, "warmup": warmup,
        "thin": thin, "seed": seed, "fit_priors": {k: str(v) for k, v in dict(fit_priors or {}).items()},
        "prior_warnings": list(prior.warnings), "prior_program": "non-centered" if centered else "the model's",
        "dropped": dropped,
    }
    fit_warnings = [[] if isinstance(r, Failure) else list(r["warnings"]) for r in results]
    return SBCResult(ranks, truth, max_rank, failures, div, alpha, time.perf_counter() - t0, settings, y, fit_warnings)
