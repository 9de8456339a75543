"""compare_pooling: which designs are fitted with which options, the LOO table, the report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan import pooling
from hbstan.design import FormulaError

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"chains": 2, "draws": 150, "warmup": 150, "seed": 11}


@pytest.fixture()
def df(rng: np.random.Generator) -> pd.DataFrame:
    g = np.repeat(["a", "b", "c", "d"], [3, 6, 12, 20])
    d = pd.DataFrame({"g": g, "x": rng.normal(size=g.size), "u": pd.Series(g).map({"a": -1.0, "b": 0.0, "c": 0.5, "d": 1.5})})
    d["y"] = pd.Series(g).map({"a": 1.0, "b": 0.0, "c": -1.0, "d": 0.5}) + 0.3 * d["x"] + rng.normal(0, 0.5, g.size)
    return d


# --------------------------------------------------------------------------- without CmdStan
def test_formula_without_group_term_is_refused(df: pd.DataFrame) -> None:
    with pytest.raises(FormulaError, match=r"needs a formula with a varying term such as \(1 \| group\)"):
        pooling.compare_pooling("y ~ x", df)


def test_pooling_argument_and_bad_designs(df: pd.DataFrame) -> None:
    with pytest.raises(FormulaError, match="drop pooling="):
        pooling.compare_pooling("y ~ x + (1 | g)", df, pooling="hierarchical")
    with pytest.raises(ValueError, match=r"unknown design\(s\) \['partial'\]"):
        pooling.compare_pooling("y ~ x + (1 | g)", df, designs=["pooled", "partial"])
    with pytest.raises(ValueError, match="at least two different designs"):
        pooling.compare_pooling("y ~ x + (1 | g)", df, designs=["pooled", "pooled"])


def test_kwargs_are_split_between_model_and_sampler() -> None:
    model_kw, sample_kw = pooling._split_kwargs(
        {"group_predictors": {"g": ["u"]}, "priors": {}, "sigma": 1.0, "chains": 2, "draws": 10, "adapt_delta": 0.9}
    )
    assert set(model_kw) == {"group_predictors", "priors", "sigma"}
    assert set(sample_kw) == {"chains", "draws", "adapt_delta"}


def test_designs_get_the_options_that_apply(df: pd.DataFrame) -> None:
    kw = {"group_predictors": {"g": ["u"]}, "priors": {"1|g_sigma": hbstan.HalfNormal(0.5), "x": hbstan.Normal(0, 1)}}
    pooled = pooling._build("y ~ x + (1 | g)", df, "gaussian", "pooled", kw)
    unpooled = pooling._build("y ~ x + (1 | g)", df, "gaussian", "unpooled", kw)
    hier = pooling._build("y ~ x + (1 | g)", df, "gaussian", "hierarchical", kw)
    assert pooled.design.blocks == [] and str(pooled.priors["x"]) == str(hbstan.Normal(0, 1))
    assert unpooled.design.blocks[0].pooling == "unpooled" and unpooled.design.blocks[0].U is None
    assert hier.design.blocks[0].U is not None
    assert str(hier.priors["1|g_sigma"]) == str(hbstan.HalfNormal(0.5))


# --------------------------------------------------------------------------- with CmdStan
@pytest.fixture(scope="module")
def result(radon: pd.DataFrame) -> pooling.PoolingComparison:
    """The four designs of a varying-slope radon model on 20 counties (short chains)."""
    import warnings

    df = radon[radon["county"].isin(sorted(radon["county"].unique())[:20])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: R-hat/ESS warnings expected
        return pooling.compare_pooling("log_radon ~ floor + (1 + floor | county)", df, **SMALL)


@pytest.mark.cmdstan
def test_compare_pooling_fits_every_design(result: pooling.PoolingComparison) -> None:
    assert list(result.fits) == ["pooled", "unpooled", "hierarchical", "correlated"]  # varying slope: + correlated
    assert set(result.loo.index) == set(result.fits)
    assert {"elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight"} <= set(result.loo.columns)
    assert result.best == result.loo.index[0]
    assert result.loo["elpd_diff"].iloc[0] == 0
    assert "county_corr" in result.fits["correlated"].idata.posterior
    assert "1|county_sigma" not in result.fits["unpooled"].idata.posterior
    assert "Intercept" not in result.fits["unpooled"].idata.posterior  # absorbed into the group effects
    table = result.table()
    assert list(table.index) == list(result.loo.index)
    assert (table["pareto_k_bad"] >= 0).all() and (table["divergences"] >= 0).all()
    # partial pooling predicts better than complete pooling on the radon data
    assert result.loo.loc["hierarchical", "elpd_loo"] > result.loo.loc["pooled", "elpd_loo"]


@pytest.mark.cmdstan
def test_compare_pooling_report_and_plot(result: pooling.PoolingComparison, tmp_path: Path) -> None:
    md = result.to_markdown()
    assert md.startswith("**Pooling comparison** of `log_radon ~ floor + (1 + floor | county)`")
    assert "| design | elpd_loo | se | elpd_diff | dse |" in md
    for design in result.fits:
        assert f"| {design} |" in md
    assert "Best by LOO: " in md and "1\\|county_sigma" in md
    est = result.estimates()
    assert est.loc["floor", "pooled"] and est.loc["1|county_sigma", "pooled"] == ""
    assert str(result) == md and "best by LOO" in repr(result)
    fig = result.plot(save=tmp_path / "pooling.png")
    assert (tmp_path / "pooling.png").stat().st_size > 5000
    assert len(fig.axes) == 2 and fig.axes[1].get_xscale() == "log"


@pytest.mark.cmdstan
def test_compare_pooling_cli(radon: pd.DataFrame, tmp_path: Path) -> None:
    csv = tmp_path / "radon.csv"
    radon.iloc[:200].to_csv(csv, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'formula = "log_radon ~ floor + (1 | county)"\ndata = "{csv}"\n'
        "[sampler]\nchains = 2\ndraws = 100\nwarmup = 100\nseed = 5\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.run([sys.executable, "-m", "hbstan", "compare-pooling", "--spec", str(spec)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "**Pooling comparison**" in proc.stdout and "| hierarchical |" in proc.stdout
