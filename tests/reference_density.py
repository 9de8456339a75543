"""An independent log density of hbstan's models, written in NumPy/SciPy from their definition.

The check that a rendered Stan program computes the model it claims: at random parameter
values, the log density CmdStan evaluates (``log_prob``, on the constrained scale, without the
Jacobian of the constraining transforms) equals the one below up to a constant that does not
depend on the parameters, both with and without the likelihood (``prior_only``).

Nothing here uses hbstan's templates, its pointwise code or its data preparation: the
likelihood is evaluated row by row from the model's design matrices with ``scipy.stats``
(Bernoulli rows stay rows, even where hbstan sums them into binomial counts; Gaussian rows
stay rows where hbstan uses sufficient statistics; integrated-out group effects are each
group's multivariate normal marginal). Which parameters the program samples (``r``: centered;
``a``: centered on the intercept; ``z``: non-centered; none: integrated out) is read from the
compiled program's own parameter list (``stanc --info``).

The model's definition, as the README states it:

* eta = offset + Intercept + (X - mean(X)) b + sum over terms of r_g[group] . Z
  + (U - mean over groups of U)[group] gamma  (no centering of X without an intercept);
* gaussian: y ~ N(eta, sigma); student: y ~ t(nu, eta, sigma); bernoulli: y ~ Bernoulli(F(eta)); binomial:
  y ~ Binomial(trials, F(eta)) (F: the logistic CDF, Phi (probit) or 1 - exp(-exp) (cloglog)); poisson: y ~ Poisson(exp eta); negbinomial:
  y ~ NB(mean exp eta, shape), scipy's nbinom(shape, shape / (shape + exp eta)); gamma:
  y ~ Gamma(shape, mean exp eta), scipy's gamma(shape, scale = exp(eta) / shape); lognormal:
  log y ~ N(eta, sigma), scipy's lognorm(sigma, scale = exp eta); beta: y ~ Beta(mean
  logit^-1 eta, precision phi), scipy's beta(mu phi, (1 - mu) phi);
* zero-inflated (``zi``): P(0) = zi + (1 - zi) P_base(0), P(y) = (1 - zi) P_base(y) for y > 0;
  hurdle (``hu``): P(0) = hu, P(y) = (1 - hu) P_base(y) / P_base(y > 0) for y > 0 (the base:
  the poisson, negbinomial or lognormal above, scipy's pmf/pdf and sf);
* cumulative: y in 1..K with P(y <= k) = F(c_k - eta) for ordered thresholds c (scipy's logistic or normal CDF by the
  link), which replace the intercept: eta = offset + (X - mean(X)) b + ..., with X centered
  and no Intercept; each threshold has its own prior (keys ``Intercept[a|b]``);
* categorical: y in 1..K with P(y = k) = exp(eta_k) / sum_j exp(eta_j), eta_1 = 0 (scipy's
  multinomial of one trial); each non-reference category k has its own intercept, coefficients
  (b: K x (ncat - 1)) and group effects (r_g: J x (M (ncat - 1)), category after category, with
  SDs sd (M (ncat - 1))); each has its own prior (keys ``Intercept[k]``, ``x[k]``,
  ``1|g_sigma[k]``, each key's categories together);
* weights(w): each row's log-likelihood times w; cens(c, y2): left-censored rows (c = -1) add
  log P(Y <= y), right-censored ones (1) log P(Y >= y) (scipy's logsf at y, at y - 1 for
  counts), interval-censored ones (2) log(P(Y <= y2) - P(Y <= y)) (at y - 1 for counts);
* hierarchical term: r_g[:, m] ~ N(0, sd_m); correlated: r_g[j] ~ MVN(0, diag(sd) L L' diag(sd)),
  L ~ LKJ-Cholesky(eta); unpooled: each r_g[:, m] has its own prior; non-centered:
  r_g[j] = diag(sd) L z_j with z ~ N(0, 1);
* every coefficient's prior as listed in ``model.priors``, in the model's order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import expit, gammaln

__all__ = ["Point", "random_point", "stan_params", "log_prior", "log_lik", "program_parameters"]


@dataclass
class Point:
    """Parameter values on the model's natural scale (group effects r, not z)."""

    Intercept: float | None
    b: np.ndarray
    sigma: float | None
    nu: float | None
    shape: float | None
    phi: float | None
    sd: dict[int, np.ndarray]
    L: dict[int, np.ndarray]
    r: dict[int, np.ndarray]
    gamma: dict[int, np.ndarray]
    zi: float | None = None  # zero-inflation probability
    hu: float | None = None  # hurdle probability
    thresholds: np.ndarray | None = None  # cumulative: the ordered thresholds c
    # distributional parameters with a formula: name -> (intercept at the predictors' means or None, b)
    dpars: dict[str, tuple[float | None, np.ndarray]] | None = None


def program_parameters(compiled: Any) -> set[str]:
    """Names of the parameters the compiled program samples (from ``stanc --info``)."""
    return set(compiled.src_info()["parameters"])


def _ncat(model: Any) -> int:
    return int(model.stan_data["ncat"])


def _random_cholesky_corr(M: int, rng: np.random.Generator) -> np.ndarray:
    A = rng.normal(size=(M, M + 2))
    S = A @ A.T
    d = np.sqrt(np.diag(S))
    return np.linalg.cholesky(S / np.outer(d, d))


def random_point(model: Any, rng: np.random.Generator) -> Point:
    """Random parameter values in the support, at the scale of a typical posterior."""
    d = model.design
    family = getattr(model.family, "name", model.family)
    kc = _ncat(model) - 1 if family == "categorical" else 1  # linear predictors per row
    sd, L, r, gamma = {}, {}, {}, {}
    for i, blk in enumerate(d.all_blocks, start=1):  # a distributional parameter's terms after the mean's
        if blk.pooling != "unpooled":
            M = blk.M * kc  # categorical: one block of effects per non-reference category
            sd[i] = np.exp(rng.normal(-0.7, 0.4, M))
            L[i] = _random_cholesky_corr(M, rng) if blk.pooling == "correlated" else np.eye(M)
            r[i] = rng.normal(size=(blk.J, M)) @ (np.diag(sd[i]) @ L[i]).T
        else:
            r[i] = rng.normal(0, 0.6, (blk.J, blk.M))
        if blk.U is not None:
            gamma[i] = rng.normal(0, 0.3, blk.U.shape[1])
    sigma = None
    dpars = {}
    for name, dp in d.dpars.items():  # link(value) = Intercept + (X - mean(X)) b
        dpars[name] = (float(rng.normal(-0.2, 0.3)) if dp.has_intercept else None, rng.normal(0, 0.3, dp.K))
    if family in ("gaussian", "student", "lognormal", "hurdle_lognormal") and model.known_sigma is None and "sigma" not in dpars:
        sigma = float(np.exp(rng.normal(0, 0.3)))
    nu = float(1 + np.exp(rng.normal(2, 0.5))) if family == "student" else None
    negbin = ("negbinomial", "gamma", "zero_inflated_negbinomial", "hurdle_negbinomial")
    shape = float(np.exp(rng.normal(1, 0.7))) if family in negbin and "shape" not in dpars else None
    zi = float(expit(rng.normal(-1, 0.7))) if family.startswith("zero_inflated_") and "zi" not in dpars else None
    hu = float(expit(rng.normal(-1, 0.7))) if family.startswith("hurdle_") and "hu" not in dpars else None
    phi = float(np.exp(rng.normal(2, 0.7))) if family == "beta" and "phi" not in dpars else None
    cuts = None
    if family == "cumulative":
        K = int(model.stan_data["ncat"])
        cuts = np.sort(rng.normal(0, 1.2, K - 1))
    if family == "categorical":  # an intercept per non-reference category, b: K x (ncat - 1)
        icpt: Any = rng.normal(0.3, 0.5, kc) if d.has_intercept else None
        b = rng.normal(0, 0.3, (d.K, kc))
    else:
        icpt = float(rng.normal(0.3, 0.5)) if d.has_intercept else None
        b = rng.normal(0, 0.3, d.K)
    return Point(
        Intercept=icpt,
        b=b,
        sigma=sigma,
        nu=nu,
        shape=shape,
        phi=phi,
        sd=sd,
        L=L,
        r=r,
        gamma=gamma,
        zi=zi,
        hu=hu,
        thresholds=cuts,
        dpars=dpars,
    )


def stan_params(model: Any, pt: Point, names: set[str]) -> dict[str, Any]:
    """The point in the program's own parameters (``names``: :func:`program_parameters`)."""
    out: dict[str, Any] = {}
    if pt.Intercept is not None:
        out["Intercept"] = pt.Intercept
    if pt.thresholds is not None:
        out["Intercept"] = pt.thresholds
    out["b"] = pt.b
    if pt.sigma is not None:
        out["sigma"] = pt.sigma
    if pt.nu is not None:
        out["nu"] = pt.nu
    for name, (icpt, b) in (pt.dpars or {}).items():
        if icpt is not None:
            out[f"Intercept_{name}"] = icpt
        out[f"b_{name}"] = b
    if pt.shape is not None:
        out["shape"] = pt.shape
    if pt.phi is not None:
        out["phi"] = pt.phi
    for name in ("zi", "hu"):
        if getattr(pt, name) is not None:
            out[name] = getattr(pt, name)
    for i in pt.r:
        if i in pt.sd:
            out[f"sd_{i}"] = pt.sd[i]
        if f"L_{i}" in names:
            out[f"L_{i}"] = pt.L[i]
        if f"w_{i}" in names:  # the group intercepts' mean sampled apart: w and the deviations
            mean = float(pt.r[i][:, 0].mean())
            out[f"w_{i}"] = mean * np.sqrt(pt.r[i].shape[0]) / pt.sd[i][0]
            out["level"] = out.pop("Intercept", out.get("level")) + mean
            dev = pt.r[i].copy()
            dev[:, 0] -= mean
            if f"a_{i}" in names:
                out[f"a_{i}"] = dev
            else:
                out[f"z_{i}"] = np.linalg.solve(np.diag(pt.sd[i]) @ pt.L[i], dev.T)
        elif f"a_{i}" in names:  # centered on the intercept: a = r + Intercept in column 1
            a = pt.r[i].copy()
            # (an ordinal model's: relative to its thresholds' mean, a = r - mean(thresholds))
            a[:, 0] += pt.Intercept if pt.thresholds is None else -np.mean(pt.thresholds)
            for m, k in enumerate(model.slope_coefficients(i) or []):  # slopes on their coefficients
                if k:
                    a[:, m] += pt.b[k - 1]
            out[f"a_{i}"] = a
        elif f"z_{i}" in names:  # non-centered: r_j = diag(sd) L z_j
            out[f"z_{i}"] = np.linalg.solve(np.diag(pt.sd[i]) @ pt.L[i], pt.r[i].T)
        elif f"r_{i}" in names:
            out[f"r_{i}"] = pt.r[i]
        if i in pt.gamma:
            out[f"gamma_{i}"] = pt.gamma[i]
    unknown = set(out) - names
    assert not unknown, f"the program has no parameters {sorted(unknown)}; it declares {sorted(names)}"
    return out


def _prior_logpdf(prior: Any, x: Any) -> float:
    """Log density of an hbstan prior (up to a constant), written with scipy.stats."""
    v = prior.values()
    x = np.asarray(x, dtype=float)
    fam = type(prior).__name__
    if fam == "Normal":
        dist = stats.norm(v["loc"], v["scale"])
    elif fam == "StudentT":
        dist = stats.t(v["nu"], v["loc"], v["scale"])
    elif fam == "Cauchy":
        dist = stats.cauchy(v["loc"], v["scale"])
    elif fam == "Logistic":
        dist = stats.logistic(v["loc"], v["scale"])
    elif fam == "HalfNormal":
        dist = stats.halfnorm(0, v["scale"])
    elif fam == "HalfCauchy":
        dist = stats.halfcauchy(0, v["scale"])
    elif fam == "HalfStudentT":
        dist = stats.t(v["nu"], 0, v["scale"])  # half: a factor 2, a constant
    elif fam == "Exponential":
        dist = stats.expon(scale=1 / v["rate"])
    elif fam == "Gamma":
        dist = stats.gamma(v["shape"], scale=1 / v["rate"])
    elif fam == "InverseGamma":
        dist = stats.invgamma(v["shape"], scale=v["scale"])
    elif fam == "Beta":
        dist = stats.beta(v["alpha"], v["beta"])
    else:
        raise AssertionError(f"no reference density for prior {prior}")
    return float(np.sum(dist.logpdf(x)))


def _lkj_cholesky_logpdf(L: np.ndarray, eta: float) -> float:
    """LKJ(eta) on the correlation matrix L L', as a density of its Cholesky factor L.

    LKJ: p(Omega) proportional to det(Omega)^(eta - 1); the map from L to Omega = L L' has
    Jacobian prod_i L_ii^(K - i) (i = 1..K).
    """
    K = L.shape[0]
    logdiag = np.log(np.diag(L))
    return float((eta - 1) * 2 * logdiag.sum() + np.sum((K - np.arange(1, K + 1)) * logdiag))


class _Keys:
    """The model's prior keys, consumed in the model's order."""

    def __init__(self, priors: dict[str, Any]) -> None:
        self.priors = priors
        self.keys = list(priors)
        self.pos = 0

    def take(self, expected: str | None = None) -> Any:
        key = self.keys[self.pos]
        if expected is not None:
            assert key == expected, f"prior key {key!r} where {expected!r} was expected"
        self.pos += 1
        return self.priors[key]


def _effect_keys(blk: Any, suffix: str) -> list[str]:
    keys = []
    for term, levels, _ in blk.effects:
        prefix = f"{blk.dpar}_" if blk.dpar else ""  # a distributional parameter's term: "sigma_1|g"
        name = f"{prefix}{'1' if term == 'Intercept' else term}|{blk.factor}{suffix}"
        keys += [f"{name}[{lv}]" for lv in levels] if levels else [name]
    return keys


def log_prior(model: Any, pt: Point, names: set[str]) -> float:
    """Log prior density of the program's parameters (``names``) at ``pt``, up to a constant."""
    d = model.design
    keys = _Keys(model.priors)
    if getattr(model.family, "name", model.family) == "categorical":
        return _categorical_log_prior(model, pt, names, keys)
    lp = 0.0
    if pt.Intercept is not None:
        lp += _prior_logpdf(keys.take("Intercept"), pt.Intercept)
    if pt.thresholds is not None:
        for c in pt.thresholds:
            assert keys.keys[keys.pos].startswith("Intercept["), keys.keys[keys.pos]
            lp += _prior_logpdf(keys.take(), c)
    for name, levels, sl in d.terms:
        for c, lv in zip(range(sl.start, sl.stop), levels or [None]):
            lp += _prior_logpdf(keys.take(name if lv is None else f"{name}[{lv}]"), pt.b[c])
    dpars = pt.dpars or {}
    for name in ("sigma", "nu", "shape", "phi", "zi", "hu"):  # the families' order of them
        if name in dpars:  # its formula's intercept and coefficients
            icpt, b = dpars[name]
            if icpt is not None:
                lp += _prior_logpdf(keys.take(f"{name}_Intercept"), icpt)
            for term, levels, sl in d.dpars[name].terms:
                for c, lv in zip(range(sl.start, sl.stop), levels or [None]):
                    lp += _prior_logpdf(keys.take(f"{name}_{term}" if lv is None else f"{name}_{term}[{lv}]"), b[c])
        elif getattr(pt, name) is not None:
            lp += _prior_logpdf(keys.take(name), getattr(pt, name))
    for i, blk in enumerate(d.all_blocks, start=1):  # a distributional parameter's terms after the mean's
        r = pt.r[i]
        if blk.pooling == "unpooled":
            for m, key in enumerate(_effect_keys(blk, "")):
                lp += _prior_logpdf(keys.take(key), r[:, m])
        else:
            sd, L = pt.sd[i], pt.L[i]
            for m, key in enumerate(_effect_keys(blk, "_sigma")):
                lp += _prior_logpdf(keys.take(key), sd[m])
            if blk.pooling == "correlated":
                lp += _lkj_cholesky_logpdf(L, keys.take().values()["eta"])
            Lam = np.diag(sd) @ L
            if f"z_{i}" in names:
                z = np.linalg.solve(Lam, r.T)
                lp += float(stats.norm.logpdf(z).sum())
            elif f"r_{i}" in names or f"a_{i}" in names:
                lp += float(stats.multivariate_normal(np.zeros(blk.M), Lam @ Lam.T).logpdf(r).sum())
            # otherwise integrated out: no density of its own (see log_lik)
        for p in range(0 if blk.U is None else blk.U.shape[1]):
            lp += _prior_logpdf(keys.take(), pt.gamma[i][p])
    assert keys.pos == len(keys.keys), f"priors not used: {keys.keys[keys.pos:]}"
    return lp


def _group_effects_log_density(blk: Any, i: int, pt: Point, names: set[str]) -> float:
    """The density of a hierarchical term's effects: of z (non-centered) or of r (centered)."""
    sd, L, r = pt.sd[i], pt.L[i], pt.r[i]
    Lam = np.diag(sd) @ L
    if f"z_{i}" in names:
        return float(stats.norm.logpdf(np.linalg.solve(Lam, r.T)).sum())
    return float(stats.multivariate_normal(np.zeros(sd.size), Lam @ Lam.T).logpdf(r).sum())


def _categorical_log_prior(model: Any, pt: Point, names: set[str], keys: _Keys) -> float:
    """The categorical family's log prior: each key once per non-reference category."""
    d = model.design
    cats = list(d.response_levels[1:])
    lp = 0.0
    if pt.Intercept is not None:
        for k, cat in enumerate(cats):
            lp += _prior_logpdf(keys.take(f"Intercept[{cat}]"), pt.Intercept[k])
    for name, levels, sl in d.terms:
        for c, lv in zip(range(sl.start, sl.stop), levels or [None], strict=True):
            for k, cat in enumerate(cats):
                key = name if lv is None else f"{name}[{lv}]"
                lp += _prior_logpdf(keys.take(f"{key}[{cat}]"), pt.b[c, k])
    for i, blk in enumerate(d.blocks, start=1):
        assert blk.pooling == "hierarchical", blk.pooling
        for m, key in enumerate(_effect_keys(blk, "_sigma")):
            for k, cat in enumerate(cats):  # category k's block of M effects
                lp += _prior_logpdf(keys.take(f"{key}[{cat}]"), pt.sd[i][k * blk.M + m])
        lp += _group_effects_log_density(blk, i, pt, names)
    assert keys.pos == len(keys.keys), f"priors not used: {keys.keys[keys.pos:]}"
    return lp


def _categorical_log_lik(model: Any, pt: Point, offset: np.ndarray | None) -> float:
    """log P(y) of the multinomial logit, from scipy's multinomial of one trial per row."""
    assert offset is None, "a categorical model has no offset"
    d = model.design
    kc = _ncat(model) - 1
    eta = np.zeros((d.N, kc))
    if pt.Intercept is not None:
        eta += pt.Intercept + (d.X - d.X.mean(axis=0)) @ pt.b
    else:
        eta += d.X @ pt.b
    for i, blk in enumerate(d.blocks, start=1):
        for k in range(kc):
            r = pt.r[i][:, k * blk.M:(k + 1) * blk.M]
            eta[:, k] += np.sum(r[blk.index] * blk.Z, axis=1)
    logits = np.column_stack([np.zeros(d.N), eta])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    onehot = np.eye(kc + 1)[d.y.astype(int) - 1]
    return float(np.sum(stats.multinomial.logpmf(onehot, 1, p)))


def log_lik(
    model: Any,
    pt: Point,
    names: set[str],
    *,
    offset: np.ndarray | None = None,
    trials: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    cens: np.ndarray | None = None,
    y2: np.ndarray | None = None,
) -> float:
    """Log likelihood of the model's rows at ``pt``, up to a constant.

    ``offset`` (log exposure included), ``trials``, ``weights`` (each row's log-likelihood
    times its weight), ``cens`` (brms's numeric codes) and ``y2`` (upper bounds of interval
    censoring) are the values the model was given.
    """
    d = model.design
    y = d.y
    if getattr(model.family, "name", model.family) == "categorical":
        assert weights is None and cens is None, "no weights or censoring for a categorical model"
        return _categorical_log_lik(model, pt, offset)
    eta = np.zeros(d.N) if offset is None else np.asarray(offset, float).copy()
    if pt.Intercept is not None:
        eta += pt.Intercept + (d.X - d.X.mean(axis=0)) @ pt.b
    elif pt.thresholds is not None:  # the thresholds stand for the intercept: X is centered
        eta += (d.X - d.X.mean(axis=0)) @ pt.b
    else:
        eta += d.X @ pt.b
    marginal = []
    for i, blk in enumerate(d.blocks, start=1):
        if blk.U is not None:
            Uc = blk.U - blk.U.mean(axis=0)
            eta += (Uc @ pt.gamma[i])[blk.index]
        if {f"r_{i}", f"a_{i}", f"z_{i}"} & names or blk.pooling == "unpooled":
            eta += np.sum(pt.r[i][blk.index] * blk.Z, axis=1)
        else:
            marginal.append((i, blk))
    fam = getattr(model.family, "name", model.family)
    if marginal:
        assert fam == "gaussian" and len(marginal) == 1, "only Gaussian models integrate effects out"
        i, blk = marginal[0]
        sigma = pt.sigma if pt.sigma is not None else model.known_sigma
        Lam = np.diag(pt.sd[i]) @ pt.L[i]
        ll = 0.0
        for j in range(blk.J):
            rows = blk.index == j
            Z = blk.Z[rows]
            cov = sigma**2 * np.eye(rows.sum()) + Z @ Lam @ Lam.T @ Z.T
            ll += float(stats.multivariate_normal(eta[rows], cov).logpdf(y[rows]))
        return ll
    for name, (icpt, b) in (pt.dpars or {}).items():
        # each row's value from its formula: logit link for a probability (zi, hu), log else
        dp = d.dpars[name]
        lin = (icpt or 0.0) + ((dp.X - dp.X.mean(axis=0)) if icpt is not None else dp.X) @ b
        for i, blk in enumerate(d.all_blocks, start=1):  # the group terms of its formula
            if blk.dpar == name:
                lin = lin + np.sum(pt.r[i][blk.index] * blk.Z, axis=1)
        pt = replace(pt, **{name: expit(lin) if name in ("zi", "hu") else np.exp(lin)})
    ll = _special_log_lik(model, fam, pt, y, eta, trials)
    if ll is None:
        dist = _response_dist(model, fam, pt, eta, trials)
        discrete = fam in ("bernoulli", "binomial", "poisson", "negbinomial")
        ll = dist.logpmf(y) if discrete else dist.logpdf(y)
        if cens is not None:  # brms's codes: -1 left, 1 right, 2 interval (y to y2); for counts Y >= y
            cens = np.asarray(cens)
            below = y - 1 if discrete else y
            ll = np.where(cens == -1, dist.logcdf(y), ll)
            ll = np.where(cens == 1, dist.logsf(below), ll)
            y2 = np.asarray(y2, float)
            hi, lo = dist.logcdf(y2), dist.logcdf(below)
            with np.errstate(divide="ignore", invalid="ignore"):
                # the difference of the CDFs, or in the upper tail of the CCDFs (accurate there)
                upper = dist.logsf(below) + np.log1p(-np.exp(dist.logsf(y2) - dist.logsf(below)))
                ll = np.where(cens == 2, np.where(lo > np.log(0.5), upper, hi + np.log1p(-np.exp(lo - hi))), ll)
    else:
        assert cens is None, f"no censored reference for family {fam!r}"
    if weights is not None:
        ll = ll * np.asarray(weights, float)
    return float(np.sum(ll))


def _response_dist(model: Any, fam: str, pt: Point, eta: np.ndarray, trials: np.ndarray | None) -> Any:
    """The response distribution of every row, frozen scipy.stats."""
    sigma = pt.sigma if pt.sigma is not None else model.known_sigma
    if fam == "gaussian":
        return stats.norm(eta, sigma)
    if fam == "student":
        return stats.t(pt.nu, eta, sigma)
    if fam in ("bernoulli", "binomial"):
        p = expit(eta) if model.family.link == "logit" else stats.norm.cdf(eta)  # probit (cloglog: above)
        if fam == "bernoulli":
            return stats.bernoulli(p)
        assert trials is not None, "a binomial model's reference needs its trials"
        return stats.binom(np.asarray(trials), p)
    if fam == "poisson":
        return stats.poisson(np.exp(eta))
    if fam == "negbinomial":
        return stats.nbinom(pt.shape, pt.shape / (pt.shape + np.exp(eta)))
    if fam == "gamma":
        return stats.gamma(pt.shape, scale=np.exp(eta) / pt.shape)
    if fam == "lognormal":
        return stats.lognorm(sigma, scale=np.exp(eta))
    if fam == "beta":
        mu = expit(eta)
        return stats.beta(mu * pt.phi, (1 - mu) * pt.phi)
    raise AssertionError(f"no reference likelihood for family {fam!r}")


def _special_log_lik(
    model: Any, fam: str, pt: Point, y: np.ndarray, eta: np.ndarray, trials: np.ndarray | None
) -> np.ndarray | None:
    """Each row's log-likelihood where no frozen scipy distribution gives it (None elsewhere):
    the cloglog link (exact where P rounds to 1), zero-inflated and hurdle, cumulative."""
    if fam in ("bernoulli", "binomial") and model.family.link == "cloglog":
        # log P = log(1 - exp(-e^eta)) and log(1 - P) = -e^eta, exact where P rounds to 1
        n = np.ones_like(y) if fam == "bernoulli" else np.asarray(trials)
        e = np.exp(eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.where(y > 0, y * np.log(-np.expm1(-e)), 0.0)
        return gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1) + lp - (n - y) * e
    if fam.startswith(("zero_inflated_", "hurdle_")):
        if fam.endswith("poisson"):
            base = stats.poisson(np.exp(eta))
        elif fam.endswith("negbinomial"):
            base = stats.nbinom(pt.shape, pt.shape / (pt.shape + np.exp(eta)))
        else:
            sigma = pt.sigma if pt.sigma is not None else model.known_sigma
            base = stats.lognorm(sigma, scale=np.exp(eta))
        pos = y > 0
        if fam.endswith("lognormal"):
            logp, p_pos = base.logpdf(np.where(pos, y, 1.0)), 1.0
        else:
            logp, p_pos = base.logpmf(y), base.sf(0)
        if fam.startswith("zero_inflated_"):
            return np.where(pos, np.log1p(-pt.zi) + logp, np.log(pt.zi + (1 - pt.zi) * base.pmf(0)))
        return np.where(pos, np.log1p(-pt.hu) + logp - np.log(p_pos), np.log(pt.hu))
    if fam == "cumulative":
        F = stats.logistic.cdf if model.family.link == "logit" else stats.norm.cdf
        edges = np.concatenate([[-np.inf], pt.thresholds, [np.inf]])
        k = y.astype(int)
        return np.log(F(edges[k] - eta) - F(edges[k - 1] - eta))
    return None


@dataclass
class Check:
    """Stan's log density against the reference at several points (see :func:`check_program`)."""

    stan: np.ndarray  # Stan's log density with the likelihood, per point
    stan_prior: np.ndarray  # ... and with prior_only = 1
    ref_prior: np.ndarray  # reference log prior, per point
    ref_lik: np.ndarray  # reference log likelihood, per point

    @property
    def spread(self) -> float:
        """How much Stan minus the reference (prior + likelihood) moves over the points."""
        return float(np.ptp(self.stan - self.ref_prior - self.ref_lik))

    @property
    def prior_spread(self) -> float:
        """How much Stan's prior-only density minus the reference prior moves."""
        return float(np.ptp(self.stan_prior - self.ref_prior))

    @property
    def lik_range(self) -> float:
        """How much the reference likelihood moves over the points (the data speak)."""
        return float(np.ptp(self.ref_lik))

    def ok(self, tol: float = 1e-6) -> bool:
        """Equal up to a constant, with and without the likelihood, and the likelihood moves."""
        scale = 1.0 + float(np.max(np.abs(self.ref_lik)))
        return self.spread < tol * scale and self.prior_spread < tol * scale and self.lik_range > 1e-3

    def describe(self) -> str:
        """One line for reports."""
        return (
            f"spread {self.spread:.2e} (prior only {self.prior_spread:.2e}); "
            f"likelihood moves by {self.lik_range:.3g}"
        )


def check_program(
    model: Any,
    compiled: Any,
    *,
    threads: bool = False,
    offset: np.ndarray | None = None,
    trials: np.ndarray | None = None,
    n_points: int = 4,
    seed: int = 1,
    **rows: Any,
) -> Check:
    """Evaluate the compiled program and the reference at ``n_points`` random points.

    ``compiled`` is the CmdStanModel of ``model.program(threads=threads)``; its data are what
    hbstan hands CmdStan when sampling (``pointwise`` off). ``rows``: the ``weights``, ``cens``
    and ``y2`` the model was given (see :func:`log_lik`).
    """
    names = program_parameters(compiled)
    rng = np.random.default_rng(seed)
    data = {
        po: model.stan_data_for(prior_only=po, threads=threads, pointwise=False, draw_effects=False)
        for po in (False, True)
    }
    out: dict[str, list[float]] = {"stan": [], "stan_prior": [], "ref_prior": [], "ref_lik": []}
    for _ in range(n_points):
        pt = random_point(model, rng)
        params = stan_params(model, pt, names)
        for key, po in (("stan", False), ("stan_prior", True)):
            lp = compiled.log_prob(params=params, data=data[po], jacobian=False, sig_figs=16)
            out[key].append(float(lp["lp__"].iloc[0]))
        out["ref_prior"].append(log_prior(model, pt, names))
        out["ref_lik"].append(log_lik(model, pt, names, offset=offset, trials=trials, **rows))
    return Check(**{k: np.asarray(v) for k, v in out.items()})


def grid_data(n: int = 160, seed: int = 5) -> Any:
    """A small data set with a response for every family, predictors, groups and offsets.

    Columns: ``x``, ``x2`` (numbers), ``c`` (3 categories), ``g`` (12 groups) with group-level
    predictor ``u``, ``h`` (5 groups, crossed with g), ``off`` (an offset), ``t`` (exposure),
    responses ``y`` (gaussian), ``yb`` (0/1), ``yk`` out of ``nt`` (binomial), ``yp`` (counts),
    ``yg`` (gamma, positive), ``yl`` (lognormal, positive), ``yq`` (beta, in (0, 1)), ``yz``
    (counts with extra zeros), ``yh`` (zero or positive), ``yo`` (ordinal, 1..5), ``ycat`` (unordered: bus, car, train); weights
    ``w``, censoring codes ``cc`` and the upper bounds ``y_hi``, ``yp_hi``, ``yg_hi``, ``yl_hi``.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    J, H = 12, 5
    g = np.arange(n) % J
    h = rng.integers(0, H, n)
    u = np.linspace(-1, 1, J)
    x = rng.normal(size=n)
    eta = 0.4 + 0.5 * x + rng.normal(0, 0.5, J)[g] + rng.normal(0, 0.3, H)[h] + 0.3 * u[g]
    df = pd.DataFrame(
        {
            "x": x,
            "x2": rng.normal(size=n),
            "c": rng.choice(["lo", "mid", "hi"], n),
            "g": [f"g{j:02d}" for j in g],
            "h": [f"h{k}" for k in h],
            "u": u[g],
            "off": rng.normal(0, 0.3, n),
            "t": rng.uniform(0.5, 2.0, n),
        }
    )
    df["y"] = eta + rng.normal(0, 1, n)
    df["yb"] = (rng.random(n) < expit(eta)).astype(int)
    df["nt"] = rng.integers(1, 12, n)
    df["yk"] = rng.binomial(df["nt"], expit(eta))
    df["yp"] = rng.poisson(df["t"] * np.exp(eta))
    # drawn after the others, which stay as they were
    df["yg"] = rng.gamma(3.0, np.exp(eta) / 3.0)
    df["yl"] = np.exp(eta + rng.normal(0, 0.6, n))
    df["yq"] = rng.beta(expit(eta) * 8.0, expit(-eta) * 8.0)
    # zero-inflated counts and hurdle amounts: 30% extra zeros
    df["yz"] = np.where(rng.random(n) < 0.3, 0, df["yp"])
    df["yh"] = np.where(rng.random(n) < 0.3, 0.0, df["yl"])
    df["yo"] = 1 + np.sum(eta[:, None] + rng.logistic(size=n)[:, None] > np.array([-0.8, 0.2, 1.0, 1.9]), axis=1)
    # weights and censoring (weights(w), cens(cc, upper)) from a generator of their own, so the
    # columns above stay as they were: codes -1, 0, 1, 2 (brms's), and the upper bounds of
    # interval censoring of each response (y on the other rows)
    extra = np.random.default_rng(seed + 1000)
    df["w"] = extra.uniform(0.0, 2.5, n)
    df["cc"] = extra.choice([-1, 0, 1, 2], n, p=[0.2, 0.4, 0.2, 0.2])
    interval = df["cc"] == 2
    df["y_hi"] = np.where(interval, df["y"] + extra.uniform(0.2, 2.0, n), df["y"])
    df["yp_hi"] = np.where(interval, df["yp"] + extra.integers(0, 4, n), df["yp"])
    df["yg_hi"] = np.where(interval, df["yg"] * extra.uniform(1.2, 3.0, n), df["yg"])
    df["yl_hi"] = np.where(interval, df["yl"] * extra.uniform(1.2, 3.0, n), df["yl"])
    # an unordered response in 3 categories (categorical), from a generator of its own
    cat = np.random.default_rng(seed + 2000)
    logits = np.column_stack([np.zeros(n), eta - 0.4, 0.3 - 0.6 * x])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    df["ycat"] = np.array(["bus", "car", "train"])[(cat.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
    return df
