"""The gamma, lognormal and beta families (issue 15), each added as one family module and one
template: a hierarchical fit recovers the truth it was simulated from, the program's own log_lik
and y_rep agree with the NumPy family's, the PyMC backend samples the same posterior (beta), an
impossible response is refused naming its rows, and the default priors are the documented ones.
Their log density is in the grid of ``validation/log_density.py`` and the suite's subset
(``tests/test_log_density.py``); their NumPy side is checked against scipy in
``tests/test_families.py``.

Every fit of one family has the same structure (``y ~ x + (1 | g)`` on the same data): one
program per family, compiled once.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import hbstan
from hbstan.pointwise import log_lik_and_y_rep

cmdstan = pytest.mark.cmdstan

FORMULA = "y ~ x + (1 | g)"
# population-level truth of each family's simulation (the group intercepts have SD 0.4)
TRUTH = {
    "gamma": {"Intercept": 1.0, "x": 0.5, "shape": 3.0, "1|g_sigma": 0.4},
    "lognormal": {"Intercept": 1.0, "x": 0.5, "sigma": 0.6, "1|g_sigma": 0.4},
    "beta": {"Intercept": 0.3, "x": 0.5, "phi": 8.0, "1|g_sigma": 0.4},
}
FAMILIES = sorted(TRUTH)


def simulate(family: str, n: int = 300, J: int = 15, seed: int = 7) -> pd.DataFrame:
    """y ~ family(eta = Intercept + x b + a_g), a_g ~ N(0, 0.4) over J groups of n / J rows."""
    t = TRUTH[family]
    rng = np.random.default_rng(seed)
    g = np.arange(n) % J
    x = rng.normal(size=n)
    a = rng.normal(0, t["1|g_sigma"], J)
    eta = t["Intercept"] + t["x"] * x + a[g]
    if family == "gamma":
        y = rng.gamma(t["shape"], np.exp(eta) / t["shape"])
    elif family == "lognormal":
        y = np.exp(rng.normal(eta, t["sigma"]))
    else:
        y = rng.beta(expit(eta) * t["phi"], expit(-eta) * t["phi"])
    return pd.DataFrame({"x": x, "g": [f"g{j:02d}" for j in g], "y": y})


@pytest.fixture(scope="module")
def fits() -> dict[str, hbstan.Fit]:
    """One fit per family, 2 chains x 1000 draws (fitted on first use)."""
    return {}


def _fit(fits: dict[str, hbstan.Fit], family: str) -> hbstan.Fit:
    if family not in fits:
        m = hbstan.Model(FORMULA, simulate(family), family=family)
        fits[family] = m.sample(chains=2, draws=1000, seed=1)
    return fits[family]


# ------------------------------------------------------------------ without CmdStan
@pytest.mark.parametrize(
    "family, y, rows",
    [
        ("gamma", [1.0, 0.0, 2.0, -1.5, 3.0], [1, 3]),
        ("lognormal", [0.5, 2.0, 0.0, 1.0, 4.0], [2]),
        ("beta", [0.2, 1.0, 0.5, 0.0, 1.2, 0.7], [1, 3, 4]),
    ],
)
def test_impossible_responses_are_refused_naming_the_rows(family: str, y: list[float], rows: list[int]) -> None:
    df = pd.DataFrame({"y": y, "x": np.arange(len(y), dtype=float)})
    what = "must lie strictly between 0 and 1" if family == "beta" else "must be positive (> 0)"
    fix = "Smithson" if family == "beta" else "hurdle"
    msg = re.escape(f"response 'y' {what} for family='{family}'; rows {rows}") + f".*{fix}"
    with pytest.raises(hbstan.DataError, match=msg):
        hbstan.Model("y ~ x", df, family=family)


def test_default_priors_are_the_documented_ones() -> None:
    df = simulate("lognormal")
    ly = np.log(df["y"].to_numpy())
    s = ly.std()
    pri = hbstan.Model(FORMULA, df, family="lognormal").priors
    # the Gaussian's data scaling, on log(y)
    assert pri["Intercept"].values() == pytest.approx({"loc": ly.mean(), "scale": 2.5 * s})
    assert pri["sigma"].values() == pytest.approx({"rate": 1 / s})
    assert pri["1|g_sigma"].values() == pytest.approx({"scale": s})
    for family, link in (("gamma", np.log), ("beta", lambda p: np.log(p / (1 - p)))):
        df = simulate(family)
        pri = hbstan.Model(FORMULA, df, family=family).priors
        assert pri["shape" if family == "gamma" else "phi"] == hbstan.InverseGamma(0.4, 0.3)
        # the link of the mean response; scale 1 on the link scale
        assert pri["Intercept"].values() == pytest.approx({"loc": link(df["y"].mean()), "scale": 2.5})
        assert pri["x"].values() == pytest.approx({"loc": 0.0, "scale": 2.5 / df["x"].std(ddof=0)})
        assert pri["1|g_sigma"] == hbstan.HalfNormal(1.0)


# ------------------------------------------------------------------ fits
@cmdstan
@pytest.mark.parametrize("family", FAMILIES)
def test_recovers_the_simulated_truth(fits: dict[str, hbstan.Fit], family: str) -> None:
    fit = _fit(fits, family)
    post = fit.posterior
    for name, true in TRUTH[family].items():
        draws = post[name].values.ravel()
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo < true < hi, (name, true, lo, hi)
    # and precisely: the slope to within about +-0.1 (300 rows)
    assert post["x"].values.std() < 0.06
    d = fit.diagnose()
    assert sum(d.divergences) == 0 and d.max_rhat < 1.01, str(d)


@cmdstan
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")  # a short run: only its draws matter
def test_program_pointwise_agrees_with_numpy(family: str) -> None:
    """The template's log_lik and y_rep (generated quantities) against the NumPy family."""
    m = hbstan.Model(FORMULA, simulate(family), family=family)
    fit = m.sample(chains=2, draws=150, warmup=150, seed=3, pointwise="stan", sig_figs=15)
    post = {v: fit.idata.posterior[v].values for v in fit.idata.posterior.data_vars}
    ll, rep = log_lik_and_y_rep(m, post, np.random.default_rng(0))
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, ll, rtol=1e-9, atol=1e-9)
    stan_rep = fit.idata.posterior_predictive["y"].values
    assert np.all(stan_rep > 0) and (family != "beta" or np.all(stan_rep < 1))
    # per row, the same mean and spread of the replicated responses (300 draws each side)
    se = np.sqrt(rep.var(axis=(0, 1)) / 300 + stan_rep.var(axis=(0, 1)) / 300)
    z = (rep.mean(axis=(0, 1)) - stan_rep.mean(axis=(0, 1))) / se
    assert np.mean(np.abs(z) > 3.5) < 0.01
    assert stan_rep.var() == pytest.approx(rep.var(), rel=0.1)


@cmdstan
def test_threads_give_the_same_posterior(fits: dict[str, hbstan.Fit]) -> None:
    """The reduce_sum program (the family's partial_args / partial_call) samples the same posterior."""
    fit = _fit(fits, "gamma")
    m = hbstan.Model(FORMULA, simulate("gamma"), family="gamma")
    threaded = m.sample(chains=2, draws=1000, seed=2, threads_per_chain=2)
    for name in TRUTH["gamma"]:
        a, b = fit.posterior[name].values.ravel(), threaded.posterior[name].values.ravel()
        se = np.sqrt(a.var() / 400 + b.var() / 400)  # ESS of at least ~400 per fit
        assert abs(a.mean() - b.mean()) < 4 * se, name


@cmdstan
def test_lognormal_mean_prediction_is_exp_mu_plus_half_sigma2(fits: dict[str, hbstan.Fit]) -> None:
    """predict(kind="mean") is E[y] = exp(mu + sigma^2 / 2), above the median exp(mu)."""
    fit = _fit(fits, "lognormal")
    new = pd.DataFrame({"x": [0.0], "g": ["g00"]})
    mean = fit.predict(new, kind="mean").values.ravel()
    post = fit.posterior
    mu = post["Intercept"].values.ravel() + post["1|g"].sel(g="g00").values.ravel()
    np.testing.assert_allclose(mean, np.exp(mu + post["sigma"].values.ravel() ** 2 / 2), rtol=1e-10)


@cmdstan
def test_beta_backends_agree() -> None:
    pytest.importorskip("pymc")
    m = hbstan.Model(FORMULA, simulate("beta"), family="beta")
    c = hbstan.compare_backends(m, chains=2, draws=2000, seed=3)
    assert c.verdict == "agree", c.to_markdown()
