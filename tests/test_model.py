"""Formula reading, design, priors and Stan data (no CmdStan needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.design import parse_formula

from .test_render import toy


def test_formula_meanings() -> None:
    df = toy()
    assert hbstan.Model("y ~ x", data=df).design.blocks == []
    (b,) = hbstan.Model("y ~ x + (1 | g)", data=df).design.blocks
    assert (b.pooling, b.M) == ("hierarchical", 1)
    (b,) = hbstan.Model("y ~ x + (1 + x || g)", data=df).design.blocks
    assert (b.pooling, b.M) == ("hierarchical", 2)
    (b,) = hbstan.Model("y ~ x + (1 + x | g)", data=df).design.blocks
    assert (b.pooling, b.M) == ("correlated", 2)
    m = hbstan.Model("y ~ x + (1 | g) + (1 | h)", data=df)
    assert [b.factor for b in m.design.blocks] == ["g", "h"]
    m = hbstan.Model("y ~ x + (1 | g/h)", data=df)
    assert [b.factor for b in m.design.blocks] == ["g", "g:h"]
    assert m.design.blocks[1].levels[0].count(":") == 1


def test_pooling_overrides() -> None:
    df = toy()
    m = hbstan.Model("y ~ x + (1 + x | g)", data=df, pooling="pooled")
    assert m.design.blocks == [] and m.design.has_intercept
    m = hbstan.Model("y ~ x + (1 + x | g)", data=df, pooling="hierarchical")
    assert m.design.blocks[0].pooling == "hierarchical"
    m = hbstan.Model("y ~ x + (1 + x | g)", data=df, pooling="unpooled")
    # unpooled effects replace the global intercept and slope
    assert not m.design.has_intercept and m.design.K == 0
    assert "Intercept" not in m.priors and "1|g" in m.priors and "1|g_sigma" not in m.priors


def test_trials_in_formula() -> None:
    p = parse_formula("succ | trials(n) ~ x + (1 | g)")
    assert (p.response, p.trials, p.common) == ("succ", "n", "x")
    m = hbstan.Model("yc | trials(n) ~ x", data=toy(), family="binomial")
    assert np.array_equal(m.stan_data["trials"], toy()["n"].to_numpy())


def test_categorical_coding_like_r_and_bambi() -> None:
    m = hbstan.Model("y ~ x + cat + (1 | g)", data=toy())
    names = {p.name: p for p in m.params}
    assert names["cat"].coords == {"cat_dim": ["b", "c"]}  # treatment coding, 'a' is the reference
    assert m.design.K == 3
    assert set(m.priors) >= {"cat[b]", "cat[c]"}


def test_default_priors_scale_with_data() -> None:
    df = toy()
    m1 = hbstan.Model("y ~ x", data=df)
    df2 = df.assign(y=df["y"] * 100)
    m2 = hbstan.Model("y ~ x", data=df2)
    assert m2.priors["x"].sigma == pytest.approx(100 * m1.priors["x"].sigma)
    assert m2.priors["sigma"].lam == pytest.approx(m1.priors["sigma"].lam / 100)
    mb = hbstan.Model("yb ~ x", data=df, family="bernoulli")
    assert mb.priors["Intercept"] == hbstan.Normal(0, 2.5)


def test_prior_overrides_by_class_and_name() -> None:
    df = toy()
    m = hbstan.Model(
        "y ~ x + z + (1 + x | g)",
        data=df,
        priors={"b": hbstan.Normal(0, 3), "z": hbstan.Normal(1, 2), "sd": hbstan.HalfCauchy(5),
                "g_corr": hbstan.LKJ(4), "Intercept": hbstan.Normal(0, 10)},
    )
    assert m.priors["x"] == hbstan.Normal(0, 3) and m.priors["z"] == hbstan.Normal(1, 2)
    assert m.priors["1|g_sigma"] == hbstan.HalfCauchy(5) == m.priors["x|g_sigma"]
    d = m.stan_data
    assert list(d["prior_b_loc"]) == [0, 1] and list(d["prior_b_scale"]) == [3, 2]
    assert d["prior_L_1_eta"] == 4
    assert "cauchy_lpdf(sd_1 | 0, prior_sd_1_scale)" in m.stan_code
    table = m.prior_table()
    assert not table.set_index("name").loc["z", "default"]


def test_prior_objects_validate() -> None:
    with pytest.raises(ValueError, match="sigma must be a positive"):
        hbstan.Normal(0, -1)
    with pytest.raises(ValueError, match="eta must be a positive"):
        hbstan.LKJ(0)
    with pytest.raises(ValueError, match="must be finite"):
        hbstan.Normal(float("nan"), 1)
    assert str(hbstan.HalfNormal(2)) == "HalfNormal(scale=2)"


def test_prior_errors_name_the_valid_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown prior name 'slope'; valid names .*'x'"):
        hbstan.Model("y ~ x", data=toy(), priors={"slope": hbstan.Normal(0, 1)})
    with pytest.raises(ValueError, match="must be an LKJ prior"):
        hbstan.Model("y ~ x + (1 + x | g)", data=toy(), priors={"g_corr": hbstan.Normal(0, 1)})
    with pytest.raises(ValueError, match="share one family"):
        hbstan.Model("y ~ x + z", data=toy(), priors={"z": hbstan.StudentT(3, 0, 1)}).stan_code


def test_known_sigma_is_data() -> None:
    m = hbstan.Model("y ~ 1", data=toy(), sigma=2.0, priors={"Intercept": hbstan.Normal(0, 10)})
    assert m.stan_data["sigma"] == 2.0
    assert "real<lower=0> sigma;  // known residual SD" in m.stan_code
    assert "sigma" not in m.priors


def test_stan_data_uses_one_based_group_indices() -> None:
    df = toy()
    m = hbstan.Model("y ~ x + (1 | g)", data=df)
    g = m.stan_data["g_1"]
    assert g.min() == 1 and g.max() == df["g"].nunique()
    levels = m.design.blocks[0].levels
    assert [levels[i - 1] for i in g] == list(df["g"])


def test_group_predictor_must_be_constant_within_group() -> None:
    df = toy()
    with pytest.raises(hbstan.DataError, match="'z' is not constant within g"):
        hbstan.Model("y ~ x + (1 | g)", data=df, group_predictors={"g": ["z"]})
    with pytest.raises(hbstan.FormulaError, match="not 'unpooled'"):
        hbstan.Model("y ~ x + (1 | g)", data=df, pooling="unpooled", group_predictors={"g": ["u"]})
