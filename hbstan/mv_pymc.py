"""PyMC for a multivariate model: the same responses, priors and residual correlation.

Each response's linear predictor, priors and group terms are built by the univariate PyMC
backend (:func:`hbstan.pymc_backend.linear_predictor_and_aux`) in a named sub-model of its own
(``r1::``, ``r2::``); the likelihood is each response's family or, with residual correlation,
one ``MvNormal`` (``MvStudentT`` with a shared ``nu``) of the rows' responses, with an LKJ
correlation matrix sampled through Stan's transform. The user-facing quantities are
deterministics with the Stan fit's names, dims and coords, and the pointwise quantities are
computed from the draws with the program's formulas (:func:`hbstan.mvfit.mv_pointwise`).
"""

from __future__ import annotations

import os
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .idata import OBS_DIM
from .mvfit import MultivariateFit, build_mv_idata, mv_pointwise
from .options import recorded_settings
from .pymc_backend import PREFIX, linear_predictor_and_aux, lkj_correlation, prior_rv

if TYPE_CHECKING:
    from .mvspec import MultiSpec

__all__ = ["build_mv_pymc_model", "sample_mv_pymc", "stan_params_from_pymc"]


def build_mv_pymc_model(spec: MultiSpec, *, prior_only: bool = False) -> Any:
    """Build the program of a multivariate model as a ``pymc.Model``.

    Parameters
    ----------
    spec : MultiSpec
        The model.
    prior_only : bool, default False
        Leave the likelihood out.
    """
    import pymc as pm
    import pytensor.tensor as pt

    coords: dict[str, Any] = {OBS_DIM: np.arange(spec.N)}
    for p in spec.params:
        for dim, labels in (p.coords or {}).items():
            coords[dim] = list(labels)
    stan: dict[str, Any] = {}  # the program's names (b_1, sigma_2, r_3, Rescor, ...)
    etas, auxs = [], []
    with pm.Model(coords=coords) as pmodel:
        # group terms correlated across responses (an ID): one block, as the program's
        given: dict[int, dict[int, Any]] = {}
        for jb in spec.joint_blocks:
            n, M, J = jb.number, jb.M, jb.J
            parts = [
                r.spec.class_prior(r.spec.block_keys(r.spec.design.blocks[i - 1], "_sigma"), "group SDs")
                for r, i in jb.members
            ]
            values = {a: np.concatenate([np.atleast_1d(v[a]) for _, v in parts]) for a in parts[0][1]}
            sd = prior_rv(pmodel, f"{PREFIX}sd_{n}", parts[0][0], values, positive=True, shape=(M,))
            C, L = lkj_correlation(f"{PREFIX}L_{n}", M, float(spec.priors[jb.name].values()["eta"]))
            z = pm.Normal(f"{PREFIX}z_{n}", 0.0, 1.0, shape=(M, J))
            r_all = pt.dot(sd[:, None] * L, z).T  # (J, M)
            stan[f"sd_{n}"], stan[f"Cor_{n}"] = sd, C
            start = 0
            for r, i in jb.members:
                width = r.spec.design.blocks[i - 1].M
                given.setdefault(r.k, {})[i] = r_all[:, start:start + width]
                start += width
        for r in spec.responses:
            local: dict[str, Any] = {}
            # one nu for every Student-t response with residual correlation: the first response's
            shared = {"nu": stan["nu"]} if spec.shared_nu and r.k > 1 else None
            with pm.Model(name=f"r{r.k}") as sub:
                eta, aux = linear_predictor_and_aux(r.spec, sub, local, shared, given.get(r.k))
            if spec.shared_nu and r.k == 1:
                stan["nu"] = aux["nu"]
            for key, value in local.items():
                stan.setdefault(spec.stan_name(r, key), value)
            for a in r.family.aux:
                stan.setdefault(spec.stan_name(r, a.name), aux[a.name])
            etas.append(eta)
            auxs.append(aux)
        chol = None
        if spec.rescor:
            C, L = lkj_correlation(f"{PREFIX}Lrescor", len(spec.responses), float(spec.rescor_prior.values()["eta"]))
            stan["Rescor"] = C
            sd = pt.stack([aux["sigma"] for aux in auxs])
            chol = sd[:, None] * L
        for p in spec.params:
            t = stan[p.stan]
            if p.kind == "vector":
                t = t[p.cols] if p.dims else t[p.cols.start]
            elif p.kind == "matrix_cols":
                t = t[:, p.cols] if len(p.dims) > 1 else t[:, p.cols.start]
            pm.Deterministic(p.name, t, dims=p.dims or None)
        if not prior_only:
            if spec.rescor:
                Y = np.column_stack([r.spec.design.y for r in spec.responses])
                mu = pt.stack(etas, axis=1)
                if spec.shared_nu:
                    pm.MvStudentT(f"{PREFIX}Y", nu=stan["nu"], mu=mu, chol=chol, observed=Y)
                else:
                    pm.MvNormal(f"{PREFIX}Y", mu=mu, chol=chol, observed=Y)
            else:
                for r, eta, aux in zip(spec.responses, etas, auxs, strict=True):
                    r.family.pymc_likelihood(
                        f"{PREFIX}y_{r.k}", eta, aux, r.spec.design.y, r.spec.trials, OBS_DIM
                    )
    return pmodel


def sample_mv_pymc(
    spec: MultiSpec,
    *,
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed: int | None = None,
    adapt_delta: float | None = None,
    max_treedepth: int | None = None,
    prior_only: bool = False,
    parallel_chains: int | None = None,
    show_progress: bool = False,
    inits: dict[str, Any] | None = None,
    pointwise: str | bool = "auto",
    **kwargs: Any,
) -> MultivariateFit:
    """Sample the model with PyMC's NUTS; a fit laid out as a CmdStan fit's.

    ``pointwise`` ("auto", "python" or False) computes the pointwise log-likelihood and the
    replicated data from the draws (:func:`hbstan.mvfit.mv_pointwise`); the other options are
    :meth:`hbstan.Model.sample`'s (``adapt_delta`` is PyMC's ``target_accept``).
    """
    import pymc as pm

    if pointwise not in ("auto", "python", False):
        raise ValueError(f"pointwise must be 'auto', 'python' or False with the PyMC backend, got {pointwise!r}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    pmodel = build_mv_pymc_model(spec, prior_only=prior_only)
    names = [p.name for p in spec.params]
    nuts: dict[str, Any] = {}
    if adapt_delta is not None:
        nuts["target_accept"] = adapt_delta
    if max_treedepth is not None:
        nuts["max_treedepth"] = max_treedepth
    with warnings.catch_warnings():
        if not show_progress:
            warnings.simplefilter("ignore", FutureWarning)
        result = pm.sample(
            draws=draws, tune=warmup, chains=chains, cores=parallel_chains or min(chains, os.cpu_count() or 1),
            random_seed=seed, progressbar=show_progress, var_names=names, initvals=inits, model=pmodel,
            compute_convergence_checks=False, quiet=not show_progress, **({"nuts": nuts} if nuts else {}), **kwargs,
        )
    t1 = time.perf_counter()
    timings["sample"] = t1 - t0
    post = {n: np.asarray(result.posterior[n].values) for n in names}
    ss = result.sample_stats
    stats = {k: np.asarray(ss[k].values) for k in ("lp", "acceptance_rate", "step_size", "tree_depth", "n_steps",
                                                   "diverging", "energy") if k in ss}
    extra: dict[str, Any] = {}
    if pointwise:
        joint, per, reps = mv_pointwise(spec, post, np.random.default_rng(seed))
        extra = {"log_lik": joint, "log_lik_responses": per, "y_rep": reps}
    idata = build_mv_idata(spec, post, stats, attrs={"inference_library": "pymc"}, **extra)
    settings = {**recorded_settings(locals()), "pointwise": "python" if pointwise else False}
    fit = MultivariateFit(spec, idata, run_dir=None, settings=settings)
    fit.backend = "pymc"
    fit.pymc_model = pmodel  # type: ignore[attr-defined]
    timings["convert"] = time.perf_counter() - t1
    fit.timings = timings
    fit.warn_if_unhealthy()
    return fit


def stan_params_from_pymc(spec: MultiSpec, point: dict[str, Any]) -> dict[str, np.ndarray]:
    """Map a point of the PyMC model (constrained values of its free variables) to the program's parameters.

    For checking the two against each other: ``CmdStanModel.log_prob(params=...)`` of the
    program at these values and the PyMC model's log density at the point differ by a
    constant. Keys of ``point`` are the PyMC variables' names (``r1::_hb_b``, ``_hb_Lrescor``).
    """
    out: dict[str, np.ndarray] = {}
    intercepts: dict[int, float] = {}

    def cholesky_corr(v: np.ndarray) -> np.ndarray:  # PyMC's LKJCorr holds the upper triangle
        K = int(np.sqrt(2 * v.size + 0.25) + 0.5)
        tri = np.zeros((K, K))
        tri[np.triu_indices(K, 1)] = v
        return np.linalg.cholesky(tri + tri.T + np.eye(K))

    for key, value in point.items():
        v = np.asarray(value)
        sub, _, name = key.rpartition("::")
        name = name[len(PREFIX):]
        if not sub:  # the residual correlations and the blocks of terms with an ID
            out[name] = cholesky_corr(v) if name.startswith("L") else v
            continue
        r = spec.responses[int(sub[1:]) - 1]
        stem, _, i = name.partition("_")
        if stem in ("sd", "z", "r", "a", "L") and i.isdigit():
            blk = r.spec.design.blocks[int(i) - 1]
            if stem == "L":
                v = cholesky_corr(v)
            elif stem == "z" and blk.pooling == "hierarchical":
                v = v.T  # PyMC holds z as (J, M), Stan as (M, J)
            out[f"{stem}_{r.block_number(int(i))}"] = v
        else:
            out[spec.stan_name(r, name)] = v
            if name == "Intercept":
                intercepts[r.k] = float(v)
    # PyMC centers a centered group intercept on its response's intercept (a = r + Intercept,
    # the univariate program's choice); the multivariate program samples r
    for key in [k for k in out if k.startswith("a_")]:
        g = int(key[2:])
        r = next(r for r in spec.responses if r.first_block < g <= r.first_block + len(r.spec.design.blocks))
        a = out.pop(key).copy()
        a[:, 0] -= intercepts[r.k]
        out[f"r_{g}"] = a
    return out
