"""General programs (issue 19): one precompiled program per family, structure as data.

Each fit on a general program is compared with a fit of the same model on its specialized
program (``compare_fits``: every posterior mean and SD within Monte Carlo error, confirmed by
longer runs before a disagreement is reported): a Gaussian correlated intercept and slope on
radon, a Bernoulli model with two crossed hierarchical terms, a pooled Poisson model with an
exposure. The Gaussian program's likelihood with the group effects integrated out is checked
exactly against the reference density (each group's multivariate normal marginal). Of the
families with auxiliary parameters, a hurdle negative binomial with a varying intercept (its
shape and hurdle probability, the family template's Stan functions; the specialized program is
the one tests/test_zero_inflated.py compiles) and a pooled Student-t with outliers (sigma and
nu; the specialized program of tests/test_student.py). The ordinal family: a centered
varying intercept of a cumulative logit model, whose group intercepts both programs sample
relative to the thresholds' mean (the specialized program is tests/test_ordinal.py's centered
one), with the general program's own log_lik; a categorical model with a varying intercept,
each non-reference category with its own copy of the term (the specialized program of
tests/test_categorical.py). Seven general programs are compiled (one per family, shared by
its tests); ``validation/general_programs.py`` runs every family x design.
"""

from __future__ import annotations

import logging
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.backend import BACKGROUND_NICE, compiled_model, export_program, install_program
from hbstan.general import general_data, general_program, unsupported

from .reference_density import Check, grid_data, log_lik, log_prior, random_point

DRAWS = dict(chains=4, draws=500, warmup=500)


def _same_layout(a: hbstan.Fit, b: hbstan.Fit) -> None:
    """Both fits' InferenceData have the same variables, dims and coordinates."""
    for group in ("posterior", "log_likelihood", "posterior_predictive"):
        da, db = getattr(a.idata, group), getattr(b.idata, group)
        assert set(da.data_vars) == set(db.data_vars), group
        for v in da.data_vars:
            assert da[v].dims == db[v].dims, v
        for c in da.coords:
            if c not in ("chain", "draw"):
                assert list(da[c].values) == list(db[c].values), c


def _agree(a: hbstan.Fit, b: hbstan.Fit) -> None:
    comparison = hbstan.compare_fits(a, b, labels=["general", "specialized"])
    assert comparison.verdict == "agree", comparison.to_markdown()


@pytest.fixture(scope="module")
def crossed_bernoulli() -> hbstan.Model:
    rng = np.random.default_rng(19)
    n, ja, jb = 600, 15, 8
    a, b = rng.integers(0, ja, n), rng.integers(0, jb, n)
    x = rng.normal(size=n)
    eta = -0.3 + 0.8 * x + rng.normal(0, 0.7, ja)[a] + rng.normal(0, 0.5, jb)[b]
    df = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x,
                       "a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b]})
    return hbstan.Model("y ~ x + (1 | a) + (1 | b)", df, family="bernoulli")


@pytest.mark.cmdstan
@pytest.mark.parametrize("formula", ["y ~ x + c + (1 | g)", "y ~ x + (1 + x | g)"])
def test_gaussian_integrated_out_log_density_equals_reference(formula: str) -> None:
    """The Gaussian general program with ``marginal`` = 1 (the group effects of the only term
    integrated out, from per-group sufficient statistics): its log density at random points
    equals the reference's (prior, and each group's rows N(X b, sigma^2 I + Z Sigma Z'), in
    SciPy) up to a constant, with and without the likelihood. (Two effects: the canonical
    partial correlation is L[1, 0] itself, the transform's Jacobian 0.)"""
    df = grid_data()
    m = hbstan.Model(formula, df, offset="off")
    assert m.marginalized
    cm = compiled_model(general_program("gaussian"))
    data = {po: general_data(m, prior_only=po) for po in (False, True)}
    assert data[False]["marginal"] == 1 and data[False]["S"] == 12
    names = {"Intercept", "b", "sigma", "sd_1"}  # no r_1 or z_1: integrated out in the reference too
    rng = np.random.default_rng(7)
    out: dict[str, list[float]] = {"stan": [], "stan_prior": [], "ref_prior": [], "ref_lik": []}
    for _ in range(4):
        pt = random_point(m, rng)
        cpc = [pt.L[1][1, 0]] if pt.L[1].shape[0] == 2 else []
        params = {"Intercept": pt.Intercept, "b": pt.b, "sigma": pt.sigma, "sd": pt.sd[1], "cpc": cpc, "z": []}
        for key, po in (("stan", False), ("stan_prior", True)):
            lp = cm.log_prob(params=params, data=data[po], jacobian=False, sig_figs=16)
            out[key].append(float(lp["lp__"].iloc[0]))
        out["ref_prior"].append(log_prior(m, pt, names))
        out["ref_lik"].append(log_lik(m, pt, names, offset=df["off"].to_numpy()))
    check = Check(**{k: np.asarray(v) for k, v in out.items()})
    assert check.ok(), check.describe()


@pytest.mark.cmdstan
def test_gaussian_correlated_radon_same_posterior(radon: pd.DataFrame) -> None:
    """Radon, (1 + floor | county): the general program against the specialized one. Both
    integrate the group effects out (the general program with the same sufficient statistics,
    its LKJ prior through canonical partial correlations) and hbstan draws them after
    sampling."""
    m = hbstan.Model("log_radon ~ floor + (1 + floor | county)", data=radon)
    fg = m.sample(seed=1, program="general", **DRAWS)
    fs = m.sample(seed=1, program="specialized", **DRAWS)
    assert (fg.program, fs.program) == ("general", "specialized")
    assert fg.specialized_compile is None  # a forced program compiles nothing in the background
    _same_layout(fg, fs)
    _agree(fg, fs)


@pytest.mark.cmdstan
def test_bernoulli_two_terms_same_posterior(crossed_bernoulli: hbstan.Model) -> None:
    m = crossed_bernoulli
    fg = m.sample(seed=2, program="general", **DRAWS)
    fs = m.sample(seed=2, program="specialized", **DRAWS)
    _same_layout(fg, fs)
    _agree(fg, fs)


@pytest.mark.cmdstan
def test_general_program_log_lik_equals_pythons(crossed_bernoulli: hbstan.Model) -> None:
    """pointwise='stan' on the general program: its log_lik is the one hbstan computes in
    NumPy from the same draws."""
    fit = crossed_bernoulli.sample(chains=1, draws=50, warmup=100, seed=3, program="general", pointwise="stan")
    from hbstan.pointwise import pointwise_groups

    post = {v: fit.idata.posterior[v].values for v in fit.idata.posterior.data_vars}
    ref = pointwise_groups(crossed_bernoulli, post, 0)["log_likelihood"]["log_lik"]
    # (to the 6 significant digits of CmdStan's CSV output, which the draws are read from too)
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.cmdstan
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")  # a short chain: the log_lik is the point
def test_gaussian_pointwise_stan_samples_the_group_effects(radon: pd.DataFrame) -> None:
    """pointwise='stan' needs the group effects in the program: the Gaussian general program
    then samples them (marginal = 0) and its log_lik is the one hbstan computes in NumPy."""
    m = hbstan.Model("log_radon ~ floor + (1 | county)", data=radon)
    assert general_data(m, pointwise=True)["marginal"] == 0 and general_data(m)["marginal"] == 1
    fit = m.sample(chains=1, draws=50, warmup=150, seed=3, program="general", pointwise="stan")
    from hbstan.pointwise import pointwise_groups

    post = {v: fit.idata.posterior[v].values for v in fit.idata.posterior.data_vars}
    ref = pointwise_groups(m, post, 0)["log_likelihood"]["log_lik"]
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.cmdstan
def test_poisson_pooled_with_exposure_same_posterior() -> None:
    rng = np.random.default_rng(5)
    n = 300
    df = pd.DataFrame({"x": rng.normal(size=n), "t": rng.uniform(0.5, 3, n)})
    df["y"] = rng.poisson(df["t"] * np.exp(0.4 + 0.5 * df["x"]))
    m = hbstan.Model("y ~ x", df, family="poisson", exposure="t")
    fg = m.sample(seed=4, program="general", **DRAWS)
    fs = m.sample(seed=4, program="specialized", **DRAWS)
    _same_layout(fg, fs)
    _agree(fg, fs)


def _hurdle_negbinomial_counts(n: int = 400, J: int = 16, seed: int = 23) -> pd.DataFrame:
    """Zero with probability 0.35, else a negative binomial count (shape 2) conditioned on > 0."""
    rng = np.random.default_rng(seed)
    g = np.arange(n) % J
    x = rng.normal(size=n)
    mu = np.exp(0.8 + 0.5 * x + rng.normal(0, 0.5, J)[g])
    y = np.zeros(n, dtype=int)
    todo = rng.random(n) >= 0.35
    while todo.any():  # by rejection
        idx = np.flatnonzero(todo)
        y[idx] = rng.negative_binomial(2.0, 2.0 / (2.0 + mu[idx]))
        todo[idx[y[idx] > 0]] = False
    return pd.DataFrame({"x": x, "g": [f"g{j:02d}" for j in g], "y": y})


@pytest.fixture(scope="module")
def hurdle_negbinomial() -> hbstan.Model:
    # non-centered: the structure of tests/test_zero_inflated.py's fits, the same specialized program
    return hbstan.Model("y ~ x + (1 | g)", _hurdle_negbinomial_counts(), family="hurdle_negbinomial", centered=False)


@pytest.mark.cmdstan
def test_hurdle_negbinomial_same_posterior(hurdle_negbinomial: hbstan.Model) -> None:
    """Two auxiliary parameters with their default prior families (InverseGamma shape, Beta
    hu), hyperparameters as data, and the family's likelihood functions in the general program."""
    m = hurdle_negbinomial
    fg = m.sample(seed=5, program="general", **DRAWS)
    fs = m.sample(seed=5, program="specialized", **DRAWS)
    assert (fg.program, fs.program) == ("general", "specialized")
    _same_layout(fg, fs)
    _agree(fg, fs)


@pytest.mark.cmdstan
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")  # a short chain: the log_lik is the point
def test_hurdle_negbinomial_general_log_lik_equals_pythons(hurdle_negbinomial: hbstan.Model) -> None:
    """pointwise='stan' on the general program: the family template's log_lik (a Stan function
    of the program) equals hbstan's NumPy one at the same draws."""
    m = hurdle_negbinomial
    fit = m.sample(chains=1, draws=50, warmup=100, seed=3, program="general", pointwise="stan", sig_figs=15)
    from hbstan.pointwise import pointwise_groups

    post = {v: fit.idata.posterior[v].values for v in fit.idata.posterior.data_vars}
    ref = pointwise_groups(m, post, 0)["log_likelihood"]["log_lik"]
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, ref, rtol=1e-8, atol=1e-9)


@pytest.mark.cmdstan
def test_student_pooled_same_posterior() -> None:
    """sigma (Exponential prior) and nu (Gamma prior, lower bound 1), on data with outliers
    that put nu's posterior near its bound; ``y ~ x`` is tests/test_student.py's program."""
    rng = np.random.default_rng(6)
    n = 200
    df = pd.DataFrame({"x": rng.normal(size=n)})
    df["y"] = 1 + 2 * df["x"] + rng.normal(0, 0.5, n)
    df.loc[rng.choice(n, n // 20, replace=False), "y"] += 10
    m = hbstan.Model("y ~ x", df, family="student")
    fg = m.sample(seed=7, program="general", **DRAWS)
    fs = m.sample(seed=7, program="specialized", **DRAWS)
    _same_layout(fg, fs)
    _agree(fg, fs)


@pytest.mark.cmdstan
def test_cumulative_centered_on_the_thresholds_same_posterior() -> None:
    """The general cumulative program: ordered thresholds of data size (ncat - 1) in place of
    the intercept, with the specialized programs' prior family (StudentT, hyperparameters as
    data); a centered term's group intercepts sampled relative to the thresholds' mean in both
    programs (on_thresholds). Same posterior as the specialized program, read back under its
    names (thresholds with their category coordinates); the general program's log_lik
    (pointwise='stan', its generated quantities without an intercept) is hbstan's NumPy one."""
    from hbstan.pointwise import pointwise_groups

    from .test_ordinal import _simulate

    df = _simulate("logit", 15, J=8, n=600)  # 75 rows a group: no divergences centered
    m = hbstan.Model("y ~ x + (1 | g)", df, family="cumulative", centered=True)
    assert m.structure()[0]["blocks"][0]["on_thresholds"] and general_data(m)["on_thresholds"] == 1
    fg = m.sample(seed=8, program="general", pointwise="stan", sig_figs=15, **DRAWS)
    fs = m.sample(seed=8, program="specialized", **DRAWS)
    assert (fg.program, fs.program) == ("general", "specialized")
    _same_layout(fg, fs)
    assert list(fg.posterior["Intercept"].coords["Intercept_dim"].values) == m.threshold_labels
    _agree(fg, fs)
    post = {v: fg.idata.posterior[v].values for v in fg.idata.posterior.data_vars}
    ref = pointwise_groups(m, post, 0)["log_likelihood"]["log_lik"]
    np.testing.assert_allclose(fg.idata.log_likelihood["log_lik"].values, ref, rtol=1e-8, atol=1e-9)


@pytest.mark.cmdstan
# (short chains of a non-centered categorical model: the intercepts' R-hat can touch 1.01;
# compare_fits weighs each difference by its Monte Carlo error, from the ESS)
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")
def test_categorical_varying_intercept_same_posterior() -> None:
    """The general categorical program: a linear predictor per non-reference category (ncat
    as data), each with its own intercept (StudentT prior), coefficients and copy of the
    varying term (its own group effects and SD); read back as the specialized program lays out
    the categories (a last dimension ``category``). Same posterior as the specialized program;
    the general program's log_lik is hbstan's NumPy one; without varying terms, its log
    density is the specialized program's."""
    from hbstan.pointwise import pointwise_groups

    from .test_categorical import _simulate

    df = _simulate(26, n=400)
    m = hbstan.Model("choice ~ x + (1 | g)", df, family="categorical")
    d = general_data(m)
    assert (d["ncat"], d["T"], d["centered"]) == (3, 2, [0, 0])  # a copy of the term per category
    fg = m.sample(seed=9, program="general", pointwise="stan", sig_figs=15, **DRAWS)
    fs = m.sample(seed=9, program="specialized", **DRAWS)
    assert (fg.program, fs.program) == ("general", "specialized")
    _same_layout(fg, fs)
    assert fg.posterior["1|g"].dims == ("chain", "draw", "g", "category")
    _agree(fg, fs)
    post = {v: fg.idata.posterior[v].values for v in fg.idata.posterior.data_vars}
    ref = pointwise_groups(m, post, 0)["log_likelihood"]["log_lik"]
    np.testing.assert_allclose(fg.idata.log_likelihood["log_lik"].values, ref, rtol=1e-8, atol=1e-9)
    # without varying terms (T = 0): the log density of the specialized program (Stan's GLM
    # function there; tests/test_categorical.py's pooled program) at random points, up to a constant
    pooled = hbstan.Model("choice ~ x", df, family="categorical")
    cg, cs = compiled_model(general_program("categorical")), compiled_model(pooled.stan_code)
    rng = np.random.default_rng(3)
    lp = []
    for _ in range(4):
        params = {"Intercept": rng.normal(size=2), "b": rng.normal(size=(1, 2))}
        general = cg.log_prob(params={**params, "sd": [], "cpc": [], "z": []}, data=general_data(pooled),
                              jacobian=False, sig_figs=16)
        specialized = cs.log_prob(params=params, data=pooled.stan_data, jacobian=False, sig_figs=16)
        lp.append((float(general["lp__"].iloc[0]), float(specialized["lp__"].iloc[0])))
    lp_general, lp_specialized = np.array(lp).T
    assert np.ptp(lp_specialized) > 10  # the points differ
    np.testing.assert_allclose(lp_general - lp_general[0], lp_specialized - lp_specialized[0], atol=1e-8)


@pytest.mark.cmdstan
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")  # short chains: the program's choice is the point
def test_auto_samples_on_the_general_program_and_compiles_in_the_background(
    radon: pd.DataFrame, tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache holding the general programs but not the model's specialized program: the fit
    runs on the general program at once, says so, and starts the specialized compile at a
    lower CPU priority; with the specialized program cached, that one runs."""
    m = hbstan.Model("log_radon ~ floor + (1 | county)", data=radon.iloc[:300])
    shipped = [export_program(general_program("gaussian")), export_program(m.stan_code)]
    monkeypatch.setenv("HBSTAN_CACHE_DIR", str(tmp_path))
    install_program(shipped[0])
    with caplog.at_level(logging.INFO, logger="hbstan"):
        fit = m.sample(chains=2, draws=200, warmup=200, seed=1, program="auto")
    proc = fit.specialized_compile
    try:
        assert fit.program == "general"
        assert "sampling on the general gaussian program" in caplog.text
        assert "cache miss" not in caplog.text  # nothing compiled in the foreground
        assert proc is not None and proc.args[-1].endswith(".stan")
        assert (tmp_path / "background").is_dir()
        for _ in range(100):  # the child lowers its priority first thing, once Python is up
            if os.getpriority(os.PRIO_PROCESS, proc.pid) != os.getpriority(os.PRIO_PROCESS, 0):
                break
            time.sleep(0.05)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(os.getpriority(os.PRIO_PROCESS, 0) + BACKGROUND_NICE, 19)
    finally:
        if proc is not None and proc.poll() is None:  # the compile this test started
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
    install_program(shipped[1])  # the specialized program is ready now
    again = m.sample(chains=2, draws=200, warmup=200, seed=1, program="auto")
    assert again.program == "specialized" and again.specialized_compile is None


@pytest.mark.cmdstan
def test_lkj_prior_through_canonical_partial_correlations() -> None:
    """The general program builds each Cholesky factor from canonical partial correlations
    with the transform's Jacobian: prior draws of three correlated effects under LKJ(2) have
    the closed-form marginal of every correlation, (rho + 1) / 2 ~ Beta(2.5, 2.5) (eta - 1 +
    M / 2), variance 1/6. Without the Jacobian, rho_13 would be 2 Beta(2, 2) - 1 (variance 1/5)."""
    from scipy import stats

    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "y": rng.normal(size=n),
                       "g": rng.integers(0, 10, n).astype(str)})
    m = hbstan.Model("y ~ x + (1 + x + z | g)", df)
    fit = m.sample(seed=3, prior_only=True, program="general", chains=4, draws=1000)
    corr = fit.idata.posterior["g_corr"].values  # (chain, draw, 3, 3)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        rho = corr[:, :, i, j]
        assert abs(rho.var() - 1 / 6) < 0.02, (i, j, rho.var())
        thinned = rho[:, ::4].ravel()  # about independent draws for the KS test
        assert stats.kstest((thinned + 1) / 2, stats.beta(2.5, 2.5).cdf).pvalue > 0.001, (i, j)


def test_unsupported_models_are_named() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40), "g": np.repeat(list("abcd"), 10)})
    assert unsupported(hbstan.Model("y ~ x + (1 + x | g)", df)) is None
    assert "unpooled" in unsupported(hbstan.Model("y ~ x + (1 | g)", df, pooling="unpooled"))
    df["k"] = np.tile([1, 2, 3, 2], 10)
    # the categorical family: no model without an intercept (nor correlated terms: the family refuses them)
    assert unsupported(hbstan.Model("k ~ x + (1 + x || g)", df, family="categorical")) is None
    assert "without an intercept" in unsupported(hbstan.Model("k ~ 0 + x", df, family="categorical"))
    # the ordinal family: its thresholds take the intercept's place, with their default prior family
    assert unsupported(hbstan.Model("k ~ x + (1 + x | g)", df, family="cumulative", link="probit")) is None
    assert "prior of 'Intercept[1|2]' is Normal" in unsupported(
        hbstan.Model("k ~ x", df, family="cumulative", priors={"Intercept": hbstan.Normal(0, 2)})
    )
    assert "prior of 'x'" in unsupported(hbstan.Model("y ~ x", df, priors={"x": hbstan.StudentT(3, 0, 1)}))
    # an auxiliary parameter's prior of another family than its default's
    counts = df.assign(y=np.tile([0, 1, 3, 2], 10))
    assert "prior of 'shape' is Gamma" in unsupported(
        hbstan.Model("y ~ x", counts, family="negbinomial", priors={"shape": hbstan.Gamma(2, 0.1)})
    )
    assert unsupported(hbstan.Model("y ~ x", counts, family="negbinomial", priors={"shape": hbstan.InverseGamma(1, 1)})) is None
    # every link of bernoulli and binomial has a general program
    assert unsupported(hbstan.Model("k ~ x + (1 | g)", df.assign(k=df["k"] % 2), family="bernoulli", link="cloglog")) is None
    # what the general program does not take: a formula for an auxiliary parameter, a known sigma
    assert "formulas for auxiliary parameters" in unsupported(
        hbstan.Model(hbstan.Formula("y ~ x", sigma="~ x"), df, family="student")
    )
    assert "known sigma" in unsupported(hbstan.Model("y ~ x", df.assign(y=np.exp(df["y"])), family="lognormal", sigma=0.5))
    with pytest.raises(ValueError, match="program='general' cannot run this model: .*unpooled"):
        hbstan.Model("y ~ x + (1 | g)", df, pooling="unpooled").sample(program="general")
    with pytest.raises(ValueError, match="unknown program 'fast'; valid values"):
        hbstan.Model("y ~ x", df).sample(program="fast")


def test_general_data_carries_the_models_priors() -> None:
    """Hyperparameters in the order of the flat vectors: the SD scales term after term."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.normal(size=60), "x": rng.normal(size=60),
                       "g": np.repeat(list("abcdef"), 10), "h": np.tile(list("pqr"), 20)})
    m = hbstan.Model("y ~ x + (1 + x | g) + (1 | h)", df,
                     priors={"x|g_sigma": hbstan.HalfNormal(0.3), "g_corr": hbstan.LKJ(4)})
    d = general_data(m)
    assert (d["T"], d["J"], d["M"], d["cor"], d["E"]) == (2, [6, 3], [2, 1], [1, 0], 3)
    assert d["prior_sd_scale"][1] == 0.3
    assert d["prior_L_eta"][0] == 4
    assert d["Z"].shape == (60, 3)
    # an ordinal model: the number of categories, each threshold's prior, and the first centered
    # term with a varying intercept sampled relative to the thresholds' mean
    df["k"] = np.tile([1, 2, 3, 3, 2, 4], 10)
    m = hbstan.Model("k ~ x + (1 + x || g) + (1 | h)", df, family="cumulative", centered={"g": False, "h": True},
                     priors={"Intercept[2|3]": hbstan.StudentT(4, 0, 1)})
    d = general_data(m)
    assert (d["ncat"], d["centered"], d["on_thresholds"]) == (4, [0, 1], 2)
    assert (d["prior_Intercept_nu"], d["prior_Intercept_scale"]) == ([3, 4, 3], [2.5, 1, 2.5])
    # a categorical model: each term once per non-reference category, category after category,
    # each copy with that category's SD priors; the coefficients' priors in to_vector(b)'s order
    m = hbstan.Model("k ~ x + (1 + x || g) + (1 | h)", df.assign(k=df["k"].clip(upper=3)), family="categorical",
                     priors={"x|g_sigma[3]": hbstan.HalfNormal(0.3), "x[2]": hbstan.Normal(1, 2)})
    d = general_data(m)
    assert (d["ncat"], d["T"], d["J"], d["M"], d["E"]) == (3, 4, [6, 3, 6, 3], [2, 1, 2, 1], 6)
    assert d["prior_sd_scale"][4] == 0.3 and d["prior_sd_scale"][1] != 0.3
    assert (d["prior_b_loc"], d["prior_b_scale"][0]) == ([1, 0], 2)
    assert np.array_equal(d["Z"][:, :3], d["Z"][:, 3:]) and np.array_equal(d["g"][:2], d["g"][2:])
