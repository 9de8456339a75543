"""print(fit) and print(model): brms-style summaries whose numbers are ArviZ's and NumPy's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.fit import summary_sections


def test_print_model_shows_formula_family_terms_and_priors(radon: pd.DataFrame) -> None:
    m = hbstan.Model("log_radon ~ floor + (1 | county)", radon, centered=True, marginalize=False, priors={"floor": "normal(0, 1)"})
    text = str(m)
    assert "Formula: log_radon ~ floor + (1 | county)" in text
    assert "Family: gaussian (mu = identity; sigma = identity)" in text
    assert "(1 | county), 85 groups: hierarchical, centered" in text
    assert "Normal(loc=0, scale=1)" in text and "919 rows" in text
    m2 = hbstan.Model("log_radon ~ floor + (1 | county)", radon, sigma=0.7, centered=False, marginalize=False)
    assert "non-centered" in str(m2) and "known sigma = 0.7" in str(m2)


@pytest.mark.cmdstan
def test_print_fit_matches_arviz_and_numpy(radon: pd.DataFrame) -> None:
    import arviz as az

    fit = hbstan.Model("log_radon ~ floor + (1 + floor | county)", radon).sample(chains=2, draws=300, warmup=300, seed=4)
    text = str(fit)
    for line in ("Family: gaussian", "Formula: log_radon ~ floor + (1 + floor | county)", "Group-level effects: ~county",
                 "Population-level effects:", "Family-specific parameters:", "cor(1, floor)"):
        assert line in text
    tables = dict(summary_sections(fit))
    pop = tables["Population-level effects:"]
    ref = az.summary(fit.idata, var_names=["Intercept", "floor"], kind="all", round_to="none")
    x = fit.posterior["floor"].values.reshape(-1)
    assert pop.loc["floor", "Estimate"] == pytest.approx(x.mean())
    assert pop.loc["floor", "Est.Error"] == pytest.approx(ref.loc["floor", "sd"], rel=1e-6)
    assert pop.loc["floor", "l-95% CI"] == pytest.approx(np.quantile(x, 0.025))
    assert pop.loc["floor", "u-95% CI"] == pytest.approx(np.quantile(x, 0.975))
    assert pop.loc["floor", "Rhat"] == pytest.approx(ref.loc["floor", "r_hat"], abs=1e-9)
    assert pop.loc["floor", "Bulk_ESS"] == round(ref.loc["floor", "ess_bulk"])
    assert pop.loc["floor", "Tail_ESS"] == round(ref.loc["floor", "ess_tail"])
    group = next(t for title, t in tables.items() if title.startswith("Group-level"))
    r = fit.posterior["county_corr"].values[..., 0, 1].reshape(-1)
    assert group.loc["cor(1, floor)", "Estimate"] == pytest.approx(r.mean())
    assert list(group.index) == ["1|county_sigma", "floor|county_sigma", "cor(1, floor)"]
    # the warnings raised after sampling are repeated with their advice
    short = hbstan.Model("log_radon ~ floor + (1 | county)", radon, centered=True, marginalize=False)
    with pytest.warns(hbstan.SamplingWarning):
        weak = short.sample(chains=2, draws=20, warmup=20, seed=1)
    assert all(f"Warning: {w}" in str(weak) for w in weak.warnings) and weak.warnings
