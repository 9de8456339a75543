"""Pointwise log-likelihood and replicated data computed from the posterior draws.

CmdStan can write ``log_lik`` and ``y_rep`` itself (``pointwise="stan"``), but they are two
values per observation and draw, and reading them back from CSV is most of hbstan's overhead.
By default hbstan computes them here instead, with the same formulas, chain by chain; a test
checks both ways agree to rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import gammaln, log_expit

if TYPE_CHECKING:
    from .model import Model

__all__ = ["linear_predictor_draws", "log_lik_and_y_rep"]


def _coef(post: dict[str, np.ndarray], names: list[str], c: int) -> np.ndarray:
    parts = [post[n][c] if post[n][c].ndim == 2 else post[n][c][:, None] for n in names]
    return np.concatenate(parts, axis=-1)


def linear_predictor_draws(
    model: "Model", post: dict[str, np.ndarray], c: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Linear predictor of the fitted rows for chain ``c``: (draw, N), written into ``out`` if given."""
    d = model.design
    D = next(iter(post.values())).shape[1]
    eta = np.empty((D, d.N)) if out is None else out
    eta[...] = model._offset
    if d.has_intercept:
        eta += post["Intercept"][c][:, None]
    if d.K:
        eta += _coef(post, [t[0] for t in d.terms], c) @ d.X.T
    for i, blk in enumerate(d.blocks, start=1):
        effects = [blk.effect_name(t) for t, _, _ in blk.effects]
        r = np.concatenate(
            [post[e][c][..., None] if post[e][c].ndim == 2 else post[e][c] for e in effects], axis=-1
        )  # (draw, J, M)
        if blk.M <= 2:
            # sum_m r[:, g[n], m] * Z[n, m], as einsum("dnm,nm->dn") adds it up (one or two terms
            # sum the same in any order); a column of ones multiplies nothing
            terms = []
            for m in range(blk.M):
                rm = r[:, :, m][:, blk.index]
                z = blk.Z[:, m]
                if not np.all(z == 1.0):
                    rm *= z
                terms.append(rm)
            if len(terms) == 2:
                terms[0] += terms[1]
            eta += terms[0]
        else:
            eta += np.einsum("dnm,nm->dn", r[:, blk.index, :], blk.Z)
        if blk.U is not None:
            names = [p.name for p in model._params if p.stan == f"gamma_{i}"]
            # with an intercept, the reported Intercept absorbs the centering of U; without
            # one, the program's centered U is the one that enters the linear predictor
            U = blk.U if d.has_intercept else blk.U - blk.U.mean(axis=0)
            eta += (_coef(post, names, c) @ U.T)[:, blk.index]
    return eta


def log_lik_and_y_rep(
    model: "Model", post: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(chain, draw, N) arrays of the pointwise log-likelihood and of replicated data."""
    y = model.design.y
    fam = model.family
    first = next(iter(post.values()))
    C, D, N = first.shape[0], first.shape[1], model.design.N
    # every chain's arrays are written in place: no per-chain temporaries, no final stacking
    lls = np.empty((C, D, N))
    reps: np.ndarray | None = None
    eta = np.empty((D, N))
    for c in range(C):
        linear_predictor_draws(model, post, c, out=eta)
        ll = lls[c]
        if fam == "gaussian":
            sigma: Any = model.known_sigma if model.known_sigma is not None else post["sigma"][c][:, None]
            rep = rng.normal(eta, sigma)
            # ll = -0.5 * z * z - log(sigma) - 0.5 * log(2 pi), z = (y - eta) / sigma
            z = np.subtract(y, eta, out=eta)
            z /= sigma
            np.multiply(z, -0.5, out=ll)
            ll *= z
            ll -= np.log(sigma)
            ll -= 0.5 * np.log(2 * np.pi)
        elif fam == "bernoulli":
            ll[...] = np.where(y == 1, log_expit(eta), log_expit(-eta))
            rep = rng.binomial(1, np.exp(log_expit(eta)))
        elif fam == "binomial":
            n = model._trials
            ll[...] = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1) + y * log_expit(eta) + (n - y) * log_expit(-eta)
            rep = rng.binomial(n.astype(int), np.exp(log_expit(eta)))
        else:
            ll[...] = y * eta - np.exp(eta) - gammaln(y + 1)
            rep = rng.poisson(np.exp(np.minimum(eta, 20.0)))
        if reps is None:
            reps = np.empty((C, *rep.shape), dtype=rep.dtype)
        reps[c] = rep
    assert reps is not None
    return lls, reps
