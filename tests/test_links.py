"""Links beyond the default: ``Model(family="bernoulli" | "binomial", link="probit" | "cloglog")``.

A probit model recovers its simulated truth, samples the posterior PyMC samples, and its
program's own log_lik and y_rep agree with the NumPy family; a rare-event cloglog model (its
Bernoulli rows summed into binomial counts) has the intercept posterior that quadrature of the
one-dimensional posterior gives. The log density of both links, over designs, is in the grid of
``validation/grid.py`` and the suite's subset (``tests/test_log_density.py``)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hbstan
from hbstan.fit import arviz_without_numba
from hbstan.pointwise import log_lik_and_y_rep

cmdstan = pytest.mark.cmdstan

TRUTH = {"Intercept": -0.3, "x": 0.8, "sd": 0.5}
# non-centered, rows kept as rows: the structure of the probit variant of the log-density
# subset, so the suite compiles one program for both
PROBIT = {"family": "bernoulli", "link": "probit", "centered": False, "aggregate": False}


@pytest.fixture(scope="module")
def probit_data() -> pd.DataFrame:
    rng = np.random.default_rng(21)
    J, n = 25, 1500
    g = rng.integers(0, J, n)
    x = rng.normal(size=n)
    eta = TRUTH["Intercept"] + TRUTH["x"] * x + rng.normal(0, TRUTH["sd"], J)[g]
    y = (rng.random(n) < stats.norm.cdf(eta)).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j:02d}" for j in g]})


@cmdstan
def test_probit_recovers_the_truth(probit_data: pd.DataFrame) -> None:
    m = hbstan.Model("y ~ x + (1 | g)", probit_data, **PROBIT)
    assert "bernoulli_lupmf(y | Phi(eta + Xc * b))" in m.program()
    post = m.sample(chains=2, seed=2).posterior
    for name, var in (("Intercept", "Intercept"), ("x", "x"), ("sd", "1|g_sigma")):
        d = post[var].values
        assert abs(d.mean() - TRUTH[name]) < 3 * d.std() + 0.02, (name, d.mean(), d.std())


@cmdstan
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")  # a short run: only its draws matter
def test_probit_program_pointwise_agrees_with_numpy(probit_data: pd.DataFrame) -> None:
    m = hbstan.Model("y ~ x + (1 | g)", probit_data, **PROBIT)
    fit = m.sample(chains=2, draws=150, warmup=150, seed=3, pointwise="stan", sig_figs=15)
    post = {v: fit.idata.posterior[v].values for v in fit.idata.posterior.data_vars}
    ll, rep = log_lik_and_y_rep(m, post, np.random.default_rng(0))
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, ll, rtol=1e-8, atol=1e-9)
    stan_rep = fit.idata.posterior_predictive["y"].values
    assert stan_rep.mean() == pytest.approx(rep.mean(), abs=0.01)  # the same success rate


@cmdstan
def test_probit_backends_agree(probit_data: pd.DataFrame) -> None:
    pytest.importorskip("pymc")
    m = hbstan.Model("y ~ x + (1 | g)", probit_data.iloc[:600], **PROBIT)
    c = hbstan.compare_backends(m, chains=2, draws=2000, seed=3)
    assert c.verdict == "agree", c.to_markdown()


@cmdstan
def test_rare_event_cloglog_intercept_matches_quadrature() -> None:
    """30 events in 1500 rows (p = 0.02): the posterior of the intercept, Normal(0, 2.5) prior,
    against the normalised density on a fine grid (independent of hbstan's code)."""
    n, k = 1500, 30
    df = pd.DataFrame({"y": np.r_[np.ones(k, int), np.zeros(n - k, int)]})
    m = hbstan.Model("y ~ 1", df, family="bernoulli", link="cloglog")
    assert m.aggregated  # identical rows are summed into binomial counts, the link kept
    assert "binomial_cloglog_lpmf" in m.program()
    prior = m.priors["Intercept"]
    assert (prior.mu, prior.sigma) == (0.0, 2.5)
    a = np.linspace(-6, -2, 20001)
    e = np.exp(a)
    logpost = k * np.log(-np.expm1(-e)) - (n - k) * e + stats.norm.logpdf(a, 0, 2.5)
    w = np.exp(logpost - logpost.max())
    w /= w.sum()
    mean = float(np.sum(w * a))
    sd = float(np.sqrt(np.sum(w * (a - mean) ** 2)))
    fit = m.sample(chains=4, draws=2000, seed=5)
    d = fit.posterior["Intercept"].values
    with arviz_without_numba():
        mcse = float(az.mcse(fit.idata, var_names=["Intercept"])["Intercept"])
    assert abs(d.mean() - mean) < 4 * mcse + 1e-3, (d.mean(), mean, mcse)
    assert d.std() == pytest.approx(sd, rel=0.05)
    # a logit fit of rare events is close but not the same model: its intercept is logit(p)
    assert abs(mean - np.log(-np.log1p(-k / n))) < 0.05
