"""Rendered programs: golden files, stanc accepts every variant of the option grid, and no
user string ever reaches the Stan code."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hbstan

GOLDEN = Path(__file__).parent / "golden"


def toy(seed: int = 0, J: int = 6, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "cat": rng.choice(["a", "b", "c"], n),
            "g": [f"g{j}" for j in g],
            "h": rng.choice(["h1", "h2", "h3"], n),
            "n": rng.integers(3, 9, n),
            "t": rng.uniform(1, 2, n),
        }
    )
    df["u"] = (np.arange(J) * 0.3)[g]
    df["y"] = rng.normal(size=n)
    df["yb"] = rng.integers(0, 2, n)
    df["yc"] = rng.integers(0, 3, n)
    return df


GOLDEN_MODELS = {
    "pooled_gaussian": dict(formula="y ~ x + cat"),
    "hierarchical_gaussian_gp": dict(formula="y ~ x + (1 | g)", group_predictors={"g": ["u"]}),
    "correlated_gaussian": dict(formula="y ~ x + (1 + x | g)"),
    "unpooled_bernoulli": dict(formula="yb ~ x + (1 | g)", family="bernoulli", pooling="unpooled"),
    "crossed_poisson_centered": dict(
        formula="yc ~ x + (1 | g) + (1 | h)", family="poisson", exposure="t", centered=True
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_MODELS))
def test_golden(name: str) -> None:
    kw = dict(GOLDEN_MODELS[name])
    code = hbstan.Model(kw.pop("formula"), data=toy(), **kw).stan_code
    path = GOLDEN / f"{name}.stan"
    if os.environ.get("HBSTAN_UPDATE_GOLDEN"):
        path.write_text(code)
    assert path.is_file(), f"missing golden file {path}; run with HBSTAN_UPDATE_GOLDEN=1"
    assert code == path.read_text(), f"{name}: rendered program differs from {path}"


def grid():
    """Every structural option: family x pooling x parameterization x group predictors x ..."""
    fams = {
        "gaussian": ("y", {}),
        "bernoulli": ("yb", {}),
        "binomial": ("yc | trials(n)", {}),
        "poisson": ("yc", {"exposure": "t"}),
    }
    for family, pooling, centered, gp, slope in itertools.product(
        fams, ["pooled", "unpooled", "hierarchical", "correlated", None], [False, True], [False, True], [False, True]
    ):
        if gp and pooling in ("pooled", "unpooled"):
            continue
        lhs, kw = fams[family]
        terms = "(1 + x | g)" if slope else "(1 | g)"
        yield dict(
            formula=f"{lhs} ~ x + cat + {terms} + (1 | h)",
            family=family,
            pooling=pooling,
            centered=centered,
            group_predictors={"g": ["u"]} if gp else None,
            **kw,
        )
    yield dict(formula="y ~ 1", sigma=1.0)
    yield dict(formula="y ~ 0 + x + (0 + x | g)")
    yield dict(formula="y ~ x + (1 | g:h)")
    yield dict(formula="y ~ x + (1 + x || g)")
    yield dict(formula="y ~ x + (1 + x + z | g)", centered=True)


def _programs() -> dict[str, str]:
    df = toy()
    out = {}
    for kw in grid():
        kw = dict(kw)
        formula = kw.pop("formula")
        m = hbstan.Model(formula, data=df, **kw)
        variants = [m]
        if m.suff_stats:  # the same model with the row-by-row GLM likelihood
            variants.append(hbstan.Model(formula, data=df, suff_stats=False, **kw))
        for v in variants:
            out[v.stan_code] = f"{formula} {kw} suff={v.suff_stats}"
            out[v.program(threads=True)] = f"{formula} {kw} suff={v.suff_stats} threads"
    return out


def test_grid_has_many_distinct_programs() -> None:
    assert len(_programs()) >= 80


@pytest.mark.cmdstan
def test_every_variant_is_accepted_by_stanc(tmp_path: Path) -> None:
    stanc = Path(hbstan.find_cmdstan()) / "bin" / "stanc"
    failures = []
    for i, (code, desc) in enumerate(_programs().items()):
        f = tmp_path / f"m{i}.stan"
        f.write_text(code)
        res = subprocess.run([str(stanc), str(f), f"--o={tmp_path / f'm{i}.hpp'}"], capture_output=True, text=True)
        if res.returncode != 0:
            failures.append(f"{desc}:\n{res.stderr}")
    assert not failures, "\n\n".join(failures[:3])


HOSTILE = [
    "x}; target += 1e6; {",
    "{{ 7*7 }}",
    "{% raw %}",
    'quote"s',
    "it's",
    "with space",
    "ünïcödé_温度",
    "for",
    "model",
    "target",
    "lower=0",
    "// comment",
]


def test_hostile_labels_never_reach_the_program() -> None:
    rng = np.random.default_rng(1)
    n = 48
    df = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "grp": [HOSTILE[i % len(HOSTILE)] for i in range(n)]})
    m = hbstan.Model("y ~ x + (1 | grp)", data=df)
    code = m.stan_code
    plain = hbstan.Model("y ~ x + (1 | g)", data=toy()).stan_code
    assert code == plain
    for label in HOSTILE:
        if label not in plain:  # Stan keywords such as 'for' are in every program anyway
            assert label not in code
    assert sorted(m.design.blocks[0].levels) == sorted(HOSTILE)


def test_program_depends_on_structure_not_values() -> None:
    a = hbstan.Model("y ~ x + (1 | g)", data=toy(1), priors={"Intercept": hbstan.Normal(0, 10)})
    b = hbstan.Model("y ~ z + (1 | h)", data=toy(2, J=4, n=90), priors={"Intercept": hbstan.Normal(5, 1)})
    assert a.stan_code == b.stan_code
    assert a.stan_data["prior_Intercept_scale"] == 10.0 and b.stan_data["prior_Intercept_scale"] == 1.0
    c = hbstan.Model("y ~ x + (1 | g)", data=toy(1), priors={"Intercept": hbstan.StudentT(3, 0, 10)})
    assert c.stan_code != a.stan_code  # a new prior family is new structure


def test_program_is_readable() -> None:
    code = hbstan.Model("y ~ x + (1 + x | g)", data=toy()).stan_code
    for block in ["data {", "transformed data {", "parameters {", "model {", "generated quantities {"]:
        assert f"\n{block}" in code
    for block in ("data", "parameters"):
        body = code.split(f"\n{block} {{\n", 1)[1].split("\n}", 1)[0]
        decls = [ln for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("//")]
        assert decls and all("//" in ln for ln in decls), f"{block} declarations need comments"
    assert "lkj_corr_cholesky_lpdf" in code and "cholesky_factor_corr" in code
    assert "if (!prior_only)" in code


def test_sparse_linear_predictor_only_on_the_plain_rows() -> None:
    """Gamma, cumulative logit and zero-inflated Poisson programs compute the likelihood's linear
    predictor as one sparse product (2-3x cheaper gradients, benchmarks/results/grad_check.md);
    reduce_sum, weights, a formula for an auxiliary parameter, the probit link and the other
    families keep the sum of terms."""
    df = toy()
    df["ya"] = np.exp(df["y"])
    df["yo"] = df["yc"] + 1
    df["w"] = 1.0 + df["t"]

    def sparse(code: str) -> bool:
        return "csr_matrix_times_vector(N, P_W, w_W, v_W, u_W, theta)" in code

    for formula, kw in [
        ("ya ~ x + (1 + x | g) + (1 | h)", {"family": "gamma"}),
        ("yo ~ x + (1 | g)", {"family": "cumulative"}),
        ("yc ~ x + (1 | g)", {"family": "zero_inflated_poisson", "exposure": "t"}),
    ]:
        m = hbstan.Model(formula, data=df, **kw)
        assert sparse(m.stan_code), formula
        assert not sparse(m.program(threads=True)), formula
    for formula, kw in [
        ("ya | weights(w) ~ x + (1 | g)", {"family": "gamma"}),
        ("ya ~ x + (1 | g); shape ~ x", {"family": "gamma"}),
        ("yo ~ x + (1 | g)", {"family": "cumulative", "link": "probit"}),
        ("ya ~ x + (1 | g)", {"family": "lognormal"}),
        ("yc ~ x + (1 | g)", {"family": "poisson"}),
    ]:
        assert not sparse(hbstan.Model(formula, data=df, **kw).stan_code), formula
