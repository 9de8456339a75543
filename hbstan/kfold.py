"""K-fold and leave-group-out cross-validation: K refits, run by :func:`hbstan.many.run_tasks`.

PSIS-LOO approximates leaving one row out from a single fit; where its Pareto k warns, or
where the question is how well the model predicts a *new group* (a county not in the data),
the honest estimate refits without each fold and scores the held-out rows (Vehtari, Gelman
& Gabry 2017, section 4; brms's and rstanarm's ``kfold``). Each fold's fit is one task of a
batch: a local pool or a Dask cluster, one compiled program, one seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .design import DataError
from .fit import Fit
from .many import BATCH_SAMPLER_DEFAULTS, Failure, pinned_options, run_tasks
from .model import Model
from .predict import log_lik

__all__ = ["kfold", "make_folds"]

log = logging.getLogger("hbstan")


def make_folds(
    data: pd.DataFrame, K: int | None = 10, *, group: str | None = None, seed: int | None = None
) -> np.ndarray:
    """Fold number (0..K-1) of each row.

    Without ``group``, rows are shuffled and dealt into K folds of near-equal size. With
    ``group`` (a column), whole groups are dealt: ``K=None`` gives each group a fold of its
    own (leave-one-group-out), an int deals the shuffled groups into K folds.
    """
    rng = np.random.default_rng(None if seed is None else [seed, 17])
    n = len(data)
    if group is None:
        if K is None or not 2 <= K <= n:
            raise ValueError(f"K must be a whole number from 2 to the number of rows ({n}), got {K!r}")
        folds = np.empty(n, dtype=int)
        folds[rng.permutation(n)] = np.arange(n) % K
        return folds
    if group not in data.columns:
        raise DataError(f"group column {group!r} is not in the model's data; its columns: {list(data.columns)}")
    codes, levels = pd.factorize(data[group], sort=True)
    J = len(levels)
    if K is None:
        return codes.astype(int)
    if not 2 <= K <= J:
        raise ValueError(f"K must be from 2 to the number of groups of {group!r} ({J}), or None (one fold per group); got {K!r}")
    of_group = np.empty(J, dtype=int)
    of_group[rng.permutation(J)] = np.arange(J) % K
    return of_group[codes]


def _fold_elpd(
    formula: str, train: pd.DataFrame, test: pd.DataFrame, options: dict[str, Any], sampler: dict[str, Any], *, seed: int
) -> dict[str, Any]:
    """Worker side of one fold: fit the training rows, score the held-out rows.

    Returns the held-out rows' log pointwise predictive density, log mean_s p(y_i | theta_s),
    and the fit's sampler warnings.
    """
    from scipy.special import logsumexp

    fit = Model(formula, train, **options).sample(seed=seed, pointwise=False, **sampler)
    ll = log_lik(fit, test, seed=seed)  # (chain, draw, n_test)
    S = ll.shape[0] * ll.shape[1]
    elpd_i = logsumexp(ll.reshape(S, -1), axis=0) - np.log(S)
    return {"elpd_i": elpd_i, "warnings": list(fit.warnings), "n_samples": S}


def kfold(
    fit: Fit,
    K: int | None = 10,
    *,
    group: str | None = None,
    folds: Sequence[int] | np.ndarray | None = None,
    client: Any = None,
    workers: int | None = None,
    seed: int | None = None,
    chains: int | None = None,
    draws: int | None = None,
    warmup: int | None = None,
    progress: bool | str | Callable[[int, int, int], None] = "auto",
    **sampler: Any,
) -> Any:
    """K-fold or leave-group-out cross-validation of a fit: ArviZ ELPD data for ``az.compare``.

    Each fold's rows are left out, the model is refitted to the others (the same program:
    the fit's data-driven choices are kept, :func:`hbstan.many.pinned_options`) and the
    held-out rows are scored by their log predictive density, log mean_s p(y_i | theta_s)
    (:func:`hbstan.predict.log_lik`; rows of a group left out entirely get that group's
    effects drawn from the population, as ``fit.predict`` does).

    Parameters
    ----------
    fit : hbstan.Fit
        The fit to cross-validate (a Stan fit).
    K : int or None, default 10
        Number of folds. With ``group`` and ``K=None``: one fold per group (leave-one-group-out).
    group : str, optional
        A column of the data: folds hold whole groups, so the score is that of predicting a
        new group (brms's ``folds = "grouped"``).
    folds : array of int, optional
        The fold of each row of ``fit.model.data``, overriding ``K`` and ``group``.
    client : dask.distributed.Client, optional
        Run the folds on its workers; None: a local pool of threads.
    workers : int, optional
        Size of the local pool (default: the number of cores).
    seed : int, optional
        Seeds the folds' assignment and every refit: the same seed gives the same result on
        any number of workers.
    chains, draws, warmup : int, optional
        Sampler settings of the refits (default: the fit's); further keywords
        (``adapt_delta``, ...) go to :meth:`hbstan.Model.sample`.
    progress : bool, "auto" or callable
        The count of finished folds (see :func:`hbstan.many.run_tasks`).

    Returns
    -------
    arviz.ELPDData
        Labelled as ArviZ labels PSIS-LOO (``elpd_loo``, ``se``, ``p_loo``, ``loo_i``, ...)
        so that ``az.compare`` ranks it beside ``az.loo`` results and other K-fold results
        (ArviZ 0.x's ``compare`` takes only its ``loo`` and ``waic`` labels); ``method`` says
        which cross-validation made it, ``folds`` holds each row's fold, ``p_loo`` is the
        fit's log pointwise predictive density minus the K-fold ELPD (brms's ``p_kfold``),
        NaN if the fit has no ``log_lik``. ``warning`` is True when a refit raised sampler
        warnings (listed in the log).

    Raises
    ------
    RuntimeError
        When a fold's refit failed (the message names the folds and their errors): a K-fold
        estimate with a fold missing would score fewer rows than other models'.
    """
    import xarray as xr
    from arviz.stats.stats_utils import ELPDData
    from scipy.special import logsumexp

    model = fit.model
    data = model.data.reset_index(drop=True)
    n = len(data)
    if folds is not None:
        fold_of = np.asarray(folds)
        if fold_of.shape != (n,):
            raise ValueError(f"folds must give one fold per row of the model's data ({n} rows), got shape {fold_of.shape}")
        method = "kfold (given folds)"
    else:
        fold_of = make_folds(data, K, group=group, seed=seed)
        method = f"leave-one-group-out ({group})" if group is not None and K is None else (
            f"{K}-fold" + (f", grouped by {group}" if group is not None else "")
        )
    ids = np.unique(fold_of)
    if ids.size < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    s = fit.settings
    run = dict(
        BATCH_SAMPLER_DEFAULTS,
        chains=chains or s.get("chains", 4), draws=draws or s.get("draws", 1000),
        warmup=warmup if warmup is not None else s.get("warmup", 1000),
        **{k: s[k] for k in ("adapt_delta", "max_treedepth") if s.get(k) is not None},
    )
    run.update(sampler)
    options = pinned_options(model)
    args = [
        (model.formula, data[fold_of != f].reset_index(drop=True), data[fold_of == f].reset_index(drop=True), options, run)
        for f in ids
    ]
    keys = [f"fold {f}" for f in ids]
    results = run_tasks(
        _fold_elpd, args, seed=seed, client=client, workers=workers, programs=[(model.program(), None)], keys=keys,
        progress=progress, what="folds",
    )
    failed = [r for r in results if isinstance(r, Failure)]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(ids)} folds failed, so no K-fold estimate: "
            + "; ".join(str(f) for f in failed[:3])
        )
    elpd_i = np.empty(n)
    warned = False
    for f, res in zip(ids, results, strict=True):
        elpd_i[fold_of == f] = res["elpd_i"]
        for w in res["warnings"]:
            warned = True
            log.warning("hbstan: kfold, fold %s: %s", f, w)
    elpd = float(elpd_i.sum())
    se = float(np.sqrt(n * np.var(elpd_i)))
    p = float("nan")
    if "log_likelihood" in fit.idata.groups():
        ll = fit.idata.log_likelihood["log_lik"].values
        S = ll.shape[0] * ll.shape[1]
        lpd = float((logsumexp(ll.reshape(S, -1), axis=0) - np.log(S)).sum())
        p = lpd - elpd
    loo_i = xr.DataArray(elpd_i, dims=["__obs__"], coords={"__obs__": np.arange(n)}, name="loo_i")
    return ELPDData(
        data=[elpd, se, p, int(results[0]["n_samples"]), n, warned, loo_i, "log", method, fold_of],
        index=["elpd_loo", "se", "p_loo", "n_samples", "n_data_points", "warning", "loo_i", "scale", "method", "folds"],
    )
