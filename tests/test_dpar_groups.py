"""Group terms in distributional formulas: brms's ``bf(y ~ x + (1 | g), sigma ~ x + (1 | g))``,
here ``hbstan.Formula("y ~ x + (1 | g)", sigma="~ x + (1 | g)")``.

A known group-varying residual SD is recovered (each group's log sigma inside its posterior
interval); predictions give each row's sigma, with fresh effects for a new group; the
program's own log_lik equals NumPy's; PyMC's log density equals the program's; the refused
cases fail with their message. The log density of these programs against the independent
reference is in ``tests/test_log_density.py`` (the grid's ``gaussian_sigma_groups`` and
``lognormal_sigma_correlated_groups`` entries). One new Stan program is compiled here (the
recovery model, which is also the log-density subset's gaussian variant); the PyMC check
reuses the subset's lognormal one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hbstan
from hbstan.backend import program_hash
from hbstan.pointwise import log_lik_and_y_rep
from hbstan.predict import log_lik

from .reference_density import grid_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
from grid import Variant  # noqa: E402

cmdstan = pytest.mark.cmdstan

J, PER_GROUP = 8, 40
TRUTH = {"Intercept": 1.0, "x": 0.5, "sd": 0.4, "sigma_Intercept": -0.3, "sigma_sd": 0.6}
FORMULA = hbstan.Formula("y ~ x + (1 | g)", sigma="~ 1 + (1 | g)")
OPTIONS = {"centered": False}  # the structure of the grid's variant (non-centered mean term)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(61)
    g = np.repeat(np.arange(J), PER_GROUP)
    x = rng.normal(size=g.size)
    log_sigma = TRUTH["sigma_Intercept"] + np.linspace(-1.5, 1.5, J) * TRUTH["sigma_sd"]  # spread-out groups
    mu = TRUTH["Intercept"] + TRUTH["x"] * x + rng.normal(0, TRUTH["sd"], J)[g]
    df = pd.DataFrame({"y": mu + np.exp(log_sigma[g]) * rng.normal(size=g.size), "x": x, "g": [f"g{j}" for j in g]})
    df.attrs["log_sigma"] = log_sigma
    return df


@pytest.fixture(scope="module")
def fit(data: pd.DataFrame) -> hbstan.Fit:
    return hbstan.Model(FORMULA, data, **OPTIONS).sample(chains=2, draws=600, warmup=600, seed=5, adapt_delta=0.95)


def test_names_priors_and_program(data: pd.DataFrame) -> None:
    m = hbstan.Model(FORMULA, data, **OPTIONS)
    names = [p.name for p in m.params]
    assert names == ["Intercept", "x", "sigma_Intercept", "1|g", "1|g_sigma", "sigma_1|g", "sigma_1|g_sigma"]
    # the mean's linear predictor has its term only; sigma's term is numbered after it
    assert [b.factor for b in m.design.blocks] == ["g"] and [b.dpar for b in m.design.dpar_blocks] == ["sigma"]
    assert m.priors["sigma_1|g_sigma"] == hbstan.HalfNormal(1.0)
    code = m.stan_code
    assert "eta_sigma += r_2[g_2, 1];" in code
    assert "eta += r_2" not in code and "matrix[M_2, J_2] z_2;" in code
    # the same program as the grid's variant (structure is data)
    grid_m, *_ = Variant("gaussian_sigma_groups", "hierarchical", True, False, False).model(
        grid_data(), predictors=False, offset=False
    )
    assert program_hash(grid_m.stan_code) == program_hash(code)
    # class "sd_sigma" (brms's class = "sd", dpar = "sigma") apart from the mean's "sd"
    m2 = hbstan.Model(FORMULA, data, priors={"sd_sigma": hbstan.HalfNormal(0.3), "sd": hbstan.HalfNormal(2.0)})
    assert m2.priors["sigma_1|g_sigma"] == hbstan.HalfNormal(0.3) and m2.priors["1|g_sigma"] == hbstan.HalfNormal(2.0)
    # correlated effects in sigma's formula: their own correlation matrix, levels as coords
    m3 = hbstan.Model(hbstan.Formula("y ~ x", sigma="~ x + (1 + x | g)"), data)
    cor = next(p for p in m3.params if p.name == "sigma_g_corr")
    assert cor.stan == "Cor_1" and m3.design.dpar_blocks[0].pooling == "correlated"
    assert next(p for p in m3.params if p.name == "sigma_x|g").coords == {"g": [f"g{j}" for j in range(J)]}


def test_refused_cases(data: pd.DataFrame) -> None:
    with pytest.raises(hbstan.FormulaError, match="pooling='unpooled' with the group term \\(1 \\| g\\) in the formula of 'sigma'"):
        hbstan.Model(FORMULA, data, pooling="unpooled")
    with pytest.raises(hbstan.FormulaError, match="group_predictors names 'h', whose varying intercept is in a distributional"):
        hbstan.Model(hbstan.Formula("y ~ x", sigma="~ (1 | h)"), data.assign(h=data["g"], u=1.0), group_predictors={"h": "u"})
    with pytest.raises(hbstan.DataError, match="'one' in the formula of 'sigma' has a single group"):
        hbstan.Model(hbstan.Formula("y ~ x", sigma="~ (1 | one)"), data.assign(one="a"))
    with pytest.raises(ValueError, match="unknown prior name 'sd_shape'"):
        hbstan.Model(FORMULA, data, priors={"sd_shape": hbstan.HalfNormal(1)})
    # complete pooling drops every group term, sigma's too
    assert not hbstan.Model(FORMULA, data, pooling="pooled").design.dpar_blocks


@cmdstan
def test_group_varying_sigma_is_recovered(fit: hbstan.Fit, data: pd.DataFrame) -> None:
    post = fit.posterior
    log_sigma = (post["sigma_Intercept"] + post["sigma_1|g"]).values.reshape(-1, J)  # (draws, groups)
    lo, hi = np.quantile(log_sigma, [0.005, 0.995], axis=0)
    truth = data.attrs["log_sigma"]
    assert np.all((lo < truth) & (truth < hi)), (lo, truth, hi)
    # the groups are told apart: the fitted log sigmas follow the truth closely
    assert np.corrcoef(log_sigma.mean(axis=0), truth)[0, 1] > 0.95
    sd = post["sigma_1|g_sigma"].values
    assert np.quantile(sd, 0.01) < np.std(truth, ddof=1) < np.quantile(sd, 0.99)
    for name in ("Intercept", "x"):
        d = post[name].values
        assert abs(d.mean() - TRUTH[name]) < 3 * d.std() + 0.02, (name, d.mean(), d.std())


@cmdstan
def test_predicted_sigma_per_group_and_for_a_new_group(fit: hbstan.Fit, data: pd.DataFrame) -> None:
    post = fit.posterior
    new = pd.DataFrame({"x": [0.0, 0.0], "g": ["g0", "new"]})
    sig = fit.predict(new, kind="sigma", seed=1).values.reshape(-1, 2)
    expected = np.exp(post["sigma_Intercept"] + post["sigma_1|g"].sel(g="g0")).values.reshape(-1)
    np.testing.assert_allclose(sig[:, 0], expected, rtol=1e-12)
    # a new group: exp(Intercept + N(0, sd)), one fresh draw per posterior draw
    z = np.log(sig[:, 1]) - post["sigma_Intercept"].values.reshape(-1)
    ratio = z / post["sigma_1|g_sigma"].values.reshape(-1)
    assert abs(ratio.mean()) < 0.15 and ratio.std() == pytest.approx(1.0, abs=0.1)
    # the held-out log-likelihood of the seen group's row: scipy's normal density at the
    # predicted mean and sigma
    ll = log_lik(fit, new.assign(y=[1.0, 1.0]), seed=1).reshape(-1, 2)
    mean = fit.predict(new, kind="mean", seed=1).values.reshape(-1, 2)
    np.testing.assert_allclose(ll[:, 0], stats.norm.logpdf(1.0, mean[:, 0], sig[:, 0]), rtol=1e-10)


@cmdstan
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")  # a short run: only its draws matter
def test_program_pointwise_agrees_with_numpy(data: pd.DataFrame) -> None:
    m = hbstan.Model(FORMULA, data, **OPTIONS)
    f = m.sample(chains=2, draws=100, warmup=100, seed=3, pointwise="stan", sig_figs=15)
    post = {v: f.idata.posterior[v].values for v in f.idata.posterior.data_vars}
    ll, _ = log_lik_and_y_rep(m, post, np.random.default_rng(0))
    np.testing.assert_allclose(f.idata.log_likelihood["log_lik"].values, ll, rtol=1e-8, atol=1e-9)


@cmdstan
@pytest.mark.parametrize(
    "variant", [("gaussian_sigma_groups", "hierarchical", True, False), ("lognormal_sigma_correlated_groups", "crossed", False, True)]
)
def test_pymc_log_density_is_stans(variant: tuple) -> None:
    """PyMC's log density of a model with group terms in sigma's formula equals the program's
    (up to a constant) at random points; the programs are the log-density subset's."""
    pytest.importorskip("pymc")
    from .test_pymc import _check_logp_matches_stan

    m, *_ = Variant(*variant, False).model(grid_data(), predictors=True, offset=False)
    assert m.design.dpar_blocks
    _check_logp_matches_stan(m)


def test_the_same_correlated_term_in_the_mean_and_in_sigma(data: pd.DataFrame) -> None:
    """One term in both formulas: two blocks equal in everything but their role, told apart by
    their number (comparing them once raised numpy's ambiguous truth value)."""
    df = data.assign(x2=np.random.default_rng(3).normal(size=len(data)))
    m = hbstan.Model(hbstan.Formula("y ~ x2 + (1 + x2 | g)", sigma="~ x2 + (1 + x2 | g)"), df)
    corr = {p.name: p.stan for p in m.params if p.kind == "corr"}
    assert corr == {"g_corr": "Cor_1", "sigma_g_corr": "Cor_2"}
    assert m.priors["g_corr"] == hbstan.LKJ(2.0) and m.priors["sigma_g_corr"] == hbstan.LKJ(2.0)
    assert "sigma_x2|g_sigma" in m.priors and "x2|g_sigma" in m.priors
