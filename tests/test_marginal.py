"""Gaussian models with the group effects integrated out (``marginalize``).

* The program's likelihood equals the exact multivariate normal marginal likelihood,
  y_j ~ N(X_j b + offsets + U_j gamma, sigma^2 I + Z_j Sigma Z_j'), computed here with numpy
  and scipy, at random parameter values (up to a constant), for several designs.
* Its posterior agrees with the program that samples the group effects.
* Prior-only draws of the group effects follow the population distribution.
* The option is validated and recorded in the program's header.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.compare import compare_fits

cmdstan = pytest.mark.cmdstan


def simulate(n: int = 240, J: int = 10, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    a = rng.normal(0, 0.6, J)
    s = rng.normal(0, 0.3, J)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "x2": rng.normal(size=n),
            "g": [f"grp{j}" for j in g],
            "u": np.linspace(-1, 1, J)[g],
            "off": rng.normal(0, 0.2, n),
        }
    )
    df["y"] = 0.5 + a[g] + (0.8 + s[g]) * x - 0.3 * df["x2"] + 0.4 * df["u"] + df["off"] + rng.normal(0, 0.8, n)
    return df


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return simulate()


DESIGNS = {
    "correlated, 3 effects, group predictor, offset": dict(
        formula="y ~ x + x2 + (1 + x + x2 | g)", group_predictors={"g": "u"}, offset="off"
    ),
    "hierarchical, uncorrelated slopes": dict(formula="y ~ x + (1 + x || g)"),
    "no intercept, group predictor": dict(formula="y ~ 0 + x + (1 | g)", group_predictors={"g": ["u"]}),
    "known sigma, slope only (no column of ones)": dict(formula="y ~ 0 + x + (0 + x | g)", sigma=0.9),
}


def _marginal_loglik(m: hbstan.Model, p: dict[str, np.ndarray]) -> float:
    """log p(y | population-level parameters) with the group effects integrated out."""
    from scipy.stats import multivariate_normal

    d = m.design
    blk = d.blocks[0]
    X = d.X - d.X.mean(axis=0) if d.has_intercept else d.X
    mean = m.offset + X @ p["b"] + (p["Intercept"] if d.has_intercept else 0.0)
    if blk.U is not None:
        Uc = blk.U - blk.U.mean(axis=0)
        mean = mean + (Uc @ p["gamma_1"])[blk.index]
    lam = np.diag(p["sd_1"]) @ (p["L_1"] if "L_1" in p else np.eye(blk.M))
    cov = lam @ lam.T
    total = 0.0
    for j in range(blk.J):
        rows = blk.index == j
        Z = blk.Z[rows]
        sigma = m.known_sigma if m.known_sigma is not None else p["sigma"]
        V = sigma**2 * np.eye(rows.sum()) + Z @ cov @ Z.T
        total += multivariate_normal(mean[rows], V).logpdf(d.y[rows])
    return total


def _random_point(m: hbstan.Model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    d = m.design
    blk = d.blocks[0]
    p: dict[str, np.ndarray] = {"b": rng.normal(0, 0.5, d.K), "sd_1": rng.uniform(0.1, 1.0, blk.M)}
    if m.known_sigma is None:
        p["sigma"] = np.array(rng.uniform(0.5, 1.5))
    if d.has_intercept:
        p["Intercept"] = np.array(rng.normal())
    if blk.pooling == "correlated":
        A = rng.normal(size=(blk.M, blk.M + 2))
        C = A @ A.T
        s = np.sqrt(np.diag(C))
        p["L_1"] = np.linalg.cholesky(C / np.outer(s, s))
    if blk.U is not None:
        p["gamma_1"] = rng.normal(0, 0.5, blk.U.shape[1])
    return p


@cmdstan
@pytest.mark.parametrize("name", list(DESIGNS))
def test_marginal_likelihood_is_exact(df: pd.DataFrame, name: str) -> None:
    from hbstan.backend import compiled_model

    kw = dict(DESIGNS[name])
    m = hbstan.Model(kw.pop("formula"), df, **kw)
    assert m.marginalized
    cm = compiled_model(m.stan_code)
    data_lik, data_prior = m.stan_data_for(prior_only=False), m.stan_data_for(prior_only=True)
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(4):
        p = _random_point(m, rng)
        params = {k: v.tolist() for k, v in p.items()}
        lp = [
            float(cm.log_prob(params=params, data=data, jacobian=False, sig_figs=14)["lp__"].iloc[0])
            for data in (data_lik, data_prior)
        ]
        diffs.append((lp[0] - lp[1]) - _marginal_loglik(m, p))
    # the program's likelihood term is the exact marginal likelihood up to a constant
    # (the dropped -N/2 log(2 pi) and the centering of y)
    assert max(diffs) - min(diffs) < 1e-6, diffs


@cmdstan
@pytest.mark.parametrize("name", list(DESIGNS))
def test_group_effects_drawn_in_numpy_follow_the_programs_draws(df: pd.DataFrame, name: str) -> None:
    """hbstan.marginal draws r_1 with the program's formulas: given the same population-level
    draws, its draws and the program's (draw_effects = 1) differ by noise of mean zero and
    the variance of two independent conditional draws."""
    from hbstan.marginal import group_effect_draws

    kw = dict(DESIGNS[name])
    m = hbstan.Model(kw.pop("formula"), df, **kw)
    fit = m.sample(chains=2, draws=400, warmup=400, seed=6, pointwise="stan")  # Stan draws r_1

    def get(name: str) -> np.ndarray:
        v = fit.stan_fit.stan_variable(name)  # (chains * draws, ...)
        return v.reshape(2, 400, *v.shape[1:])

    stan = get("r_1")
    py1 = group_effect_draws(m, get, np.random.default_rng(1))
    py2 = group_effect_draws(m, get, np.random.default_rng(2))
    assert py1.shape == stan.shape
    d_ps, d_pp = (py1 - stan).reshape(800, -1), (py1 - py2).reshape(800, -1)
    t = d_ps.mean(axis=0) / (d_ps.std(axis=0) / np.sqrt(800))
    assert np.max(np.abs(t)) < 4.5, t  # same conditional means
    ratio = d_ps.var(axis=0).sum() / d_pp.var(axis=0).sum()
    assert ratio == pytest.approx(1.0, abs=0.1)  # same conditional covariances
    # and a default fit leaves r_1 out of CmdStan's output, drawing it here
    default = m.sample(chains=2, draws=50, warmup=50, seed=6)
    assert "r_1" not in default.stan_fit.stan_variables()
    effects = [v for v in fit.idata.posterior.data_vars if str(v).endswith("|g")]
    assert effects and all(default.idata.posterior[v].shape == (2, 50, 10) for v in effects)
    assert default.timings["effects"] > 0


@cmdstan
def test_marginal_posterior_agrees_with_sampled_effects(df: pd.DataFrame) -> None:
    formula, kw = "y ~ x + x2 + (1 + x | g)", dict(group_predictors={"g": "u"}, offset="off")
    marg = hbstan.Model(formula, df, **kw)
    full = hbstan.Model(formula, df, marginalize=False, **kw)
    assert marg.marginalized and not full.marginalized
    assert marg.stan_code != full.stan_code
    fa = marg.sample(chains=4, draws=1000, warmup=1000, seed=3)
    fb = full.sample(chains=4, draws=1500, warmup=1500, seed=3, adapt_delta=0.95)
    cmp = compare_fits(fa, fb, labels=["integrated out", "sampled"])
    assert cmp.verdict == "agree", cmp.to_markdown()
    # the group effects are there, with the same names and labels, in both
    assert fa.idata.posterior["1|g"].dims == fb.idata.posterior["1|g"].dims
    assert list(fa.idata.posterior["g"].values) == sorted(df["g"].unique())


@cmdstan
def test_prior_only_group_effects_follow_the_population(df: pd.DataFrame) -> None:
    m = hbstan.Model("y ~ x + (1 + x | g)", df, priors={"sd": hbstan.HalfNormal(1)})
    assert m.marginalized
    fit = m.sample(chains=2, draws=1000, warmup=500, seed=4, prior_only=True)
    post = fit.idata.posterior
    r = post["1|g"].values  # (chain, draw, group)
    sd = post["1|g_sigma"].values
    # E[r^2] = E[sd^2] = 1 under a HalfNormal(1) prior; 20,000 draws pin it to a few percent
    assert np.mean(r**2) == pytest.approx(np.mean(sd**2), rel=0.1)
    assert np.mean(sd**2) == pytest.approx(1.0, rel=0.1)


def test_marginalize_option(df: pd.DataFrame) -> None:
    m = hbstan.Model("y ~ x + (1 | g)", df)
    assert m.marginalized and "integrated out" in m.stan_code.splitlines()[1]
    assert "z_1" not in m.stan_code
    # an explicit parameterization keeps the group effects as parameters
    assert not hbstan.Model("y ~ x + (1 | g)", df, centered=True).marginalized
    assert hbstan.Model("y ~ x + (1 | g)", df, centered=True, marginalize=True).marginalized
    assert not hbstan.Model("y ~ x + (1 | g)", df, suff_stats=False).marginalized
    df2 = df.assign(yb=(df["y"] > 0).astype(int), h=np.where(df["x2"] > 0, "a", "b"))
    with pytest.raises(ValueError, match="marginalize=True needs family='gaussian'"):
        hbstan.Model("yb ~ x + (1 | g)", df2, family="bernoulli", marginalize=True)
    with pytest.raises(ValueError, match="exactly one grouping term"):
        hbstan.Model("y ~ x + (1 | g) + (1 | h)", df2, marginalize=True)
    with pytest.raises(ValueError, match="exactly one grouping term"):
        hbstan.Model("y ~ x + (1 | g)", df2, pooling="unpooled", marginalize=True)
    with pytest.raises(ValueError, match="marginalize must be True, False or 'auto'"):
        hbstan.Model("y ~ x + (1 | g)", df2, marginalize="yes")
