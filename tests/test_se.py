"""Known measurement standard errors, ``y | se(s) ~ ...`` (brms's se()): the model, its errors,
and its posterior against numerical integration (eight schools) and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hbstan
from hbstan import DataError, FormulaError

SCHOOLS = pd.DataFrame(
    {
        "school": list("ABCDEFGH"),
        "y": [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
        "s": [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
    }
)


def test_se_is_read_from_the_formula_and_checked() -> None:
    m = hbstan.Model("y | se(s) ~ 1 + (1 | school)", SCHOOLS)
    assert "sigma" not in [p.name for p in m.params]
    assert m.stan_data["se"].tolist() == SCHOOLS["s"].tolist() and m.stan_data["sigma"] == 0.0
    assert not m.suff_stats and not m.threads_supported
    assert [p.name for p in hbstan.Model("y | se(s, sigma = TRUE) ~ 1", SCHOOLS).params] == ["Intercept", "sigma"]
    bad = SCHOOLS.assign(s=[15.0, 0.0, 16.0, 11.0, -9.0, 11.0, 10.0, 18.0])
    with pytest.raises(DataError, match=r"se column 's' must hold positive standard errors; rows \[1, 4\]"):
        hbstan.Model("y | se(s) ~ 1", bad)
    with pytest.raises(FormulaError, match="se\\(\\) gives known standard errors of the responses: it needs"):
        hbstan.Model("k | se(s) ~ 1", SCHOOLS.assign(k=[1, 0, 1, 0, 1, 0, 1, 1]), family="bernoulli")
    with pytest.raises(ValueError, match="sigma= .* and se\\(\\) .* together"):
        hbstan.Model("y | se(s) ~ 1", SCHOOLS, sigma=2.0)
    with pytest.raises(FormulaError, match="'mi\\(\\)'.*missing values is not supported yet"):
        hbstan.Model("y | mi() ~ 1", SCHOOLS)
    with pytest.raises(FormulaError, match="sigma = TRUE or FALSE"):
        hbstan.Model("y | se(s, sd = 2) ~ 1", SCHOOLS)


def _grid_means(y, s, m0, s0, tau_scale):
    mu = np.linspace(m0 - 8 * s0, m0 + 8 * s0, 1601)[:, None]
    tau = np.linspace(1e-6, 8 * tau_scale, 1600)[None, :]
    logp = stats.norm.logpdf(mu, m0, s0) + stats.halfnorm.logpdf(tau, scale=tau_scale)
    logp = logp + sum(stats.norm.logpdf(yj, mu, np.sqrt(sj**2 + tau**2)) for yj, sj in zip(y, s))
    p = np.exp(logp - logp.max())
    p /= p.sum()
    return float((p * mu).sum()), float((p * tau).sum())


@pytest.mark.cmdstan
def test_eight_schools_posterior_equals_numerical_integration_and_scipy() -> None:
    import arviz as az

    m = hbstan.Model("y | se(s) ~ 1 + (1 | school)", SCHOOLS)
    assert not m.design.blocks[0].centered  # weakly informed groups: non-centered
    fit = m.sample(chains=4, draws=2000, seed=11, adapt_delta=0.95, pointwise="stan")
    mu_ref, tau_ref = _grid_means(
        SCHOOLS["y"], SCHOOLS["s"], m.priors["Intercept"].mu, m.priors["Intercept"].sigma,
        m.priors["1|school_sigma"].sigma,
    )
    mcse = az.mcse(fit.idata, var_names=["Intercept", "1|school_sigma"])
    post = fit.posterior
    assert abs(float(post["Intercept"].mean()) - mu_ref) < 4 * float(mcse["Intercept"]) + 0.02
    assert abs(float(post["1|school_sigma"].mean()) - tau_ref) < 4 * float(mcse["1|school_sigma"]) + 0.02
    # the program's log_lik: normal densities with the known standard errors (scipy)
    theta = (post["Intercept"] + post["1|school"]).values  # (chain, draw, school)
    expected = stats.norm.logpdf(SCHOOLS["y"].to_numpy(), theta, SCHOOLS["s"].to_numpy())
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, expected, rtol=1e-4, atol=1e-4)  # CmdStan writes 6 digits
    # predictions of new responses need their standard errors
    new = pd.DataFrame({"school": ["A", "new"], "s": [1e-6, 1e-6]})
    with pytest.raises(DataError, match="needs them for the new rows: include column 's'"):
        fit.predict(new.drop(columns="s"))
    draws = fit.predict(new, seed=2).values.reshape(-1, 2)
    np.testing.assert_allclose(draws[:, 0], theta[..., 0].reshape(-1), atol=1e-4)  # school A, no error
    assert draws[:, 1].std() > float(post["Intercept"].std())  # a new school: mu plus tau's spread


@pytest.mark.cmdstan
def test_se_with_an_estimated_residual_sd_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    n = 60
    df = pd.DataFrame({"x": rng.normal(size=n), "s": rng.uniform(0.2, 1.0, n)})
    df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, np.sqrt(df["s"] ** 2 + 0.3**2))
    fit = hbstan.Model("y | se(s, sigma = TRUE) ~ x", df).sample(chains=2, draws=500, seed=4, pointwise="stan")
    post = fit.posterior
    mu = post["Intercept"].values[..., None] + post["x"].values[..., None] * df["x"].to_numpy()
    sd = np.sqrt(df["s"].to_numpy() ** 2 + post["sigma"].values[..., None] ** 2)
    np.testing.assert_allclose(
        fit.idata.log_likelihood["log_lik"].values, stats.norm.logpdf(df["y"].to_numpy(), mu, sd), rtol=1e-4, atol=1e-4
    )
    # the Python pointwise path (hbstan's NumPy) gives scipy's values on its own draws
    py = hbstan.Model("y | se(s, sigma = TRUE) ~ x", df).sample(chains=2, draws=500, seed=4, pointwise="python")
    q = py.posterior
    mu = q["Intercept"].values[..., None] + q["x"].values[..., None] * df["x"].to_numpy()
    sd = np.sqrt(df["s"].to_numpy() ** 2 + q["sigma"].values[..., None] ** 2)
    np.testing.assert_allclose(
        py.idata.log_likelihood["log_lik"].values, stats.norm.logpdf(df["y"].to_numpy(), mu, sd), rtol=1e-9
    )
