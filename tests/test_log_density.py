"""The programs compute the model they claim: Stan's log density against an independent one.

At random parameter values, the log density CmdStan computes for a rendered program equals
the NumPy/SciPy density of ``tests/reference_density.py`` (written from the model's
definition, row by row) up to a constant, with and without the likelihood, and the
likelihood moves with the parameters (the data speak). The whole option grid (390 programs, 1911 checks)
runs in ``validation/log_density.py``, whose results are committed under
``validation/results/``; this is a representative subset, plus the check that a broken
template fails it. Also: models without population-level predictors learn from their data
(the bug of issue 13: ``binomial_logit_glm`` returned 0 without predictors, and such models
sampled their prior).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.backend import compiled_model
from hbstan.render import render_program

from .reference_density import check_program, grid_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
from grid import BINOMIAL_GLM_ALONE, Variant, broken_templates  # noqa: E402

cmdstan = pytest.mark.cmdstan

# one variant per likelihood path and design family: the binomial GLM without predictors
# (the bug), reduce_sum, exposure with a term centered on the intercept, the integrated-out
# correlated effects with a group predictor, crossed terms without intercept, unpooled, the
# negative binomial (its linear predictor completed in the template) with crossed terms and reduce_sum;
# gamma (correlated, group predictor, reduce_sum), lognormal (crossed, no intercept) and beta
# (centered on the intercept); probit (row by row) and cloglog (binomial, crossed, reduce_sum, no intercept) links;
# one variant per zero-inflated and hurdle family, each the
# structure that tests/test_zero_inflated.py fits (one executable for both): zero-inflated
# Poisson and hurdle negative binomial hierarchical, zero-inflated negative binomial crossed
# with a group predictor and reduce_sum, hurdle Poisson unpooled without intercept with
# reduce_sum, hurdle lognormal correlated and centered without intercept, with a group predictor
# a formula for sigma (gaussian hierarchical; lognormal crossed without intercept), for zi
# and for shape and hu at once
# weights (poisson, group predictor) and censoring (gaussian, pooled: the program of
# tests/test_weights_cens.py's censored normal)
SUBSET = [
    Variant("bernoulli_aggregated", "hierarchical", True, False, False),
    Variant("binomial", "hierarchical", True, True, True),
    Variant("poisson", "correlated_centered", True, False, False),
    Variant("gaussian", "marginal_correlated", True, True, False),
    Variant("gaussian_known_sigma", "crossed", False, False, True),
    Variant("bernoulli", "unpooled", False, False, True),
    Variant("student", "correlated", True, True, True),
    Variant("negbinomial", "crossed", True, False, True),
    Variant("gamma", "correlated", True, True, True),
    Variant("lognormal", "crossed", False, True, False),
    Variant("beta", "hierarchical_centered", True, False, False),
    Variant("bernoulli_probit", "hierarchical", True, False, False),
    Variant("binomial_cloglog", "crossed", False, False, True),
    Variant("zero_inflated_poisson", "hierarchical", True, False, False),
    Variant("zero_inflated_negbinomial", "crossed", True, True, True),
    Variant("hurdle_poisson", "unpooled", False, False, True),
    Variant("hurdle_negbinomial", "hierarchical", True, False, False),
    Variant("hurdle_lognormal", "correlated_centered", False, True, False),
    # the ordinal family: the probit program is the one tests/test_ordinal.py fits
    Variant("cumulative_probit", "hierarchical", True, False, False),
    Variant("cumulative", "hierarchical", True, True, True),
    # the sparse linear predictor (one CSR product) with the gamma and cumulative logit
    # likelihoods written from it: two crossed terms, one with a slope, and a group predictor
    Variant("gamma", "crossed", False, True, False),
    Variant("cumulative", "crossed", True, False, False),
    # ... and with Stan's own likelihoods on eta: Bernoulli logit (crossed terms, one with a
    # slope, a group predictor) and the negative binomial (correlated intercept and slope)
    Variant("bernoulli", "crossed", True, True, False),
    Variant("negbinomial", "correlated", True, False, False),
    Variant("gaussian_sigma_formula", "hierarchical", True, False, False),
    Variant("lognormal_sigma_formula", "crossed", False, True, False),
    # formulas for a probability (logit) and a shape (log): the first the program of
    # tests/test_distributional.py's zero-inflation formula; two formulas at once
    Variant("zero_inflated_poisson_zi_formula", "hierarchical", True, False, False),
    Variant("hurdle_negbinomial_formulas", "correlated_centered", True, True, False),
    # the categorical family (a linear predictor per category): the two programs that
    # tests/test_categorical.py fits, group intercepts per category and the pooled GLM
    Variant("categorical", "hierarchical", True, False, False),
    Variant("categorical", "pooled", True, False, False),
    # response additions: weights with a group predictor; left, right and interval censoring
    Variant("poisson_weighted", "hierarchical", True, True, False),
    Variant("gaussian_censored", "pooled", True, False, False),
    # ... with a formula for sigma: the programs of tests/test_distributional.py's PyMC check
    Variant("lognormal_sigma_formula_censored", "pooled", True, False, False),
    Variant("gaussian_sigma_formula_weighted", "pooled", True, False, False),
    # group terms in sigma's formula: a hierarchical one (the program tests/test_dpar_groups.py
    # fits) and a correlated one beside crossed terms of the mean with a group predictor
    Variant("gaussian_sigma_groups", "hierarchical", True, False, False),
    Variant("lognormal_sigma_correlated_groups", "crossed", False, True, False),
]


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return grid_data()


def _check(v: Variant, df: pd.DataFrame, predictors: bool, offset: bool, templates: Path | None = None):
    m, off, trials, rows = v.model(df, predictors=predictors, offset=offset)
    code = m.program(threads=v.threads) if templates is None else render_program(m.structure(v.threads)[0], templates=templates)
    cm = compiled_model(code, cpp_options={"STAN_THREADS": True} if v.threads else None)
    return check_program(m, cm, threads=v.threads, offset=off, trials=trials, **rows)


@cmdstan
@pytest.mark.parametrize("v", SUBSET, ids=lambda v: v.name)
def test_log_density_equals_reference(df: pd.DataFrame, v: Variant) -> None:
    for predictors in (False, True):
        for offset in (False, True):
            if offset and v.family == "categorical":  # refused: one linear predictor per category
                with pytest.raises(ValueError, match="offset or exposure is not supported"):
                    _check(v, df, predictors, offset)
                continue
            res = _check(v, df, predictors, offset)
            assert res.ok(), f"predictors={predictors}, offset={offset}: {res.describe()}"


@cmdstan
def test_broken_template_fails_the_check(df: pd.DataFrame, tmp_path: Path) -> None:
    """The templates as they were before the fix (binomial_logit_glm alone, which returns 0
    without predictors): the check fails without predictors and passes with them."""
    broken, v = broken_templates(tmp_path)[BINOMIAL_GLM_ALONE]
    without = _check(v, df, predictors=False, offset=False, templates=broken)
    assert not without.ok() and without.spread > 1, without.describe()
    assert _check(v, df, predictors=True, offset=False, templates=broken).ok()


# ------------------------------------------------------------------ the bug, by sampling
TRUE_INTERCEPT = 1.5


def _simulate(family: str, n: int = 2000, J: int = 10, seed: int = 13) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.arange(n) % J
    x = rng.integers(0, 2, n).astype(float)  # binary, so Bernoulli rows aggregate
    x = x - x.mean()
    eta = TRUE_INTERCEPT + rng.normal(0, 0.3, J)[g] + 0.4 * x
    df = pd.DataFrame({"g": [f"g{j}" for j in g], "x": x})
    if family == "gaussian":
        df["y"] = eta + rng.normal(0, 1, n)
    elif family == "bernoulli":
        df["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    elif family == "binomial":
        df["n"] = rng.integers(5, 20, n)
        df["y"] = rng.binomial(df["n"], 1 / (1 + np.exp(-eta)))
    else:
        df["y"] = rng.poisson(np.exp(eta))
    return df


CASES = [
    (fam, preds, agg)
    for fam, aggs in (("gaussian", [None]), ("bernoulli", [True, False]), ("binomial", [None]), ("poisson", [None]))
    for preds in (False, True)
    for agg in aggs
]


@cmdstan
@pytest.mark.parametrize("family,predictors,aggregate", CASES)
def test_models_without_predictors_learn_from_data(family: str, predictors: bool, aggregate: bool | None) -> None:
    df = _simulate(family)
    lhs = "y | trials(n)" if family == "binomial" else "y"
    kw = {} if aggregate is None else {"aggregate": aggregate}
    m = hbstan.Model(f"{lhs} ~ 1 {'+ x ' if predictors else ''}+ (1 | g)", df, family=family, **kw)
    if aggregate is not None:
        assert m.aggregated is aggregate
    fit = m.sample(chains=2, draws=500, warmup=500, seed=1)
    icpt = fit.posterior["Intercept"].values
    prior_sd = m.priors["Intercept"].mean_sd()[1]
    # the posterior is the data's, not the prior's: near the truth and far narrower
    assert abs(icpt.mean() - TRUE_INTERCEPT) < 4 * icpt.std() + 0.05, (icpt.mean(), icpt.std())
    assert icpt.std() < 0.2 * prior_sd, (icpt.std(), prior_sd)
