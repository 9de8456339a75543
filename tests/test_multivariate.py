"""Several responses in one model (issue 16, first step): ``hbstan.Model([f1, f2, ...])``.

Four Stan programs are compiled here, each sampled once (module-scoped fits, short chains):

* two Gaussian responses with residual correlation and a group term each: the truth is
  recovered (coefficients, SDs, group SDs, the residual correlation);
* two Gaussian responses with residual correlation, no group terms: the program's joint
  log_lik equals scipy's multivariate normal at the posterior draws (and each response's
  its marginal normal); the PyMC model's log density equals the program's; PyMC's posterior
  agrees with Stan's;
* a path model with four families (the pipe x1 -> x2 -> y, Gaussian then Bernoulli, and a
  binomial and a Poisson response): each truth recovered, x1's effect on y gone once x2 is
  in the model;
* two Student-t responses with residual correlation (one shared nu): the truth is recovered.

Without sampling: names, dims and priors; errors that name the response, column or family.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.multivariate import MultivariateModel

cmdstan = pytest.mark.cmdstan


def _gaussian_pair(n: int, J: int, seed: int, groups: bool) -> pd.DataFrame:
    """y1 = 1 + 0.5 x + a1[g] + e1, y2 = -1 + x + a2[g] + e2, sd(e) = (0.8, 1.2), cor(e) = 0.6;
    sd(a) = (0.7, 0.5), cor(a) = -0.6 (or no a)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    x = rng.normal(size=n)
    a = rng.multivariate_normal([0, 0], [[0.49, -0.6 * 0.35], [-0.6 * 0.35, 0.25]], size=J)
    a1, a2 = (a[:, 0], a[:, 1]) if groups else (np.zeros(J), np.zeros(J))
    cov = np.array([[0.8**2, 0.6 * 0.8 * 1.2], [0.6 * 0.8 * 1.2, 1.2**2]])
    e = rng.multivariate_normal([0, 0], cov, size=n)
    return pd.DataFrame({
        "x": x, "g": [f"g{j:02d}" for j in g],
        "y1": 1 + 0.5 * x + a1[g] + e[:, 0], "y2": -1 + 1.0 * x + a2[g] + e[:, 1],
    })


def _path_data(n: int = 400, J: int = 8, seed: int = 7) -> pd.DataFrame:
    """Pipes x1 -> x2 -> y (Gaussian) and x1 -> x2 -> yb (Bernoulli); binomial and Poisson responses of x1."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    x1 = rng.normal(size=n)
    a = rng.normal(0, 0.6, J)
    x2 = 0.5 + 0.8 * x1 + a[g] + rng.normal(0, 0.7, n)
    y = 1.0 + 1.5 * x2 + rng.normal(0, 1.0, n)
    yb = rng.binomial(1, 1 / (1 + np.exp(-(-0.3 + 1.2 * x2))))
    s = rng.binomial(6, 1 / (1 + np.exp(-(-0.5 + 0.5 * x1))))
    c = rng.poisson(np.exp(0.3 + 0.4 * x1 + rng.normal(0, 0.3, J)[g]))
    return pd.DataFrame({"x1": x1, "x2": x2, "y": y, "yb": yb, "s": s, "n": 6, "c": c, "g": [f"g{j}" for j in g]})


def _student_pair(n: int = 300, J: int = 8, seed: int = 5) -> pd.DataFrame:
    """Two responses with bivariate Student-t errors (nu = 5, scales 1 and 2, correlation 0.5)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    x = rng.normal(size=n)
    z = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=n)
    e = z / np.sqrt(rng.chisquare(5, n) / 5)[:, None] * [1.0, 2.0]
    a = rng.normal(0, 0.8, J)
    return pd.DataFrame({"x": x, "g": [f"g{j}" for j in g], "y1": 2 + 0.7 * x + e[:, 0], "y2": -0.5 * x + a[g] + e[:, 1]})


def _covers(fit, name: str, truth: float, prob: float = 0.99, sel: dict | None = None) -> None:
    da = fit.idata.posterior[name]
    x = (da.sel(sel) if sel else da).values.reshape(-1)
    lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
    assert lo <= truth <= hi, f"{name}{sel or ''}: truth {truth} outside the {prob:.0%} interval [{lo:.3f}, {hi:.3f}]"


# ------------------------------------------------------------------------------ fits
@pytest.fixture(scope="module")
def gaussian_groups_fit():
    df = _gaussian_pair(400, 24, 1, groups=True)
    # brms's ID syntax: the group intercepts of both responses in one correlated block
    m = hbstan.Model(["y1 ~ x + (1 |p| g)", "y2 ~ x + (1 |p| g)"], data=df)
    return m.sample(chains=2, draws=500, warmup=500, seed=3)


@pytest.fixture(scope="module")
def gaussian_fit():
    df = _gaussian_pair(150, 1, 2, groups=False)
    m = hbstan.Model(["y1 ~ x", "y2 ~ x"], data=df)
    return m.sample(chains=2, draws=400, warmup=400, seed=4)


@pytest.fixture(scope="module")
def path_fit():
    m = hbstan.Model(
        ["x2 ~ x1 + (1 | g)", "y ~ x1 + x2", "yb ~ x1 + x2", "s | trials(n) ~ x1", "c ~ x1 + (1 | g)"],
        data=_path_data(), family=["gaussian", "gaussian", "bernoulli", "binomial", "poisson"],
    )
    return m.sample(chains=2, draws=400, warmup=400, seed=5)


@pytest.fixture(scope="module")
def student_fit():
    m = hbstan.Model(["y1 ~ x", "y2 ~ x + (1 | g)"], data=_student_pair(), family="student", rescor=True)
    return m.sample(chains=2, draws=400, warmup=400, seed=6)


# ------------------------------------------------------------------------------ recovery
@cmdstan
def test_two_gaussian_responses_with_rescor_and_correlated_group_effects_recover_the_truth(gaussian_groups_fit):
    fit = gaussian_groups_fit
    truth = {"y1_Intercept": 1.0, "y1_x": 0.5, "y2_Intercept": -1.0, "y2_x": 1.0, "y1_sigma": 0.8, "y2_sigma": 1.2,
             "y1_1|g_sigma": 0.7, "y2_1|g_sigma": 0.5}
    for name, value in truth.items():
        _covers(fit, name, value)
    _covers(fit, "rescor", 0.6, sel={"rescor_response": "y1", "rescor_response_bis": "y2"})
    _covers(fit, "g_corr_p", -0.6, sel={"g_corr_p_effect": "y1_1", "g_corr_p_effect_bis": "y2_1"})
    rc = fit.idata.posterior["rescor"].sel(rescor_response="y1", rescor_response_bis="y2").values
    assert abs(rc.mean() - 0.6) < 0.1
    diag = fit.diagnose()
    assert sum(diag.divergences) == 0 and diag.max_rhat < 1.05, str(diag)
    text = str(fit)
    assert "Residual correlations:" in text and "cor(y1, y2)" in text
    assert "Group-level effects: ~g (24 levels; ID p: y1, y2, correlated across responses)" in text
    assert "cor(y1_1, y2_1)" in text


@cmdstan
def test_predictions_per_response(gaussian_groups_fit):
    fit = gaussian_groups_fit
    new = fit.model.data.head(4)[["x", "g"]]
    table = fit.predictions(new, kind="mean")
    assert list(table["response"]) == ["y1"] * 4 + ["y2"] * 4
    post = fit.idata.posterior
    for name in ("y1", "y2"):
        # the linear predictor written out by hand from the draws: Intercept + x b + r[g]
        mu = (post[f"{name}_Intercept"].values[..., None] + post[f"{name}_x"].values[..., None] * new["x"].to_numpy()
              + post[f"{name}_1|g"].sel(g=list(new["g"])).values)
        got = table[table["response"] == name]["estimate"].to_numpy()
        np.testing.assert_allclose(got, mu.reshape(-1, 4).mean(axis=0), rtol=1e-10)
    draws = fit.predict(new, response="y2", seed=1)
    assert draws.shape == (2, 500, 4)
    with pytest.raises(ValueError, match="unknown response 'y3'"):
        fit.predict(new, response="y3")


@cmdstan
def test_path_model_with_four_families_recovers_the_truth(path_fit):
    fit = path_fit
    for name, value in {"x2_x1": 0.8, "x2_sigma": 0.7, "y_x2": 1.5, "y_x1": 0.0, "y_sigma": 1.0, "yb_x2": 1.2,
                        "yb_x1": 0.0, "yb_Intercept": -0.3, "s_Intercept": -0.5, "s_x1": 0.5, "c_x1": 0.4,
                        "x2_1|g_sigma": 0.6}.items():
        _covers(fit, name, value)
    # the pipes: with the mediator x2 in the formula, x1 has no effect left on y or yb
    for name in ("y_x1", "yb_x1"):
        draws = fit.idata.posterior[name].values
        assert abs(draws.mean()) < 2.5 * draws.std()
    assert "rescor" not in fit.idata.posterior  # off by default with a non-Gaussian response
    assert set(fit.idata.posterior_predictive.data_vars) == {"x2", "y", "yb", "s", "c"}
    yb_rep = fit.idata.posterior_predictive["yb"].values
    assert set(np.unique(yb_rep)) <= {0, 1}
    s_rep = fit.idata.posterior_predictive["s"].values
    assert s_rep.min() >= 0 and s_rep.max() <= 6
    # without residual correlation the joint log-likelihood is the sum of the responses'
    per = fit.idata["log_likelihood_responses"]
    total = sum(per[name].values for name in ("x2", "y", "yb", "s", "c"))
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, total, atol=1e-3)


@cmdstan
def test_student_responses_with_rescor_share_nu_and_recover_the_truth(student_fit):
    fit = student_fit
    assert "nu" in fit.idata.posterior and "y1_nu" not in fit.idata.posterior
    assert "multi_student_t_cholesky_lupdf" in fit.model.stan_code
    for name, value in {"y1_Intercept": 2.0, "y1_x": 0.7, "y2_x": -0.5, "y1_sigma": 1.0, "y2_sigma": 2.0,
                        "nu": 5.0}.items():
        _covers(fit, name, value)
    _covers(fit, "rescor", 0.5, sel={"rescor_response": "y1", "rescor_response_bis": "y2"})


@cmdstan
def test_mediation_of_the_gaussian_pipe(path_fit):
    fit = path_fit
    table = hbstan.mediation(fit, treatment="x1", mediator="x2", outcome="y", prob=0.99).set_index("effect")
    # truth: indirect 0.8 * 1.5, no direct effect
    for effect, truth in (("indirect", 1.2), ("direct", 0.0), ("total", 1.2)):
        assert table.loc[effect, "lower"] <= truth <= table.loc[effect, "upper"], table
    # the total effect is what the regression of y on x1 alone estimates (the group effects of
    # x2 are independent of x1): least squares, within two of their standard errors
    df = fit.model.data
    X = np.column_stack([np.ones(len(df)), df["x1"]])
    coef, res, *_ = np.linalg.lstsq(X, df["y"], rcond=None)
    se = np.sqrt(res[0] / (len(df) - 2) * np.linalg.inv(X.T @ X)[1, 1])
    assert abs(table.loc["total", "estimate"] - coef[1]) < 2 * max(se, table.loc["total", "std_error"])
    per_draw = hbstan.mediation(fit, treatment="x1", mediator="x2", outcome="y", draws=True)
    post = fit.idata.posterior
    np.testing.assert_allclose(per_draw["indirect"], (post["x2_x1"] * post["y_x2"]).values.reshape(-1))
    assert table.loc["indirect", "estimate"] == pytest.approx(per_draw["indirect"].mean())
    with pytest.raises(ValueError, match="the outcome 'yb' has family='bernoulli'.*method='counterfactual'"):
        hbstan.mediation(fit, treatment="x1", mediator="x2", outcome="yb", method="product")
    with pytest.raises(ValueError, match="the formula of the mediator 'x2' has no term 'g'"):
        hbstan.mediation(fit, treatment="g", mediator="x2", outcome="y")
    with pytest.raises(ValueError, match="the formula of the outcome 'y' has no term 's'"):
        hbstan.mediation(fit, treatment="x1", mediator="s", outcome="y")
    with pytest.raises(ValueError, match="unknown method 'linear'"):
        hbstan.mediation(fit, treatment="x1", mediator="x2", outcome="y", method="linear")
    with pytest.raises(ValueError, match="unknown response 'z'"):
        hbstan.mediation(fit, treatment="x1", mediator="z", outcome="y")


# ------------------------------------------------------------------------------ joint predictions
def _expit(x):
    return 1 / (1 + np.exp(-x))


@cmdstan
def test_joint_predictions_draw_the_mediator_first_and_feed_it_downstream(path_fit):
    fit = path_fit
    post = fit.idata.posterior
    data = fit.model.data
    new = pd.concat([data.head(5), data.head(2).assign(g="new")])[["x1", "g", "n"]].reset_index(drop=True)
    assert fit.upstream("y") == ["x2"] and fit.upstream("x2") == []
    # brms's posterior_predict reads the mediator from the new rows; without it, the fix is named
    with pytest.raises(hbstan.DataError, match="reads the response 'x2', which the new data lacks.*joint=True"):
        fit.predict(new, response="y")
    with pytest.raises(hbstan.DataError, match="reads the response 'x2', which the new data lacks.*joint=True"):
        fit.predictions(new)
    every = fit.predict(new, joint=True, seed=1)  # x2 drawn first, per draw, and fed to y and yb
    x2 = every["x2"].values
    x1 = new["x1"].to_numpy()

    def coef(name):
        return post[name].values[..., None]

    # by hand from the draws: y's and yb's means at the mediator's draws
    y_mean = fit.predict(new, response="y", joint=True, kind="mean", seed=1).values
    np.testing.assert_allclose(y_mean, coef("y_Intercept") + coef("y_x1") * x1 + coef("y_x2") * x2, rtol=1e-10)
    yb_mean = fit.predict(new, response="yb", joint=True, kind="mean", seed=1).values
    np.testing.assert_allclose(yb_mean, _expit(coef("yb_Intercept") + coef("yb_x1") * x1 + coef("yb_x2") * x2),
                               rtol=1e-10)
    # a response's draws do not depend on which others are predicted (a generator per response)
    np.testing.assert_array_equal(fit.predict(new, response="y", joint=True, seed=1).values, every["y"].values)
    # the mediator's draws are its posterior predictive: standardized residuals N(0, 1) in fitted groups
    r_g = post["x2_1|g"].sel(g=list(new["g"][:5])).values
    mu_x2 = coef("x2_Intercept") + coef("x2_x1") * x1[:5] + r_g
    z = (x2[..., :5] - mu_x2) / coef("x2_sigma")
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05, (z.mean(), z.std())
    # in the new group, its effect is drawn from the population: residual SD sqrt(sigma^2 + sd_g^2)
    wide = (x2[..., 5:] - (coef("x2_Intercept") + coef("x2_x1") * x1[5:])).std()
    expected = np.sqrt((post["x2_sigma"] ** 2 + post["x2_1|g_sigma"] ** 2).values.mean())
    assert abs(wide - expected) < 0.1 * expected, (wide, expected)
    z = (every["y"].values - y_mean) / coef("y_sigma")
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05, (z.mean(), z.std())
    assert set(np.unique(every["yb"].values)) <= {0, 1}
    # the joint draws of y carry x2's uncertainty, the marginal ones (x2 observed) do not
    observed = fit.predict(new.assign(x2=data["x2"].head(7).to_numpy()), response="y", seed=1).values
    assert every["y"].values.std(axis=(0, 1)).min() > 1.2 * observed.std(axis=(0, 1)).max()
    with pytest.raises(ValueError, match="kind must be 'response', 'mean' or 'link' with joint=True"):
        fit.predict(new, response="y", joint=True, kind="probs")
    # predictions given per draw reduce to the univariate ones: the mediator's observed values
    # given to every draw, and nothing given
    from hbstan.predict import predict_given

    seen = data.head(6).assign(g=["g0", "g1", "g2", "g3", "new", "new"])
    C, D = post.sizes["chain"], post.sizes["draw"]
    observed = np.broadcast_to(seen["x2"].to_numpy(), (C, D, 6))
    for name, given in (("y", {"x2": observed}), ("x2", {})):
        one = fit.response_fit(name)
        got = predict_given(one, seen, given, kind="response", rng=np.random.default_rng(4))
        np.testing.assert_allclose(got, one.predict(seen, seed=4).values, rtol=1e-12, atol=1e-12)
    # the summary table of the joint predictions
    table = fit.predictions(new, response="yb", joint=True, seed=1)
    np.testing.assert_allclose(table["estimate"], yb_mean.reshape(-1, len(new)).mean(axis=0), rtol=1e-12)


def test_joint_predictions_refuse_what_they_do_not_model(pair):
    from hbstan.mvfit import MultivariateFit, build_mv_idata

    def zero_fit(m):  # zeros for draws: only the refusals are checked, before any prediction
        post = {p.name: np.zeros((1, 2, *(len(p.coords[d]) for d in p.dims))) if p.dims else np.zeros((1, 2))
                for p in m.params}
        return MultivariateFit(m, build_mv_idata(m, post, {}), run_dir=None, settings={})

    fit = zero_fit(hbstan.Model(["y1 ~ x", "y2 ~ x + y1"], data=pair))  # all Gaussian: rescor on
    with pytest.raises(NotImplementedError, match="residual correlation .* rescor=False"):
        fit.predict(pair.drop(columns="y1"), response="y2", joint=True)
    with pytest.raises(ValueError, match="counterfactual mediation of a model with residual correlation"):
        hbstan.mediation(fit, treatment="x", mediator="y1", outcome="y2", method="counterfactual")
    cycle = zero_fit(hbstan.Model(["y1 ~ x + y2", "y2 ~ x + y1"], data=pair, rescor=False))
    with pytest.raises(ValueError, match=r"the responses form a cycle \(y1 -> y2 -> y1\)"):
        cycle.predict(pair, response="y1", joint=True)


# ------------------------------------------------------------------------------ non-linear mediation
@cmdstan
def test_counterfactual_mediation_equals_the_product_of_coefficients_on_a_gaussian_path(path_fit):
    fit = path_fit
    post = fit.idata.posterior
    ab = (post["x2_x1"] * post["y_x2"]).values.reshape(-1)
    cf = hbstan.mediation(fit, treatment="x1", mediator="x2", outcome="y", method="counterfactual", control=0,
                          treated=1, draws=True)
    assert cf.attrs["method"] == "counterfactual"
    # the two mediator draws of a row share their random numbers: M(1) - M(0) = a exactly
    np.testing.assert_allclose(cf["indirect"], ab, rtol=1e-9)
    np.testing.assert_allclose(cf["direct"], post["y_x1"].values.reshape(-1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cf["total"], cf["indirect"] + cf["direct"], rtol=1e-12)
    # default contrast of a numeric treatment: its mean to mean + 1 SD; products scale alike
    sd = fit.model.data["x1"].std(ddof=1)
    default = hbstan.mediation(fit, treatment="x1", mediator="x2", outcome="y", method="counterfactual",
                               draws=True, mediator_draws=3)
    assert default.attrs["control"] == pytest.approx(fit.model.data["x1"].mean())
    assert default.attrs["treated"] - default.attrs["control"] == pytest.approx(sd)
    np.testing.assert_allclose(default["indirect"], ab * sd, rtol=1e-9)
    product = hbstan.mediation(fit, treatment="x1", mediator="x2", outcome="y", control=0, treated=2, draws=True)
    assert product.attrs["method"] == "product"
    np.testing.assert_allclose(product["indirect"], 2 * ab, rtol=1e-12)


@cmdstan
def test_counterfactual_mediation_of_a_bernoulli_outcome_agrees_with_a_numpy_simulation(path_fit):
    fit = path_fit
    table = hbstan.mediation(fit, treatment="x1", mediator="x2", outcome="yb", control=0, treated=1)
    assert table.attrs["method"] == "counterfactual"  # 'auto': the outcome is Bernoulli
    got = hbstan.mediation(fit, treatment="x1", mediator="x2", outcome="yb", control=0, treated=1, draws=True)
    # the natural effects simulated directly from the draws: 10 mediator draws per row and draw
    post = fit.idata.posterior
    df = fit.model.data
    S = post.sizes["chain"] * post.sizes["draw"]

    def flat(name):
        return post[name].values.reshape(S, *post[name].shape[2:])

    r_g = flat("x2_1|g")[:, post["g"].to_index().get_indexer(df["g"])]  # (S, n)
    e = np.random.default_rng(11).standard_normal((S, 10, len(df)))
    mu = flat("x2_Intercept")[:, None] + r_g  # the mediator's mean at x1 = 0, per row
    m0 = mu[:, None, :] + flat("x2_sigma")[:, None, None] * e  # (S, 10, n)
    m1 = m0 + flat("x2_x1")[:, None, None]

    def y(t, m):
        eta = flat("yb_Intercept")[:, None, None] + flat("yb_x1")[:, None, None] * t + flat("yb_x2")[:, None, None] * m
        return _expit(eta).mean(axis=(1, 2))

    sim = {"direct": y(1, m0) - y(0, m0), "indirect": y(1, m1) - y(1, m0)}
    sim["total"] = sim["direct"] + sim["indirect"]
    for name in ("indirect", "direct", "total"):
        a, b = got[name].to_numpy(), sim[name]
        assert abs(a.mean() - b.mean()) < 0.005, (name, a.mean(), b.mean())
        assert abs(a.std() - b.std()) < 0.1 * b.std() + 0.002, (name, a.std(), b.std())
        assert np.corrcoef(a, b)[0, 1] > 0.9, name
        row = table.set_index("effect").loc[name]
        assert row["estimate"] == pytest.approx(a.mean())
    # the truth of the simulated data: x1 moves x2 by 0.8, x2 moves yb's log odds by 1.2, no direct effect
    assert table.set_index("effect").loc["indirect", "lower"] > 0
    direct = table.set_index("effect").loc["direct"]
    assert direct["lower"] < 0 < direct["upper"]
    from matplotlib.figure import Figure

    fig = hbstan.plots.plot_mediation(got)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert fig.axes[0].get_title(loc="left").startswith("indirect effect: ") and "through x2" in fig.get_suptitle()
    with pytest.raises(ValueError, match="draws=True"):
        hbstan.plots.plot_mediation(table)


# ------------------------------------------------------------------------------ run directories
@cmdstan
def test_a_saved_run_loads_back_and_predicts_summarizes_and_gives_loo_as_the_original(path_fit, tmp_path):
    from hbstan import io
    from hbstan.mvfit import MultivariateFit

    fit = path_fit
    run = hbstan.save_fit(fit, tmp_path / "run")
    for name in ("spec.toml", "data.csv", "model.stan", "data.json", "idata.nc", "summary.csv", "diagnostics.json",
                 "trace.png", "forest.png"):
        assert (run / name).is_file(), name
    spec = io._tomllib().loads((run / "spec.toml").read_text())
    assert spec["formula"] == fit.model.formulas
    assert spec["family"] == ["gaussian", "gaussian", "bernoulli", "binomial", "poisson"] and spec["rescor"] is False
    back = hbstan.load(run)
    assert isinstance(back, MultivariateFit) and back.model.stan_code == fit.model.stan_code
    assert set(back.idata.groups()) == set(fit.idata.groups())
    for group in fit.idata.groups():  # each response's pointwise log-likelihood too
        assert back.idata[group].identical(fit.idata[group]), group
    assert back.settings == fit.settings and back.warnings == fit.warnings
    assert str(back) == str(fit)
    pd.testing.assert_frame_equal(back.summary(), fit.summary())
    assert back.loo().elpd_loo == fit.loo().elpd_loo
    assert back.loo("yb").elpd_loo == fit.loo("yb").elpd_loo
    new = pd.concat([fit.model.data.head(4), fit.model.data.head(2).assign(g="new")])  # a seen and an unseen group
    for response in ("x2", "yb", "s", "c"):
        for kind in ("response", "mean"):
            a = fit.predict(new, response=response, kind=kind, seed=3)
            np.testing.assert_array_equal(back.predict(new, response=response, kind=kind, seed=3).values, a.values)
    with pytest.raises(io.RunDirError, match="already exists and is not empty"):
        hbstan.save_fit(fit, run)


def test_the_spec_of_several_responses_rebuilds_the_model(pair, tmp_path):
    from hbstan import io

    pair = pair.assign(yb=(pair["y1"] > 1).astype(int))
    m = hbstan.Model(["y1 ~ x + (1 |p| g)", "yb ~ y1 + (1 |p| g)"], data=pair, family=["gaussian", "bernoulli"],
                     link=[None, "probit"], priors={"yb_y1": "normal(0, 2)", "sd": hbstan.HalfNormal(1)})
    spec = io.model_spec(m)
    assert spec["formula"] == m.formulas and spec["link"] == ["identity", "probit"] and spec["rescor"] is False
    cols = io.write_data_csv(m.data, tmp_path / "data.csv")
    io.write_spec({**spec, "data": "data.csv", "columns": cols}, tmp_path / "spec.toml")
    read = io.read_spec(tmp_path / "spec.toml")
    back = io.model_from_spec(read, io.read_data_csv(read["data"], read["columns"]))
    assert isinstance(back, MultivariateModel)
    assert back.stan_code == m.stan_code and back.priors == m.priors and io.model_spec(back) == spec
    a, b = m.stan_data_for(), back.stan_data_for()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    for bad, message in (
        ({"formula": ["y1 ~ x"]}, "a list of two or more strings"),
        ({"formula": "y1 ~ x", "family": ["gaussian", "poisson"]}, "'family' is a list .* but there is one formula"),
        ({"formula": ["y1 ~ x", "y2 ~ x"], "link": ["logit"]}, "'link' must be one string .* a list of 2 strings"),
        ({"formula": ["y1 ~ x", "y2 ~ x"], "sigma": 1.0}, r"\['sigma'\] cannot be used with several formulas"),
        ({"formula": "y1 ~ x", "rescor": True}, "'rescor' .* is an option of a model of several responses"),
    ):
        with pytest.raises(ValueError, match=message):
            io.check_spec(bad)


# ------------------------------------------------------------------------------ independent checks
@cmdstan
def test_log_lik_equals_scipy_multivariate_normal_at_the_draws(gaussian_fit):
    from scipy import stats

    fit = gaussian_fit
    df = fit.model.data
    post = fit.idata.posterior.stack(s=("chain", "draw"))
    Y = df[["y1", "y2"]].to_numpy()
    ll = fit.idata.log_likelihood["log_lik"].stack(s=("chain", "draw")).values  # (N, S)
    per = fit.idata["log_likelihood_responses"].stack(s=("chain", "draw"))
    for s in np.linspace(0, post.sizes["s"] - 1, 25).astype(int):
        p = {k: float(post[k].values[s]) for k in ("y1_Intercept", "y1_x", "y2_Intercept", "y2_x", "y1_sigma", "y2_sigma")}
        rho = float(post["rescor"].sel(rescor_response="y1", rescor_response_bis="y2").values[s])
        mu = np.column_stack([p["y1_Intercept"] + p["y1_x"] * df["x"], p["y2_Intercept"] + p["y2_x"] * df["x"]])
        sd = np.array([p["y1_sigma"], p["y2_sigma"]])
        cov = np.outer(sd, sd) * np.array([[1, rho], [rho, 1]])
        ref = np.array([stats.multivariate_normal(mu[n], cov).logpdf(Y[n]) for n in range(len(df))])
        np.testing.assert_allclose(ll[:, s], ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(per["y1"].values[:, s], stats.norm(mu[:, 0], sd[0]).logpdf(Y[:, 0]), rtol=1e-4, atol=1e-4)
    # az.loo reads the joint log-likelihood; a response's own through fit.loo(response=...)
    import arviz as az

    assert az.loo(fit.idata).n_data_points == len(df)
    assert fit.loo("y2").elpd_loo < 0


def _check_pymc_log_density_equals_stan(m: MultivariateModel) -> None:
    import pytensor

    from hbstan.backend import compiled_model
    from hbstan.mv_pymc import stan_params_from_pymc

    cm = compiled_model(m.stan_code)
    pmodel = m.to_pymc()
    logp = pmodel.compile_logp(jacobian=True)
    constrained = pytensor.function(
        pmodel.value_vars, pmodel.replace_rvs_by_values(pmodel.free_RVs), on_unused_input="ignore"
    )
    rng = np.random.default_rng(1)
    ip = pmodel.initial_point()
    data = m.stan_data_for(pointwise=False)
    diffs = []
    for _ in range(4):
        point = {k: rng.normal(scale=0.7, size=np.shape(v)) for k, v in ip.items()}
        vals = constrained(*[point[v.name] for v in pmodel.value_vars])
        params = stan_params_from_pymc(m, {rv.name: val for rv, val in zip(pmodel.free_RVs, vals, strict=True)})
        lp_stan = float(cm.log_prob(params=params, data=data, jacobian=True, sig_figs=14)["lp__"].iloc[0])
        diffs.append(float(logp(point)) - lp_stan)
    assert max(diffs) - min(diffs) < 1e-6, diffs  # the same density up to normalizing constants


@cmdstan
@pytest.mark.parametrize("which", ["gaussian_fit", "gaussian_groups_fit", "path_fit", "student_fit"])
def test_pymc_log_density_equals_the_program(which, request):
    pytest.importorskip("pymc")
    _check_pymc_log_density_equals_stan(request.getfixturevalue(which).model)


@cmdstan
def test_pymc_posterior_agrees_with_stan(gaussian_fit):
    pytest.importorskip("pymc")
    from hbstan.compare import compare_fits

    # one process: PyMC compiles its log density once (in each worker process otherwise)
    pymc = gaussian_fit.model.sample(chains=2, draws=400, warmup=400, seed=8, backend="pymc", parallel_chains=1)
    assert set(pymc.idata.posterior.data_vars) == set(gaussian_fit.idata.posterior.data_vars)
    result = compare_fits(gaussian_fit, pymc, confirm=False, rhat_max=1.05)  # two short chains each
    assert result.verdict == "agree", result.to_markdown()
    # PyMC's pointwise quantities, from the draws in NumPy: the joint log-likelihood is the
    # multivariate normal density, each response's its marginal normal
    from scipy import stats

    post = pymc.idata.posterior
    c, d = 1, 17
    rho = float(post["rescor"].values[c, d, 0, 1])
    sd = np.array([float(post["y1_sigma"].values[c, d]), float(post["y2_sigma"].values[c, d])])
    x = pymc.model.data["x"].to_numpy()
    mu = np.column_stack([post["y1_Intercept"].values[c, d] + post["y1_x"].values[c, d] * x,
                          post["y2_Intercept"].values[c, d] + post["y2_x"].values[c, d] * x])
    Y = pymc.model.data[["y1", "y2"]].to_numpy()
    cov = np.outer(sd, sd) * np.array([[1, rho], [rho, 1]])
    ref = [stats.multivariate_normal(mu[n], cov).logpdf(Y[n]) for n in range(len(x))]
    np.testing.assert_allclose(pymc.idata.log_likelihood["log_lik"].values[c, d], ref, rtol=1e-8)


# ------------------------------------------------------------------------------ no sampling
@pytest.fixture(scope="module")
def pair() -> pd.DataFrame:
    return _gaussian_pair(60, 4, 9, groups=True)


def test_names_say_which_response_a_parameter_belongs_to(pair):
    pair = pair.assign(yb=(pair["y1"] > 1).astype(int))
    m = hbstan.Model(["y1 ~ x + (1 + x | g)", "yb ~ y1"], data=pair, family=["gaussian", "bernoulli"])
    assert isinstance(m, MultivariateModel)
    names = [p.name for p in m.params]
    assert names == ["y1_Intercept", "y1_x", "y1_sigma", "y1_1|g", "y1_1|g_sigma", "y1_x|g", "y1_x|g_sigma",
                     "y1_g_corr", "yb_Intercept", "yb_y1"]
    corr = next(p for p in m.params if p.name == "y1_g_corr")
    assert corr.dims == ("y1_g_corr_effect", "y1_g_corr_effect_bis")
    assert next(p for p in m.params if p.name == "y1_1|g").dims == ("g",)
    assert not m.rescor  # a Bernoulli response: off by default
    code = m.stan_code
    # no user string reaches the program: other column names give the very same program
    renamed = pair.rename(columns={"y1": "alpha", "yb": "beta", "x": "gamma", "g": "delta"})
    other = hbstan.Model(["alpha ~ gamma + (1 + gamma | delta)", "beta ~ alpha"], data=renamed,
                         family=["gaussian", "bernoulli"])
    assert other.stan_code == code
    assert code.count("bernoulli_logit_glm_lupmf") == 1 and code.count("normal_id_glm_lupdf") == 1


def test_priors_by_response_and_class(pair):
    m = hbstan.Model(
        ["y1 ~ x", "y2 ~ x + (1 | g)"], data=pair,
        priors={"y1_x": hbstan.Normal(0, 1), "sigma": "exponential(2)", "y2_sd": hbstan.HalfNormal(0.5),
                "rescor": hbstan.LKJ(4)},
    )
    assert m.priors["y1_x"] == hbstan.Normal(0, 1)
    assert m.priors["y2_x"] != hbstan.Normal(0, 1)
    assert m.priors["y1_sigma"] == m.priors["y2_sigma"] == hbstan.Exponential(2)
    assert m.priors["y2_1|g_sigma"] == hbstan.HalfNormal(0.5)
    assert m.priors["rescor"] == hbstan.LKJ(4)
    data = m.stan_data_for()
    assert data["prior_Lrescor_eta"] == 4.0 and data["prior_b_1_scale"] == [1.0]
    with pytest.raises(ValueError, match="unknown prior name 'y3_x'.*'y1_x'"):
        hbstan.Model(["y1 ~ x", "y2 ~ x"], data=pair, priors={"y3_x": hbstan.Normal(0, 1)})
    with pytest.raises(ValueError, match="'rescor' must be an LKJ prior"):
        hbstan.Model(["y1 ~ x", "y2 ~ x"], data=pair, priors={"rescor": hbstan.Normal(0, 1)})


def test_id_syntax_joins_group_terms_across_responses(pair):
    m = hbstan.Model(["y1 ~ x + (1 + x |p| g)", "y2 ~ x + (1 |p| g)"], data=pair, priors={"g_corr_p": "lkj(3)"})
    assert [p.name for p in m.params if p.kind == "corr"] == ["g_corr_p", "rescor"]
    corr = next(p for p in m.params if p.name == "g_corr_p")
    assert corr.coords["g_corr_p_effect"] == ["y1_1", "y1_x", "y2_1"]
    assert m.priors["g_corr_p"] == hbstan.LKJ(3) and "y1_g_corr" not in m.priors
    sd = {p.name: (p.stan, p.cols.start) for p in m.params if p.name.endswith("|g_sigma")}
    assert sd == {"y1_1|g_sigma": ("sd_3", 0), "y1_x|g_sigma": ("sd_3", 1), "y2_1|g_sigma": ("sd_3", 2)}
    assert "r_1 = r_3[, 1:2]" in m.stan_code and "r_2 = r_3[, 3:3]" in m.stan_code
    # an ID in one formula only leaves the term as it is
    one = hbstan.Model(["y1 ~ x + (1 |p| g)", "y2 ~ x"], data=pair)
    assert not one.joint_blocks and [p.stan for p in one.params if p.name == "y1_1|g_sigma"] == ["sd_1"]
    with pytest.raises(hbstan.FormulaError, match=r"\(1 \|p\| g\) in the formula of 'y1'.*not 'unpooled'"):
        hbstan.Model(["y1 ~ x + (1 |p| g)", "y2 ~ x + (1 |p| g)"], data=pair, pooling="unpooled")


def test_default_rescor_on_for_gaussian_responses_only(pair):
    assert hbstan.Model(["y1 ~ x", "y2 ~ x"], data=pair).rescor
    assert not hbstan.Model(["y1 ~ x", "y2 ~ x"], data=pair, rescor=False).rescor
    assert not hbstan.Model(["y1 ~ x", "y2 ~ x"], data=pair, family="student").rescor
    assert "rescor" in [p.name for p in hbstan.Model(["y1 ~ x", "y2 ~ x"], data=pair, family="student", rescor=True).params]


def test_clear_errors(pair):
    pair = pair.assign(yb=(pair["y1"] > 1).astype(int))
    with pytest.raises(hbstan.DataError, match=r"response 'y3' of formula 2 \('y3 ~ x'\) is not a column of the data"):
        hbstan.Model(["y1 ~ x", "y3 ~ x"], data=pair)
    with pytest.raises(ValueError, match="rescor=True .*response 'yb' has family='bernoulli'.*rescor=False"):
        hbstan.Model(["y1 ~ x", "yb ~ x"], data=pair, family=["gaussian", "bernoulli"], rescor=True)
    with pytest.raises(ValueError, match="rescor=True needs every response Gaussian or every response Student-t"):
        hbstan.Model(["y1 ~ x", "y2 ~ x"], data=pair, family=["gaussian", "student"], rescor=True)
    with pytest.raises(ValueError, match=r"family='gamma' \(response 2, 'y2 ~ x'\) is not supported.*'poisson'"):
        hbstan.Model(["y1 ~ x", "y2 ~ x"], data=pair, family=["gaussian", "gamma"])
    with pytest.raises(ValueError, match="family has 3 entries for 2 formulas"):
        hbstan.Model(["y1 ~ x", "y2 ~ x"], data=pair, family=["gaussian"] * 3)
    with pytest.raises(hbstan.FormulaError, match=r"response\(s\) \['y1'\] appear in more than one formula"):
        hbstan.Model(["y1 ~ x", "y1 ~ 1"], data=pair)
    with pytest.raises(hbstan.FormulaError, match="weights\\(\\) in 'y1 \\| weights\\(x\\) ~ 1'.*not supported"):
        hbstan.Model(["y1 | weights(x) ~ 1", "y2 ~ x"], data=pair)
    bad = pair.copy()
    bad.loc[3, "y2"] = np.nan
    with pytest.raises(hbstan.DataError, match=r"column 'y2' has 1 missing .* rows \[3\].*dropna=True"):
        hbstan.Model(["y1 ~ x", "y2 ~ x"], data=bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert hbstan.Model(["y1 ~ x", "y2 ~ x"], data=bad, dropna=True).N == len(pair) - 1


def test_a_formula_is_the_univariate_model(pair):
    m = hbstan.Model("y1 ~ x", data=pair)
    assert type(m) is hbstan.Model and m.formula == "y1 ~ x"
    assert list(inspect.signature(hbstan.Model).parameters)[:3] == ["formula", "data", "family"]
    with pytest.raises(ValueError, match="at least two formulas.*hbstan.Model\\('y ~ x', data\\)"):
        hbstan.Model(["y1 ~ x"], data=pair)
