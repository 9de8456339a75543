"""The fit of a multivariate model: one InferenceData for every response, and its summary.

Both backends (CmdStan, PyMC) hand their draws to :func:`build_mv_idata`, which lays them out
the same way: the posterior under the names of :class:`~hbstan.mvspec.MultiSpec`'s parameter
table, the observed and replicated data one variable per response (named after it), the
joint pointwise log-likelihood as ``log_lik`` in ``log_likelihood`` (what ``az.loo`` reads),
and each response's own in the group ``log_likelihood_responses`` (one variable per response;
``fit.loo(response=...)`` reads it).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .design import DataError
from .fit import Fit, arviz_without_numba, summary_table
from .idata import OBS_DIM, SAMPLE_STATS
from .pointwise import linear_predictor_draws, log_lik_and_y_rep

if TYPE_CHECKING:
    import arviz as az

    from .mvspec import MultiSpec

__all__ = ["MultivariateFit", "build_mv_idata", "mv_pointwise", "response_draws", "RESPONSE_LOG_LIK_GROUP"]

# the InferenceData group holding each response's pointwise log-likelihood
RESPONSE_LOG_LIK_GROUP = "log_likelihood_responses"


def build_mv_idata(
    spec: MultiSpec,
    post: Mapping[str, np.ndarray],
    stats: Mapping[str, np.ndarray],
    *,
    log_lik: np.ndarray | None = None,
    log_lik_responses: Mapping[str, np.ndarray] | None = None,
    y_rep: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> az.InferenceData:
    """InferenceData of a multivariate fit.

    Parameters
    ----------
    spec : MultiSpec
        The model the draws belong to.
    post : dict
        Posterior arrays (chain, draw, ...) keyed by the names of ``spec.params``.
    stats : dict
        Sample stats under ArviZ's names (missing ones are filled in).
    log_lik : array, optional
        The joint pointwise log-likelihood (chain, draw, N).
    log_lik_responses, y_rep : dict, optional
        Each response's pointwise log-likelihood and replicated data, keyed by response name.
    attrs : dict, optional
        Attributes; the formulas and families are added.
    """
    import arviz as az

    coords: dict[str, Any] = {OBS_DIM: np.arange(spec.N)}
    dims: dict[str, list[str]] = {}
    for p in spec.params:
        if p.dims:
            dims[p.name] = list(p.dims)
            coords.update({k: np.asarray(v) for k, v in (p.coords or {}).items()})
    names = spec.response_names
    for name in names:
        dims[name] = [OBS_DIM]
    dims["log_lik"] = [OBS_DIM]
    C, D = next(iter(post.values())).shape[:2]
    full_stats = {}
    for key in SAMPLE_STATS.values():
        v = stats.get(key)
        if v is None:
            v = np.zeros((C, D)) if key in ("diverging", "tree_depth", "n_steps") else np.full((C, D), np.nan)
        full_stats[key] = np.asarray(v).astype(bool if key == "diverging" else int if key in ("tree_depth", "n_steps") else float)
    groups: dict[str, Any] = {}
    if log_lik is not None:
        groups["log_likelihood"] = {"log_lik": log_lik}
    if y_rep is not None:
        groups["posterior_predictive"] = dict(y_rep)
    idata = az.from_dict(
        posterior={p.name: post[p.name] for p in spec.params},
        **groups,
        observed_data={r.name: r.spec.design.y for r in spec.responses},
        sample_stats=full_stats,
        coords=coords,
        dims=dims,
        attrs={
            **dict(attrs or {}),
            "hbstan_formula": " | ".join(spec.formulas),
            "family": ", ".join(r.family.name for r in spec.responses),
        },
    )
    if log_lik_responses is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a group of hbstan's own, beside ArviZ's
            idata.add_groups(
                {RESPONSE_LOG_LIK_GROUP: dict(log_lik_responses)},
                coords={OBS_DIM: np.arange(spec.N)},
                dims={name: ["chain", "draw", OBS_DIM] for name in log_lik_responses},
            )
    return idata


def response_draws(spec: MultiSpec, post: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """One response's posterior draws under its univariate names (``x1``, ``sigma``, ``1|g``).

    What the univariate NumPy code (:mod:`hbstan.pointwise`) reads; a shared ``nu`` is
    every Student-t response's ``nu``.
    """
    r = spec.response(name)
    out = {}
    for p in r.spec.params:
        key = "nu" if (p.name == "nu" and spec.shared_nu) else f"{r.name}_{p.name}"
        out[p.name] = np.asarray(post[key])
    return out


def mv_pointwise(
    spec: MultiSpec, post: Mapping[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Pointwise log-likelihood (joint and per response) and replicated data from the draws.

    NumPy, with the program's formulas: (chain, draw, N) arrays. Without residual
    correlation the joint log-likelihood is the sum of the responses'; with it, each row's
    multivariate normal (Student-t) density, each response's the marginal one, and the
    replicated responses are drawn jointly.
    """
    per: dict[str, np.ndarray] = {}
    reps: dict[str, np.ndarray] = {}
    mus = []
    for r in spec.responses:
        draws = response_draws(spec, post, r.name)
        if not spec.rescor:
            per[r.name], reps[r.name] = log_lik_and_y_rep(r.spec, draws, rng)
            continue
        C = next(iter(draws.values())).shape[0]
        mu = np.stack([linear_predictor_draws(r.spec, draws, c) for c in range(C)])  # (C, D, N)
        aux = {a.name: draws[a.name][..., None] for a in r.family.aux}
        per[r.name] = r.family.log_lik(r.spec.design.y, mu, aux, None)
        mus.append(mu)
    if not spec.rescor:
        return sum(per.values()), per, reps  # type: ignore[return-value]
    from scipy.special import gammaln

    Mu = np.stack(mus, axis=-1)  # (C, D, N, R)
    Y = np.column_stack([r.spec.design.y for r in spec.responses])  # (N, R)
    R = Y.shape[1]
    sd = np.stack([post[f"{r.name}_sigma"] for r in spec.responses], axis=-1)  # (C, D, R)
    L = np.linalg.cholesky(sd[..., :, None] * np.asarray(post["rescor"]) * sd[..., None, :])  # (C, D, R, R)
    Linv = np.linalg.inv(L)
    z = np.einsum("cdij,cdnj->cdni", Linv, Y - Mu)
    q = np.sum(z * z, axis=-1)  # (C, D, N)
    logdet = np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), axis=-1)[..., None]
    eps = rng.standard_normal(Mu.shape)
    if spec.shared_nu:
        nu = np.asarray(post["nu"])[..., None]
        joint = (
            gammaln((nu + R) / 2) - gammaln(nu / 2) - R / 2 * np.log(nu * np.pi) - logdet
            - (nu + R) / 2 * np.log1p(q / nu)
        )
        eps = eps / np.sqrt(rng.chisquare(np.broadcast_to(nu, q.shape)) / nu)[..., None]
    else:
        joint = -0.5 * q - logdet - R / 2 * np.log(2 * np.pi)
    draws_y = Mu + np.einsum("cdij,cdnj->cdni", L, eps)
    for k, r in enumerate(spec.responses):
        reps[r.name] = draws_y[..., k]
    return joint, per, reps


class MultivariateFit(Fit):
    """The result of sampling a multivariate model (several responses).

    As :class:`~hbstan.Fit`: ``idata``, ``run_dir``, ``settings``, ``timings``, ``warnings``,
    ``summary()`` and ``diagnose()``. ``idata.log_likelihood["log_lik"]`` is the joint
    pointwise log-likelihood of each row (all responses; with residual correlation, the
    multivariate density), which ``az.loo(fit.idata)`` uses; each response's own is in
    ``idata.log_likelihood_responses`` (:meth:`loo` with ``response=``). The observed and
    replicated data hold one variable per response.
    """

    def __str__(self) -> str:
        """Each response's formula and family, the draws, and brms-style tables per kind of parameter."""
        m: Any = self.model
        s = self.settings
        factors = {b.factor: b.J for r in m.responses for b in r.spec.design.blocks}
        lines = [f" Family: {m.link_summary()}"]
        for k, f in enumerate(m.formulas):
            lines.append(("Formula: " if k == 0 else "         ") + f)
        lines += [
            f"   Data: {m.N} rows" + (f" (groups: {', '.join(f'{g}: {j}' for g, j in factors.items())})" if factors else ""),
            f"  Draws: {s.get('chains')} chains, each with {s.get('draws')} draws after {s.get('warmup', '?')} warm-up; "
            f"{self.backend} backend",
        ]
        if s.get("prior_only"):
            lines.append("  (prior only: the likelihood was left out)")
        for title, table in self.sections():
            lines += ["", title, table.to_string(float_format=lambda v: f"{v:.2f}")]
        lines.append("")
        if self.warnings:
            lines += [f"Warning: {w}" for w in self.warnings]
        else:
            lines.append("No sampler warnings (divergences, tree depth, E-BFMI, R-hat, ESS) were raised.")
        return "\n".join(lines)

    def sections(self) -> list[tuple[str, pd.DataFrame]]:
        """Return the tables of ``print(fit)``: (title, DataFrame), in brms's order."""
        m: Any = self.model
        out: list[tuple[str, pd.DataFrame]] = []
        for r in m.responses:
            for i, blk in enumerate(r.spec.design.blocks, start=1):
                if m.joint_of(r, i) is not None:
                    continue  # below, with the other terms of its ID
                g = r.block_number(i)
                stans = {f"sd_{g}", f"Cor_{g}"} if blk.pooling != "unpooled" else {f"r_{g}"}
                names = [p.name for p in m.params if p.stan in stans]
                if names:
                    corr = frozenset(p.name for p in m.params if p.stan == f"Cor_{g}")
                    title = f"Group-level effects of {r.name}: ~{blk.factor} ({blk.J} levels, {blk.pooling})"
                    out.append((title, summary_table(self, names, corr)))
        for jb in m.joint_blocks:
            names = [p.name for p in m.params if p.stan in (f"sd_{jb.number}", f"Cor_{jb.number}")]
            title = (
                f"Group-level effects: ~{jb.factor} ({jb.J} levels; ID {jb.ident}: "
                f"{', '.join(r.name for r, _ in jb.members)}, correlated across responses)"
            )
            out.append((title, summary_table(self, names, frozenset({jb.name}))))
        population = [
            p.name for p in m.params if p.stan.startswith("b_") and p.kind != "corr"
        ]
        if population:
            out.append(("Population-level effects:", summary_table(self, population)))
        aux = [
            p.name for p in m.params if p.kind == "scalar" and not p.stan.startswith("b_")
        ]
        if aux:
            out.append(("Family-specific parameters:", summary_table(self, aux)))
        if m.rescor:
            out.append(("Residual correlations:", summary_table(self, ["rescor"], frozenset({"rescor"}))))
        return out

    def _locate_divergences(self) -> tuple[str, dict[str, Any] | None]:
        return "", None

    def loo(self, response: str | None = None, **kwargs: Any) -> Any:
        """PSIS-LOO (``az.loo``) of the whole model, or of one response's pointwise log-likelihood.

        Parameters
        ----------
        response : str, optional
            A response's name: its own log-likelihood (with residual correlation, its marginal
            density). Default: all responses jointly.
        **kwargs
            Passed on to ``az.loo`` (``pointwise=True``, ...).
        """
        import arviz as az

        if response is None:
            return az.loo(self.idata, **kwargs)
        m: Any = self.model
        m.response(response)  # a clear error for an unknown name
        if RESPONSE_LOG_LIK_GROUP not in self.idata.groups():
            raise ValueError("this fit has no pointwise log-likelihood: sample with pointwise='stan' (the default)")
        one = az.InferenceData(
            posterior=self.idata.posterior,
            log_likelihood=self.idata[RESPONSE_LOG_LIK_GROUP][[response]],
        )
        with arviz_without_numba():
            return az.loo(one, **kwargs)

    def add_pointwise(self, seed: int | None = None) -> Any:
        """Not available for a multivariate fit: its program computes them (``pointwise='stan'``)."""
        if {"log_likelihood", "posterior_predictive"} <= set(self.idata.groups()):
            return self.idata
        raise NotImplementedError(
            "a multivariate model's pointwise log-likelihood and replicated data are computed by its program: "
            "sample again with pointwise='stan' (the default)"
        )

    def response_fit(self, response: str) -> Fit:
        """One response's part of the fit, as a fit of its univariate model.

        Its posterior holds that response's parameters under their univariate names (``x``,
        ``sigma``, ``1|g``, ``g_corr``; a term of a block correlated across responses gets
        its entries of the block's correlations), so every univariate consumer works on it:
        ``predict``, ``predictions``, :func:`hbstan.avg_comparisons`, :func:`hbstan.datagrid`.
        Predictions of one response are its marginal ones (with residual correlation, drawn
        without the other responses' residuals).
        """
        import arviz as az
        import xarray as xr

        m: Any = self.model
        r = m.response(response)
        post = self.idata.posterior
        names = {p.name for p in m.params}
        factors = {blk.factor for blk in r.spec.design.blocks}
        out: dict[str, Any] = {}
        for p in r.spec.params:
            key = "nu" if (p.name == "nu" and m.shared_nu) else f"{r.name}_{p.name}"
            if key in names:
                da = post[key]
                mv_dims = [d if d in factors else f"{r.name}_{d}" for d in p.dims]
                out[p.name] = da.rename(dict(zip(mv_dims, p.dims, strict=True)))
                continue
            # a member term's correlations: its entries of the joint block's matrix
            joint = m.joint_of(r, int(p.stan.split("_")[1]))
            jb, start = joint
            block = post[jb.name].values
            width = r.spec.design.blocks[int(p.stan.split("_")[1]) - 1].M
            sub = block[..., start:start + width, start:start + width]
            out[p.name] = xr.DataArray(
                sub, dims=("chain", "draw", *p.dims),
                coords={"chain": post["chain"], "draw": post["draw"], **(p.coords or {})},
            )
        idata = az.InferenceData(posterior=xr.Dataset(out, attrs=post.attrs))
        fit = Fit(r.spec, idata, run_dir=self.run_dir, settings=self.settings)
        fit.backend = self.backend
        return fit

    def upstream(self, response: str) -> list[str]:
        """Return the responses that are predictors in ``response``'s formula (its parents in the path model)."""
        from .effects import model_columns

        m: Any = self.model
        roles = model_columns(m.response(response).spec)
        return [name for name in m.response_names if name != response and name in roles]

    def _joint_order(self, targets: list[str]) -> list[str]:
        """Return the responses ``targets`` need, upstream first (each after every response it reads)."""
        from .effects import model_columns

        m: Any = self.model
        order: list[str] = []
        visiting: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            if name in visiting:
                cycle = " -> ".join([*visiting[visiting.index(name):], name])
                raise ValueError(f"the responses form a cycle ({cycle}): joint predictions need a path model without one")
            roles = model_columns(m.response(name).spec)
            bad = [u for u in self.upstream(name) if roles[u] != "predictor"]
            if bad:
                raise ValueError(
                    f"the response {bad[0]!r} is a {roles[bad[0]]} column of {name!r}: joint predictions draw "
                    "upstream responses that are predictors only"
                )
            visiting.append(name)
            for u in self.upstream(name):
                visit(u)
            visiting.pop()
            order.append(name)

        for t in targets:
            visit(t)
        return order

    def _check_joint(self, order: list[str], data: pd.DataFrame) -> None:
        """Refuse what joint predictions do not model: residual correlation, new groups of a block across responses."""
        from .design import group_labels

        m: Any = self.model
        chained = [name for name in order if self.upstream(name)]
        if m.rescor and chained:
            raise NotImplementedError(
                "joint predictions of a model with residual correlation (rescor) are not implemented: the residuals "
                "of the upstream and downstream responses would have to be drawn jointly; fit the path model with "
                "rescor=False (as brms's mediation models do with set_rescor(FALSE))"
            )
        for jb in m.joint_blocks:
            members = [(r, i) for r, i in jb.members if r.name in order]
            if len({r.name for r, _ in members}) < 2:
                continue
            blk = members[0][0].spec.design.blocks[members[0][1] - 1]
            if not set(blk.columns) <= set(data.columns):
                continue
            new = sorted(set(group_labels(data, blk.columns)) - set(blk.levels))
            if new:
                raise NotImplementedError(
                    f"joint predictions for {jb.factor} level(s) {new[:5]} not seen in fitting: their effects are "
                    f"correlated across responses (ID {jb.ident!r}), which new groups' draws do not keep yet; "
                    "predict each response alone (joint=False) or rows of fitted groups"
                )

    def _joint_draws(self, data: pd.DataFrame, targets: list[str], kind: str, seed: int | None) -> dict[str, np.ndarray]:
        """(chain, draw, n) draws of ``targets`` and their upstream responses, drawn in order.

        Each upstream response is drawn from its posterior predictive (its own upstream
        responses' draws fed in, per draw); ``targets`` get ``kind``. Each response has its own
        random stream spawned from ``seed``, so a response's draws do not depend on which others
        are predicted; its draws and its ``kind`` share the stream (the same new groups' effects).
        """
        from .predict import predict_given

        m: Any = self.model
        order = self._joint_order(targets)
        self._check_joint(order, data)
        streams = dict(zip(m.response_names, np.random.SeedSequence(seed).spawn(len(m.response_names)), strict=True))
        feeds = {u for name in order for u in self.upstream(name)}
        drawn: dict[str, np.ndarray] = {}
        out: dict[str, np.ndarray] = {}
        for name in order:
            given = {u: drawn[u] for u in self.upstream(name)}
            fit = self.response_fit(name)
            if name in feeds or (name in targets and kind == "response"):
                drawn[name] = predict_given(fit, data, given, kind="response", rng=np.random.default_rng(streams[name]))
            if name in targets:
                out[name] = drawn[name] if kind == "response" else predict_given(
                    fit, data, given, kind=kind, rng=np.random.default_rng(streams[name])
                )
        return out

    def predict(
        self,
        data: pd.DataFrame,
        *,
        response: str | None = None,
        kind: str = "response",
        seed: int | None = None,
        joint: bool = False,
    ) -> Any:
        """Posterior predictive draws of one response (or of each) for new rows.

        As :meth:`hbstan.Fit.predict`, on :meth:`response_fit`; without ``response``, a dict of
        every response's draws.

        Parameters
        ----------
        data : pandas.DataFrame
            New rows.
        response : str, optional
            The response to predict (default: every response, as a dict).
        kind : {"response", "mean", "link"}, default "response"
            As :meth:`hbstan.Fit.predict` (with ``joint=False`` also ``"probs"`` and an
            auxiliary parameter's name).
        seed : int, optional
            Seed of the random draws.
        joint : bool, default False
            False (brms's ``posterior_predict``): a response that is a predictor of another
            (the mediator ``m`` of ``["m ~ x", "y ~ x + m"]``) is read from ``data``. True: it
            is drawn from its own posterior predictive first, per posterior draw, and fed to
            the responses downstream (its column in ``data``, if any, is not used), so
            predictions of ``y`` carry the uncertainty of ``m``; the upstream responses'
            predictors, groups and trials come from ``data``. Not for models with residual
            correlation (fit the path model with ``rescor=False``).

        Returns
        -------
        xarray.DataArray or dict of them
            (chain, draw, __obs__) draws; a dict by response name without ``response``.
        """
        m: Any = self.model
        if joint:
            if kind not in ("response", "mean", "link"):
                raise ValueError(f"kind must be 'response', 'mean' or 'link' with joint=True, got {kind!r}")
            targets = m.response_names if response is None else [m.response(response).name]
            arrays = self._joint_draws(data, targets, kind, seed)
            out = {name: self._as_draws(arrays[name], name) for name in targets}
            return out if response is None else out[response]
        self._check_upstream_columns(data, m.response_names if response is None else [m.response(response).name])
        if response is None:
            return {name: self.response_fit(name).predict(data, kind=kind, seed=seed) for name in m.response_names}
        return self.response_fit(response).predict(data, kind=kind, seed=seed)

    def _joint_predictions(
        self, data: pd.DataFrame | None, response: str | None, *, kind: str = "mean", prob: float = 0.95,
        seed: int | None = None, **other: Any,
    ) -> pd.DataFrame:
        """Return the table of :meth:`predictions` with ``joint=True``."""
        from .effects import summarize

        m: Any = self.model
        if other:
            raise ValueError(f"predictions with joint=True take kind, prob and seed, not {sorted(other)}")
        if not 0 < prob < 1:
            raise ValueError(f"prob must be between 0 and 1, got {prob!r}")
        rows = m.data if data is None else data
        names = m.response_names if response is None else [m.response(response).name]
        if kind not in ("response", "mean", "link"):
            raise ValueError(f"kind must be 'response', 'mean' or 'link' with joint=True, got {kind!r}")
        draws = self._joint_draws(rows, names, kind, seed)
        parts = []
        for name in names:
            part = rows.reset_index(drop=True).copy()
            for key, value in summarize(draws[name].reshape(-1, len(rows)), prob).items():
                part[key] = value
            parts.append(part if response is not None else part.assign(response=name))
        return pd.concat(parts, ignore_index=True)

    def _check_upstream_columns(self, data: pd.DataFrame, names: list[str]) -> None:
        """Refuse rows that lack a response read by one of ``names`` (the fix: joint=True)."""
        for name in names:
            missing = [u for u in self.upstream(name) if u not in data.columns]
            if missing:
                raise DataError(
                    f"the formula of {name!r} reads the response {missing[0]!r}, which the new data lacks: add the "
                    f"column, or pass joint=True to draw it from its own posterior predictive first"
                )

    def _as_draws(self, values: np.ndarray, name: str) -> Any:
        """(chain, draw, __obs__) DataArray with the posterior's chain and draw labels."""
        import xarray as xr

        post = self.idata.posterior
        return xr.DataArray(
            values, dims=("chain", "draw", OBS_DIM),
            coords={"chain": post["chain"].values, "draw": post["draw"].values, OBS_DIM: np.arange(values.shape[-1])},
            name=name,
        )

    def predictions(
        self, data: pd.DataFrame | None = None, *, response: str | None = None, joint: bool = False, **kwargs: Any
    ) -> pd.DataFrame:
        """Summaries of one response's predictions (or of each, with a column ``response``).

        As :meth:`hbstan.Fit.predictions` (``grid=``, ``kind=``, ``prob=``, ``re_formula=``),
        on :meth:`response_fit`. With ``joint=True``, of the joint predictions of
        :meth:`predict` (the responses read upstream drawn first), for ``data`` (default: the
        fitted rows), taking ``kind`` (default ``"mean"``), ``prob`` and ``seed``.
        """
        m: Any = self.model
        if joint:
            return self._joint_predictions(data, response, **kwargs)
        if isinstance(data, pd.DataFrame):
            self._check_upstream_columns(data, m.response_names if response is None else [m.response(response).name])
        if response is not None:
            return self.response_fit(response).predictions(data, **kwargs)
        return pd.concat(
            [self.response_fit(name).predictions(data, **kwargs).assign(response=name) for name in m.response_names],
            ignore_index=True,
        )
