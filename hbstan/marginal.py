"""Group effects integrated out of a Gaussian likelihood, drawn after sampling.

Where a Gaussian model's group effects are integrated out (``marginalize``), the Stan program
samples only the population-level parameters, and the group effects r_1 have an exact
conditional posterior given each of their draws: r_j = Lambda w_j with
w_j ~ N(B_j^-1 v_j / sigma^2, B_j^-1), B_j = I + Lambda' Z_j'Z_j Lambda / sigma^2 and
v_j = Lambda' Z_j'e_j, from the per-group sufficient statistics. The program's generated
quantities can draw them (``draw_effects = 1``; ``pointwise="stan"`` needs them there), but
then CmdStan writes and CmdStanPy parses one CSV column per group and effect. By default
hbstan draws them here instead, with the program's own formulas (the same LDL' steps, each
entry a vector over the groups; a test checks both give the same distribution), so CmdStan's
output holds only the population-level draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .pointwise import run_per_chain

if TYPE_CHECKING:
    from .spec import ModelSpec

__all__ = ["group_effect_draws"]


def _unpack_upper(WW: np.ndarray, P: int) -> np.ndarray:
    """(S, P, P) symmetric matrices from their upper triangles stored row by row (S, P(P+1)/2)."""
    full = np.empty((WW.shape[0], P, P))
    k = 0
    for p in range(P):
        for q in range(p, P):
            full[:, p, q] = full[:, q, p] = WW[:, k]
            k += 1
    return full


def group_effect_draws(
    model: ModelSpec,
    get: Callable[[str], np.ndarray],
    rng: np.random.Generator,
    prior_only: bool = False,
    chunk_values: int = 250_000,
) -> np.ndarray:
    """(chain, draw, J, M) draws of term 1's group effects given the population-level draws.

    ``get(stan_name)`` returns a Stan parameter's draws as (chain, draw, ...). Draws are taken
    in chunks of about ``chunk_values`` values per intermediate array, so memory stays bounded
    with many groups. With ``prior_only`` the effects are drawn from their prior,
    r_j = Lambda z_j, as the program does.
    """
    d = model.design
    blk = d.blocks[0]
    data = model.suff_data()
    S, P, M = int(data["S"]), int(data["P"]), blk.M
    Ax, Az, Wy = data["Ax"], data["Az"], data["Wy"]
    WW = _unpack_upper(data["WW"], P)
    ZZ = np.einsum("mp,spq,nq->smn", Az, WW, Az)  # Z'Z per group (S, M, M)
    one = int(data.get("one_col", 0)) - 1  # 0-based column of ones, -1 if none

    sd = get("sd_1")  # (C, D, M)
    C, D = sd.shape[:2]
    L = get("L_1") if blk.pooling == "correlated" else None
    b = get("b") if d.K else np.zeros((C, D, 0))
    intercept = get("Intercept") if d.has_intercept else None
    sigma = np.full((C, D), float(model.known_sigma)) if model.known_sigma is not None else get("sigma")
    Uc = gamma = None
    if blk.U is not None:
        Uc = blk.U - blk.U.mean(axis=0)  # (J, P_1), centered over groups as in the program
        gamma = get("gamma_1")
    means_X = d.X.mean(axis=0)

    out = np.empty((C, D, S, M))
    step = max(1, chunk_values // (S * max(P, M)))
    rngs = rng.spawn(C)

    def chain(c: int) -> None:
        rng = rngs[c]
        for start in range(0, D, step):
            sl = slice(start, min(start + step, D))
            n = sl.stop - sl.start
            # Lambda, the Cholesky factor of the effects' covariance: diag(sd) L, or diag(sd)
            lam = sd[c, sl][:, :, None] * (L[c, sl] if L is not None else np.eye(M))  # (n, M, M)
            sig2 = sigma[c, sl] ** 2  # (n,)
            z = rng.standard_normal((M, n, S))
            w = list(z)
            if not prior_only:
                # Theta: each predictor column's coefficient per group, the population part
                # (n, P) plus, on the column of ones, a per-group part (n, S); e = y - W Theta
                base = b[c, sl] @ Ax  # (n, P)
                extra = None
                if one >= 0:
                    const = -float(data["ycenter"]) + (
                        intercept[c, sl] - b[c, sl] @ means_X if intercept is not None else 0.0
                    )
                    base[:, one] += const
                    if Uc is not None and gamma is not None:
                        extra = gamma[c, sl] @ Uc.T  # (n, J): group-level predictors' part
                # Z'e = (Wy - W'W Theta) Az', one (n, S) vector per effect
                wtheta = (base @ WW.reshape(S * P, P).T).reshape(n, S, P)  # (W'W)(population part)
                if extra is not None:
                    wtheta += extra[:, :, None] * WW[None, :, :, one]
                resid = Wy[None] - wtheta  # (n, S, P)
                zte = [resid @ Az[m] for m in range(M)]
                # B = Lw diag(D) Lw', entry by entry (vectors over draws x groups), as in the program
                Lw: dict[tuple[int, int], np.ndarray] = {}
                Dg: list[np.ndarray] = []
                for j in range(M):
                    for i in range(j, M):
                        Bij = np.full((n, S), float(i == j))
                        for a in range(i, M):
                            for cc in range(j, M):
                                Bij += (lam[:, a, i] * lam[:, cc, j] / sig2)[:, None] * ZZ[None, :, a, cc]
                        for k in range(j):
                            Bij -= Lw[i, k] * Lw[j, k] * Dg[k]
                        if i == j:
                            Dg.append(Bij)
                        else:
                            Lw[i, j] = Bij / Dg[j]
                u: list[np.ndarray] = []
                for i in range(M):
                    ui = sum(zte[a] * lam[:, a, i][:, None] for a in range(i, M))  # v_i = (Lambda' Z'e)_i
                    for k in range(i):
                        ui -= Lw[i, k] * u[k]
                    u.append(ui)
                # w = Lw^-T (D^-1 u / sigma^2 + D^-1/2 z): back substitution, last effect first
                for i in reversed(range(M)):
                    w[i] = (u[i] / sig2[:, None] + np.sqrt(Dg[i]) * w[i]) / Dg[i]
                    for k in range(i + 1, M):
                        w[i] -= Lw[k, i] * w[k]
            # r_j = Lambda w_j
            for k in range(M):
                out[c, sl, :, k] = sum(lam[:, k, m][:, None] * w[m] for m in range(k + 1))

    run_per_chain(chain, C)  # each chain with its own generator: the same draws on any number of cores
    return out
