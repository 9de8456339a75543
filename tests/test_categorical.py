"""The categorical family (multinomial logit): ``Model(family="categorical")``.

Simulated choices among 3 unordered categories with a predictor and group intercepts per
category: the fit recovers the intercepts, slopes and group SDs of each non-reference
category; the program's own log_lik equals a NumPy/SciPy softmax of the posterior draws (and
hbstan's NumPy pointwise code); ``predict(kind="probs")`` rows sum to 1 and equal the softmax of
the draws; the Stan and PyMC backends agree on a small pooled model. Two programs in all (the
hierarchical and the pooled one), the structures of the log-density subset's categorical
variants. The NumPy side against SciPy is in tests/test_families.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp, softmax

import hbstan
from hbstan.pointwise import log_lik_and_y_rep

cmdstan = pytest.mark.cmdstan

LABELS = ["walk", "bike", "bus"]  # the first is the reference
INTERCEPT = np.array([0.4, -0.3])  # log odds of bike, bus against walk at x = 0
SLOPE = np.array([0.9, -0.7])
SD = np.array([0.7, 0.4])  # SDs of the group intercepts, per category
J = 15


def _simulate(seed: int, n: int = 900) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    x = rng.normal(0.5, 1.0, n)  # not centered: the reported intercepts are at x = 0
    eta = INTERCEPT + x[:, None] * SLOPE + (rng.normal(size=(J, 2)) * SD)[g]
    p = softmax(np.column_stack([np.zeros(n), eta]), axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return pd.DataFrame({
        "choice": pd.Categorical.from_codes(y, LABELS), "x": x, "g": [f"g{j:02d}" for j in g],
    })


def _log_softmax_of_draws(post, df: pd.DataFrame, groups: list[str]) -> np.ndarray:
    """(chain, draw, n, 3): log P(category) of each row, written from the posterior's own
    variables: eta_k = Intercept[k] + x b[k] + (1|g)[g, k], walk's eta 0."""
    x = df["x"].to_numpy()
    pos = {lab: j for j, lab in enumerate(post["1|g"].coords["g"].values)}
    r = post["1|g"].values[:, :, [pos[lab] for lab in groups], :]  # (chain, draw, n, 2)
    eta = post["Intercept"].values[:, :, None, :] + x[:, None] * post["x"].values[:, :, None, :] + r
    logits = np.concatenate([np.zeros(eta.shape[:-1] + (1,)), eta], axis=-1)
    return logits - logsumexp(logits, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def fit():
    df = _simulate(21)
    m = hbstan.Model("choice ~ x + (1 | g)", df, family="categorical")
    return m.sample(chains=2, draws=500, warmup=500, seed=4, pointwise="stan", sig_figs=15)


@cmdstan
def test_recovers_the_truth(fit) -> None:
    post = fit.posterior
    assert post["x"].dims == ("chain", "draw", "category")
    assert post["1|g"].dims == ("chain", "draw", "g", "category")
    assert list(post["Intercept"].coords["category"].values) == LABELS[1:]
    for name, truth in (("Intercept", INTERCEPT), ("x", SLOPE), ("1|g_sigma", SD)):
        v = post[name].values.reshape(-1, 2)
        for k in range(2):
            assert abs(v[:, k].mean() - truth[k]) < 3 * v[:, k].std() + 0.03, (name, k, v[:, k].mean(), v[:, k].std())


@cmdstan
def test_program_log_lik_is_the_softmax_of_the_draws(fit) -> None:
    """The program's log_lik (pointwise="stan") equals log softmax written here from the
    posterior, and hbstan's NumPy pointwise code; its replicated data are categories 1..3 in the
    proportions of the NumPy draws."""
    df, post = fit.model.data, fit.posterior
    y = fit.model.design.y.astype(int)
    lp = _log_softmax_of_draws(post, df, list(df["g"]))
    ref = np.take_along_axis(lp, np.broadcast_to((y - 1)[:, None], lp.shape[:-1] + (1,)), axis=-1)[..., 0]
    stan_ll = fit.idata.log_likelihood["log_lik"].values
    np.testing.assert_allclose(stan_ll, ref, rtol=1e-8, atol=1e-9)
    draws = {v: post[v].values for v in post.data_vars}
    ll, rep = log_lik_and_y_rep(fit.model, draws, np.random.default_rng(0))
    np.testing.assert_allclose(ll, stan_ll, rtol=1e-8, atol=1e-9)
    stan_rep = fit.idata.posterior_predictive["choice"].values
    assert set(np.unique(stan_rep)) == {1, 2, 3}
    for k in (1, 2, 3):
        assert np.mean(stan_rep == k) == pytest.approx(np.mean(rep == k), abs=0.01)
        assert np.mean(stan_rep == k) == pytest.approx(np.mean(y == k), abs=0.03)


@cmdstan
def test_predicted_probabilities(fit) -> None:
    """kind="probs": every category's label, rows summing to 1, each draw the softmax of that
    draw (seen groups); an unseen group's rows sum to 1 too; the tidy table is their summary."""
    new = pd.DataFrame({"x": [-1.0, 0.5, 2.0, 1.0], "g": ["g00", "g03", "g07", "unseen"]})
    probs = fit.predict(new, kind="probs", seed=1)
    assert probs.dims == ("chain", "draw", "__obs__", "category")
    assert list(probs.coords["category"].values) == LABELS
    np.testing.assert_allclose(probs.sum("category").values, 1.0, rtol=1e-12)
    seen = new.iloc[:3]
    ref = np.exp(_log_softmax_of_draws(fit.posterior, seen, list(seen["g"])))
    np.testing.assert_allclose(probs.values[:, :, :3, :], ref, rtol=1e-10)
    # higher x: bike more likely, bus less (the signs of the slopes)
    mean = probs.mean(("chain", "draw")).values
    assert mean[2, 1] > mean[0, 1] and mean[2, 2] < mean[0, 2]
    table = fit.predictions(new, kind="probs", seed=1)
    assert len(table) == 4 * 3 and list(table["category"].iloc[:3]) == LABELS
    np.testing.assert_allclose(table["estimate"].to_numpy().reshape(4, 3), mean, rtol=1e-12)
    # the link: the log odds against walk, one per non-reference category
    link = fit.predict(seen, kind="link")
    assert list(link.coords["category"].values) == LABELS[1:]
    np.testing.assert_allclose(np.exp(link.values), ref[..., 1:] / ref[..., :1], rtol=1e-10)
    draws = fit.predict(new, kind="response", seed=2)
    assert set(np.unique(draws.values)) <= {1, 2, 3}


@cmdstan
def test_features_with_one_prediction_are_refused(fit) -> None:
    new = fit.model.data.head(3)
    with pytest.raises(ValueError, match="unordered categories and no mean: use kind='probs'"):
        fit.predict(new, kind="mean")
    with pytest.raises(ValueError, match="avg_comparisons is not supported for family='categorical'.*kind='probs'"):
        hbstan.avg_comparisons(fit, "x")
    with pytest.raises(ValueError, match="avg_slopes is not supported for family='categorical'"):
        hbstan.avg_slopes(fit, "x")
    # ... and each category's probability is: the average change per unit of x against the
    # softmax of the draws computed here
    seen = new.assign(g=["g00", "g03", "g07"])
    cmp = hbstan.avg_comparisons(fit, "x", kind="probs", data=seen)
    assert list(cmp["category"]) == LABELS
    groups = list(seen["g"])
    change = np.exp(_log_softmax_of_draws(fit.posterior, seen.assign(x=seen["x"] + 1), groups)) - np.exp(
        _log_softmax_of_draws(fit.posterior, seen, groups)
    )
    np.testing.assert_allclose(cmp["estimate"].to_numpy(), change.mean(axis=2).mean(axis=(0, 1)), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="one per group and category.*plot_forest"):
        hbstan.plots.plot_shrinkage(fit)
    with pytest.raises(ValueError, match=r"one per category: use kind='probs'"):
        hbstan.plots.plot_conditional(fit, "x")
    with pytest.raises(ValueError, match=r"colours the response categories, so by='g' is not available"):
        hbstan.plots.plot_conditional(fit, "x", by="g", kind="probs")


@cmdstan
def test_plot_conditional_draws_each_category(fit) -> None:
    """kind="probs": one line per category, each the predictions table's estimate over the grid
    (brms's conditional_effects(categorical = TRUE)), and the probabilities sum to 1 at each x."""
    import matplotlib

    matplotlib.use("Agg")
    fig = hbstan.plots.plot_conditional(fit, "x", kind="probs", n=12)
    table = fig.conditional_effects
    assert list(pd.unique(table["category"])) == LABELS and len(table) == 12 * 3
    np.testing.assert_allclose(table.groupby("x")["estimate"].sum().to_numpy(), 1.0, rtol=1e-12)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert sorted(lines) == sorted(LABELS)
    for cat in LABELS:
        sub = table[table["category"] == cat].sort_values("x")
        np.testing.assert_allclose(lines[cat].get_ydata(), sub["estimate"].to_numpy(), rtol=1e-12)
    assert ax.get_ylabel() == "P(choice = category)" and ax.get_legend().get_title().get_text() == "choice"
    # bike (the slope's sign) grows with x
    bike = table[table["category"] == "bike"].sort_values("x")["estimate"].to_numpy()
    assert bike[-1] > bike[0]


@cmdstan
def test_backends_agree() -> None:
    """A small pooled model (categorical_logit_glm) against PyMC's pm.Categorical of the softmax."""
    pytest.importorskip("pymc")
    df = _simulate(22, n=250).drop(columns="g")
    df["choice"] = df["choice"].astype(str)  # text: categories in sorted order, bike the reference
    m = hbstan.Model("choice ~ x", df, family="categorical")
    assert m.category_labels == ["bus", "walk"]
    assert "categorical_logit_glm_lupmf(y | Xc, append_row(0, Intercept)" in m.program()
    c = hbstan.compare_backends(m, chains=2, draws=1000, seed=3)
    assert c.verdict == "agree", c.to_markdown()


@cmdstan
@pytest.mark.parametrize("formula", ["choice ~ x + z + (1 | g)", "choice ~ x + z"])
def test_pymc_log_density_equals_stan(formula: str) -> None:
    """The PyMC model's log density (intercepts, coefficients of a numeric and a factor
    predictor and group effects, each per category) equals the program's at random points, up to
    a constant: the two lay out the categories alike. The programs of the tests above."""
    pytest.importorskip("pymc")
    import pytensor

    from hbstan.backend import compiled_model
    from hbstan.pymc_backend import PREFIX, build_pymc_model

    df = _simulate(25, n=200)
    df["z"] = np.random.default_rng(1).choice(["p", "q", "r"], len(df))
    m = hbstan.Model(formula, df, family="categorical")
    cm = compiled_model(m.stan_code)
    pmodel = build_pymc_model(m)
    logp = pmodel.compile_logp(jacobian=True)
    constrained = pytensor.function(pmodel.value_vars, pmodel.replace_rvs_by_values(pmodel.free_RVs))
    rng = np.random.default_rng(1)
    diffs = []
    for _ in range(4):
        point = {k: rng.normal(scale=0.7, size=np.shape(v)) for k, v in pmodel.initial_point().items()}
        vals = constrained(*[point[v.name] for v in pmodel.value_vars])
        params = {rv.name[len(PREFIX):]: np.asarray(v) for rv, v in zip(pmodel.free_RVs, vals, strict=True)}
        # PyMC's b is Stan's to_vector(b) (category after category); its z is (J, M (ncat - 1))
        params["b"] = params["b"].reshape(2, m.design.K).T
        if "z_1" in params:
            params["z_1"] = params["z_1"].T
        lp = cm.log_prob(params=params, data=m.stan_data, jacobian=True, sig_figs=14)["lp__"].iloc[0]
        diffs.append(float(logp(point)) - float(lp))
    assert max(diffs) - min(diffs) < 1e-8, diffs


# ------------------------------------------------------------------ no sampling
def test_priors_per_category() -> None:
    df = _simulate(23, n=120)
    m = hbstan.Model("choice ~ x + (1 | g)", df, family="categorical")
    assert list(m.priors) == [
        "Intercept[bike]", "Intercept[bus]", "x[bike]", "x[bus]", "1|g_sigma[bike]", "1|g_sigma[bus]",
    ]
    assert str(m.priors["Intercept[bus]"]) == str(hbstan.StudentT(3, 0, 2.5))  # brms's
    sx = df["x"].std(ddof=0)
    assert m.priors["x[bike]"].values() == pytest.approx({"loc": 0.0, "scale": 2.5 / sx})
    assert str(m.priors["1|g_sigma[bike]"]) == str(hbstan.HalfNormal(1.0))
    # a key without the category sets every category's; one with it, that category's
    m2 = hbstan.Model(
        "choice ~ x + (1 | g)", df, family="categorical",
        priors={"x": "normal(0, 1)", "x[bus]": "normal(0, 3)", "sd": "exponential(2)"},
    )
    assert m2.priors["x[bike]"].values() == {"loc": 0.0, "scale": 1.0}
    assert m2.priors["x[bus]"].values() == {"loc": 0.0, "scale": 3.0}
    assert str(m2.priors["1|g_sigma[bus]"]) == str(hbstan.Exponential(2))
    data = m2.stan_data
    assert data["ncat"] == 3 and data["M_1"] == 1
    # to_vector(b) and sd_1: category after category
    np.testing.assert_allclose(data["prior_b_scale"], [1.0, 3.0])
    with pytest.raises(ValueError, match=r"unknown prior name 'x\[car\]'"):
        hbstan.Model("choice ~ x", df, family="categorical", priors={"x[car]": "normal(0, 1)"})
    # labels are coordinates, never Stan code
    assert not any(lab in m.program() for lab in ("walk", "bike", "bus", "choice"))


def test_precompile_lists_the_structures_it_has() -> None:
    """hbstan precompile: the categorical structures without correlated terms, group
    predictors or unpooled effects (refused), on a response of categories."""
    from hbstan.precompile import common_models

    labels = [label for label, _ in common_models(["categorical"])]
    assert labels == [
        "categorical/pooled/non-centered", "categorical/intercept/non-centered", "categorical/intercept/centered",
        "categorical/slopes/non-centered", "categorical/slopes/centered",
    ]


def test_bad_input_is_refused_clearly() -> None:
    df = _simulate(24, n=60)
    one = df.assign(choice="walk")
    with pytest.raises(hbstan.DataError, match=r"response 'choice' has a single category \('walk'\).*at least 2"):
        hbstan.Model("choice ~ x", one, family="categorical")
    unused = df.assign(choice=pd.Categorical(df["choice"].astype(str), ["walk", "bike", "bus", "car"]))
    with pytest.raises(hbstan.DataError, match=r"no rows in category\(ies\) \['car'\].*remove_unused_categories"):
        hbstan.Model("choice ~ x", unused, family="categorical")
    numbers = df.assign(choice=np.where(np.arange(60) == 7, 2.5, 1 + np.arange(60) % 3))
    with pytest.raises(hbstan.DataError, match=r"category numbers 1, 2, \.\.\., K .*rows \[7\] have \[2\.5\]"):
        hbstan.Model("choice ~ x", numbers, family="categorical")
    assert hbstan.Model("choice ~ x", numbers.assign(choice=1 + np.arange(60) % 3), family="categorical").category_labels == ["2", "3"]
    with pytest.raises(hbstan.FormulaError, match=r"correlated group effects \(1 \+ x \| g\).*\(1 \+ x \|\| g\)"):
        hbstan.Model("choice ~ x + (1 + x | g)", df, family="categorical")
    with pytest.raises(hbstan.FormulaError, match="unpooled group effects"):
        hbstan.Model("choice ~ x + (1 | g)", df, family="categorical", pooling="unpooled")
    with pytest.raises(ValueError, match="offset or exposure is not supported"):
        hbstan.Model("choice ~ x", df.assign(t=1.0), family="categorical", offset="t")
    with pytest.raises(hbstan.FormulaError, match="group_predictors with family='categorical'"):
        hbstan.Model("choice ~ x + (1 | g)", df.assign(u=df["g"].str[-1].astype(float)), family="categorical",
                     group_predictors={"g": ["u"]})
    with pytest.raises(hbstan.FormulaError, match="weights"):
        hbstan.Model("choice | weights(x) ~ 1", df.assign(x=1.0), family="categorical")
