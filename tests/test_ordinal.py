"""The cumulative ordinal family: ``Model(family="cumulative", link="logit" | "probit")``.

Simulated 5-point ratings with a predictor and group intercepts: both links recover the
thresholds (on the predictor's original scale), the slope and the group SD; the program's own
log_lik equals the NumPy one; per-category probabilities from ``predict(kind="probs")`` add up
to the expected category of ``kind="mean"``; the Stan and PyMC backends agree. The NumPy side
against SciPy and the response checks are in tests/test_families.py; the log density of the
programs in the grid of ``validation/grid.py`` and the suite's subset.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.pointwise import log_lik_and_y_rep

cmdstan = pytest.mark.cmdstan

CUTS = np.array([-1.6, -0.5, 0.6, 1.8])  # P(y <= k) = F(c_k - eta), 5 categories
SLOPE, SD = 0.9, 0.6
LABELS = ["very poor", "poor", "fair", "good", "very good"]
# non-centered and no threads: the structure of the log-density subset's cumulative variants,
# so the suite compiles one program per link
OPTIONS = {"family": "cumulative", "centered": False}


def _simulate(link: str, seed: int, J: int = 25, n: int = 1200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    x = rng.normal(1.0, 1.0, n)  # not centered: the reported thresholds are on x's own scale
    eta = SLOPE * x + rng.normal(0, SD, J)[g]
    e = rng.logistic(size=n) if link == "logit" else rng.normal(size=n)
    y = 1 + np.sum(eta[:, None] + e[:, None] > CUTS, axis=1)
    return pd.DataFrame({
        "y": pd.Categorical.from_codes(y - 1, LABELS, ordered=True), "x": x, "g": [f"g{j:02d}" for j in g],
    })


@cmdstan
@pytest.mark.parametrize("link, seed", [("logit", 11), ("probit", 12)])
def test_recovers_the_truth_and_its_program_log_lik_is_numpys(link: str, seed: int) -> None:
    df = _simulate(link, seed)
    m = hbstan.Model("y ~ x + (1 | g)", df, link=link, **OPTIONS)
    # the logit likelihood is written as two Bernoulli-logit statements (cumulative_logit_lik)
    lik = "cumulative_logit_lik(eta, Intercept," if link == "logit" else "ordered_probit_lupmf(y | eta + Xc * b, Intercept)"
    assert lik in m.program()
    fit = m.sample(chains=2, seed=2, pointwise="stan", sig_figs=15)
    post = fit.posterior
    cuts = post["Intercept"]
    assert list(cuts.coords["Intercept_dim"].values) == [f"{a}|{b}" for a, b in zip(LABELS[:-1], LABELS[1:])]
    d = cuts.values.reshape(-1, 4)
    for k in range(4):
        assert abs(d[:, k].mean() - CUTS[k]) < 3 * d[:, k].std() + 0.05, (k, d[:, k].mean(), d[:, k].std())
    for name, truth in (("x", SLOPE), ("1|g_sigma", SD)):
        v = post[name].values
        assert abs(v.mean() - truth) < 3 * v.std() + 0.03, (name, v.mean(), v.std())
    # the program's log_lik (pointwise="stan") is the NumPy family's, from the same draws
    draws = {v: post[v].values for v in post.data_vars}
    ll, rep = log_lik_and_y_rep(m, draws, np.random.default_rng(0))
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, ll, rtol=1e-8, atol=1e-9)
    stan_rep = fit.idata.posterior_predictive["y"].values
    for k in range(1, 6):  # replicated categories in the same proportions
        assert np.mean(stan_rep == k) == pytest.approx(np.mean(rep == k), abs=0.01)
    # per-category probabilities: category coordinates, rows sum to 1, expected category = kind="mean"
    new = pd.DataFrame({"x": [-1.0, 1.0, 3.0], "g": ["g00", "g01", "unseen"]})
    probs = fit.predict(new, kind="probs", seed=1)
    assert probs.dims == ("chain", "draw", "__obs__", "category")
    assert list(probs.coords["category"].values) == LABELS
    np.testing.assert_allclose(probs.sum("category").values, 1.0, rtol=1e-12)
    mean = fit.predict(new, kind="mean", seed=1)
    np.testing.assert_allclose((probs * np.arange(1, 6)).sum("category").values, mean.values, rtol=1e-12)
    assert np.all(np.diff(mean.mean(("chain", "draw")).values) > 0)  # higher x, higher ratings
    # the same as a tidy table: a row per new row and category, its estimate the mean probability
    table = fit.predictions(new, kind="probs", seed=1)
    assert len(table) == 3 * 5 and list(table["category"].iloc[:5]) == LABELS
    np.testing.assert_allclose(
        table["estimate"].to_numpy().reshape(3, 5), probs.mean(("chain", "draw")).values, rtol=1e-12
    )
    assert (table["lower"] <= table["estimate"]).all() and (table["estimate"] <= table["upper"]).all()
    # average change in each category's probability per unit of x (marginaleffects' avg_comparisons
    # with kind="probs"), without group effects, against the same computed here with SciPy
    from scipy import stats

    cmp = hbstan.avg_comparisons(fit, "x", kind="probs", re_formula=None, data=new)
    assert list(cmp["category"]) == LABELS and set(cmp["contrast"]) == {"+1"}
    F = stats.logistic.cdf if link == "logit" else stats.norm.cdf
    c = d[:, None, :]  # (S, 1, 4) thresholds on x's own scale: P(y <= k) = F(c_k - x b)
    b = post["x"].values.reshape(-1, 1, 1)
    x = new["x"].to_numpy()[None, :, None]

    def probs_at(xv: np.ndarray) -> np.ndarray:  # (S, rows, 5)
        cum = np.concatenate([np.zeros_like(xv * b), F(c - xv * b), np.ones_like(xv * b)], axis=2)
        return np.diff(cum, axis=2)

    change = (probs_at(x + 1) - probs_at(x)).mean(axis=1)  # (S, 5)
    np.testing.assert_allclose(cmp["estimate"].to_numpy(), change.mean(axis=0), rtol=1e-9, atol=1e-12)
    assert abs(cmp["estimate"].sum()) < 1e-12  # the probabilities' changes cancel
    slopes = hbstan.avg_slopes(fit, "x", kind="probs", re_formula=None, data=new)
    assert list(slopes["category"]) == LABELS and slopes["estimate"].iloc[0] < 0 < slopes["estimate"].iloc[-1]


@cmdstan
def test_backends_agree() -> None:
    pytest.importorskip("pymc")
    df = _simulate("probit", 13, J=12, n=400)
    m = hbstan.Model("y ~ x + (1 | g)", df, link="probit", **OPTIONS)
    c = hbstan.compare_backends(m, chains=2, draws=1000, seed=3)
    assert c.verdict == "agree", c.to_markdown()


def test_thresholds_replace_the_intercept() -> None:
    """No intercept in the linear predictor; a centered term's group intercepts are sampled
    relative to the thresholds' mean; unpooled group intercepts (not identified beside the
    thresholds) are refused."""
    df = _simulate("logit", 14, n=300)
    m = hbstan.Model("y ~ x + (1 | g)", df, family="cumulative", centered=True)
    ctx = m.structure()[0]
    assert not ctx["has_intercept"] and ctx["thresholds"] and ctx["blocks"][0]["on_thresholds"]
    code = m.program()
    # the likelihood's sparse product has no intercept column; nor has log_lik's sum of terms
    assert "vector[P_W] theta = append_row(b, " in code and "vector[N] mu = offsets;" in code
    assert "offsets + Intercept" not in code
    assert "r_1[, 1] = a_1[, 1] + mean(Intercept);" in m.program()
    assert [str(m.priors[k]) for k in m.priors if k.startswith("Intercept[")] == [str(hbstan.StudentT(3, 0, 2.5))] * 4
    with pytest.raises(hbstan.FormulaError, match="unpooled group intercepts"):
        hbstan.Model("y ~ x + (1 | g)", df, family="cumulative", pooling="unpooled")


@cmdstan
def test_centered_on_the_thresholds_pymc_log_density_equals_stan() -> None:
    """A centered term of an ordinal model samples its group intercepts relative to the
    thresholds' mean (a = r - mean(thresholds): the sampler no longer moves all thresholds and
    all group intercepts together along a ridge; benchmarks/results/glmm_families_notes.md).
    The PyMC model, parameterized alike, has the program's log density at random points up to
    a constant (the program's density itself is checked against NumPy in the log-density grid's
    centered cumulative variants)."""
    pytest.importorskip("pymc")
    from .test_pymc import _check_logp_matches_stan

    df = _simulate("logit", 15, J=10, n=300)
    m = hbstan.Model("y ~ x + (1 | g)", df, family="cumulative", centered=True)
    assert m.structure()[0]["blocks"][0]["on_thresholds"]
    _check_logp_matches_stan(m)  # also checks that both sample a_1, not r_1
