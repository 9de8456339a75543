"""The negative binomial family, added as one family module and one template
(``hbstan/families/negbinomial.py``, ``stan_templates/families/negbinomial.stan.j2``): its
NumPy draws follow scipy's distribution, a hierarchical fit recovers the truth it was simulated
from, the program's own log_lik and y_rep agree with the NumPy ones, the PyMC backend samples
the same posterior, and on overdispersed counts a Poisson fit's predictive intervals are too
narrow where the negative binomial's hold their level. Its log density is in the grid of
``validation/log_density.py`` and the suite's subset (``tests/test_log_density.py``).

Every fit here has the same structure (``y ~ x + (1 | g)``): one program, compiled once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hbstan
from hbstan.families import get_family
from hbstan.pointwise import log_lik_and_y_rep

cmdstan = pytest.mark.cmdstan

FORMULA = "y ~ x + (1 | g)"
TRUTH = {"Intercept": 2.5, "x": 0.5, "shape": 2.0, "1|g_sigma": 0.5}


def overdispersed(n: int = 400, J: int = 20, seed: int = 11, shape: float = TRUTH["shape"]) -> pd.DataFrame:
    """Counts y ~ NB(exp(2.5 + 0.5 x + a_g), shape), a_g ~ N(0, 0.5) over J groups: variance
    mu + mu^2 / shape, far above the Poisson's mu."""
    rng = np.random.default_rng(seed)
    g = np.arange(n) % J
    x = rng.normal(size=n)
    a = rng.normal(0, TRUTH["1|g_sigma"], J)
    mu = np.exp(TRUTH["Intercept"] + TRUTH["x"] * x + a[g])
    y = rng.negative_binomial(shape, shape / (shape + mu))
    return pd.DataFrame({"x": x, "g": [f"g{j:02d}" for j in g], "y": y})


def coverage(fit: hbstan.Fit, y: np.ndarray, level: float = 0.9) -> float:
    """Fraction of the observed y inside their rows' central posterior predictive interval."""
    rep = fit.idata.posterior_predictive["y"].values.reshape(-1, y.size)
    lo, hi = np.quantile(rep, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return float(np.mean((y >= lo) & (y <= hi)))


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return overdispersed()


@pytest.fixture(scope="module")
def nb_fit(data: pd.DataFrame) -> hbstan.Fit:
    return hbstan.Model(FORMULA, data, family="negbinomial").sample(chains=2, draws=1000, seed=1)


# ------------------------------------------------------------------ NumPy side
@pytest.mark.parametrize("shape", [0.3, 5.0])
def test_draws_follow_scipys_negative_binomial(shape: float) -> None:
    """Draws (a gamma-Poisson mixture) have scipy's nbinom frequencies, not just its mean."""
    fam = get_family("negbinomial")
    n, mu = 200_000, 3.0
    draws = fam.draw(np.random.default_rng(5), np.full(n, np.log(mu)), {"shape": shape}, None)
    ref = stats.nbinom(shape, shape / (shape + mu))
    for k in range(8):
        p = ref.pmf(k)
        assert abs(np.mean(draws == k) - p) < 5 * np.sqrt(p * (1 - p) / n), k
    assert np.var(draws) == pytest.approx(mu + mu**2 / shape, rel=0.05)


def test_log_lik_is_accurate_for_a_large_shape_and_draws_stay_finite() -> None:
    fam = get_family("negbinomial")
    y = np.arange(0, 40.0)
    eta = np.full(y.shape, np.log(7.0))
    # shape -> infinity is the Poisson (the gap is O(mu^2 / shape)): no cancellation error
    ll = fam.log_lik(y, eta, {"shape": 1e10}, None)
    np.testing.assert_allclose(ll, stats.poisson.logpmf(y, 7.0), rtol=1e-8, atol=1e-8)
    # a mean far beyond NumPy's Poisson sampler and a tiny shape: capped, finite draws
    rep = fam.draw(np.random.default_rng(1), np.array([50.0, 0.0, -5.0]), {"shape": np.array([0.05, 0.002, 1.0])}, None)
    assert np.all((rep >= 0) & (rep <= 2**31))


# ------------------------------------------------------------------ the program
@cmdstan
def test_program_log_density_is_accurate_at_a_huge_shape(data: pd.DataFrame) -> None:
    """At the Poisson end (shape -> infinity, where the shape's heavy-tailed prior lets warm-up
    wander) the program's likelihood is the Poisson's. neg_binomial_2_log_glm is not: its
    shape log(shape) - lgamma(shape) terms cancel catastrophically, +4e204 at shape 1e213, and a
    chain stayed there (examples/10 before the template switched to neg_binomial_2_log)."""
    from hbstan.backend import compiled_model

    from .reference_density import program_parameters, random_point, stan_params

    m = hbstan.Model(FORMULA, data, family="negbinomial")
    cm = compiled_model(m.program())
    names = program_parameters(cm)
    pt = random_point(m, np.random.default_rng(2))
    y = m.design.y
    eta = pt.Intercept + (m.design.X - m.design.X.mean(axis=0)) @ pt.b + pt.r[1][m.design.blocks[0].index, 0]
    data_ = {po: m.stan_data_for(prior_only=po, pointwise=False) for po in (False, True)}

    def stan_lik(shape: float) -> float:
        pt.shape = shape
        lp = {
            po: float(cm.log_prob(params=stan_params(m, pt, names), data=data_[po], jacobian=False, sig_figs=16)["lp__"].iloc[0])
            for po in (False, True)
        }
        return lp[False] - lp[True]

    base = stan_lik(2.0)
    ref_base = stats.nbinom.logpmf(y, 2.0, 2.0 / (2.0 + np.exp(eta))).sum()
    for shape in (1e12, 1e200):
        # the likelihood up to the constant lupmf drops: differences between shapes
        ref = stats.poisson.logpmf(y, np.exp(eta)).sum()  # the limit (error O(mu^2 / shape) per row)
        assert stan_lik(shape) - base == pytest.approx(ref - ref_base, abs=1e-6), shape


# ------------------------------------------------------------------ fits
@cmdstan
def test_recovers_the_simulated_truth(nb_fit: hbstan.Fit) -> None:
    post = nb_fit.posterior
    for name, true in TRUTH.items():
        draws = post[name].values.ravel()
        lo, hi = np.quantile(draws, [0.025, 0.975])
        assert lo < true < hi, (name, true, lo, hi)
    assert abs(post["x"].values.mean() - TRUTH["x"]) < 0.1
    d = nb_fit.diagnose()
    assert sum(d.divergences) == 0 and d.max_rhat < 1.01, str(d)


@cmdstan
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")  # a short run: only its draws matter
def test_program_pointwise_agrees_with_numpy(data: pd.DataFrame) -> None:
    """The template's log_lik and y_rep (generated quantities) against the NumPy family."""
    m = hbstan.Model(FORMULA, data, family="negbinomial")
    fit = m.sample(chains=2, draws=150, warmup=150, seed=3, pointwise="stan", sig_figs=15)
    post = {v: fit.idata.posterior[v].values for v in fit.idata.posterior.data_vars}
    ll, rep = log_lik_and_y_rep(m, post, np.random.default_rng(0))
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, ll, rtol=1e-9, atol=1e-9)
    stan_rep = fit.idata.posterior_predictive["y"].values
    se = np.sqrt(rep.var(axis=(0, 1)) / 300 + stan_rep.var(axis=(0, 1)) / 300) + 1e-9
    z = (rep.mean(axis=(0, 1)) - stan_rep.mean(axis=(0, 1))) / se
    assert np.mean(np.abs(z) > 3.5) < 0.01
    # the same spread too: the overdispersion is in Stan's replicated data
    assert stan_rep.var() == pytest.approx(rep.var(), rel=0.1)


@cmdstan
def test_poisson_intervals_are_too_narrow_for_overdispersed_counts(data: pd.DataFrame, nb_fit: hbstan.Fit) -> None:
    y = data["y"].to_numpy()
    poisson = hbstan.Model(FORMULA, data, family="poisson").sample(chains=2, draws=1000, seed=1)
    cov_p, cov_nb = coverage(poisson, y), coverage(nb_fit, y)
    assert cov_p < 0.75, cov_p  # the Poisson's intervals miss far more than 10% of the counts
    # the negative binomial's hold their 90% level (a little above: a count's interval includes its ends)
    assert 0.85 < cov_nb < 0.97, cov_nb
    assert nb_fit.posterior["shape"].values.mean() < 5  # overdispersion found


@cmdstan
def test_negbinomial_backends_agree(data: pd.DataFrame) -> None:
    pytest.importorskip("pymc")
    m = hbstan.Model(FORMULA, data, family="negbinomial")
    # 2 x 2000 draws: R-hat <= 1.01 on every scalar of both backends (at 2 x 1000 it is marginal)
    c = hbstan.compare_backends(m, chains=2, draws=2000, seed=3)
    assert c.verdict == "agree", c.to_markdown()
