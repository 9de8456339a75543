"""log_lik and y_rep computed from the draws in NumPy agree with the Stan program's own."""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pytest

import hbstan
from hbstan.pointwise import log_lik_and_y_rep

from .test_recovery import simulate

pytestmark = pytest.mark.cmdstan


@pytest.mark.parametrize("family", ["gaussian", "bernoulli", "binomial", "poisson"])
def test_python_pointwise_matches_stan(family: str) -> None:
    df, _, formula, kwargs = simulate("correlated", family, seed=5)
    df = df.iloc[:300]
    kwargs["pooling"] = None
    m = hbstan.Model(formula, data=df, group_predictors=None, **kwargs)
    fit = m.sample(chains=2, draws=150, warmup=150, seed=3, pointwise="stan", sig_figs=15)
    post = {v: fit.idata.posterior[v].values for v in fit.idata.posterior.data_vars}
    ll, rep = log_lik_and_y_rep(m, post, np.random.default_rng(0))
    stan_ll = fit.idata.log_likelihood["log_lik"].values
    assert np.allclose(ll, stan_ll, rtol=1e-9, atol=1e-9)
    stan_rep = fit.idata.posterior_predictive["y"].values
    # replicated data: same distribution (means over draws agree within Monte Carlo error)
    se = np.sqrt(rep.var(axis=(0, 1)) / 300 + stan_rep.var(axis=(0, 1)) / 300) + 1e-9
    z = (rep.mean(axis=(0, 1)) - stan_rep.mean(axis=(0, 1))) / se
    assert np.mean(np.abs(z) > 3.5) < 0.01


def test_default_computes_them_and_false_skips(radon) -> None:
    m = hbstan.Model("log_radon ~ floor + (1 | county)", data=radon)
    fit = m.sample(chains=1, draws=100, warmup=100, seed=1)
    assert fit.idata.log_likelihood["log_lik"].shape == (1, 100, len(radon))
    assert "log_lik" not in fit.stan_fit.stan_variables() or fit.stan_fit.stan_variable("log_lik").size == 0
    # sufficient statistics carry the likelihood: CmdStan's data file holds no rows
    assert m.suff_stats
    data = json.loads((fit.run_dir / "data.json").read_text())
    assert data["N"] == len(radon) and data["N_rows"] == 0 and data["y"] == [] and data["g_1"] == []
    bare = m.sample(chains=1, draws=100, warmup=100, seed=1, pointwise=False)
    assert "log_likelihood" not in bare.idata.groups()


def test_bernoulli_aggregation_gives_the_same_posterior() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    import pandas as pd

    df = pd.DataFrame({"seg": rng.choice(["a", "b", "c"], n), "treat": rng.integers(0, 2, n)})
    eta = -0.5 + 0.6 * df["treat"] + df["seg"].map({"a": 0.0, "b": 0.4, "c": -0.3})
    df["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    agg = hbstan.Model("y ~ treat + seg", data=df, family="bernoulli")
    rows = hbstan.Model("y ~ treat + seg", data=df, family="bernoulli", aggregate=False)
    assert agg.aggregated and not rows.aggregated
    assert agg.stan_data["N"] == 6 and agg.stan_data["trials"].sum() == n
    fa = agg.sample(chains=4, draws=1000, seed=1)
    fr = rows.sample(chains=4, draws=1000, seed=2)
    assert fa.idata.log_likelihood["log_lik"].shape[-1] == n  # still per original row
    cmp = hbstan.compare_fits(fa, fr)
    assert cmp.verdict == "agree", cmp.to_markdown()


def test_summed_poisson_rows_with_centered_slopes_give_the_same_posterior() -> None:
    """Counts summed per site and treatment (exposures summed), the site slopes centered on the
    treatment's coefficient, against every row with non-centered site effects."""
    import pandas as pd

    rng = np.random.default_rng(11)
    n = 2000
    site, treat = rng.integers(0, 25, n), rng.integers(0, 2, n)
    t = rng.uniform(0.5, 2.0, n)
    r = rng.multivariate_normal([0, 0], [[0.25, -0.08], [-0.08, 0.16]], 25)
    eta = 0.5 + r[site, 0] + (0.4 + r[site, 1]) * treat + np.log(t)
    df = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "treat": treat, "t": t, "site": [f"s{j}" for j in site]})
    formula = "y ~ treat + (1 + treat | site)"
    m = hbstan.Model(formula, df, family="poisson", exposure="t")
    assert m.aggregated and m.stan_data["N"] == 50 and m.stan_data["zb_1"] == [0, 1]
    assert m.structure()[0]["blocks"][0]["center_slopes"]
    rows = hbstan.Model(formula, df, family="poisson", exposure="t", aggregate=False, centered=False)
    fa = m.sample(chains=4, draws=1000, seed=1)
    fr = rows.sample(chains=4, draws=1000, seed=2)
    assert fa.idata.log_likelihood["log_lik"].shape[-1] == n  # still per original row
    cmp = hbstan.compare_fits(fa, fr)
    assert cmp.verdict == "agree", cmp.to_markdown()


def test_reduce_sum_program_gives_the_same_posterior() -> None:
    df, _, formula, kwargs = simulate("pooled", "poisson", seed=9)
    m = hbstan.Model(formula, data=df, **kwargs)
    threaded = m.sample(chains=2, draws=1000, seed=1, threads_per_chain=2)
    assert "reduce_sum" in (threaded.run_dir / "model.stan").read_text()
    plain = m.sample(chains=2, draws=1000, seed=2)
    cmp = hbstan.compare_fits(threaded, plain)
    assert cmp.verdict == "agree", cmp.to_markdown()


@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning", "ignore:Estimated shape parameter of Pareto")
def test_add_pointwise_gives_what_fitting_with_them_gives(radon, monkeypatch, caplog) -> None:
    import hbstan.pointwise as pw

    m = hbstan.Model("log_radon ~ floor + (1 | county)", data=radon)
    eager = m.sample(chains=2, draws=100, warmup=100, seed=4, pointwise="python")
    bare = m.sample(chains=2, draws=100, warmup=100, seed=4, pointwise=False)
    assert {"log_likelihood", "posterior_predictive"}.isdisjoint(bare.idata.groups())
    bare.add_pointwise()
    for group, var in (("log_likelihood", "log_lik"), ("posterior_predictive", "log_radon")):
        assert np.array_equal(bare.idata[group][var].values, eager.idata[group][var].values)
        assert bare.idata[group][var].dims == eager.idata[group][var].dims
    assert float(az.loo(bare.idata).elpd_loo) == pytest.approx(float(az.loo(eager.idata).elpd_loo))
    # "auto" leaves arrays above its limit to add_pointwise, and says so
    monkeypatch.setattr(pw, "AUTO_MAX_VALUES", 2 * 100 * len(radon) - 1)
    with caplog.at_level("WARNING", logger="hbstan"):
        big = m.sample(chains=2, draws=100, warmup=100, seed=4)
    assert "log_likelihood" not in big.idata.groups() and big.settings["pointwise"] is False
    assert "fit.add_pointwise()" in caplog.text
    monkeypatch.setattr(pw, "AUTO_MAX_VALUES", 2 * 100 * len(radon))
    assert m.sample(chains=2, draws=100, warmup=100, seed=4).idata.log_likelihood["log_lik"].shape == (2, 100, len(radon))
