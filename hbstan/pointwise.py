"""Pointwise log-likelihood and replicated data computed from the posterior draws.

CmdStan can write ``log_lik`` and ``y_rep`` itself (``pointwise="stan"``), but they are two
values per observation and draw, and reading them back from CSV is most of hbstan's overhead.
By default hbstan computes them here instead, with the same formulas, chain by chain; a test
checks both ways agree to rounding.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .spec import ModelSpec

__all__ = ["AUTO_MAX_VALUES", "linear_predictor", "linear_predictor_draws", "log_lik_and_y_rep", "pointwise_groups", "run_per_chain"]


def _coef(draws: Mapping[str, np.ndarray], names: list[str]) -> np.ndarray:
    """(S, width): the per-term draws of ``names`` side by side (each (S,) or (S, levels))."""
    return np.concatenate([draws[n] if draws[n].ndim == 2 else draws[n][:, None] for n in names], axis=-1)


def group_effects(model: ModelSpec, draws: Mapping[str, np.ndarray], i: int) -> np.ndarray:
    """(S, J, M): the effects of varying term ``i`` (1-based), from draws with one leading dim."""
    return block_effects(model.design.all_blocks[i - 1], draws)


def block_effects(blk: Any, draws: Mapping[str, np.ndarray], lead: int = 1) -> np.ndarray:
    """(..., J, M): the effects of the varying term ``blk`` from draws with ``lead`` leading dims."""
    effects = [blk.effect_name(t) for t, _, _ in blk.effects]
    arrays = [np.asarray(draws[e]) for e in effects]
    return np.concatenate([a[..., None] if a.ndim == lead + 1 else a for a in arrays], axis=-1)


def block_sum(r: np.ndarray, index: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """(..., n): sum_m r[..., index[n], m] * Z[n, m], the term's part of a linear predictor."""
    return np.einsum("...nm,nm->...n", r[..., index, :], Z)


def linear_predictor(
    model: ModelSpec,
    draws: Mapping[str, np.ndarray],
    X: np.ndarray,
    offsets: np.ndarray,
    terms: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]],
    out: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> np.ndarray:
    """Draws of the linear predictor of any rows: (S, n).

    The one place hbstan rebuilds the Stan program's linear predictor from the draws (the
    fitted rows' log-likelihood and replicated data, predictions for new rows, the PyMC
    backend). ``draws`` are the user-facing posterior variables with one leading dimension
    of S draws; ``X`` (n, K) the population-level predictors of the rows; per varying term,
    ``terms`` holds (r, index, Z, U): the group effects (S, J, M), each row's group (indices
    into r's J), its varying-effect predictors (n, M) and its group-level predictors (n, P)
    or None. With an intercept, the reported Intercept absorbs the centering of X and U (so
    do an ordinal family's thresholds, which are not part of the linear predictor); without
    one, the program's centered U is the one that enters the linear predictor.

    ``out`` receives the result and ``scratch`` holds each term before it is added (both
    (S, n) floats; new arrays when None). Given both, no (S, n) temporary is allocated: in a
    session that keeps its fits, fresh memory for every temporary (page faults on each) made
    the pointwise arrays two to three times slower to compute.
    """
    d = model.design
    S = next(iter(draws.values())).shape[0]
    shape = (S, X.shape[0])
    eta = np.empty(shape) if out is None else out
    tmp = np.empty(shape) if scratch is None else scratch
    eta[...] = offsets
    if d.has_intercept:
        eta += draws["Intercept"][:, None]
    if d.K:
        eta += np.matmul(_coef(draws, [t[0] for t in d.terms]), X.T, out=tmp)
    for i, (blk, (r, index, Z, U)) in enumerate(zip(d.blocks, terms), start=1):
        if blk.M <= 2:
            # sum_m r[:, g[n], m] * Z[n, m] (one or two terms add up the same in any order);
            # a column of ones multiplies nothing
            for m in range(blk.M):
                # mode='clip': unbuffered, straight into tmp (``index`` is in range by construction)
                rm = np.take(r[:, :, m], index, axis=1, out=tmp, mode="clip")
                z = Z[:, m]
                if not np.all(z == 1.0):
                    rm *= z
                eta += rm
        else:
            eta += np.einsum("dnm,nm->dn", r[:, index, :], Z, out=tmp)
        if U is not None:
            names = [p.name for p in model.params if p.stan == f"gamma_{i}"]
            Uc = U if d.centers_X else U - blk.U.mean(axis=0)
            eta += np.matmul(_coef(draws, names), Uc.T, out=tmp)
    return eta


def category_draws(model: ModelSpec, draws: Mapping[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    """Slice the draws of a per-category family at non-reference category ``k`` (0-based).

    Each per-category variable is taken at entry ``k`` of its last axis, the others as they
    are; the linear predictor of category k + 2 is then the one-predictor arithmetic on these.
    """
    names = {p.name for p in model.params if p.per_category}
    return {n: (v[..., k] if n in names else v) for n, v in draws.items()}


def linear_predictor_draws(
    model: ModelSpec, post: Mapping[str, np.ndarray], c: int, out: np.ndarray | None = None, scratch: np.ndarray | None = None
) -> np.ndarray:
    """Linear predictor of the fitted rows for chain ``c`` of (chain, draw, ...) draws: (draw, N).

    A per-category family (``categorical``) has one per non-reference category: (draw, N,
    ncat - 1), in new memory (``out`` and ``scratch`` are not used).
    """
    if model.family.per_category:
        return np.stack(
            [_fitted_rows(model, category_draws(model, post, k), c) for k in range(model.ncat - 1)], axis=-1
        )
    return _fitted_rows(model, post, c, out, scratch)


def _fitted_rows(
    model: ModelSpec, post: Mapping[str, np.ndarray], c: int, out: np.ndarray | None = None, scratch: np.ndarray | None = None
) -> np.ndarray:
    d = model.design
    chain = {k: v[c] for k, v in post.items()}
    terms = [
        (group_effects(model, chain, i), blk.index, blk.Z, None if blk.U is None else blk.U[blk.index])
        for i, blk in enumerate(d.blocks, start=1)
    ]
    return linear_predictor(model, chain, d.X, model.offset, terms, out=out, scratch=scratch)


# pointwise="auto" computes log_lik and y_rep at fit time only up to this many values each
# (N x chains x draws; 20 million doubles are 160 MB per array); beyond, Fit.add_pointwise()
AUTO_MAX_VALUES = 20_000_000


def log_lik_and_y_rep(
    model: ModelSpec, post: Mapping[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(chain, draw, N) arrays of the pointwise log-likelihood and of replicated data.

    Chains are computed in threads (NumPy releases the GIL in its array loops and random
    draws), each with its own generator spawned from ``rng``: the same ``rng`` state gives
    the same arrays on any number of cores.
    """
    first = next(iter(post.values()))
    C, D, N = first.shape[0], first.shape[1], model.design.N
    # every chain's arrays are written in place: no per-chain temporaries, no final stacking
    lls = np.empty((C, D, N))
    reps = np.empty((C, D, N), dtype=np.int64 if model.family.integer_response else float)
    rngs = rng.spawn(C)

    run_per_chain(lambda c: _chain_pointwise(model, post, c, rngs[c], lls[c], reps[c]), C)
    return lls, reps


def run_per_chain(chain: Callable[[int], None], C: int) -> None:
    """``chain(c)`` for c = 0..C-1, one thread per chain where there are cores for them.

    NumPy releases the GIL in its array loops and random draws, so chains run in parallel;
    callers give each chain its own generator (spawned from one), so results do not depend
    on the number of cores.
    """
    workers = min(C, os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(chain, range(C)))  # list(): re-raises a chain's exception here
    else:
        for c in range(C):
            chain(c)


def dpar_values(
    model: ModelSpec, post: Mapping[str, np.ndarray], name: str, X: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Draws of a distributional parameter in each row, its inverse link (exp or inv_logit) of
    its linear predictor: (..., n).

    ``post`` holds draws with any leading dimensions; ``X`` its formula's predictors of the
    rows (n, K), the fitted rows' when None. The reported ``<name>_Intercept`` is on the
    uncentered scale of the predictors, as the mean's ``Intercept``. The group terms of its
    formula add their effects: ``groups`` (..., n) for new rows (:mod:`hbstan.predict`
    draws those of unseen groups), the fitted rows' own when None.
    """
    dp = model.design.dpars[name]
    X = dp.X if X is None else X
    log_v: Any = 0.0
    if dp.has_intercept:
        log_v = np.asarray(post[f"{name}_Intercept"])[..., None]
    if dp.K:
        # one column per coefficient: a term with levels is a (..., levels) variable
        cols = []
        for p in model.params:
            if p.stan == f"b_{name}":
                v = np.asarray(post[p.name])
                cols.append(v if p.dims else v[..., None])
        log_v = log_v + np.concatenate(cols, axis=-1) @ X.T
    if groups is not None:
        log_v = log_v + groups
    elif dp.blocks:
        lead = np.asarray(post[dp.blocks[0].effect_name(dp.blocks[0].effects[0][0])]).ndim - 1
        for blk in dp.blocks:
            log_v = log_v + block_sum(block_effects(blk, post, lead), blk.index, blk.Z)
    (aux,) = [a for a in model.family.aux if a.name == name]
    return aux.inverse_link(log_v)


def aux_values(
    model: ModelSpec,
    post: Mapping[str, np.ndarray],
    c: int | None = None,
    se: np.ndarray | None = None,
    dpar_X: Mapping[str, np.ndarray] | None = None,
    dpar_groups: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The family's auxiliary parameters: known values, or draws shaped to broadcast over rows.

    An ordinal family's thresholds are ``"thresholds"``, with a last axis of thresholds.

    With ``c``, chain ``c``'s draws (draw, 1); without, all draws (chain, draw, 1). A model
    with known standard errors (``se()``) gets the total SD per row, sqrt(se^2 + sigma^2), as
    ``sigma``: of the data's rows, or of the rows whose errors ``se`` gives. A parameter with a
    formula of its own gets its value in each row, (draw, n) or (chain, draw, n): of the data's
    rows, or of the rows whose predictors ``dpar_X[name]`` gives (and the group terms' part of
    its linear predictor ``dpar_groups[name]``, (chain, draw, n), where its formula has some).
    """
    out: dict[str, Any] = {}
    # chain c's draws of every variable, sliced once for all formulas (only where there are some)
    draws = post if c is None or not model.design.dpars else {k: v[c] for k, v in post.items()}
    for a in model.family.aux:
        if a.name in model.design.dpars:
            groups = None if dpar_groups is None else dpar_groups.get(a.name)
            if groups is not None and c is not None:
                groups = groups[c]
            out[a.name] = dpar_values(model, draws, a.name, None if dpar_X is None else dpar_X[a.name], groups)
        elif a.name in model.fixed_aux:
            out[a.name] = model.fixed_aux[a.name]
        else:
            v = np.asarray(post[a.name])
            out[a.name] = (v if c is None else v[c])[..., None]
    if model.design.thresholds:  # an ordinal family's thresholds: (..., 1, ncat - 1)
        v = np.asarray(post["Intercept"])
        out["thresholds"] = (v if c is None else v[c])[..., None, :]
    if model.se is not None:
        se = model.se if se is None else se
        out["sigma"] = np.sqrt(np.square(se) + np.square(out["sigma"]))
    return out


def _chain_pointwise(
    model: ModelSpec, post: Mapping[str, np.ndarray], c: int, rng: np.random.Generator, ll: np.ndarray, rep: np.ndarray
) -> None:
    """Chain ``c``'s log-likelihood and replicated data, written into ``ll`` and ``rep`` (draw, N)."""
    # rep's memory (8-byte floats or ints) is the linear predictor's scratch until it is drawn,
    # and the linear predictor is built in ll's memory, which then becomes the log-likelihood
    scratch = rep if rep.dtype == np.float64 else rep.view(np.float64)
    eta = linear_predictor_draws(model, post, c, out=ll, scratch=scratch)
    aux = aux_values(model, post, c)
    if model.cens is None:
        model.family.fill_pointwise(model.design.y, eta, aux, model.trials, rng, ll, rep)
    else:  # the censored rows' probabilities need the linear predictor after the density overwrote it
        eta = eta.copy()
        model.family.fill_pointwise(model.design.y, eta, aux, model.trials, rng, ll, rep)
        model.family.censor_log_lik(ll, model.design.y, model.cens_upper, model.cens, eta, aux, model.trials)
    if model.weights is not None:  # weighted, as brms reports it: each row's log-likelihood times its weight
        ll *= model.weights


def pointwise_groups(
    model: ModelSpec, post: Mapping[str, np.ndarray], seed: int | np.random.Generator | None
) -> dict[str, Any]:
    """``az.from_dict`` keyword arguments of the ``posterior_predictive`` and ``log_likelihood`` groups.

    ``seed`` seeds the replicated data: an int, None, or a generator to draw from.
    """
    ll, rep = log_lik_and_y_rep(model, post, np.random.default_rng(seed))
    return {"posterior_predictive": {model.design.response: rep}, "log_likelihood": {"log_lik": ll}}
