"""Bad input is refused with an error that names the column, the offending rows and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan import DataError, FormulaError

from .test_render import toy


def with_(col: str, rows: list[int], value) -> pd.DataFrame:
    df = toy()
    df[col] = df[col].astype(object) if value is None or isinstance(value, str) else df[col].astype(float)
    for r in rows:
        df.loc[r, col] = value
    return df


def one_group() -> pd.DataFrame:
    df = toy()
    df["g"] = "only"
    return df


CASES = [
    # id, formula, data factory, kwargs, error type, message pattern
    ("nan-response", "y ~ x", lambda: with_("y", [3, 7], np.nan), {}, DataError, r"column 'y' has 2 missing .* rows \[3, 7\].*dropna=True"),
    ("inf-response", "y ~ x", lambda: with_("y", [5], np.inf), {}, DataError, r"column 'y' .*infinite.* rows \[5\]"),
    ("nan-predictor", "y ~ x", lambda: with_("x", [0], np.nan), {}, DataError, r"column 'x' .* rows \[0\]"),
    ("nan-group", "y ~ x + (1 | g)", lambda: with_("g", [9], None), {}, DataError, r"column 'g' .* rows \[9\]"),
    ("nan-group-predictor", "y ~ x + (1 | g)", lambda: with_("u", [2], np.nan), {"group_predictors": {"g": ["u"]}}, DataError, r"column 'u' .* rows \[2\]"),
    ("mixed-types", "y ~ x", lambda: with_("x", [4], "four"), {}, DataError, r"column 'x' mixes value types .*rows \[4\]"),
    ("numbers-as-text", "y ~ x", lambda: toy().assign(x=lambda d: d["x"].astype(str)), {}, DataError, r"column 'x' holds numbers stored as text.*pd.to_numeric"),
    ("dates", "y ~ when", lambda: toy().assign(when=pd.date_range("2020-01-01", periods=60)), {}, DataError, r"column 'when' holds dates"),
    ("bernoulli-2", "yb ~ x", lambda: with_("yb", [1], 2), {"family": "bernoulli"}, DataError, r"response 'yb' must be 0 or 1 .* rows \[1\]"),
    ("bernoulli-half", "y ~ x", toy, {"family": "bernoulli"}, DataError, r"response 'y' must be 0 or 1"),
    ("negative-count", "yc ~ x", lambda: with_("yc", [6], -1), {"family": "poisson"}, DataError, r"response 'yc' must hold non-negative whole numbers .* rows \[6\]"),
    ("fractional-count", "yc ~ x", lambda: with_("yc", [8], 1.5), {"family": "poisson"}, DataError, r"non-negative whole numbers .* rows \[8\]"),
    ("successes-over-trials", "yc | trials(n) ~ x", lambda: with_("yc", [10], 99), {"family": "binomial"}, DataError, r"exceeds the number of trials in rows \[10\]"),
    ("negative-trials", "yc | trials(n) ~ x", lambda: with_("n", [11], -2), {"family": "binomial"}, DataError, r"trials must be non-negative whole numbers; rows \[11\]"),
    ("no-trials", "yc ~ x", toy, {"family": "binomial"}, ValueError, r"needs the number of trials: write 'successes \| trials\(n\)"),
    ("trials-not-binomial", "yc | trials(n) ~ x", toy, {"family": "poisson"}, FormulaError, r"trials\(\) in the response needs family='binomial'"),
    ("empty-data", "y ~ x", lambda: toy().iloc[:0], {}, DataError, r"data has no rows"),
    ("not-a-dataframe", "y ~ x", lambda: {"y": [1, 2]}, {}, DataError, r"data must be a pandas DataFrame, got dict"),
    ("unknown-column", "y ~ xx", toy, {}, DataError, r"column 'xx' named in the formula is not in the data; the data has columns"),
    ("unknown-group-column", "y ~ x + (1 | gg)", toy, {}, DataError, r"grouping column 'gg' .* not in the data"),
    ("unknown-group-predictor", "y ~ x + (1 | g)", toy, {"group_predictors": {"g": ["uu"]}}, DataError, r"group predictor column 'uu' is not in the data"),
    ("group-predictor-no-term", "y ~ x + (1 | g)", toy, {"group_predictors": {"h": ["u"]}}, FormulaError, r"names 'h', but the model has no varying intercept"),
    ("unbalanced-paren", "y ~ x + (1 | g", toy, {}, FormulaError, r"unbalanced '\(': a '\)' is missing at position"),
    ("stray-paren", "y ~ x) + z", toy, {}, FormulaError, r"unbalanced '\)'.* at position 5"),
    ("no-tilde", "y x", toy, {}, FormulaError, r"of the form 'response ~ predictors'"),
    ("empty-rhs", "y ~ ", toy, {}, FormulaError, r"nothing right of '~'"),
    ("double-plus", "y ~ x + + z", toy, {}, FormulaError, r"empty term"),
    ("bad-token", "y ~ x * * z", toy, {}, FormulaError, r"cannot parse the formula .* at position"),
    ("one-group", "y ~ x + (1 | g)", one_group, {}, DataError, r"'g' has a single group \('only'\).*pooling='pooled'"),
    ("constant-predictor", "y ~ x + k", lambda: toy().assign(k=3.0), {}, DataError, r"predictor 'k' is constant .*remove it"),
    ("collinear", "y ~ x + x2", lambda: toy().assign(x2=lambda d: 2 * d["x"] + 1), {}, DataError, r"perfectly collinear"),
    ("constant-response", "y ~ x", lambda: toy().assign(y=1.0), {}, DataError, r"response 'y' is constant"),
    ("unknown-prior", "y ~ x", toy, {"priors": {"slope": hbstan.Normal(0, 1)}}, ValueError, r"unknown prior name 'slope'; valid names"),
    ("prior-not-object", "y ~ x", toy, {"priors": {"x": (0, 1)}}, ValueError, r"must be an hbstan prior such as hbstan.Normal"),
    ("lkj-misplaced", "y ~ x", toy, {"priors": {"x": hbstan.LKJ(2)}}, ValueError, r"must be a prior other than LKJ"),
    ("unknown-family", "y ~ x", toy, {"family": "gausian"}, ValueError, r"unknown family 'gausian'; valid families: \['bernoulli'"),
    ("unknown-pooling", "y ~ x", toy, {"pooling": "partial"}, ValueError, r"unknown pooling 'partial'; valid values"),
    ("sigma-non-gaussian", "yb ~ x", toy, {"family": "bernoulli", "sigma": 1.0}, ValueError, r"only applies to family='gaussian'"),
    ("sigma-negative", "y ~ x", toy, {"sigma": -1.0}, ValueError, r"sigma must be a positive number"),
    ("nothing-to-estimate", "yb ~ 0", toy, {"family": "bernoulli"}, FormulaError, r"leaves nothing to estimate .* add an intercept"),
    ("exposure-zero", "yc ~ x", lambda: with_("t", [4], 0.0), {"family": "poisson", "exposure": "t"}, DataError, r"exposure must be positive; rows \[4\]"),
    ("group-predictor-varies", "y ~ x + (1 | g)", toy, {"group_predictors": {"g": ["x"]}}, DataError, r"'x' is not constant within g"),
    ("categorical-response", "cat ~ x", toy, {}, DataError, r"response 'cat' must be a single numeric column"),
    ("negative-weights", "y | weights(w) ~ x", lambda: toy().assign(w=1.0).pipe(lambda d: d.assign(w=np.where(d.index.isin([2, 9]), -0.5, 1.0))), {}, DataError, r"weights column 'w' must hold non-negative weights; rows \[2, 9\] have \[-0.5, -0.5\]"),
    ("missing-weights", "y | weights(w) ~ x", lambda: toy().assign(w=1.0).pipe(lambda d: d.assign(w=d["w"].where(d.index != 4))), {}, DataError, r"column 'w' has 1 missing .* rows \[4\]"),
    ("weights-two-columns", "y | weights(w, v) ~ x", lambda: toy().assign(w=1.0, v=1.0), {}, FormulaError, r"weights\(\) in .* takes one column"),
    ("unknown-cens-code", "y | cens(c) ~ x", lambda: toy().assign(c=["none"] * 57 + ["rigth", "3", "left"]), {}, DataError, r"censoring column 'c' has codes hbstan does not know in rows \[57, 58\] \(\['rigth', '3'\]\); valid codes .*'left', 'none', 'right', 'interval' or -1, 0, 1, 2"),
    ("cens-interval-no-upper", "y | cens(c) ~ x", lambda: toy().assign(c=[0] * 58 + [2, 2]), {}, DataError, r"rows \[58, 59\] of 'c' are interval censored: write 'y \| cens\(c, y2\)"),
    ("cens-upper-below", "y | cens(c, y2) ~ x", lambda: toy().assign(c=[0] * 59 + [2], y2=lambda d: d["y"] - 1), {}, DataError, r"upper bound 'y2' of interval-censored rows must be a number above y .* rows \[59\]"),
    ("cens-bernoulli", "yb | cens(c) ~ x", lambda: toy().assign(c=0), {"family": "bernoulli"}, FormulaError, r"cens\(\) needs family='gaussian' or family='student'.*not 'bernoulli'"),
    ("cens-unknown-column", "y | cens(cc) ~ x", toy, {}, DataError, r"censoring column 'cc' is not in the data"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case) -> None:
    _, formula, data, kwargs, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        m = hbstan.Model(formula, data=data(), **kwargs)
        m.stan_code  # noqa: B018  (some checks run when the program is rendered)


def test_table_is_large() -> None:
    assert len(CASES) >= 30


def test_non_positive_prior_scale() -> None:
    for make in (lambda: hbstan.Normal(0, 0), lambda: hbstan.HalfCauchy(-1), lambda: hbstan.StudentT(0, 0, 1),
                 lambda: hbstan.Exponential(0)):
        with pytest.raises(ValueError, match="must be a positive finite number"):
            make()


def test_dropna_drops_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    df = with_("y", [3, 7], np.nan)
    m = hbstan.Model("y ~ x", data=df, dropna=True)
    assert m.design.N == len(df) - 2
    assert "dropped 2 of 60 rows" in caplog.text
