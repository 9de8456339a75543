"""The PyMC backend: the Stan program of a :class:`~hbstan.Model`, built again in PyMC.

:func:`build_pymc_model` turns a Model into a ``pymc.Model`` with the same likelihood, link,
priors and parameterization as the rendered Stan program:

* the population-level predictors are centered (``Xc = X - mean(X)``) and the prior on
  ``"Intercept"`` applies to the intercept at the predictors' means, as in Stan; the
  reported ``Intercept`` is on the original scale (Stan's ``b_Intercept``);
* group-level predictors are centered over the groups (``Uc = U - mean(U)``);
* hierarchical terms: ``r[:, m] ~ Normal(0, sd[m])`` (centered) or ``r = z * sd`` with
  ``z ~ Normal(0, 1)`` (non-centered);
* correlated terms: ``sd`` with its own prior, a correlation matrix with an LKJ(eta) prior
  whose unconstrained parameters are Stan's (canonical partial correlations through
  ``tanh`` and the Cholesky factor built by stick-breaking, see :class:`CholeskyCorrTransform`),
  and ``r = (diag(sd) L z)^T`` (non-centered) or ``r[j] ~ MvNormal(0, diag(sd) L)``;
* each term is centered or non-centered exactly as in the Stan program (see
  :func:`parameterizations`), and a centered term that the program centers on the intercept
  samples the group intercepts ``a = Intercept + r`` as Stan does: the same density, and the
  same geometry for the sampler;
* a prior of a positive parameter (``sigma``, group SDs) from a family on the whole real
  line (Normal, StudentT, Cauchy) is truncated at zero, which is what Stan's ``<lower=0>``
  declaration does; a half-distribution (HalfNormal, HalfCauchy, HalfStudentT) given to an
  unconstrained parameter is the full distribution at location 0, as Stan renders it.

The user-facing quantities are ``pm.Deterministic`` variables named, dimensioned and
labelled as in the Stan fit's InferenceData (``Intercept``, predictor names, ``sigma``,
``1|county``, ``1|county_sigma``, ``county_corr``, group-predictor names). Internal variables
carry the prefix ``_hb_``.

:func:`sample_pymc` samples that model and returns a :class:`~hbstan.Fit` whose ``idata`` has
the same groups, variable names, dims and coords as a CmdStan fit.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

try:
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.logprob.transforms import Transform
except ImportError as _err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the PyMC backend needs PyMC, an optional extra of hbstan: pip install 'hbstan[pymc]' "
        f"({_err})"
    ) from None

from .centering import KAPPA_CENTERED, term_evidence
from .fit import Fit
from .idata import OBS_DIM, build_idata, resolve_pointwise
from .options import recorded_settings
from .pointwise import log_lik_and_y_rep, pointwise_groups
from .priors import Beta, Prior

if TYPE_CHECKING:

    from .spec import ModelSpec as Model

__all__ = [
    "build_pymc_model", "sample_pymc", "parameterizations", "Parameterization", "CholeskyCorrTransform", "NUTS_SAMPLERS",
    "linear_predictor_and_aux", "lkj_correlation", "prior_rv",
]

log = logging.getLogger("hbstan")

PREFIX = "_hb_"
NUTS_SAMPLERS = ("pymc", "nutpie", "numpyro", "blackjax")

# sample-stat names of the Stan fit, with the names PyMC's samplers give them
_STAT_ALIASES = {
    "lp": ("lp", "model_logp", "logp"),
    "acceptance_rate": ("acceptance_rate", "mean_tree_accept"),
    "step_size": ("step_size",),
    "tree_depth": ("tree_depth", "depth"),
    "n_steps": ("n_steps", "tree_size"),
    "diverging": ("diverging",),
    "energy": ("energy",),
}


# ---------------------------------------------------------------------------------------------
# correlation matrices with Stan's unconstraining transform
# ---------------------------------------------------------------------------------------------
def _cholesky_corr_from_cpcs(z: Any, K: int) -> tuple[Any, Any]:
    """Cholesky factor of a correlation matrix from canonical partial correlations ``z``.

    Stan's ``cholesky_corr_constrain``: ``z`` holds the strictly-lower entries row by row,
    each in (-1, 1). Returns ``(L, log_jac)`` where ``log_jac`` is the log Jacobian of the
    stick-breaking step (not of ``tanh``).
    """
    rows: list[list[Any]] = [[pt.constant(1.0)] + [pt.constant(0.0)] * (K - 1)]
    log_jac: Any = pt.constant(0.0)
    k = 0
    for i in range(1, K):
        row = [z[k]]
        k += 1
        sum_sqs = z[k - 1] ** 2
        for _ in range(1, i):
            log_jac = log_jac + 0.5 * pt.log1p(-sum_sqs)
            x = z[k] * pt.sqrt(1.0 - sum_sqs)
            k += 1
            row.append(x)
            sum_sqs = sum_sqs + x**2
        row.append(pt.sqrt(1.0 - sum_sqs))
        row += [pt.constant(0.0)] * (K - 1 - i)
        rows.append(row)
    L = pt.stack([pt.stack(r) for r in rows])
    return L, log_jac


def _lower_cholesky(C: Any, K: int, *, unit_diagonal: bool = False) -> Any:
    """Cholesky factor of a small K x K matrix, spelled out in scalar operations.

    Far cheaper than ``pt.linalg.cholesky`` and its gradient (SciPy calls) for the few
    varying effects of a correlated term.
    """
    L: list[list[Any]] = [[pt.constant(0.0)] * K for _ in range(K)]
    for i in range(K):
        for j in range(i + 1):
            s: Any = pt.constant(0.0)
            for k in range(j):
                s = s + L[i][k] * L[j][k]
            if i == j:
                L[i][i] = pt.sqrt((1.0 if unit_diagonal else C[i, i]) - s)
            else:
                L[i][j] = (C[i, j] - s) / L[j][j]
    return pt.stack([pt.stack(row) for row in L])


def _lower_tri_inverse(A: Any, K: int) -> Any:
    """Inverse of small lower-triangular K x K matrices (last two axes) by forward substitution."""
    zero = pt.zeros_like(A[..., 0, 0])
    inv: list[list[Any]] = [[zero] * K for _ in range(K)]
    for i in range(K):
        inv[i][i] = 1.0 / A[..., i, i]
        for j in range(i):
            s: Any = zero
            for k in range(j, i):
                s = s + A[..., i, k] * inv[k][j]
            inv[i][j] = -s * inv[i][i]
    return pt.stack([pt.stack(row, axis=-1) for row in inv], axis=-2)


class CholeskyCorrTransform(Transform):
    """Stan's unconstraining transform of a correlation matrix, for ``pm.LKJCorr``.

    The constrained value is ``pm.LKJCorr``'s vector of upper-triangular correlations
    (``np.triu_indices(K, 1)`` order). The unconstrained vector ``y`` holds Stan's canonical
    partial correlations before ``tanh``: ``z = tanh(y)`` fills the strictly lower triangle
    of the Cholesky factor ``L`` by stick-breaking, and ``C = L L^T``. ``log_jac_det`` is the
    log Jacobian of ``y -> C``: Stan's ``cholesky_factor_corr`` Jacobian (``y -> L``) plus
    the ``L -> C`` term that Stan's ``lkj_corr_cholesky`` density adds, so that
    ``LKJCorr``'s density times this Jacobian is Stan's target, up to a constant.

    Parameters
    ----------
    K : int
        Size of the correlation matrix (at least 2).
    """

    name = "cholesky_corr"
    ndim_supp = 1

    def __init__(self, K: int) -> None:
        if int(K) < 2:
            raise ValueError(f"a correlation matrix transform needs K >= 2, got K={K!r}")
        self.K = int(K)
        self._triu = np.triu_indices(self.K, 1)

    def backward(self, value: Any, *inputs: Any) -> Any:  # noqa: D102
        L, _ = _cholesky_corr_from_cpcs(pt.tanh(value), self.K)
        C = L @ L.T
        return C[self._triu]

    def forward(self, value: Any, *inputs: Any) -> Any:  # noqa: D102
        K = self.K
        tri = pt.zeros((K, K))
        tri = pt.set_subtensor(tri[self._triu], value)
        L = _lower_cholesky(tri + tri.T, K, unit_diagonal=True)
        out = []
        for i in range(1, K):
            sum_sqs: Any = pt.constant(0.0)
            for j in range(i):
                out.append(L[i, j] / pt.sqrt(1.0 - sum_sqs))
                sum_sqs = sum_sqs + L[i, j] ** 2
        return pt.arctanh(pt.stack(out))

    def log_jac_det(self, value: Any, *inputs: Any) -> Any:  # noqa: D102
        K = self.K
        z = pt.tanh(value)
        L, lj = _cholesky_corr_from_cpcs(z, K)
        lj = lj + pt.sum(pt.log1p(-(z**2)))  # d tanh(y) / dy = 1 - z^2
        # L -> C = L L^T: sum over rows i = 1..K-1 (0-based) of (K - i - 1) log L_ii
        for i in range(1, K - 1):
            lj = lj + (K - i - 1) * pt.log(L[i, i])
        return lj


def _mvn_chol_logp(value: Any, mu: Any, chol: Any) -> Any:
    # chol may arrive broadcast to the batch shape (J, M, M); M is static
    M = value.type.shape[-1] or chol.type.shape[-1]
    if M is None:  # pragma: no cover - hbstan always gives static shapes
        raise ValueError("the centered MvNormal needs a static number of effects")
    w = pt.sum(_lower_tri_inverse(chol, M) * (value - mu)[..., None, :], axis=-1)
    log_det = pt.sum(pt.log(pt.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * pt.sum(w**2, axis=-1) - log_det - 0.5 * M * np.log(2 * np.pi)


def _mvn_chol_random(
    mu: np.ndarray, chol: np.ndarray, rng: np.random.Generator | None = None, size: Any = None
) -> np.ndarray:
    M = np.shape(chol)[-1]
    rng = rng if rng is not None else np.random.default_rng()
    shape = tuple(np.atleast_1d(size)) if size is not None else ()
    z = rng.standard_normal((*shape, M))
    return np.asarray(mu) + np.einsum("...ij,...j->...i", np.asarray(chol), z)  # chol may be broadcast


def _mean_support_point(rv: Any, size: Any, mu: Any, chol: Any) -> Any:
    return pt.zeros_like(rv) + mu


def _centered_mvnormal(name: str, mu: Any, chol: Any, J: int, M: int) -> Any:
    """J rows ``r[j] ~ MvNormal(mu, chol chol^T)``, as Stan's ``multi_normal_cholesky``.

    A CustomDist whose density inverts the small triangular ``chol`` in scalar operations
    instead of calling SciPy's triangular solver (and its gradient) at every step.
    """
    return pm.CustomDist(
        name,
        mu,
        chol,
        logp=_mvn_chol_logp,
        random=_mvn_chol_random,
        support_point=_mean_support_point,
        signature="(m),(m,m)->(m)",
        shape=(J, M),
    )


# ---------------------------------------------------------------------------------------------
# priors
# ---------------------------------------------------------------------------------------------
def _prior_dist(
    prior: Prior,
    vals: dict[str, Any],
    *,
    positive: bool,
    shape: tuple[int, ...],
    lower: float = 0.0,
    upper: float = math.inf,
) -> Any:
    """An unregistered PyMC distribution with the density Stan gives ``prior``.

    ``vals`` maps the prior's Stan argument names (``loc``, ``scale``, ``nu``, ``rate``,
    ``shape``) to scalars or arrays broadcasting against ``shape``. ``positive`` says whether
    the Stan parameter is declared with a lower bound, ``lower`` (0 unless given), and
    ``upper`` an upper bound (a probability's 1; a Beta prior is on (0, 1) already).
    """
    if positive and math.isfinite(upper) and not isinstance(prior, Beta):  # e.g. <lower=0, upper=1>
        base = _prior_dist(prior, vals, positive=False, shape=shape)
        return pm.Truncated.dist(base, lower=lower, upper=upper)
    if positive and lower != 0.0:  # a bound above 0 (e.g. a Student-t's nu > 1): truncate there
        return pm.Truncated.dist(_prior_dist(prior, vals, positive=False, shape=shape), lower=lower)
    fam = prior.family
    kw: dict[str, Any] = {"shape": shape}
    if fam == "Normal":
        base = pm.Normal.dist(mu=vals["loc"], sigma=vals["scale"], **kw)
    elif fam == "StudentT":
        base = pm.StudentT.dist(nu=vals["nu"], mu=vals["loc"], sigma=vals["scale"], **kw)
    elif fam == "Cauchy":
        base = pm.Cauchy.dist(alpha=vals["loc"], beta=vals["scale"], **kw)
    elif fam == "Logistic":
        base = pm.Logistic.dist(mu=vals["loc"], s=vals["scale"], **kw)
    elif fam == "HalfNormal":
        if positive:
            return pm.HalfNormal.dist(sigma=vals["scale"], **kw)
        base = pm.Normal.dist(mu=0.0, sigma=vals["scale"], **kw)
    elif fam == "HalfCauchy":
        if positive:
            return pm.HalfCauchy.dist(beta=vals["scale"], **kw)
        base = pm.Cauchy.dist(alpha=0.0, beta=vals["scale"], **kw)
    elif fam == "HalfStudentT":
        if positive:
            return pm.HalfStudentT.dist(nu=vals["nu"], sigma=vals["scale"], **kw)
        base = pm.StudentT.dist(nu=vals["nu"], mu=0.0, sigma=vals["scale"], **kw)
    elif fam == "Exponential":
        # Stan rejects negative values of an unconstrained parameter: the same support
        return pm.Exponential.dist(lam=vals["rate"], **kw)
    elif fam == "Gamma":
        return pm.Gamma.dist(alpha=vals["shape"], beta=vals["rate"], **kw)
    elif fam == "InverseGamma":
        return pm.InverseGamma.dist(alpha=vals["shape"], beta=vals["scale"], **kw)
    elif fam == "Beta":
        return pm.Beta.dist(alpha=vals["alpha"], beta=vals["beta"], **kw)
    else:
        valid = [
            "Normal", "StudentT", "Cauchy", "Logistic", "HalfNormal", "HalfCauchy", "HalfStudentT", "Exponential", "Gamma",
            "InverseGamma", "Beta",
        ]
        raise ValueError(f"prior family {fam!r} has no PyMC translation here; valid families: {valid}")
    if positive:
        return pm.Truncated.dist(base, lower=0.0)
    return base


def _register(model: "pm.Model", name: str, dist: Any, dims: tuple[str, ...] | None = None) -> Any:
    return model.register_rv(dist, name, dims=dims)


def _class_rv(
    m: "Model",
    pmodel: "pm.Model",
    name: str,
    keys: list[str],
    what: str,
    *,
    positive: bool,
    shape: tuple[int, ...],
    lower: float = 0.0,
    upper: float = math.inf,
) -> Any:
    """A (vector) parameter whose elements have the priors ``m.priors[key]`` of one family."""
    prior, values = m.class_prior(keys, what)
    assert prior is not None
    vals = {a: np.asarray(v, dtype=float) for a, v in values.items()}
    if not shape:
        vals = {a: float(v[0]) for a, v in vals.items()}
    return _register(pmodel, name, _prior_dist(prior, vals, positive=positive, shape=shape, lower=lower, upper=upper))


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
class Parameterization(NamedTuple):
    """How the PyMC model samples one varying term's effects."""

    centered: bool  # r ~ N(0, sd) (True) or r = sd * z, z ~ N(0, 1) (False)
    on_intercept: bool  # centered, with the group intercepts sampled as a = Intercept + r
    reason: str  # where the choice comes from


def parameterizations(m: Model) -> list[Parameterization]:
    """Per varying term of ``m``, how the PyMC model samples its effects.

    A term the Stan program samples is sampled the same way: centered or non-centered as
    the spec chose (``blk.centered``: the ``centered=`` option, or :mod:`hbstan.centering`'s
    choice from the data under ``"auto"``), and, where the program centers it on the
    intercept, with the group intercepts as parameters (``a = Intercept + r``).

    A term the program integrates out (``m.marginalized``) has no parameterization there: its
    sampler moves only in the population-level parameters. The PyMC model samples the
    effects, and comes closest to that geometry with the parameterization whose extra
    variables depend least on the rest: centered where each group's data pin its effects
    down well compared with their spread, non-centered where they do not. Under
    ``centered="auto"`` that is decided from :func:`hbstan.centering.term_evidence`'s ratio
    tau^2 / v at its lower 95% bound, with the centering rule's threshold
    (:data:`~hbstan.centering.KAPPA_CENTERED`), but without its minimum number of groups:
    two groups of 1000 and 200 rows (ratio above 3 at the lower bound) sampled non-centered
    put PyMC's group SD at a mean of 1.5 with 91 divergences where the posterior mean is
    2.46; centered, 2.56 and 2.43 in two runs. A ``centered=`` given explicitly is followed.
    A centered term is centered on the intercept, as the program would center it.

    Crossed terms whose group intercepts' mean the program samples apart (``split`` in the
    program's structure, :meth:`ModelSpec._split_means`) are sampled here without that split,
    as the program sampled them before it: under ``"auto"`` the rule centers at most one of
    them (:func:`hbstan.centering.term_evidence` with ``one_centered_intercept=True``), on the
    intercept. The program also centers that term's slopes on their population-level
    coefficients (``center_slopes``); the PyMC model centers only its intercepts.
    """
    d = m.design
    ctx = m.structure()[0]["blocks"]
    intercept_taken = any(b["centered"] and b["on_intercept"] for b in ctx)
    unsplit: list[Any] = []  # the rule's choices without the split, computed when needed
    out = []
    for b, blk in zip(ctx[: len(d.blocks)], d.blocks, strict=True):  # (a distributional formula's terms: non-centered)
        if b.get("split"):
            option = m.options.get("centered", "auto")
            option = option.get(blk.factor, "auto") if isinstance(option, Mapping) else option
            if option == "auto":
                unsplit = unsplit or term_evidence(
                    m.family, d.y, d.X, m.offset, d.blocks, trials=m.trials, weights=m.weights,
                    known_var=m.se**2 if m.se is not None and m.fixed_aux.get("sigma") == 0.0 else None,
                    censored=None if m.cens is None else m.cens != 0,
                )
                centered, reason = unsplit[b["i"] - 1].centered, "the rule without the program's split of the mean"
            else:
                centered, reason = bool(option), f"centered={option!r} given (the program splits off the mean)"
            on = bool(centered and not intercept_taken)
            intercept_taken = intercept_taken or on
            out.append(Parameterization(centered, on, reason))
        elif blk.pooling == "unpooled":
            out.append(Parameterization(False, False, "unpooled: each group's effects have their own prior"))
        elif b["marginal"]:
            option = m.options.get("centered", "auto")
            option = option.get(blk.factor, "auto") if isinstance(option, Mapping) else option
            if option == "auto":
                ev = term_evidence(m.family, d.y, d.X, m.offset, d.blocks, trials=m.trials)[b["i"] - 1]
                low = min(ev.kappa_low) if ev.kappa_low else 0.0
                centered = low > KAPPA_CENTERED
                reason = (
                    f"integrated out by the Stan program; tau^2/v at the median group {min(ev.kappa, default=0.0):.2g}, "
                    f"lower bound {low:.2g} ({'above' if centered else 'not above'} {KAPPA_CENTERED:g})"
                )
            else:
                centered, reason = bool(option), f"integrated out by the Stan program; centered={option!r} given"
            on = bool(centered and blk.has_intercept and d.has_intercept and not intercept_taken)
            intercept_taken = intercept_taken or on
            out.append(Parameterization(centered, on, reason))
        else:
            out.append(
                Parameterization(bool(b["centered"]), bool(b["centered"] and b["on_intercept"]), "as the Stan program")
            )
    return out


def _obs_name(m: "Model") -> str:
    resp = m.design.response
    taken = {p.name for p in m.params}
    return resp if resp not in taken and not resp.startswith(PREFIX) else f"{PREFIX}y"


def _one_predictor(
    m: Model, pmodel: pm.Model, stan: dict[str, Any], given_aux: Mapping[str, Any] | None = None,
    given_effects: Mapping[int, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Build the linear predictor (N,) and the family's auxiliary parameters, as the program.

    The Stan-named quantities go into ``stan``; ``given_aux`` holds auxiliary parameters
    built elsewhere (shared with another response), and ``given_effects`` the group effects
    (J, M) of some varying terms (by number), which get no variables here.
    """
    d = m.design
    # --- population-level part -----------------------------------------------------------
    Xc = d.X - d.X.mean(axis=0) if (d.centers_X and d.K) else d.X
    intercept = cuts = None
    if d.has_intercept:
        intercept = _class_rv(m, pmodel, f"{PREFIX}Intercept", ["Intercept"], "the intercept", positive=False, shape=())
    if d.thresholds:  # an ordinal family's ordered thresholds, at the predictors' means
        tkeys = [f"Intercept[{lab}]" for lab in m.threshold_labels]
        prior, values = m.class_prior(tkeys, "the thresholds")
        assert prior is not None
        vals = {a: np.asarray(v, dtype=float) for a, v in values.items()}
        dist = _prior_dist(prior, vals, positive=False, shape=(len(tkeys),))
        # Stan's ordered[]: the same transform and Jacobian
        cuts = pmodel.register_rv(
            dist, f"{PREFIX}Intercept", transform=pm.distributions.transforms.ordered,
            initval=np.linspace(-1.0, 1.0, len(tkeys)),
        )
    b = None
    if d.K:
        bkeys = [k for n, lv, _ in d.terms for k in ([f"{n}[{x}]" for x in lv] if lv else [n])]
        b = _class_rv(m, pmodel, f"{PREFIX}b", bkeys, "the coefficients (class 'b')", positive=False, shape=(d.K,))
        stan["b"] = b
    aux: dict[str, Any] = {}  # the family's auxiliary parameters: known values or free variables
    for a in m.family.aux:
        dp = d.dpars.get(a.name)
        if dp is not None:  # its own formula: exp or inv_logit(Intercept + centered X b), as the program
            log_v: Any = 0.0
            Xd = dp.X - dp.X.mean(axis=0) if dp.has_intercept else dp.X
            if dp.has_intercept:
                di = _class_rv(
                    m, pmodel, f"{PREFIX}Intercept_{a.name}", [f"{a.name}_Intercept"],
                    f"the intercept of {a.name}", positive=False, shape=(),
                )
                log_v = log_v + di
            if dp.K:
                db = stan[f"b_{a.name}"] = _class_rv(
                    m, pmodel, f"{PREFIX}b_{a.name}", [k for k, _ in m.dpar_keys(a.name)],
                    f"the coefficients of {a.name}", positive=False, shape=(dp.K,),
                )
                log_v = log_v + pt.dot(pt.as_tensor_variable(Xd), db)
                if dp.has_intercept:
                    stan[f"b_{a.name}_Intercept"] = di - pt.dot(dp.X.mean(axis=0), db)
            elif dp.has_intercept:
                stan[f"b_{a.name}_Intercept"] = di
            # its group terms, numbered after the mean's as in the program, non-centered
            for i, blk in enumerate(d.all_blocks, start=1):
                if blk.dpar == a.name:
                    log_v = log_v + _dpar_group_term(m, pmodel, stan, blk, i)
            inverse = pt.sigmoid if a.link == "logit" else pt.exp
            aux[a.name] = inverse(log_v) * pt.ones(d.N)
        elif a.name in m.fixed_aux:
            aux[a.name] = m.fixed_aux[a.name]
        elif given_aux is not None and a.name in given_aux:
            aux[a.name] = given_aux[a.name]
        else:
            aux[a.name] = stan[a.name] = _class_rv(
                m, pmodel, f"{PREFIX}{a.name}", [a.name], a.name, positive=True, shape=(), lower=a.lower,
                upper=a.upper,
            )

    eta: Any = pt.as_tensor_variable(np.asarray(m.offset, dtype=float))
    if intercept is not None:
        eta = eta + intercept
    if b is not None:
        eta = eta + pt.dot(pt.as_tensor_variable(Xc), b)
    shift: Any = 0.0  # means_X . b + sum_i means_U_i . gamma_i, for b_Intercept
    if b is not None and d.centers_X:
        shift = pt.dot(d.X.mean(axis=0), b)

    # --- varying terms -----------------------------------------------------------------
    for i, (blk, how) in enumerate(zip(d.blocks, parameterizations(m), strict=True), start=1):
        J, M = blk.J, blk.M
        if given_effects is not None and i in given_effects:
            r = given_effects[i]
        elif blk.pooling == "unpooled":
            r = _class_rv(
                m, pmodel, f"{PREFIX}r_{i}", m.block_keys(blk, ""), f"the effects of {blk.factor}",
                positive=False, shape=(J, M),
            )
        else:
            sd = _class_rv(
                m, pmodel, f"{PREFIX}sd_{i}", m.block_keys(blk, "_sigma"), f"the SDs of {blk.factor}",
                positive=True, shape=(M,),
            )
            stan[f"sd_{i}"] = sd
            if blk.pooling == "correlated":
                cname = next(q.name for q in m.params if q.stan == f"Cor_{i}")
                eta_lkj = float(m.priors[cname].values()["eta"])
                cvec = pm.LKJCorr(
                    f"{PREFIX}L_{i}", n=M, eta=eta_lkj, default_transform=CholeskyCorrTransform(M)
                )
                C = pm.LKJCorr.vec_to_corr_mat(cvec, M)
                stan[f"Cor_{i}"] = C
                chol = sd[:, None] * _lower_cholesky(C, M, unit_diagonal=True)  # diag(sd) L
            if how.centered:
                # as the program: r, or a = r + Intercept (first column) where the term is
                # centered on the intercept (hierarchical centering; the same density)
                name = f"{PREFIX}{'a' if how.on_intercept else 'r'}_{i}"
                if how.on_intercept:
                    # an ordinal model's group intercepts relative to the thresholds' mean
                    level = -pt.mean(cuts) if intercept is None else intercept
                    mu = pt.concatenate([pt.reshape(level, (1,)), pt.zeros(M - 1)])
                else:
                    mu = pt.zeros(M)
                if blk.pooling == "correlated":
                    a = _centered_mvnormal(name, mu, chol, J, M)
                else:
                    a = pm.Normal(name, mu=mu, sigma=sd, shape=(J, M))
                r = a - mu if how.on_intercept else a
            elif blk.pooling == "correlated":
                z = pm.Normal(f"{PREFIX}z_{i}", 0.0, 1.0, shape=(M, J))
                r = pt.dot(chol, z).T
            else:
                z = pm.Normal(f"{PREFIX}z_{i}", 0.0, 1.0, shape=(J, M))
                r = z * sd
        stan[f"r_{i}"] = r
        g = blk.index
        for col in range(M):
            zcol = blk.Z[:, col]
            term = r[g, col]
            eta = eta + (term if np.all(zcol == 1.0) else term * zcol)
        if blk.U is not None:
            gkeys = [q.name for q in m.params if q.stan == f"gamma_{i}"]
            gamma = _class_rv(
                m, pmodel, f"{PREFIX}gamma_{i}", gkeys, f"the group-level predictors of {blk.factor}",
                positive=False, shape=(len(gkeys),),
            )
            stan[f"gamma_{i}"] = gamma
            means_U = blk.U.mean(axis=0)
            eta = eta + pt.dot(blk.U - means_U, gamma)[g]
            if d.centers_X:
                shift = shift + pt.dot(means_U, gamma)
    if intercept is not None:
        stan["b_Intercept"] = intercept - shift
    if cuts is not None:  # P(y <= k) = F(c_k - eta): reported against eta = X b, as the program
        stan["b_Intercept"] = cuts + shift
        aux["thresholds"] = cuts
    return eta, aux


def _dpar_group_term(m: Model, pmodel: pm.Model, stan: dict[str, Any], blk: Any, i: int) -> Any:
    """Add a distributional parameter's group term ``i`` (non-centered) and return its part (N,) of the linear predictor."""
    J, M = blk.J, blk.M
    sd = stan[f"sd_{i}"] = _class_rv(
        m, pmodel, f"{PREFIX}sd_{i}", m.block_keys(blk, "_sigma"), f"the SDs of {blk.factor} in {blk.dpar}'s formula",
        positive=True, shape=(M,),
    )
    if blk.pooling == "correlated":
        cname = next(q.name for q in m.params if q.stan == f"Cor_{i}")
        eta_lkj = float(m.priors[cname].values()["eta"])
        cvec = pm.LKJCorr(f"{PREFIX}L_{i}", n=M, eta=eta_lkj, default_transform=CholeskyCorrTransform(M))
        C = stan[f"Cor_{i}"] = pm.LKJCorr.vec_to_corr_mat(cvec, M)
        chol = sd[:, None] * _lower_cholesky(C, M, unit_diagonal=True)  # diag(sd) L
        r = pt.dot(chol, pm.Normal(f"{PREFIX}z_{i}", 0.0, 1.0, shape=(M, J))).T
    else:
        r = pm.Normal(f"{PREFIX}z_{i}", 0.0, 1.0, shape=(J, M)) * sd
    stan[f"r_{i}"] = r
    part: Any = 0.0
    for col in range(M):
        zcol = blk.Z[:, col]
        term = r[blk.index, col]
        part = part + (term if np.all(zcol == 1.0) else term * zcol)
    return part


def _per_category_predictors(m: Model, pmodel: pm.Model, stan: dict[str, Any]) -> Any:
    """Build the ncat - 1 linear predictors (N, ncat - 1) of a per-category family, as the program.

    Each non-reference category has its intercept, coefficients and block of independent group
    effects; the priors' keys run category after category, as the program's ``to_vector(b)``
    and ``sd_i``. The Stan-named quantities go into ``stan`` with the categories on a last
    axis (b (K, ncat - 1), sd_i (M, ncat - 1), r_i (J, M, ncat - 1)).
    """
    d = m.design
    kc = m.ncat - 1
    eta: Any = pt.zeros((d.N, kc))
    intercept = None
    if d.has_intercept:
        intercept = _class_rv(
            m, pmodel, f"{PREFIX}Intercept", m.per_category_keys(["Intercept"]), "the intercept",
            positive=False, shape=(kc,),
        )
        eta = eta + intercept[None, :]
    shift: Any = 0.0
    if d.K:
        Xc = d.X - d.X.mean(axis=0) if d.centers_X else d.X
        bkeys = [k for n, lv, _ in d.terms for k in ([f"{n}[{x}]" for x in lv] if lv else [n])]
        flat = _class_rv(
            m, pmodel, f"{PREFIX}b", m.per_category_keys(bkeys), "the coefficients (class 'b')",
            positive=False, shape=(kc * d.K,),
        )
        b = stan["b"] = flat.reshape((kc, d.K)).T  # (K, ncat - 1): Stan's matrix, column by column
        eta = eta + pt.dot(pt.as_tensor_variable(Xc), b)
        if d.centers_X:
            shift = pt.dot(d.X.mean(axis=0), b)
    if intercept is not None:
        stan["b_Intercept"] = intercept - shift
    for i, (blk, how) in enumerate(zip(d.blocks, parameterizations(m), strict=True), start=1):
        J, M = blk.J, blk.M
        sd = _class_rv(
            m, pmodel, f"{PREFIX}sd_{i}", m.block_keys(blk, "_sigma"), f"the SDs of {blk.factor}",
            positive=True, shape=(kc * M,),
        )
        if how.centered:
            r = pm.Normal(f"{PREFIX}r_{i}", mu=0.0, sigma=sd, shape=(J, kc * M))
        else:
            r = pm.Normal(f"{PREFIX}z_{i}", 0.0, 1.0, shape=(J, kc * M)) * sd
        r3 = r.reshape((J, kc, M))  # category k's block of M columns
        stan[f"sd_{i}"] = sd.reshape((kc, M)).T
        stan[f"r_{i}"] = r3.dimshuffle(0, 2, 1)
        for col in range(M):
            zcol = blk.Z[:, col]
            term = r3[blk.index, :, col]  # (N, ncat - 1)
            eta = eta + (term if np.all(zcol == 1.0) else term * zcol[:, None])
    return eta


def build_pymc_model(m: "Model", *, prior_only: bool = False) -> "pm.Model":
    """The Stan program of ``m`` as a ``pymc.Model``.

    Parameters
    ----------
    m : hbstan.Model
        The model; its design, resolved priors, offset, trials and known sigma are used.
    prior_only : bool, default False
        Leave the likelihood out (the model then samples the prior), like Stan's
        ``prior_only`` flag.

    Returns
    -------
    pymc.Model
        Free variables carry internal names (prefix ``_hb_``); the user-facing quantities
        are deterministics named, dimensioned and labelled as in the Stan fit's posterior.
        The response is observed under its own name (dim ``__obs__``), unless prior_only.

    Raises
    ------
    ValueError
        A prior cannot be translated, or a name clashes with hbstan's internal prefix.

    Notes
    -----
    Importing this module without PyMC installed raises an ImportError that says how to
    install it (``pip install 'hbstan[pymc]'``).
    """
    d = m.design
    for p in m.params:
        if p.name.startswith(PREFIX):
            raise ValueError(
                f"parameter name {p.name!r} starts with {PREFIX!r}, which the PyMC backend keeps "
                "for its internal variables; rename the column"
            )
    coords: dict[str, Any] = {OBS_DIM: np.arange(d.N)}
    for p in m.params:
        for dim, labels in (p.coords or {}).items():
            coords[dim] = list(labels)

    stan: dict[str, Any] = {}  # Stan-named quantities (b_Intercept, b, sigma, sd_i, r_i, ...)
    with pm.Model(coords=coords) as pmodel:
        if m.family.per_category:
            eta = _per_category_predictors(m, pmodel, stan)
            aux: dict[str, Any] = {}
        else:
            eta, aux = _one_predictor(m, pmodel, stan)

        # --- user-facing quantities, named as in the Stan fit --------------------------------
        for p in m.params:
            t = stan[p.stan]
            cat = int(p.per_category)  # a last axis of categories
            if p.kind == "vector":
                t = t[p.cols] if len(p.dims) > cat else t[p.cols.start]
            elif p.kind == "matrix_cols":
                t = t[:, p.cols] if len(p.dims) > 1 + cat else t[:, p.cols.start]
            pm.Deterministic(p.name, t, dims=p.dims or None)

        # --- likelihood ----------------------------------------------------------------------
        if not prior_only:
            if m.se is not None:  # known standard errors, in quadrature with any residual SD
                aux["sigma"] = pt.sqrt(np.square(m.se) + pt.square(aux["sigma"]))
            if m.weights is None and m.cens is None:
                m.family.pymc_likelihood(_obs_name(m), eta, aux, d.y, m.trials, OBS_DIM)
            else:
                pm.Potential(f"{PREFIX}log_lik", pt.sum(row_log_lik(m, eta, aux)))
    return pmodel


def row_log_lik(m: "Model", eta: Any, aux: dict[str, Any]) -> Any:
    """Each row's log-likelihood, censored (``cens()``) and weighted (``weights()``): a tensor (N,).

    Each censoring type gets the rows it codes (brms's codes, as the Stan program): left
    log P(Y <= y), right log P(Y >= y) (for counts P(Y > y - 1)), interval the log difference
    of the CDFs at y2 and y (for counts at y - 1). Weights multiply each row's term.
    """
    d, fam = m.design, m.family
    y = d.y.astype(int) if fam.integer_response else d.y
    below = y - 1 if fam.integer_response else y  # counts: the bound itself is inside
    cens = np.zeros(d.N, dtype=int) if m.cens is None else m.cens
    ll: Any = pt.zeros(d.N)
    for code in (0, -1, 1, 2):
        rows = np.flatnonzero(cens == code)
        if not rows.size:
            continue
        sub = {k: (v[rows] if getattr(v, "ndim", 0) else v) for k, v in aux.items()}  # per-row SDs with se()
        dist = fam.pymc_dist(eta[rows], sub, None if m.trials is None else m.trials[rows])
        if code == 0:
            term = pm.logp(dist, y[rows])
        elif code == -1:
            term = pm.logcdf(dist, y[rows])
        elif code == 1:
            term = pm.logccdf(dist, below[rows])
        else:
            upper = m.cens_upper.astype(int) if fam.integer_response else m.cens_upper
            term = pm.math.logdiffexp(pm.logcdf(dist, upper[rows]), pm.logcdf(dist, below[rows]))
        ll = pt.set_subtensor(ll[rows], term)
    return ll if m.weights is None else ll * m.weights


# ---------------------------------------------------------------------------------------------
# pointwise quantities from the user-facing draws (NumPy, as Stan's generated quantities)
# ---------------------------------------------------------------------------------------------
def pointwise_draws(
    m: "Model", post: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(log_lik, y_rep)`` draws, (chain, draw, N), as the Stan program's generated quantities
    (the same NumPy code as for a Stan fit: :func:`hbstan.pointwise.log_lik_and_y_rep`)."""
    return log_lik_and_y_rep(m, post, rng)


# ---------------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------------
def _stats_from_trace(trace: Any) -> dict[str, np.ndarray]:
    names = set(trace.stat_names)
    out: dict[str, np.ndarray] = {}
    for key, aliases in _STAT_ALIASES.items():
        src = next((a for a in aliases if a in names), None)
        if src is None:
            continue
        vals = trace.get_sampler_stats(src, combine=False, squeeze=True)
        out[key] = np.stack([np.asarray(v).reshape(-1) for v in vals])
    return out


def _stats_from_idata(idata: Any) -> dict[str, np.ndarray]:
    ss = getattr(idata, "sample_stats", None)
    out: dict[str, np.ndarray] = {}
    if ss is None:
        return out
    for key, aliases in _STAT_ALIASES.items():
        src = next((a for a in aliases if a in ss.data_vars), None)
        if src is not None:
            out[key] = np.asarray(ss[src].values)
    return out


def _sample_nutpie(
    pmodel: "pm.Model",
    names: list[str],
    *,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    seed: int | None,
    nuts: dict[str, Any],
    progress_bar: bool,
    inits: dict[str, Any] | None,
    **kwargs: Any,
) -> tuple[Any, float, float]:
    """Compile with nutpie and sample, timing the two apart (as ``pm.sample`` would call it)."""
    import nutpie

    if inits is not None:
        raise ValueError("inits are not passed to nutpie; use nuts_sampler_kwargs={'init_mean': ...}")
    sampler_kwargs = dict(kwargs.pop("nuts_sampler_kwargs", None) or {})
    if kwargs:
        raise ValueError(
            f"options {sorted(kwargs)} are pm.sample options that nutpie does not take; pass "
            "nutpie's own options as nuts_sampler_kwargs={...}"
        )
    compile_kwargs = {k: sampler_kwargs.pop(k) for k in ("backend", "gradient_backend") if k in sampler_kwargs}
    if "target_accept" in nuts:
        sampler_kwargs.setdefault("target_accept", nuts["target_accept"])
    if "max_treedepth" in nuts:
        sampler_kwargs.setdefault("maxdepth", nuts["max_treedepth"])
    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(pmodel, var_names=names, **compile_kwargs)
    t1 = time.perf_counter()
    seed_ = int(np.random.default_rng(seed).integers(2**30)) if seed is not None else None
    idata = nutpie.sample(
        compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed_, progress_bar=progress_bar,
        **sampler_kwargs,
    )
    return idata, t1 - t0, time.perf_counter() - t1


def sample_pymc(
    m: "Model",
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed: int | None = None,
    *,
    adapt_delta: float | None = None,
    max_treedepth: int | None = None,
    prior_only: bool = False,
    output_dir: str | None = None,
    parallel_chains: int | None = None,
    show_progress: bool = False,
    inits: dict[str, Any] | None = None,
    threads_per_chain: int | None = None,
    grainsize: int = 1,
    pointwise: str | bool = "auto",
    nuts_sampler: str = "pymc",
    **kwargs: Any,
) -> Fit:
    """Sample ``m`` with PyMC and return a :class:`~hbstan.Fit` laid out as a CmdStan fit.

    Parameters
    ----------
    m : hbstan.Model
        The model to sample.
    chains, draws, warmup : int
        Number of chains, post-warm-up draws per chain and warm-up (tuning) iterations.
    seed : int, optional
        Random seed of the sampler and of the replicated data.
    adapt_delta : float, optional
        Target acceptance rate (PyMC's ``target_accept``; default 0.8, as Stan's).
    max_treedepth : int, optional
        Maximum NUTS tree depth (default 10, as Stan's).
    prior_only : bool, default False
        Sample the prior: the likelihood is left out (``log_lik`` and the replicated data
        are still computed from the draws, as Stan does).
    output_dir : str, optional
        Accepted for symmetry with the Stan backend; PyMC writes no files, so it is ignored.
    parallel_chains : int, optional
        Processes to run chains in (PyMC's ``cores``); default ``min(chains, CPUs)``.
    show_progress : bool, default False
        Show PyMC's progress bar and log messages.
    inits : dict, optional
        Initial values keyed by the PyMC model's variable names (``initvals``).
    threads_per_chain, grainsize
        CmdStan's within-chain threading; accepted so that ``Model.sample`` can pass its
        options through, but ``threads_per_chain`` above 1 raises a ValueError.
    pointwise : {"auto", "python", False}, default "auto"
        Compute the pointwise log-likelihood (``log_lik``) and the replicated data from the
        draws in NumPy, with the Stan program's formulas ("python"), or leave them to
        :meth:`Fit.add_pointwise` (False); "auto" as for :meth:`Model.sample`.
    nuts_sampler : {"pymc", "nutpie", "numpyro", "blackjax"}, default "pymc"
        NUTS implementation; the others must be installed (``pip install nutpie``). nutpie
        is called directly, so that its compile time is reported apart from sampling (its
        own options go in ``nuts_sampler_kwargs``); numpyro and blackjax go through
        ``pymc.sample``, whose JAX compilation then counts as sampling time.
    **kwargs
        Passed on to ``pymc.sample`` (e.g. ``init``, ``nuts_sampler_kwargs``).

    Returns
    -------
    hbstan.Fit
        ``fit.backend == "pymc"``; ``fit.idata`` has the groups, variable names, dims and
        coords of a CmdStan fit; ``fit.timings`` has ``"compile"`` (building the model and
        compiling its log density, up to the first draw), ``"sample"`` (warm-up and sampling)
        and ``"convert"`` seconds; ``fit.pymc_model`` is the ``pymc.Model``.
    """
    if nuts_sampler not in NUTS_SAMPLERS:
        raise ValueError(f"unknown nuts_sampler {nuts_sampler!r}; valid values: {list(NUTS_SAMPLERS)}")
    if nuts_sampler != "pymc" and importlib.util.find_spec(nuts_sampler) is None:
        raise ImportError(
            f"nuts_sampler={nuts_sampler!r} needs the {nuts_sampler} package: pip install {nuts_sampler} "
            "(or use nuts_sampler='pymc')"
        )
    for name, value in (("chains", chains), ("draws", draws)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(warmup, (int, np.integer)) and warmup >= 0):
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if pointwise not in ("auto", "python", False):
        raise ValueError(
            f"pointwise must be 'auto', 'python' or False with the PyMC backend, got {pointwise!r} "
            "('stan' needs the Stan program's generated quantities: use backend='stan')"
        )
    if threads_per_chain is not None and threads_per_chain > 1:
        raise ValueError(
            f"threads_per_chain={threads_per_chain!r} is a CmdStan option; the PyMC backend runs "
            "chains in processes (parallel_chains) and has no within-chain threading"
        )
    if inits is not None and not isinstance(inits, dict):
        raise ValueError(
            f"the PyMC backend takes inits as a dict of initial values keyed by the PyMC model's "
            f"variable names (see [v.name for v in m.to_pymc().free_RVs]), got {inits!r}"
        )
    if output_dir is not None:
        log.warning("hbstan: the PyMC backend writes no output files; output_dir=%r is ignored", output_dir)
    settings = {**recorded_settings(locals()), "pointwise": pointwise, "nuts_sampler": nuts_sampler}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    pmodel = build_pymc_model(m, prior_only=prior_only)
    t_built = time.perf_counter()
    names = [p.name for p in m.params]
    nuts: dict[str, Any] = dict(kwargs.pop("nuts", {}) or {})
    if adapt_delta is not None:
        nuts["target_accept"] = adapt_delta
    if max_treedepth is not None:
        nuts["max_treedepth"] = max_treedepth
    first_draw: list[float] = []

    def _on_draw(trace: Any, draw: Any) -> None:
        if not first_draw:
            first_draw.append(time.perf_counter())

    cores = parallel_chains or min(chains, os.cpu_count() or 1)
    if nuts_sampler == "nutpie":
        result, t_compile, t_sample = _sample_nutpie(
            pmodel, names, draws=draws, tune=warmup, chains=chains, cores=cores, seed=seed, nuts=nuts,
            progress_bar=show_progress, inits=inits, **kwargs,
        )
        timings["compile"] = (t_built - t0) + t_compile
        timings["sample"] = t_sample
        t2 = time.perf_counter()
    else:
        opts: dict[str, Any] = {
            "draws": draws,
            "tune": warmup,
            "chains": chains,
            "cores": cores,
            "random_seed": seed,
            "progressbar": show_progress,
            "var_names": names,
            "initvals": inits,
            "model": pmodel,
            "compute_convergence_checks": False,
        }
        if nuts_sampler == "pymc":
            opts.update(return_inferencedata=False, callback=_on_draw)
        else:
            opts["nuts_sampler"] = nuts_sampler
        if nuts:
            opts["nuts"] = nuts
        if not show_progress:
            opts["quiet"] = True
        opts.update(kwargs)
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            if not show_progress:
                warnings.simplefilter("ignore", FutureWarning)
            result = pm.sample(**opts)
        t2 = time.perf_counter()
        if first_draw:  # compile = building the model and its log density, up to the first draw
            timings["compile"] = (t_built - t0) + (first_draw[0] - t1)
            timings["sample"] = t2 - first_draw[0]
        else:  # numpyro and blackjax compile inside pm.sample: counted as sampling
            timings["compile"] = t_built - t0
            timings["sample"] = t2 - t1
    if isinstance(result, pm.backends.base.MultiTrace):
        post = {n: np.stack([np.asarray(v) for v in result.get_values(n, combine=False, squeeze=False)]) for n in names}
        stats = _stats_from_trace(result)
    else:  # InferenceData from an external sampler
        post = {n: np.asarray(result.posterior[n].values) for n in names}
        stats = _stats_from_idata(result)
    settings["pointwise"] = resolve_pointwise(pointwise, m, chains, draws)
    idata = build_idata(
        m,
        post,
        stats,
        pointwise=pointwise_groups(m, post, np.random.default_rng(seed)) if settings["pointwise"] else None,
        attrs={"inference_library": "pymc", "inference_library_version": pm.__version__, "nuts_sampler": nuts_sampler},
    )
    fit = Fit(m, idata, run_dir=None, settings=settings)
    fit.backend = "pymc"
    fit.pymc_model = pmodel  # type: ignore[attr-defined]
    timings["convert"] = time.perf_counter() - t2
    fit.timings = timings
    fit.warn_if_unhealthy()
    return fit


# ---------------------------------------------------------------------------------------------
# pieces for models built of several univariate ones (hbstan.mv_pymc)
# ---------------------------------------------------------------------------------------------
def linear_predictor_and_aux(
    m: Model, pmodel: pm.Model, stan: dict[str, Any], given_aux: Mapping[str, Any] | None = None,
    given_effects: Mapping[int, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Build one response's linear predictor (N,) and auxiliary parameters in ``pmodel``, as the program.

    The free variables are registered in ``pmodel`` (a named sub-model keeps several
    responses' apart) and the Stan-named quantities (``b_Intercept``, ``b``, ``sigma``,
    ``sd_1``, ``r_1``, ``Cor_1``, ...) go into ``stan``; ``given_aux`` holds auxiliary
    parameters shared with another response (a Student-t ``nu``), ``given_effects`` the group
    effects of terms built elsewhere (correlated with another response's). Families with one
    linear predictor per category are not supported here.
    """
    if m.family.per_category:
        raise ValueError(f"family={m.family.name!r} has a linear predictor per category: not supported here")
    return _one_predictor(m, pmodel, stan, given_aux, given_effects)


def prior_rv(
    pmodel: pm.Model, name: str, prior: Prior, values: Mapping[str, Any], *, positive: bool, shape: tuple[int, ...]
) -> Any:
    """Register a (vector) variable with the prior ``prior`` and per-element hyperparameters ``values``, as Stan's."""
    vals = {a: np.asarray(v, dtype=float) for a, v in values.items()}
    return _register(pmodel, name, _prior_dist(prior, vals, positive=positive, shape=shape))


def lkj_correlation(name: str, M: int, eta: float) -> tuple[Any, Any]:
    """Register an LKJ(``eta``) correlation matrix (M x M) with Stan's unconstraining transform.

    Returns the matrix and its Cholesky factor (unit diagonal), as the program's
    ``cholesky_factor_corr`` with an ``lkj_corr_cholesky`` prior.
    """
    cvec = pm.LKJCorr(name, n=M, eta=eta, default_transform=CholeskyCorrTransform(M))
    C = pm.LKJCorr.vec_to_corr_mat(cvec, M)
    return C, _lower_cholesky(C, M, unit_diagonal=True)
