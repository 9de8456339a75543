"""What every family gets through the seam, checked for the two added as one module and one
template each (student, negbinomial): the prior predictive, LOO, and predictions for seen and
unseen groups."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hbstan

pytestmark = pytest.mark.cmdstan

INTERCEPT, SLOPE, GROUP_SD = 1.0, 0.5, 0.4


def simulate(family: str, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    J, n = 12, 20
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    eta = INTERCEPT + SLOPE * x + rng.normal(0, GROUP_SD, J)[g]
    if family == "student":
        y = eta + 0.5 * rng.standard_t(5, J * n)
    else:  # negbinomial, shape 3
        y = rng.poisson(rng.gamma(3.0, np.exp(eta) / 3.0))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j:02d}" for j in g]})


@pytest.mark.parametrize("family", ["student", "negbinomial"])
def test_prior_predictive_loo_and_new_group_predictions(family: str) -> None:
    import arviz as az

    df = simulate(family)
    m = hbstan.Model("y ~ x + (1 | g)", df, family=family)

    # prior predictive: the Intercept's draws are its prior's, and replicated data exist
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hbstan.SamplingWarning)
        prior = m.sample(chains=2, draws=1000, seed=2, prior_only=True)
    p = m.priors["Intercept"]
    a = prior.posterior["Intercept"].values.reshape(-1)
    assert abs(a.mean() - p.mu) < 5 * p.sigma / np.sqrt(300), (a.mean(), p)
    assert a.std() == pytest.approx(p.sigma, rel=0.15)
    rep = prior.idata.posterior_predictive["y"].values
    assert rep.shape == (2, 1000, len(df)) and np.isfinite(rep).all()

    fit = m.sample(chains=2, draws=1000, seed=3)
    post = fit.posterior
    for name, truth in (("Intercept", INTERCEPT), ("x", SLOPE)):
        lo, hi = np.quantile(post[name].values, [0.005, 0.995])
        assert lo < truth < hi, (name, lo, hi)

    # LOO from the pointwise log-likelihood: one value per row, a sane effective size
    loo = az.loo(fit.idata)
    assert np.isfinite(loo.elpd_loo) and 2 < loo.p_loo < 20, loo
    assert loo.n_data_points == len(df)

    # predictions of the mean at x = 0: a seen group is pinned by its data; a new group's
    # effect is drawn from the population, so it is centred on the population mean and wider
    new = pd.DataFrame({"x": [0.0, 0.0], "g": ["g03", "a new group"]})
    mean = fit.predict(new, kind="mean", seed=4).values.reshape(-1, 2)
    link = np.log if family == "negbinomial" else (lambda v: v)
    eta_seen, eta_new = link(mean[:, 0]), link(mean[:, 1])
    assert eta_new.std() > 1.5 * eta_seen.std()
    population = post["Intercept"].values.reshape(-1)
    assert abs(np.median(eta_new) - np.median(population)) < 0.15
    seen = population + post["1|g"].sel(g="g03").values.reshape(-1)
    np.testing.assert_allclose(eta_seen, seen, rtol=1e-9, atol=1e-9)
    draws = fit.predict(new, kind="response", seed=4).values
    assert draws.shape == (2, 1000, 2)
    if family == "negbinomial":
        assert (draws >= 0).all() and (draws == np.round(draws)).all()
