"""Posterior predictions for new data, computed from the posterior draws in NumPy."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from .design import DataError, group_labels
from .pointwise import aux_values, block_sum, category_draws, group_effects
from .pointwise import linear_predictor as linear_predictor_rows

if TYPE_CHECKING:
    from .spec import ModelSpec

__all__ = ["Posterior", "predict", "predict_given", "log_lik"]


class Posterior(Protocol):
    """What predictions need of a fit: its model specification and its draws.

    :class:`hbstan.Fit` is one; prediction does not import it, so that the fit can offer
    ``fit.predict`` without a circle of imports.
    """

    model: ModelSpec
    idata: Any


# predict_given evaluates the design of at most this many stacked rows (draws x rows) at once
GIVEN_CHUNK_ROWS = 200_000


def _stack(draws: dict[str, np.ndarray], names: list[str], width: int) -> np.ndarray:
    """(S, width) array from per-term posterior variables with one leading dim of S draws."""
    parts = [draws[n] if draws[n].ndim == 2 else draws[n][:, None] for n in names]
    if not parts:
        return np.zeros((next(iter(draws.values())).shape[0], width))
    return np.concatenate(parts, axis=-1)


def _group_predictors(blk: Any, new: pd.DataFrame, n: int) -> np.ndarray | None:
    """(n, P) group-level predictors of a varying term read from the new rows (None without any)."""
    if blk.U is None:
        return None
    U = np.zeros((n, len(blk.U_names)))
    for p, col in enumerate(blk.U_names):
        if col not in new.columns:
            raise DataError(f"group predictor column {col!r} is missing from the new data")
        U[:, p] = pd.to_numeric(new[col], errors="coerce").to_numpy(dtype=float)
    return U


def linear_predictor(
    fit: Posterior, new: pd.DataFrame, rng: np.random.Generator, *, include: Collection[int] | None = None
) -> np.ndarray:
    """Draw the linear predictor for new rows: (chain, draw, n), or (chain, draw, n, ncat - 1).

    A family with one per non-reference category (``categorical``) has the last axis.

    Rows of groups seen in fitting use those groups' effects; each group not seen gets one
    fresh draw of its effects from the population per posterior draw. The arithmetic is
    :func:`hbstan.pointwise.linear_predictor`'s, as for the fitted rows.

    ``include`` lists the varying terms (1-based, in the order of ``design.all_blocks``: the
    mean's, then the distributional formulas', see :func:`dpar_groups`) whose
    group effects enter; the others' effects are set to zero, their population mean (brms's
    ``re_formula``): their grouping columns are then not needed, but group-level predictors
    still enter, as population-level ones. None includes every term.
    """
    m = fit.model
    d = m.design
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    n = len(new)
    new = new.reset_index(drop=True)
    try:
        X = d.common_for(new)
    except KeyError as err:
        raise DataError(f"column {err.args[0]!r} needed for prediction is not in the new data") from None
    except Exception as err:
        raise DataError(f"cannot build the predictors for the new data: {err}") from None
    # every draw of every chain in one leading dimension
    draws = {v: post[v].values.reshape(C * D, *post[v].shape[2:]) for v in post.data_vars}
    rows = _group_rows(fit, new, include)
    if m.family.per_category:  # one linear predictor per non-reference category: (chain, draw, n, ncat - 1)
        etas = [
            _rows_eta(fit, category_draws(m, draws, k), X, rows, rng, include) for k in range(m.ncat - 1)
        ]
        return np.stack(etas, axis=-1).reshape(C, D, n, m.ncat - 1)
    return _rows_eta(fit, draws, X, rows, rng, include).reshape(C, D, n)


def _group_rows(fit: Posterior, new: pd.DataFrame, include: Collection[int] | None) -> list[Any]:
    """Read each varying term's groups and predictors in the new rows.

    Per term: (each row's group index, the labels of groups not seen in fitting, Z, U), the
    index and Z None where the term's effects are left out.
    """
    d = fit.model.design
    n = len(new)
    out: list[Any] = []
    for i, blk in enumerate(d.blocks, start=1):
        U = _group_predictors(blk, new, n)
        if include is not None and i not in include:
            out.append((None, [], None, U))
            continue
        out.append((*_block_rows(blk, new), U))
    return out


def _block_rows(blk: Any, new: pd.DataFrame) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(each new row's group index, the labels of groups not seen in fitting, Z) of a varying term.

    Unseen groups are indexed after the fitted ones, in the order of their labels.
    """
    missing = [c for c in blk.columns if c not in new.columns]
    if missing:
        raise DataError(f"grouping column {missing[0]!r} is missing from the new data")
    labels = group_labels(new, blk.columns).to_numpy()
    pos = {lab: j for j, lab in enumerate(blk.levels)}
    idx = np.array([pos.get(lab, -1) for lab in labels], dtype=int)
    unseen = sorted(set(labels[idx < 0]))
    if unseen and blk.pooling == "unpooled":
        raise DataError(
            f"new data has {blk.factor} level(s) {unseen[:5]} not seen in fitting; an unpooled "
            "model has no population to draw new groups from (use a hierarchical design)"
        )
    try:
        Z = np.asarray(blk.expr_design.evaluate_new_data(new).design_matrix, dtype=float)
    except Exception as err:
        raise DataError(f"cannot build the varying-effect predictors of {blk.factor!r} for the new data: {err}") from None
    for k, lab in enumerate(unseen):
        idx[labels == lab] = blk.J + k
    return idx, unseen, Z


def _effects_with_unseen(
    fit: Posterior, draws: dict[str, np.ndarray], i: int, unseen: list[str], rng: np.random.Generator
) -> np.ndarray:
    """(C * D, J + unseen, M): term ``i``'s effects, then those of the unseen groups.

    Each unseen group gets one fresh draw of its effects from the population per posterior
    draw (N(0, sd), or with the term's correlations).
    """
    m = fit.model
    blk = m.design.all_blocks[i - 1]
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    r = group_effects(m, draws, i)  # (C * D, J, M)
    if not unseen:
        return r
    effects = [blk.effect_name(t) for t, _, _ in blk.effects]
    sds = _stack(draws, [f"{e}_sigma" for e in effects], blk.M)
    zs = rng.standard_normal((C, D, len(unseen), blk.M)).reshape(C * D, len(unseen), blk.M)
    if blk.pooling == "correlated":
        cname = next(p.name for p in m.params if p.stan == f"Cor_{i}")
        L = np.linalg.cholesky(draws[cname] + 1e-12 * np.eye(blk.M))
        new_r = np.einsum("sm,smk,sjk->sjm", sds, L, zs)
    else:
        new_r = sds[:, None, :] * zs
    return np.concatenate([r, new_r], axis=1)


def dpar_groups(
    fit: Posterior, new: pd.DataFrame, rng: np.random.Generator, include: Collection[int] | None = None
) -> dict[str, np.ndarray]:
    """Return the group terms' part of the distributional parameters' linear predictors: (chain, draw, n).

    For new rows, per parameter whose formula has group terms.

    As for the mean's terms: a seen group's effects, and for a group not seen in fitting one
    fresh draw of its effects from the population per posterior draw. ``include`` is
    :func:`linear_predictor`'s, the program's numbering (these terms come after the mean's):
    a term left out has its effects at zero, and its grouping columns are not needed.
    """
    m = fit.model
    d = m.design
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    out: dict[str, np.ndarray] = {}
    if not d.dpar_blocks:
        return out
    new = new.reset_index(drop=True)
    draws = {v: post[v].values.reshape(C * D, *post[v].shape[2:]) for v in post.data_vars}
    for i, blk in enumerate(d.all_blocks, start=1):
        if blk.dpar is None or (include is not None and i not in include):
            continue
        idx, unseen, Z = _block_rows(blk, new)
        part = block_sum(_effects_with_unseen(fit, draws, i, unseen, rng), idx, Z).reshape(C, D, len(new))
        out[blk.dpar] = out[blk.dpar] + part if blk.dpar in out else part
    return out


def _rows_eta(
    fit: Posterior,
    draws: dict[str, np.ndarray],
    X: np.ndarray,
    rows: list[Any],
    rng: np.random.Generator,
    include: Collection[int] | None,
) -> np.ndarray:
    """(S, n): the linear predictor of the new rows from ``draws`` (one leading dim of S draws)."""
    m = fit.model
    d = m.design
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    S, n = C * D, X.shape[0]
    terms = []
    for i, (blk, (idx, unseen, Z, U)) in enumerate(zip(d.blocks, rows, strict=True), start=1):
        if idx is None:
            # effects at zero for every row: one "group" of zeros, predictors irrelevant
            terms.append((np.zeros((S, 1, blk.M)), np.zeros(n, dtype=int), np.zeros((n, blk.M)), U))
            continue
        terms.append((_effects_with_unseen(fit, draws, i, unseen, rng), idx, Z, U))
    return linear_predictor_rows(m, draws, X, np.zeros(n), terms)


def _column(new: pd.DataFrame, what: str, value: Any, n: int) -> np.ndarray | None:
    if value is None:
        return None
    if value not in new.columns:
        raise DataError(f"{what} column {value!r} is missing from the new data")
    return new[value].to_numpy(dtype=float)


def _eta_with_offsets(
    fit: Posterior, data: pd.DataFrame, rng: np.random.Generator, include: Collection[int] | None = None
) -> np.ndarray:
    """Return the linear predictor of the new rows plus their offset and log exposure, if the model has them."""
    return _add_offsets(linear_predictor(fit, data, rng, include=include), fit.model.column_args, data)


def _add_offsets(eta: np.ndarray, opts: dict[str, Any], data: pd.DataFrame) -> np.ndarray:
    """Add the rows' offset and log exposure, if the model has them, to the linear predictor ``eta`` (rows last)."""
    n = len(data)
    off = _column(data, "offset", opts.get("offset"), n)
    if off is not None:
        eta = eta + off
    exposure = _column(data, "exposure", opts.get("exposure"), n)
    if exposure is not None:
        eta = eta + np.log(exposure)
    return eta


def predict(
    fit: Posterior,
    data: pd.DataFrame,
    *,
    kind: str = "response",
    seed: int | None = None,
    include: Collection[int] | None = None,
) -> Any:
    """See :meth:`hbstan.Fit.predict`.

    ``kind="link"`` gives the linear predictor (with any offset); ``kind="probs"`` each
    category's probability (families with response categories); the name of one of the
    family's auxiliary parameters (``kind="sigma"``) its value in each row (from its formula
    where it has one); ``include`` is :func:`linear_predictor`'s (the varying terms whose
    effects enter; None: all).
    """
    aux_names = [a.name for a in fit.model.family.aux]
    if kind not in ("response", "mean", "link", "probs", *aux_names):
        raise ValueError(f"kind must be 'response', 'mean', 'link', 'probs' or one of {aux_names}, got {kind!r}")
    if kind == "probs" and not fit.model.design.response_levels:
        raise ValueError(
            f"kind='probs' gives the probability of each response category: family={fit.model.family.name!r} "
            "has no categories; use kind='mean' or 'response'"
        )
    if kind == "mean" and fit.model.family.per_category:
        raise ValueError(
            f"family={fit.model.family.name!r} has unordered categories and no mean: use kind='probs' "
            "(each category's probability), 'response' (draws of the category number) or 'link' (the "
            "log odds of each category against the reference)"
        )
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise DataError("predict needs a non-empty pandas DataFrame of new rows")
    m = fit.model
    rng = np.random.default_rng(seed)
    eta = _eta_with_offsets(fit, data, rng, include)
    n = len(data)
    opts = m.column_args
    fam = m.family
    post = fit.idata.posterior
    if kind == "link":
        if fam.per_category:  # the log odds of each non-reference category against the reference
            return _category_draws(eta, post, m.design.response, m.category_labels)
        return _draws(eta, post, m.design.response)
    trials = None
    if fam.trials:
        trials = _column(data, "trials", opts.get("trials"), n)
        if trials is None:
            raise DataError(f"{fam.name} predictions need the number of trials: include the trials column")
    se = None
    if m.se is not None and kind == "response":
        se = _column(data, "se", opts["se"], n) if opts["se"] in data.columns else None
        if se is None:
            raise DataError(
                f"predicting responses of a model with known standard errors needs them for the new rows: "
                f"include column {opts['se']!r} (or predict kind='mean')"
            )
    dpar_X = {name: dp.columns_for(data) for name, dp in m.design.dpars.items()}
    aux = aux_values(m, post, se=se, dpar_X=dpar_X, dpar_groups=dpar_groups(fit, data, rng, include))
    if kind in aux_names:
        return _draws(np.broadcast_to(aux[kind], eta.shape).copy(), post, kind)
    if kind == "probs":
        return _category_draws(fam.category_probs(eta, aux), post, m.design.response, m.design.response_levels)
    out = fam.mean(eta, aux, trials) if kind == "mean" else fam.draw(rng, eta, aux, trials)
    return _draws(out, post, m.design.response)


def predict_given(
    fit: Posterior,
    data: pd.DataFrame,
    given: Mapping[str, np.ndarray],
    *,
    kind: str = "response",
    rng: np.random.Generator,
) -> np.ndarray:
    """Predictions of new rows some of whose predictor columns take one value per posterior draw.

    ``given`` maps a column to its values, (chain, draw, n): posterior draw s predicts row i
    with ``given[col][s, i]`` in that column (the draws of a response upstream in a path model,
    a mediator's counterfactual values), the other columns from ``data``. The design is
    evaluated on the rows stacked once per draw (formulae's transforms keep their fitted
    state), in chunks; each draw's linear predictor is :func:`hbstan.pointwise.linear_predictor`
    on its own rows. Rows of groups not seen in fitting get one fresh draw of their effects
    per posterior draw, as in :func:`predict`.

    Parameters
    ----------
    fit : hbstan.Fit
        The fit (one response: a multivariate fit's :meth:`response_fit`).
    data : pandas.DataFrame
        The new rows; the given columns may be absent.
    given : dict of str to array
        Columns given per draw; they may be population-level or varying-effect predictors,
        not grouping columns, group-level predictors, trials or offsets.
    kind : {"response", "mean", "link"}, default "response"
        As :func:`predict`'s.
    rng : numpy.random.Generator
        Generator of the new groups' effects and the new observations.

    Returns
    -------
    numpy.ndarray
        (chain, draw, n).
    """
    m = fit.model
    d = m.design
    fam = m.family
    if kind not in ("response", "mean", "link"):
        raise ValueError(f"kind must be 'response', 'mean' or 'link' with values given per draw, got {kind!r}")
    if fam.per_category or d.dpars or d.dpar_blocks or m.se is not None:
        raise ValueError(
            "predictions with columns given per draw take a family with one mean per row, without distributional "
            "formulas or se()"
        )
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise DataError("predict needs a non-empty pandas DataFrame of new rows")
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    S, n = C * D, len(data)
    fixed = set(m.column_args.values()) | {c for blk in d.blocks for c in (*blk.columns, *blk.U_names)}
    for col, values in given.items():
        if col in fixed:
            raise ValueError(
                f"column {col!r} is a grouping column, group-level predictor, trials or offset of {d.response!r}: "
                "only predictors can be given per draw"
            )
        if np.shape(values) != (C, D, n):
            raise ValueError(f"values given for {col!r} have shape {np.shape(values)}, expected {(C, D, n)}")
    base = data.reset_index(drop=True).assign(**{c: np.asarray(v, dtype=float)[0, 0] for c, v in given.items()})
    draws = {v: post[v].values.reshape(S, *post[v].shape[2:]) for v in post.data_vars}
    effects, rows = [], []
    for i, blk in enumerate(d.blocks, start=1):
        idx, unseen, _ = _block_rows(blk, base)
        effects.append(_effects_with_unseen(fit, draws, i, unseen, rng))
        rows.append((idx, _group_predictors(blk, base, n)))
    flat = {c: np.asarray(v, dtype=float).reshape(S, n) for c, v in given.items()}
    eta = np.empty((S, n))
    step = max(1, GIVEN_CHUNK_ROWS // n) if given else S  # nothing given: one design for every draw
    if not given:
        try:
            X = d.common_for(base)
        except KeyError as err:
            raise DataError(f"column {err.args[0]!r} needed for prediction is not in the new data") from None
        Zs = [_block_rows(blk, base)[2] for blk in d.blocks]
        terms = [(r, idx, Z, U) for r, (idx, U), Z in zip(effects, rows, Zs, strict=True)]
        eta = linear_predictor_rows(m, draws, X, np.zeros(n), terms)
    for s0 in range(0, S if given else 0, step):
        s1 = min(S, s0 + step)
        stacked = base.iloc[np.tile(np.arange(n), s1 - s0)].reset_index(drop=True)
        for c, v in flat.items():
            stacked[c] = v[s0:s1].reshape(-1)
        try:
            X = d.common_for(stacked)
            Zs = [np.asarray(blk.expr_design.evaluate_new_data(stacked).design_matrix, dtype=float) for blk in d.blocks]
        except KeyError as err:
            raise DataError(f"column {err.args[0]!r} needed for prediction is not in the new data") from None
        for s in range(s0, s1):
            rs = slice((s - s0) * n, (s - s0 + 1) * n)
            one = {k: v[s:s + 1] for k, v in draws.items()}
            terms = [(r[s:s + 1], idx, Z[rs], U) for r, (idx, U), Z in zip(effects, rows, Zs, strict=True)]
            eta[s] = linear_predictor_rows(m, one, X[rs], np.zeros(n), terms)[0]
    opts = m.column_args
    eta = _add_offsets(eta.reshape(C, D, n), opts, base)
    if kind == "link":
        return eta
    trials = None
    if fam.trials:
        trials = _column(base, "trials", opts.get("trials"), n)
        if trials is None:
            raise DataError(f"{fam.name} predictions need the number of trials: include the trials column")
    aux = aux_values(m, post)
    return fam.mean(eta, aux, trials) if kind == "mean" else fam.draw(rng, eta, aux, trials)


def log_lik(fit: Posterior, data: pd.DataFrame, *, seed: int | None = None) -> np.ndarray:
    """Pointwise log-likelihood of new rows under each posterior draw: (chain, draw, n).

    The held-out log predictive density that K-fold cross-validation needs: the rows'
    responses (and trials, offsets, weights where the model has them) are read from ``data``
    and scored with the family's log density, the linear predictor and auxiliary parameters
    being :func:`predict`'s (rows of groups not seen in fitting get one fresh draw of their
    group's effects from the population per posterior draw, shared by the rows of that group).
    Weighted models multiply each row's log-likelihood by its weight, as the fitted rows'.
    """
    m = fit.model
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise DataError("log_lik needs a non-empty pandas DataFrame of new rows")
    if m.cens is not None:
        raise DataError(
            "the log-likelihood of new censored rows is not implemented yet; held-out scores of a "
            "model with cens() are not available"
        )
    resp = m.design.response
    if resp not in data.columns:
        raise DataError(
            f"the log-likelihood of new rows needs their response: column {resp!r} is missing from the new data"
        )
    data = data.reset_index(drop=True)
    n = len(data)
    encoded = m.family.encode_response(data[resp], resp)
    if encoded is not None:
        y = encoded[0]
    else:
        y = pd.to_numeric(data[resp], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise DataError(f"response {resp!r} of the new rows is missing or not a number in rows {bad[:5].tolist()}")
    opts = m.column_args
    rng = np.random.default_rng(seed)
    eta = _eta_with_offsets(fit, data, rng)
    trials = _column(data, "trials", opts.get("trials"), n) if m.family.trials else None
    se = _column(data, "se", opts.get("se"), n) if m.se is not None else None
    dpar_X = {name: dp.columns_for(data) for name, dp in m.design.dpars.items()}
    aux = aux_values(m, fit.idata.posterior, se=se, dpar_X=dpar_X, dpar_groups=dpar_groups(fit, data, rng))
    ll = np.asarray(m.family.log_lik(y, eta, aux, trials), dtype=float)
    weights = _column(data, "weights", opts.get("weights"), n)
    if weights is not None:
        ll = ll * weights
    return np.broadcast_to(ll, eta.shape).copy()


def _category_draws(values: np.ndarray, post: Any, name: str, levels: list[str]) -> Any:
    """(chain, draw, __obs__, category) DataArray of per-row category probabilities."""
    import xarray as xr

    return xr.DataArray(
        values,
        dims=("chain", "draw", "__obs__", "category"),
        coords={
            "chain": post["chain"].values, "draw": post["draw"].values, "__obs__": np.arange(values.shape[2]),
            "category": list(levels),
        },
        name=name,
    )


def _draws(values: np.ndarray, post: Any, name: str) -> Any:
    """(chain, draw, __obs__) DataArray of per-row draws, with the posterior's chain and draw labels."""
    import xarray as xr

    return xr.DataArray(
        values,
        dims=("chain", "draw", "__obs__"),
        coords={"chain": post["chain"].values, "draw": post["draw"].values, "__obs__": np.arange(values.shape[-1])},
        name=name,
    )
