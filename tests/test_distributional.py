"""Distributional parameters: ``hbstan.Formula("y ~ x + (1 | g)", sigma="~ z")`` (brms's
``bf(y ~ x + (1 | g), sigma ~ z)``) gives the residual SD a formula of its own on the log scale.

A heteroscedastic simulation is recovered (and the homoscedastic model's intervals are shown
wrong where the noise is large); the program's own log_lik equals the NumPy one; PyMC samples
the same posterior; predictions return each row's sigma. The log density of these programs
against an independent reference is in ``tests/test_log_density.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.pointwise import log_lik_and_y_rep

cmdstan = pytest.mark.cmdstan

TRUTH = {"Intercept": 1.0, "x": 0.5, "sigma_Intercept": -0.5, "sigma_z": 0.8, "sd": 0.4}
FORMULA = hbstan.Formula("y ~ x + (1 | g)", sigma="~ z")
# the structure of the log-density subset's distributional variant (non-centered term)
OPTIONS = {"centered": False}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(31)
    J, n = 20, 800
    g = rng.integers(0, J, n)
    x, z = rng.normal(size=n), rng.normal(size=n)
    sigma = np.exp(TRUTH["sigma_Intercept"] + TRUTH["sigma_z"] * z)
    y = TRUTH["Intercept"] + TRUTH["x"] * x + rng.normal(0, TRUTH["sd"], J)[g] + rng.normal(0, sigma)
    return pd.DataFrame({"y": y, "x": x, "z": z, "g": [f"g{j:02d}" for j in g]})


@pytest.fixture(scope="module")
def fit(data: pd.DataFrame) -> hbstan.Fit:
    return hbstan.Model(FORMULA, data, **OPTIONS).sample(chains=2, seed=4)


def test_formula_is_a_string_with_parts() -> None:
    f = hbstan.Formula("y ~ x + (1 | g)", sigma="~ z + w")
    assert f == "y ~ x + (1 | g); sigma ~ z + w" and isinstance(f, str)
    assert f.dpars == {"sigma": "z + w"}


def test_bad_distributional_formulas_are_refused(data: pd.DataFrame) -> None:
    with pytest.raises(hbstan.FormulaError, match="'shape' cannot have a formula of its own in family='gaussian'"):
        hbstan.Model("y ~ x; shape ~ z", data)
    with pytest.raises(hbstan.FormulaError, match="pooling='unpooled' with the group term"):
        hbstan.Model("y ~ x; sigma ~ z + (1 | g)", data, pooling="unpooled")
    with pytest.raises(ValueError, match="sigma= gives a known sigma"):
        hbstan.Model("y ~ x; sigma ~ z", data, sigma=1.0)
    with pytest.raises(hbstan.FormulaError, match="not a formula of a distributional parameter"):
        hbstan.Model("y ~ x; ~ z", data)
    with pytest.raises(hbstan.DataError, match="predictor 'c' in the formula of 'sigma' is constant"):
        hbstan.Model("y ~ x; sigma ~ c", data.assign(c=1.0))


def test_model_has_no_sufficient_statistics_and_names_the_coefficients(data: pd.DataFrame) -> None:
    m = hbstan.Model(FORMULA, data)
    assert not m.suff_stats and not m.marginalized and not m.threads_supported
    assert [p.name for p in m.params][:4] == ["Intercept", "x", "sigma_Intercept", "sigma_z"]
    assert "sigma" not in [p.name for p in m.params]
    with pytest.raises(ValueError, match="no formula for sigma"):
        hbstan.Model(FORMULA, data, suff_stats=True)


@cmdstan
def test_heteroscedastic_sigma_is_recovered(fit: hbstan.Fit, data: pd.DataFrame) -> None:
    post = fit.posterior
    for name, var in (("Intercept", "Intercept"), ("x", "x"), ("sigma_Intercept", "sigma_Intercept"),
                      ("sigma_z", "sigma_z"), ("sd", "1|g_sigma")):
        d = post[var].values
        assert abs(d.mean() - TRUTH[name]) < 3 * d.std() + 0.02, (name, d.mean(), d.std())
    # each row's sigma, from predictions, against the true one
    sig = fit.predict(data, kind="sigma").mean(("chain", "draw")).values
    true = np.exp(TRUTH["sigma_Intercept"] + TRUTH["sigma_z"] * data["z"].to_numpy())
    assert np.max(np.abs(np.log(sig / true))) < 0.35
    assert "sigma_z" in str(fit) and "sigma = log" in str(fit)


@cmdstan
def test_homoscedastic_intervals_miss_where_the_noise_is_large(fit: hbstan.Fit, data: pd.DataFrame) -> None:
    """90% predictive intervals: one sigma for all rows is too narrow in the noisiest tenth of
    the rows (largest z) and too wide in the quietest fifth; sigma ~ z holds its level in both."""
    plain = hbstan.Model("y ~ x + (1 | g)", data).sample(chains=2, seed=4)
    y, z = data["y"].to_numpy(), data["z"].to_numpy()
    noisy, quiet = z > np.quantile(z, 0.9), z < np.quantile(z, 0.2)

    def cover(f: hbstan.Fit, rows: np.ndarray) -> float:
        rep = f.idata.posterior_predictive["y"].values.reshape(-1, y.size)
        lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
        return float(np.mean(((y >= lo) & (y <= hi))[rows]))

    assert cover(plain, noisy) < 0.8 and cover(plain, quiet) > 0.97, (cover(plain, noisy), cover(plain, quiet))
    assert 0.8 < cover(fit, noisy) and 0.8 < cover(fit, quiet) < 0.98, (cover(fit, noisy), cover(fit, quiet))


@cmdstan
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")  # a short run: only its draws matter
def test_program_pointwise_agrees_with_numpy(data: pd.DataFrame) -> None:
    m = hbstan.Model(FORMULA, data, **OPTIONS)
    f = m.sample(chains=2, draws=150, warmup=150, seed=3, pointwise="stan", sig_figs=15)
    post = {v: f.idata.posterior[v].values for v in f.idata.posterior.data_vars}
    ll, rep = log_lik_and_y_rep(m, post, np.random.default_rng(0))
    np.testing.assert_allclose(f.idata.log_likelihood["log_lik"].values, ll, rtol=1e-8, atol=1e-9)
    stan_rep = f.idata.posterior_predictive["y"].values
    assert stan_rep.std(axis=(0, 1)) == pytest.approx(rep.std(axis=(0, 1)), rel=0.25)


@cmdstan
def test_distributional_backends_agree(data: pd.DataFrame) -> None:
    pytest.importorskip("pymc")
    m = hbstan.Model(FORMULA, data.iloc[:400], **OPTIONS)
    c = hbstan.compare_backends(m, chains=2, draws=1500, seed=3)
    assert c.verdict == "agree", c.to_markdown()


# --- formulas for the other auxiliary parameters: a probability on the logit scale -----------
# zero-inflated Poisson with zi ~ z: the structure of the log-density subset's variant
# "zero_inflated_poisson_zi_formula, hierarchical" (non-centered group intercepts)
ZI_TRUTH = {"Intercept": 1.2, "x": 0.4, "zi_Intercept": -0.6, "zi_z": 1.0, "sd": 0.3}
ZI_FORMULA = hbstan.Formula("y ~ x + (1 | g)", zi="~ z")


@pytest.fixture(scope="module")
def zi_data() -> pd.DataFrame:
    rng = np.random.default_rng(47)
    J, n = 15, 900
    g = rng.integers(0, J, n)
    x, z = rng.normal(size=n), rng.normal(size=n)
    a = rng.normal(0, ZI_TRUTH["sd"], J)
    rate = np.exp(ZI_TRUTH["Intercept"] + ZI_TRUTH["x"] * x + a[g])
    zi = 1 / (1 + np.exp(-(ZI_TRUTH["zi_Intercept"] + ZI_TRUTH["zi_z"] * z)))
    y = np.where(rng.random(n) < zi, 0, rng.poisson(rate))
    df = pd.DataFrame({"y": y, "x": x, "z": z, "g": [f"g{j:02d}" for j in g]})
    # what the data identify is the intercept plus the mean of the 15 drawn group intercepts
    # (0.27 here: 3.5 of its standard errors), not the generator's 1.2
    df.attrs["Intercept"] = ZI_TRUTH["Intercept"] + a.mean()
    return df


def test_formulas_for_shape_precision_and_zero_probabilities() -> None:
    rng = np.random.default_rng(2)
    n = 60
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "c": rng.poisson(2, n),
                       "q": rng.uniform(0.1, 0.9, n)})
    links = {
        ("negbinomial", "c", "shape"): "mu = log; shape = log",
        ("gamma", "q", "shape"): "mu = log; shape = log",
        ("beta", "q", "phi"): "mu = logit; phi = log",
        ("zero_inflated_poisson", "c", "zi"): "mu = log; zi = logit",
        ("hurdle_negbinomial", "c", "hu"): "mu = log; shape = identity; hu = logit",
    }
    for (family, y, name), summary in links.items():
        m = hbstan.Model(f"{y} ~ x; {name} ~ z", df, family=family)
        assert m.link_summary() == summary
        assert [p.name for p in m.params if p.name.startswith(name)] == [f"{name}_Intercept", f"{name}_z"]
        # brms's defaults: Student-t(3, 0, 2.5) on the log scale, Logistic(0, 1) on the logit scale
        expect = hbstan.Logistic(0, 1) if name in ("zi", "hu") else hbstan.StudentT(3, 0, 2.5)
        assert m.priors[f"{name}_Intercept"] == expect
    m = hbstan.Model("c ~ x; zi ~ z", df, family="zero_inflated_poisson", priors={"zi_Intercept": "logistic(-2, 0.5)"})
    assert m.priors["zi_Intercept"] == hbstan.Logistic(-2, 0.5)
    with pytest.raises(hbstan.FormulaError, match="'zi' cannot have a formula of its own in family='poisson'"):
        hbstan.Model("c ~ x; zi ~ z", df, family="poisson")


@cmdstan
def test_zero_inflation_formula_is_recovered_and_its_log_lik_is_numpys(zi_data: pd.DataFrame) -> None:
    m = hbstan.Model(ZI_FORMULA, zi_data, family="zero_inflated_poisson", **OPTIONS)
    f = m.sample(chains=2, seed=8, pointwise="stan", sig_figs=15)
    post = f.posterior
    for name, var in (("Intercept", "Intercept"), ("x", "x"), ("zi_Intercept", "zi_Intercept"),
                      ("zi_z", "zi_z"), ("sd", "1|g_sigma")):
        d = post[var].values
        truth = zi_data.attrs.get(name, ZI_TRUTH[name])
        assert abs(d.mean() - truth) < 3 * d.std() + 0.02, (name, d.mean(), d.std(), truth)
    zi = f.predict(zi_data, kind="zi").mean(("chain", "draw")).values
    true = 1 / (1 + np.exp(-(ZI_TRUTH["zi_Intercept"] + ZI_TRUTH["zi_z"] * zi_data["z"].to_numpy())))
    assert np.max(np.abs(zi - true)) < 0.12
    assert "zi = logit" in str(f)
    # the program's log_lik against NumPy's (inv_logit of the formula in both)
    draws = {v: f.idata.posterior[v].values for v in f.idata.posterior.data_vars}
    ll, _ = log_lik_and_y_rep(m, draws, np.random.default_rng(0))
    np.testing.assert_allclose(f.idata.log_likelihood["log_lik"].values, ll, rtol=1e-8, atol=1e-9)


@cmdstan
def test_zero_inflation_formula_backends_agree(zi_data: pd.DataFrame) -> None:
    pytest.importorskip("pymc")
    m = hbstan.Model(ZI_FORMULA, zi_data.iloc[:300], family="zero_inflated_poisson", **OPTIONS)
    c = hbstan.compare_backends(m, chains=2, draws=1000, seed=5)
    assert c.verdict == "agree", c.to_markdown()


@cmdstan
@pytest.mark.parametrize("variant", ["lognormal_sigma_formula_censored", "gaussian_sigma_formula_weighted"])
def test_sigma_formula_with_censoring_or_weights_pymc_density_is_stans(variant: str) -> None:
    """A formula for sigma with cens() or weights(): PyMC's log density equals the program's
    (up to a constant) at random points; the programs are the log-density subset's."""
    pytest.importorskip("pymc")
    from .reference_density import grid_data
    from .test_log_density import Variant
    from .test_pymc import _check_logp_matches_stan

    m, *_ = Variant(variant, "pooled", True, False, False).model(grid_data(), predictors=True, offset=False)
    assert m.cens is not None or m.weights is not None
    # censored rows: Stan's and PyTensor's log CDFs differ by about 1e-6 in all (of a log
    # density in the hundreds) at these random points, far in the tails; an error in the
    # formula or the censoring moves the difference by far more
    _check_logp_matches_stan(m, tol=1e-8 if m.cens is None else 1e-4)
