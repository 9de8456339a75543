"""Predictions on a grid, conditional-effects plots, average comparisons and slopes (hbstan.effects).

Each result is checked against the same quantity computed by hand with NumPy from the
posterior draws (the linear predictor written out from the coefficients), not through
hbstan's prediction code. The fits reuse program structures other tests compile (a Gaussian
and a Bernoulli model with one varying intercept), 2 chains each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan import plots
from hbstan.effects import datagrid, model_columns, varying_terms

GROUPS = list("abcdef")


def _data(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 120
    df = pd.DataFrame(
        {
            "x": rng.normal(0, 1.5, n),
            "treat": rng.integers(0, 2, n),
            "g": np.repeat(GROUPS, n // len(GROUPS)),
            "c": rng.choice(["p", "q", "r"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    offsets = dict(zip(GROUPS, [-0.6, -0.3, 0.0, 0.1, 0.3, 0.5], strict=True))
    a = df["g"].map(offsets).to_numpy()
    df["y"] = 1.0 + 2.0 * df["x"] + a + rng.normal(0, 0.5, n)  # known linear truth
    eta = -0.3 + 0.8 * df["x"] + 1.2 * df["treat"] + a
    df["yb"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return df


def _draws(fit: hbstan.Fit, name: str) -> np.ndarray:
    v = fit.posterior[name].values
    return v.reshape(-1, *v.shape[2:])


def _interval(draws: np.ndarray, prob: float = 0.95) -> np.ndarray:
    a = (1 - prob) / 2
    return np.quantile(draws, [a, 1 - a], axis=0)


def inv_logit(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _data()


@pytest.fixture(scope="module")
def gauss(data: pd.DataFrame) -> hbstan.Fit:
    return hbstan.Model("y ~ x + (1 | g)", data).sample(chains=2, draws=1000, warmup=500, seed=11, show_progress=False)


@pytest.fixture(scope="module")
def logit(data: pd.DataFrame) -> hbstan.Fit:
    m = hbstan.Model("yb ~ x + treat + (1 | g)", data, family="bernoulli")
    return m.sample(chains=2, draws=1000, warmup=500, seed=12, show_progress=False)


# --------------------------------------------------------------------------- datagrid (no sampling)
def test_datagrid_spans_named_columns_and_holds_the_others(data) -> None:
    m = hbstan.Model("y ~ x + c + treat + (1 | g)", data)
    assert model_columns(m) == {"x": "predictor", "c": "predictor", "treat": "predictor", "g": "group"}
    grid = datagrid(m, "x")
    assert list(grid.columns) == ["x", "c", "treat"]  # the grouping column is left out
    np.testing.assert_allclose(grid["x"], np.linspace(data["x"].min(), data["x"].max(), 50))
    assert (grid["c"] == data["c"].value_counts().idxmax()).all()  # the most common level
    assert (grid["treat"] == data["treat"].value_counts().idxmax()).all()  # 0/1: most common value
    both = datagrid(m, "c", "g", x=[0.0, 1.0])
    assert len(both) == 3 * 6 * 2
    assert sorted(both["c"].unique()) == ["p", "q", "r"] and sorted(both["g"].unique()) == GROUPS
    assert (datagrid(m, "c", n=5)["x"] == data["x"].mean()).all()  # numbers held at the mean
    assert datagrid(m, "treat")["treat"].tolist() == [0, 1]
    assert len(datagrid(m, "x", n=7)) == 7


def test_datagrid_group_predictor_follows_its_group() -> None:
    df = pd.DataFrame({"g": np.repeat(list("abc"), 4), "u": np.repeat([-1.0, 0.5, 2.0], 4), "x": np.arange(12.0)})
    df["y"] = np.sin(df["x"])
    m = hbstan.Model("y ~ x + (1 | g)", df, group_predictors={"g": ["u"]})
    assert datagrid(m, "g")["u"].tolist() == [-1.0, 0.5, 2.0]
    assert datagrid(m, "x")["u"].unique().tolist() == [df["u"].mean()]
    with pytest.raises(ValueError, match="'u' of new group"):
        datagrid(m, g=["a", "zz"])
    assert datagrid(m, g=["zz"], u=[3.0])["u"].tolist() == [3.0]


def test_unknown_columns_and_levels_are_named(data) -> None:
    m = hbstan.Model("y ~ x + c + (1 | g)", data)
    with pytest.raises(ValueError, match=r"'nope' is not a column the model .* its columns are \['x', 'c', 'g'\]"):
        datagrid(m, "nope")
    with pytest.raises(ValueError, match=r"'c' has no level\(s\) \['s'\].*\['p', 'q', 'r'\]"):
        datagrid(m, c=["p", "s"])
    with pytest.raises(ValueError, match="named twice"):
        datagrid(m, "x", x=[1.0])
    with pytest.raises(ValueError, match=r"'h' is not a grouping factor .* \['g'\]"):
        varying_terms(m, "h", data)
    with pytest.raises(ValueError, match=r"terms are included or left out whole.*\(1 \| g\)"):
        varying_terms(m, "(1 + x | g)", data)
    assert varying_terms(m, "(1|g)", data) == {1} == varying_terms(m, "~ (1 | g)", data) == varying_terms(m, ["g"], data)
    assert varying_terms(m, None, data) == set() == varying_terms(m, "auto", data[["x", "c"]])
    unpooled = hbstan.Model("y ~ x + (1 | g)", data, pooling="unpooled")
    with pytest.raises(ValueError, match="unpooled term .* has no population"):
        varying_terms(unpooled, None, data)


# --------------------------------------------------------------------------- predictions
@pytest.mark.cmdstan
def test_grid_predictions_of_the_mean_are_the_line_by_hand(gauss, data) -> None:
    b0, b1 = _draws(gauss, "Intercept"), _draws(gauss, "x")
    table = gauss.predictions(grid="x")  # no grouping column on the grid: population level
    x = np.linspace(data["x"].min(), data["x"].max(), 50)
    np.testing.assert_allclose(table["x"], x)
    mu = b0[:, None] + b1[:, None] * x[None, :]
    np.testing.assert_allclose(table["estimate"], mu.mean(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(table["std_error"], mu.std(0, ddof=1), rtol=1e-8)
    lo, hi = _interval(mu)
    np.testing.assert_allclose(table["lower"], lo, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(table["upper"], hi, rtol=1e-10, atol=1e-10)
    # the known truth 1 + 2x (plus the mean group offset, 0) lies inside the intervals
    truth = 1.0 + 2.0 * x
    assert np.mean((table["lower"] < truth) & (truth < table["upper"])) > 0.9
    # narrower intervals: 50% ones lie inside the 95% ones
    narrow = gauss.predictions(grid="x", prob=0.5)
    assert (narrow["lower"] > table["lower"]).all() and (narrow["upper"] < table["upper"]).all()


@pytest.mark.cmdstan
def test_group_effects_enter_where_the_grouping_column_is_given(gauss) -> None:
    b0, b1, r = _draws(gauss, "Intercept"), _draws(gauss, "x"), _draws(gauss, "1|g")
    labels = list(gauss.posterior["g"].values)
    table = gauss.predictions(grid={"g": None, "x": [0.0, 1.0]})
    assert table["g"].tolist() == [g for g in GROUPS for _ in range(2)]
    j = np.array([labels.index(g) for g in table["g"]])
    mu = b0[:, None] + b1[:, None] * table["x"].to_numpy()[None, :] + r[:, j]
    np.testing.assert_allclose(table["estimate"], mu.mean(0), rtol=1e-10, atol=1e-10)
    # re_formula=None: the same rows at the population level (group effects zero)
    pop = gauss.predictions(grid={"g": None, "x": [0.0, 1.0]}, re_formula=None)
    mu0 = b0[:, None] + b1[:, None] * pop["x"].to_numpy()[None, :]
    np.testing.assert_allclose(pop["estimate"], mu0.mean(0), rtol=1e-10, atol=1e-10)
    # a group not seen in fitting: effects drawn from the population, so a wider interval
    new = gauss.predictions(pd.DataFrame({"x": [0.0], "g": ["zzz"]}), seed=3)
    assert new["upper"].iloc[0] - new["lower"].iloc[0] > pop["upper"].iloc[0] - pop["lower"].iloc[0]
    # data=None and no grid: the fitted rows, in their order, with their columns
    fitted = gauss.predictions()
    assert len(fitted) == len(gauss.model.data) and {"y", "x", "g", "estimate"} <= set(fitted.columns)


@pytest.mark.cmdstan
def test_response_predictions_add_the_residual_spread(gauss) -> None:
    mean = gauss.predictions(grid={"x": [0.0]}, kind="mean")
    resp = gauss.predictions(grid={"x": [0.0]}, kind="response", seed=1)
    sigma = _draws(gauss, "sigma")
    expected = np.sqrt(np.mean(sigma**2) + mean["std_error"].iloc[0] ** 2)
    assert resp["std_error"].iloc[0] == pytest.approx(expected, rel=0.1)
    assert resp["estimate"].iloc[0] == pytest.approx(mean["estimate"].iloc[0], abs=4 * expected / np.sqrt(sigma.size))
    with pytest.raises(ValueError, match="either data .* or grid"):
        gauss.predictions(pd.DataFrame({"x": [0.0]}), grid="x")
    with pytest.raises(ValueError, match="kind must be one of"):
        gauss.predictions(grid="x", kind="median")


# --------------------------------------------------------------------------- averages
@pytest.mark.cmdstan
def test_avg_slopes_of_a_linear_gaussian_model_is_the_slope(gauss) -> None:
    b1 = _draws(gauss, "x")
    slope = hbstan.avg_slopes(gauss, "x")
    assert slope[["term", "contrast"]].values.tolist() == [["x", "dY/dX"]]
    assert slope["estimate"].iloc[0] == pytest.approx(b1.mean(), rel=1e-7)
    assert slope["std_error"].iloc[0] == pytest.approx(b1.std(ddof=1), rel=1e-5)
    lo, hi = _interval(b1)
    assert slope["lower"].iloc[0] == pytest.approx(lo, rel=1e-6)
    assert slope["upper"].iloc[0] == pytest.approx(hi, rel=1e-6)
    # a comparison of +1, or of x = -1 against x = 2, is the slope, or three times it
    plus1 = hbstan.avg_comparisons(gauss, "x")
    assert plus1["contrast"].iloc[0] == "+1" and plus1["estimate"].iloc[0] == pytest.approx(b1.mean(), rel=1e-9)
    wide = hbstan.avg_comparisons(gauss, "x", contrast=(-1, 2))
    assert wide["contrast"].iloc[0] == "2 - -1" and wide["estimate"].iloc[0] == pytest.approx(3 * b1.mean(), rel=1e-9)
    by = hbstan.avg_slopes(gauss, "x", by="g")
    assert by["g"].tolist() == GROUPS
    np.testing.assert_allclose(by["estimate"], b1.mean(), rtol=1e-7)
    with pytest.raises(ValueError, match=r"by: 'h' is not a column of the data; its columns are \[.*'g'"):
        hbstan.avg_slopes(gauss, "x", by="h")


@pytest.mark.cmdstan
def test_avg_comparisons_of_a_binary_predictor_in_a_logistic_model(logit, data) -> None:
    b0, bx, bt, r = (_draws(logit, n) for n in ("Intercept", "x", "treat", "1|g"))
    labels = list(logit.posterior["g"].values)
    j = np.array([labels.index(g) for g in data["g"]])
    x = data["x"].to_numpy()
    base = b0[:, None] + bx[:, None] * x[None, :] + r[:, j]  # (draws, rows)
    diff = inv_logit(base + bt[:, None]) - inv_logit(base)  # treat = 1 minus treat = 0, per row and draw
    res = hbstan.avg_comparisons(logit, "treat")
    assert res[["term", "contrast"]].values.tolist() == [["treat", "1 - 0"]]
    assert res["estimate"].iloc[0] == pytest.approx(diff.mean(), rel=1e-10)
    per_draw = diff.mean(axis=1)
    lo, hi = _interval(per_draw)
    assert res["std_error"].iloc[0] == pytest.approx(per_draw.std(ddof=1), rel=1e-8)
    assert (res["lower"].iloc[0], res["upper"].iloc[0]) == pytest.approx((lo, hi), rel=1e-9)
    assert res["lower"].iloc[0] > 0  # the simulated effect (1.2 on the log-odds scale) is clear
    # per group of rows
    by = hbstan.avg_comparisons(logit, "treat", contrast=(0, 1), by="g")
    assert by["g"].tolist() == GROUPS
    for g, est in zip(by["g"], by["estimate"], strict=True):
        assert est == pytest.approx(diff[:, (data["g"] == g).to_numpy()].mean(), rel=1e-10)
    # without the group effects, and on the link scale (the coefficient itself)
    pop = hbstan.avg_comparisons(logit, "treat", re_formula=None)
    base0 = b0[:, None] + bx[:, None] * x[None, :]
    assert pop["estimate"].iloc[0] == pytest.approx((inv_logit(base0 + bt[:, None]) - inv_logit(base0)).mean(), rel=1e-10)
    link = hbstan.avg_comparisons(logit, "treat", kind="link")
    assert link["estimate"].iloc[0] == pytest.approx(bt.mean(), rel=1e-10)


@pytest.mark.cmdstan
def test_avg_slopes_of_a_logistic_model_is_the_derivative_by_hand(logit, data) -> None:
    b0, bx, bt, r = (_draws(logit, n) for n in ("Intercept", "x", "treat", "1|g"))
    labels = list(logit.posterior["g"].values)
    j = np.array([labels.index(g) for g in data["g"]])
    p = inv_logit(b0[:, None] + bx[:, None] * data["x"].to_numpy()[None, :] + bt[:, None] * data["treat"].to_numpy() + r[:, j])
    derivative = (bx[:, None] * p * (1 - p)).mean(axis=1)  # d p / d x = b_x p (1 - p), per draw
    res = hbstan.avg_slopes(logit, "x")
    assert res["estimate"].iloc[0] == pytest.approx(derivative.mean(), rel=1e-6)
    lo, hi = _interval(derivative)
    assert (res["lower"].iloc[0], res["upper"].iloc[0]) == pytest.approx((lo, hi), rel=1e-5)


@pytest.mark.cmdstan
def test_errors_name_the_column_and_the_valid_ones(logit) -> None:
    for call in (
        lambda: hbstan.avg_comparisons(logit, "dose"),
        lambda: hbstan.avg_slopes(logit, "dose"),
        lambda: plots.plot_conditional(logit, "dose"),
        lambda: plots.plot_conditional(logit, "x", by="dose"),
        lambda: logit.predictions(grid="dose"),
    ):
        with pytest.raises(ValueError, match=r"'dose' is not a column the model .* \['x', 'treat', 'g'\]"):
            call()
    with pytest.raises(ValueError, match="must be a pair of levels"):
        hbstan.avg_comparisons(logit, "g", contrast=1)
    df = _data()
    m = hbstan.Model("yb ~ x + c", df, family="bernoulli")
    with pytest.raises(ValueError, match=r"avg_slopes needs a numeric column; 'c'.*use avg_comparisons"):
        hbstan.avg_slopes(hbstan.Fit(m, logit.idata, run_dir=None, settings={}), "c")


# --------------------------------------------------------------------------- plot
@pytest.mark.cmdstan
def test_conditional_plot_numeric_x_one_line_and_ribbon_per_level(gauss, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    before = plt.get_fignums()
    fig = plots.plot_conditional(gauss, "x", by="g", points=True, save=tmp_path / "ce.png")
    assert (tmp_path / "ce.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == before  # drawn without pyplot
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == GROUPS
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == len(GROUPS)  # the ribbons
    assert [t.get_text() for t in ax.get_legend().get_texts()] == GROUPS
    assert ax.get_legend().get_title().get_text() == "g"
    assert ax.get_xlabel() == "x" and ax.get_ylabel().startswith("y")
    table = fig.conditional_effects
    assert len(table) == 50 * len(GROUPS)
    a = table[table["g"] == "a"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), a["estimate"])  # each line is its group's predictions
    # one curve at the population level, drawn into a given Axes
    fig2 = plots.new_figure()
    ax2 = fig2.subplots()
    assert plots.plot_conditional(gauss, "x", ax=ax2) is fig2
    assert len(ax2.lines) == 1 and ax2.get_legend() is None


@pytest.mark.cmdstan
def test_conditional_plot_categorical_x_points_with_error_bars(logit) -> None:
    fig = plots.plot_conditional(logit, "treat", by="g")
    ax = fig.axes[0]
    bars = ax.containers
    assert len(bars) == len(GROUPS)
    assert [b.get_label() for b in bars] == GROUPS
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    table = fig.conditional_effects
    assert len(table) == 2 * len(GROUPS)
    assert ((table["estimate"] > 0) & (table["estimate"] < 1)).all()  # probabilities
    # a numeric by: three curves at its mean and mean +/- SD
    fig3 = plots.plot_conditional(logit, "treat", by="x")
    labels = [b.get_label() for b in fig3.axes[0].containers]
    assert len(labels) == 3 and labels[1].endswith("(mean)")


@pytest.mark.cmdstan
def test_averages_taken_in_chunks_of_rows_are_the_same(logit, data, monkeypatch) -> None:
    """Rows are averaged in chunks to bound memory; chunks of 7 rows give the one-chunk result,
    and new groups get the same drawn effects at both ends of a comparison."""
    from hbstan import effects

    whole = hbstan.avg_comparisons(logit, "x", by="g")
    S = logit.posterior.sizes["chain"] * logit.posterior.sizes["draw"]
    monkeypatch.setattr(effects, "CHUNK_VALUES", 7 * S)
    chunked = hbstan.avg_comparisons(logit, "x", by="g")
    pd.testing.assert_frame_equal(whole, chunked, rtol=1e-12)
    new = data.assign(g="unseen")  # every row in one group not seen in fitting
    link = hbstan.avg_comparisons(logit, "treat", kind="link", data=new)
    assert link["estimate"].iloc[0] == pytest.approx(_draws(logit, "treat").mean(), rel=1e-10)
