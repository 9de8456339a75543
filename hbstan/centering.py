"""Centered or non-centered group effects, chosen from the evidence in the data.

A varying term's effects can be sampled as they are (centered: r_j ~ N(0, tau)) or as
standardized deviations (non-centered: r_j = tau z_j). Which one samples well depends on how
well each group's data pin its effect down compared with the spread of the effects, the ratio
kappa = tau^2 / v (v: the sampling variance of one group's effect from its own data; Betancourt
& Girolami 2015, Papaspiliopoulos et al. 2007). Centered is the better geometry where kappa is
well above 1; where kappa can be small, the posterior of a centered term has a funnel (tau near
0 with the effects squeezed together) where NUTS diverges, while a non-centered term at worst
mixes slowly, which the R-hat and ESS checks report.

hbstan estimates kappa per term the way a meta-analysis estimates heterogeneity, in one pass of
NumPy with no sampling:

1. a pooled fit of the population-level part (iteratively reweighted least squares for the
   logit and log links) gives each row's working residual and weight (the GLM information);
2. per group, the weighted least-squares estimate of the term's effects from those residuals,
   with its sampling variance v_j; crossed terms are estimated in turn (backfitting), each
   from the residuals left by the others' shrunken estimates;
3. per effect, the between-group variance tau^2 (Paule-Mandel) and its lower 95% bound
   (Q-profile, Viechtbauer 2007) from those estimates.

Where the GLM information holds a dispersion estimated from the residuals (negative binomial
shape, gamma shape, beta precision), steps 2-3 run twice: the pooled fit's residuals still hold
the group effects, so its dispersion comes out too large (1.5-2.3x on simulated data with a group
SD of 0.5); the second time the dispersion comes from the residuals about the group effects'
estimates (see :meth:`~hbstan.families.Family.refit_weights`).

A term is centered when its groups are many enough for tau to be estimated (at least 8) and
kappa at the lower bound of tau^2 exceeds 2 at the median group for every effect of the term:
centered only where the data leave little doubt, since a wrong "centered" diverges and a wrong
"non-centered" only mixes more slowly. Of several crossed terms with a varying intercept, only
the best identified one is centered (see :func:`term_evidence`), unless the program splits each
term's mean off its group intercepts (``one_centered_intercept=False``): then no mean trades off
against another and each term is centered on its own evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .families import Family, get_family

__all__ = ["TermEvidence", "term_evidence", "MIN_GROUPS", "KAPPA_CENTERED"]

MIN_GROUPS = 8  # fewer groups: tau is too uncertain for a centered term
KAPPA_CENTERED = 2.0  # center when kappa at the lower bound of tau^2 exceeds this


@dataclass(frozen=True)
class TermEvidence:
    """What the data say about one varying term (see the module docstring)."""

    factor: str
    tau: tuple[float, ...]  # estimated SD of each effect across groups (link scale)
    kappa: tuple[float, ...]  # tau^2 / v at the median group, per effect
    kappa_low: tuple[float, ...]  # the same at the lower 95% bound of tau^2
    groups: int  # groups with information about every effect
    centered: bool  # the choice
    note: str = ""  # why a term that qualified was left non-centered

    def reason(self) -> str:
        """Why the term was (not) centered, in one phrase."""
        k = min(self.kappa_low) if self.kappa_low else 0.0
        if self.groups < MIN_GROUPS:
            return f"{self.groups} groups (< {MIN_GROUPS}): the SD is too uncertain to center"
        word = "centered" if self.centered else "non-centered"
        why = f" ({self.note})" if self.note else ""
        return f"{word}: tau^2/v at the median group is {min(self.kappa):.2g} (lower bound {k:.2g}){why}"


def _link_fit(
    family: Family, y: np.ndarray, n: np.ndarray, A: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled fit of y on A: working weights, working residuals and the linear predictor."""
    if family.link == "identity":  # one least-squares fit of the working response (y, or log y)
        eta0 = family.initial_eta(y, n)
        z = eta0 + family.working(y, n, eta0)[1]
        coef, *_ = np.linalg.lstsq(A, z - offset, rcond=None)
        eta = offset + A @ coef
        return (*family.working(y, n, eta), eta)
    eta = family.initial_eta(y, n)
    for _ in range(25):  # iteratively reweighted least squares
        w, e = family.working(y, n, eta)
        z = eta - offset + e
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(A * sw[:, None], z * sw, rcond=None)
        new = np.clip(offset + A @ coef, -20, 20)
        done = np.max(np.abs(new - eta)) < 1e-8
        eta = new
        if done:
            break
    return (*family.working(y, n, eta), eta)


def _group_estimates(
    index: np.ndarray, Z: np.ndarray, w: np.ndarray, e: np.ndarray, J: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: weighted least-squares effects, their variances, and which groups have them."""
    M = Z.shape[1]
    A = np.zeros((J, M, M))
    rhs = np.zeros((J, M))
    for a in range(M):
        rhs[:, a] = np.bincount(index, weights=w * Z[:, a] * e, minlength=J)
        for c in range(a, M):
            A[:, a, c] = A[:, c, a] = np.bincount(index, weights=w * Z[:, a] * Z[:, c], minlength=J)
    scale = np.maximum(np.trace(A, axis1=1, axis2=2), 1e-300)
    ok = np.linalg.eigvalsh(A)[:, 0] > 1e-9 * scale
    est = np.zeros((J, M))
    var = np.full((J, M), np.inf)
    if ok.any():
        inv = np.linalg.inv(A[ok])
        est[ok] = np.einsum("jab,jb->ja", inv, rhs[ok])
        var[ok] = np.diagonal(inv, axis1=1, axis2=2)
    return est, var, ok


def _q(tau2: float, est: np.ndarray, v: np.ndarray) -> float:
    """Generalized Q statistic of the estimates at between-group variance tau2."""
    wt = 1.0 / (v + tau2)
    mu = np.sum(wt * est) / np.sum(wt)
    return float(np.sum(wt * (est - mu) ** 2))


def _solve_tau2(target: float, est: np.ndarray, v: np.ndarray) -> float:
    """The tau^2 at which Q equals ``target`` (Q decreases in tau^2), 0 if Q(0) is below it."""
    if _q(0.0, est, v) <= target:
        return 0.0
    lo, hi = 0.0, max(float(np.var(est)), 1e-12)
    while _q(hi, est, v) > target:
        hi *= 4
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _q(mid, est, v) > target else (lo, mid)
    return 0.5 * (lo + hi)


def _tau2(est: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Paule-Mandel estimate of tau^2 and its lower 95% bound (Q-profile)."""
    from scipy.stats import chi2

    df = est.size - 1
    if df < 1:
        return 0.0, 0.0
    return _solve_tau2(float(df), est, v), _solve_tau2(float(chi2.ppf(0.975, df)), est, v)


def term_evidence(
    family: Family | str,
    y: np.ndarray,
    X: np.ndarray,
    offset: np.ndarray,
    blocks: list,
    *,
    trials: np.ndarray | None = None,
    known_var: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    censored: np.ndarray | None = None,
    passes: int = 3,
    one_centered_intercept: bool = True,
) -> list[TermEvidence]:
    """Evidence for each varying term of ``blocks`` (design blocks: ``index``, ``Z``, ``J``, ``U``).

    ``family`` is a :class:`~hbstan.families.Family` or its name; ``trials`` the binomial
    trials; ``known_var`` each row's known residual variance (``se()`` without a residual SD:
    the weights are then 1 / se^2). ``weights`` are likelihood weights (``weights()``): a row's
    information is its weight times its GLM information. ``censored`` marks censored rows
    (``cens()``), which count as carrying no information about their group (the information
    errs small, towards the non-centered choice: the safe side). Unpooled terms get an entry
    with ``centered=False`` (they have no population SD). ``one_centered_intercept`` (default)
    centers at most one of several terms with a varying intercept; False leaves each term's
    choice to its own evidence (for programs that sample each term's mean apart from its
    group intercepts' deviations, where the means do not trade off against each other).
    """
    family = get_family(family)
    gaussian = family.link == "identity"
    N = y.shape[0]
    n = np.ones(N) if trials is None else np.asarray(trials, float)
    cols = [np.ones(N), X] + [blk.U[blk.index] for blk in blocks if blk.U is not None]
    A = np.column_stack(cols)
    w, e0, eta0 = _link_fit(family, y, n, A, offset)
    if known_var is not None:
        w = 1.0 / np.asarray(known_var, float)
    rows_w = np.ones(N) if weights is None else np.asarray(weights, float)
    if censored is not None:
        rows_w = np.where(np.asarray(censored, bool), 0.0, rows_w)
    w = w * rows_w
    fitted = [np.zeros(N) for _ in blocks]

    def estimate(
        t: int, blk: Any, base: np.ndarray | None = None, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Term t's group estimates from the residuals the other terms leave, and tau^2 (M, 2).

        ``base``: the working residuals of all terms (default: the pooled fit's), ``weights``
        the working weights (default: ``w``).
        """
        e = (e0 if base is None else base) - sum(f for s, f in enumerate(fitted) if s != t)
        est, var, ok = _group_estimates(blk.index, blk.Z, w if weights is None else weights, e, blk.J)
        return est, var, ok, np.array([_tau2(est[ok, m], var[ok, m]) for m in range(blk.M)])

    found: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0), np.zeros(0))] * len(blocks)

    def backfit(rounds: int, base: np.ndarray | None = None, weights: np.ndarray | None = None) -> float:
        """Estimate each term in turn from the others' shrunken fits; the degrees of freedom spent."""
        nonlocal w
        spent = 0.0
        for _ in range(rounds):
            spent = 0.0
            for t, blk in enumerate(blocks):
                if blk.pooling == "unpooled":
                    continue
                est, var, ok, tau2 = estimate(t, blk, base, weights)
                shrink = np.where(ok[:, None], tau2[:, 0] / (tau2[:, 0] + var), 0.0)
                fitted[t] = np.sum((est * shrink)[blk.index] * blk.Z, axis=1)
                found[t] = (tau2, var[ok])
                spent += float(np.sum(shrink))
            if gaussian:  # the residual variance left by all terms
                w = rows_w / max(float(np.var(e0 - sum(fitted))), 1e-12)
        return spent

    rounds = passes if len(blocks) > 1 or gaussian else 1
    backfit(rounds)
    if family.dispersion_from_residuals and any(blk.pooling != "unpooled" for blk in blocks):
        # The working weights hold a dispersion (negative binomial shape, gamma shape, beta
        # precision) estimated from the pooled fit's residuals, which still hold the group
        # effects: too much dispersion, too little information, and terms left non-centered
        # that sample ~10x faster centered (issue 19's negative binomial benchmark). So: fit the
        # group effects on the link scale (penalized quasi-likelihood: backfitting, relinearized
        # about the fit so far), re-estimate the dispersion about that fit, and estimate every
        # term again from the pooled fit's residuals with those weights. Only while at least
        # half the rows' degrees of freedom are left: a term of about a group per row (a
        # per-observation effect) can't be told apart from the dispersion, and there the pooled
        # estimate stands (the information errs small: the safe side).
        def group_part() -> np.ndarray:
            """Return the group effects' fitted part of the linear predictor so far (as IRLS: |eta| <= 20)."""
            return np.clip(sum(fitted), -20 - eta0, 20 - eta0)

        with np.errstate(all="ignore"):
            for _ in range(5):
                g = group_part()
                w1, e1 = family.working(y, n, eta0 + g)
                df = A.shape[1] + backfit(1, e1 + g, w1 * rows_w)
            refit = family.refit_weights(y, n, eta0, eta0 + group_part(), df) if df <= N / 2 else None
        fitted = [np.zeros(N) for _ in blocks]
        if refit is not None and np.all(np.isfinite(refit)):
            w = refit * rows_w
        backfit(rounds)
    out = []
    for t, blk in enumerate(blocks):
        if blk.pooling == "unpooled":
            out.append(TermEvidence(blk.factor, (), (), (), blk.J, False))
            continue
        tau2, var = found[t]
        if gaussian and var.size:  # variances on the final residual scale
            _, var, ok, tau2 = estimate(t, blk)
            var = var[ok]
        groups = int(var.shape[0])
        v_med = np.median(var, axis=0) if groups else np.full(blk.M, np.inf)
        kappa = tuple(float(x) for x in tau2[:, 0] / v_med)
        kappa_low = tuple(float(x) for x in tau2[:, 1] / v_med)
        centered = groups >= MIN_GROUPS and min(kappa_low) > KAPPA_CENTERED
        out.append(TermEvidence(blk.factor, tuple(float(x) for x in np.sqrt(tau2[:, 0])), kappa, kappa_low, groups, centered))
    # Crossed terms: of the terms with a varying intercept, only the best identified one is
    # centered (on the intercept). Two centered sets of group intercepts each trade their mean
    # off against the intercept, a ridge on which the intercept mixes slowly (R-hat 1.01-1.02
    # at 4 x 1000 draws on simulated crossed designs where one centered term gave 1.003-1.006).
    # With the means split off (one_centered_intercept=False) each term keeps its own choice: on
    # the Bernoulli benchmark of issue 19 (three crossed terms of 50, 12 and 8 groups), all three
    # centered sample a min bulk ESS about twice that of one centered and two non-centered.
    with_intercept = [t for t, blk in enumerate(blocks) if out[t].centered and blk.has_intercept]
    if len(with_intercept) > 1 and one_centered_intercept:
        keep = max(with_intercept, key=lambda t: min(out[t].kappa_low))
        for t in with_intercept:
            if t != keep:
                out[t] = replace(out[t], centered=False, note=f"the intercepts of {blocks[keep].factor} are the centered ones")
    return out
