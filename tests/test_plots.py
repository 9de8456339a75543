"""Plot helpers (hbstan.plots): PNGs written, no pyplot state, shrinkage values exact.

Most tests build a Fit from a real Model and a hand-made posterior (no sampling), so the
values the shrinkage plot draws can be checked against numbers computed by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan import plots
from hbstan.fit import Fit
from hbstan.idata import OBS_DIM

C, D = 2, 50  # chains, draws of the synthetic posteriors


def _png_ok(path: Path) -> None:
    assert path.is_file(), path
    assert path.stat().st_size > 1000, path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fake_fit(model: hbstan.Model, post: dict[str, np.ndarray], rng: np.random.Generator) -> Fit:
    """A Fit holding the given posterior (plus y_rep, log_lik, observed data and sample stats)."""
    import arviz as az

    d = model.design
    dims = {p.name: list(p.dims) for p in model.params if p.dims}
    coords: dict[str, list[str]] = {}
    for p in model.params:
        coords.update(p.coords or {})
    coords[OBS_DIM] = list(range(d.N))
    resp = d.response
    y_rep = d.y[None, None, :] + rng.normal(0, 1, (C, D, d.N))
    if model.family.integer_response:
        y_rep = rng.integers(0, 2, (C, D, d.N)).astype(float)
    idata = az.from_dict(
        posterior=post,
        posterior_predictive={resp: y_rep},
        log_likelihood={"log_lik": -np.abs(rng.normal(size=(C, D, d.N)))},
        observed_data={resp: d.y},
        sample_stats={"diverging": np.zeros((C, D), bool), "tree_depth": np.full((C, D), 3), "energy": rng.normal(size=(C, D))},
        coords=coords,
        dims={**dims, "log_lik": [OBS_DIM], resp: [OBS_DIM]},
    )
    return Fit(model, idata, run_dir=None, settings={"chains": C, "draws": D})


@pytest.fixture()
def grouped(rng: np.random.Generator) -> tuple[hbstan.Model, pd.DataFrame]:
    sizes = {"a": 2, "b": 5, "c": 20}
    df = pd.DataFrame(
        {"g": np.repeat(list(sizes), list(sizes.values())), "x": rng.normal(size=27)}
    )
    df["y"] = df["g"].map({"a": 3.0, "b": 0.0, "c": -1.0}) + rng.normal(0, 1, len(df))
    return hbstan.Model("y ~ x + (1 | g)", df), df


def _posterior(rng: np.random.Generator, J: int = 3) -> dict[str, np.ndarray]:
    return {
        "Intercept": rng.normal(0.5, 0.1, (C, D)),
        "x": rng.normal(0.2, 0.1, (C, D)),
        "sigma": np.abs(rng.normal(1, 0.1, (C, D))),
        "1|g": rng.normal([1.0, -0.2, -1.1], 0.1, (C, D, J)),
        "1|g_sigma": np.abs(rng.normal(1, 0.1, (C, D))),
    }


# --------------------------------------------------------------------------- shrinkage
def test_shrinkage_table_gaussian_values(grouped, rng) -> None:
    model, df = grouped
    post = _posterior(rng)
    fit = _fake_fit(model, post, rng)
    table = plots.shrinkage_table(fit)
    assert list(table.index) == ["a", "b", "c"] and table.index.name == "g"
    assert table["n"].tolist() == [2, 5, 20]
    np.testing.assert_allclose(table["no_pooling"], df.groupby("g")["y"].mean().to_numpy())
    expected = (post["Intercept"][..., None] + post["1|g"]).reshape(-1, 3)
    np.testing.assert_allclose(table["partial_pooling"], expected.mean(0))
    np.testing.assert_allclose(table["partial_pooling_sd"], expected.std(0, ddof=1))
    pop = post["Intercept"].mean()
    np.testing.assert_allclose(table["population"], pop)
    np.testing.assert_allclose(
        table["shrinkage"], (table["no_pooling"] - table["partial_pooling"]) / (table["no_pooling"] - pop)
    )


def test_shrinkage_plot_draws_the_table(grouped, rng, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    model, _ = grouped
    fit = _fake_fit(model, _posterior(rng), rng)
    before = plt.get_fignums()
    fig = plots.plot_shrinkage(fit, jitter=0, pooled=0.25, save=tmp_path / "sub" / "shrink.png")
    _png_ok(tmp_path / "sub" / "shrink.png")
    assert plt.get_fignums() == before  # no pyplot figure left open
    table = fig.shrinkage_table
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    offsets = [c.get_offsets() for c in ax.collections if hasattr(c, "get_offsets") and len(c.get_offsets()) == 3]
    # the no-pooling points, then the partial-pooling points, at x = group size
    no_pool, partial = offsets[-2], offsets[-1]
    np.testing.assert_allclose(no_pool[:, 0], table["n"])
    np.testing.assert_allclose(no_pool[:, 1], table["no_pooling"])
    np.testing.assert_allclose(partial[:, 1], table["partial_pooling"])
    lines = {round(float(line.get_ydata()[0]), 6) for line in ax.lines}
    assert round(float(table["population"].iloc[0]), 6) in lines and 0.25 in lines


def test_shrinkage_with_group_predictor(rng) -> None:
    df = pd.DataFrame({"g": np.repeat(["a", "b", "c"], 4), "u": np.repeat([-1.0, 0.0, 2.0], 4)})
    df["y"] = rng.normal(size=len(df))
    model = hbstan.Model("y ~ 1 + (1 | g)", df, group_predictors={"g": ["u"]})
    post = {
        "Intercept": np.full((C, D), 1.0),
        "sigma": np.ones((C, D)),
        "1|g": np.zeros((C, D, 3)) + np.array([0.1, 0.0, -0.1]),
        "1|g_sigma": np.ones((C, D)),
        "u": np.full((C, D), 0.5),
    }
    fit = _fake_fit(model, post, rng)
    table = plots.shrinkage_table(fit)
    np.testing.assert_allclose(table["partial_pooling"], [1 + 0.1 - 0.5, 1.0, 1 - 0.1 + 1.0])
    np.testing.assert_allclose(table["population"], 1 + 0.5 * np.mean([-1.0, 0.0, 2.0]))


def test_shrinkage_bernoulli_uses_empirical_logit(rng) -> None:
    df = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 6, "y": [1, 1, 1, 0] + [0] * 6})
    model = hbstan.Model("y ~ 1 + (1 | g)", df, family="bernoulli")
    post = {"Intercept": np.zeros((C, D)), "1|g": np.zeros((C, D, 2)), "1|g_sigma": np.ones((C, D))}
    table = plots.shrinkage_table(_fake_fit(model, post, rng))
    np.testing.assert_allclose(table["no_pooling"], [np.log(3.5 / 1.5), np.log(0.5 / 6.5)])
    fig = plots.plot_shrinkage(_fake_fit(model, post, rng))
    assert "logit" in fig.axes[0].get_ylabel()


def test_shrinkage_no_pooling_sources(grouped, rng) -> None:
    model, df = grouped
    fit = _fake_fit(model, _posterior(rng), rng)
    given = {"a": 1.0, "b": 2.0, "c": 3.0}
    np.testing.assert_allclose(plots.shrinkage_table(fit, no_pooling=given)["no_pooling"], [1, 2, 3])
    unpooled = hbstan.Model("y ~ x + (1 | g)", df, pooling="unpooled")
    r = rng.normal([2.0, 0.1, -0.9], 0.1, (C, D, 3))
    ufit = _fake_fit(unpooled, {"x": rng.normal(size=(C, D)), "sigma": np.ones((C, D)), "1|g": r}, rng)
    np.testing.assert_allclose(plots.shrinkage_table(fit, no_pooling=ufit)["no_pooling"], r.reshape(-1, 3).mean(0))
    assert np.isnan(plots.shrinkage_table(ufit)["population"]).all()  # unpooled: no population
    with pytest.raises(ValueError, match="no estimate for g level"):
        plots.shrinkage_table(fit, no_pooling={"a": 1.0})
    with pytest.raises(TypeError, match="no_pooling must be"):
        plots.shrinkage_table(fit, no_pooling=[1, 2, 3])


def test_shrinkage_errors_teach(grouped, rng) -> None:
    model, df = grouped
    pooled = hbstan.Model("y ~ x + (1 | g)", df, pooling="pooled")
    fit = _fake_fit(pooled, {"Intercept": np.zeros((C, D)), "x": np.zeros((C, D)), "sigma": np.ones((C, D))}, rng)
    with pytest.raises(ValueError, match=r"varying intercept such as \(1 \| group\)"):
        plots.plot_shrinkage(fit)
    hier = _fake_fit(model, _posterior(rng), rng)
    with pytest.raises(ValueError, match="'county' is not a grouping factor.*'g'"):
        plots.plot_shrinkage(hier, group="county")
    with pytest.raises(TypeError, match="needs an hbstan Fit"):
        plots.plot_shrinkage(hier.idata)


# --------------------------------------------------------------------------- trace, forest, ppc
def test_trace_forest_ppc_write_pngs(grouped, rng, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    model, _ = grouped
    fit = _fake_fit(model, _posterior(rng), rng)
    before = plt.get_fignums()
    fig = plots.plot_trace(fit, save=tmp_path / "trace.png")
    _png_ok(tmp_path / "trace.png")
    assert len(fig.axes) == 2 * len(plots.headline_vars(fit))  # group effects left out
    assert plots.headline_vars(fit) == ["Intercept", "x", "sigma", "1|g_sigma"]
    plots.plot_trace(fit, ["1|g"], save=tmp_path / "trace_g.png")
    _png_ok(tmp_path / "trace_g.png")
    plots.plot_forest(fit, save=tmp_path / "forest.png")
    _png_ok(tmp_path / "forest.png")
    other = _fake_fit(model, _posterior(rng), rng)
    fig = plots.plot_forest({"one": fit, "two": other}, var_names=["1|g"], save=tmp_path / "forest2.png")
    _png_ok(tmp_path / "forest2.png")
    plots.plot_ppc(fit, save=tmp_path / "ppc.png")
    _png_ok(tmp_path / "ppc.png")
    assert plt.get_fignums() == before


def test_ppc_discrete_and_errors(rng, tmp_path: Path) -> None:
    df = pd.DataFrame({"y": rng.integers(0, 2, 30), "x": rng.normal(size=30)})
    model = hbstan.Model("y ~ x", df, family="bernoulli")
    fit = _fake_fit(model, {"Intercept": rng.normal(size=(C, D)), "x": rng.normal(size=(C, D))}, rng)
    plots.plot_ppc(fit, save=tmp_path / "ppc_bin.png")
    _png_ok(tmp_path / "ppc_bin.png")
    with pytest.raises(ValueError, match=r"\['nope'\] not in the posterior"):
        plots.plot_trace(fit, ["nope"])
    with pytest.raises(ValueError, match="no file extension"):
        plots.plot_trace(fit, save=tmp_path / "trace")
    bare = Fit(model, fit.idata.copy(), run_dir=None, settings={})
    del bare.idata.posterior_predictive
    plots.plot_ppc(bare)  # a fit without replicated data gets them from its draws
    assert bare.idata.posterior_predictive["y"].shape == (C, D, len(df))
    del bare.idata.observed_data
    with pytest.raises(ValueError, match="observed data"):
        plots.plot_ppc(bare)


def test_draw_into_given_axes(grouped, rng) -> None:
    model, _ = grouped
    fit = _fake_fit(model, _posterior(rng), rng)
    fig = plots.new_figure((10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    assert plots.plot_shrinkage(fit, ax=ax1) is fig
    assert plots.plot_forest(fit, ax=ax2) is fig


# --------------------------------------------------------------------------- with CmdStan
@pytest.mark.cmdstan
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")
def test_plots_of_a_real_fit(radon: pd.DataFrame, tmp_path: Path) -> None:
    df = radon.iloc[:250]
    fit = hbstan.Model("log_radon ~ floor + (1 | county)", df).sample(chains=2, draws=100, warmup=100, seed=3)
    for name, fn in [("trace", plots.plot_trace), ("forest", plots.plot_forest), ("ppc", plots.plot_ppc),
                     ("shrinkage", plots.plot_shrinkage)]:
        fn(fit, save=tmp_path / f"{name}.png")
        _png_ok(tmp_path / f"{name}.png")
    table = plots.shrinkage_table(fit)
    assert table["n"].sum() == len(df)
    # partial pooling lies between the county's own mean and the population mean, on average
    small = table[table["n"] <= 3]
    assert (small["shrinkage"].median() > 0.2) and (table["partial_pooling"].std() < table["no_pooling"].std())
