"""Radon (Minnesota): the hierarchical and correlated models with log_uppm as a county-level
predictor fit without divergences at default settings, and the fit works with ArviZ."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

import hbstan

pytestmark = pytest.mark.cmdstan


@pytest.fixture(scope="module")
def fits(radon: pd.DataFrame) -> dict[str, hbstan.Fit]:
    out = {}
    for name, formula in {
        "hierarchical": "log_radon ~ 1 + floor + (1 | county)",
        "correlated": "log_radon ~ 1 + floor + (1 + floor | county)",
    }.items():
        m = hbstan.Model(formula, data=radon, group_predictors={"county": ["log_uppm"]})
        out[name] = m.sample(seed=1)  # default settings: 4 chains x 1000 warm-up + 1000 draws
    return out


@pytest.mark.parametrize("name", ["hierarchical", "correlated"])
def test_no_divergences_at_defaults(fits: dict, name: str) -> None:
    diag = fits[name].diagnose()
    assert sum(diag.divergences) == 0, str(diag)
    assert diag.max_rhat <= 1.01, str(diag)


def test_known_radon_estimates(fits: dict) -> None:
    """Gelman & Hill (2006, ch. 12): floor effect about -0.67, uranium coefficient about 0.72."""
    s = fits["hierarchical"].summary(var_names=["floor", "log_uppm", "sigma", "1|county_sigma"])
    assert -0.8 < s.loc["floor", "mean"] < -0.55
    assert 0.55 < s.loc["log_uppm", "mean"] < 0.9
    assert 0.68 < s.loc["sigma", "mean"] < 0.78
    assert 0.08 < s.loc["1|county_sigma", "mean"] < 0.25


def test_idata_names_dims_coords(fits: dict, radon: pd.DataFrame) -> None:
    idata = fits["correlated"].idata
    post = idata.posterior
    for v in ["Intercept", "floor", "log_uppm", "sigma", "1|county", "floor|county", "1|county_sigma",
              "floor|county_sigma", "county_corr"]:
        assert v in post, v
    assert post["1|county"].dims == ("chain", "draw", "county")
    assert list(post["county"].values) == sorted(radon["county"].unique())
    assert post.sizes["chain"] == 4 and post.sizes["draw"] == 1000
    corr = post["county_corr"].sel(county_corr_effect="1", county_corr_effect_bis="1").values
    assert np.allclose(corr, 1.0)
    assert "log_lik" in idata.log_likelihood
    assert "log_radon" in idata.posterior_predictive and "log_radon" in idata.observed_data


def test_loo_compare_and_plots_work(fits: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    cmp = az.compare({k: f.idata for k, f in fits.items()})
    assert set(cmp.index) == {"hierarchical", "correlated"}
    ax = az.plot_forest(fits["hierarchical"].idata, var_names=["floor", "log_uppm"])
    assert ax is not None
    ax = az.plot_ppc(fits["hierarchical"].idata, num_pp_samples=20)
    assert ax is not None


def test_predict_known_and_new_county(fits: dict, radon: pd.DataFrame) -> None:
    fit = fits["correlated"]
    new = pd.DataFrame({"county": ["county_001", "brand_new"], "floor": [0, 0], "log_uppm": [-0.5, -0.5]})
    mean = fit.predict(new, kind="mean", seed=3)
    assert mean.dims == ("chain", "draw", "__obs__")
    sd = mean.std(("chain", "draw")).values
    # an unseen county carries the population SD of county effects, so it is less certain
    assert sd[1] > sd[0]
    draws = fit.predict(new, seed=3)
    assert np.allclose(draws.values, fit.predict(new, seed=3).values)
    assert abs(float(draws.mean()) - float(mean.mean())) < 0.1
