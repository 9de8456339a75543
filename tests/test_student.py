"""The Student-t family, added as one family module and one template (``hbstan/families/
student.py``, ``stan_templates/families/student.stan.j2``): outliers pull a Gaussian fit but
not a Student-t one, and the PyMC backend samples the same posterior. Its log density is in
the grid of ``validation/log_density.py`` and the suite's subset (``tests/test_log_density.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.compare import compare_fits
from hbstan.pymc_backend import sample_pymc

cmdstan = pytest.mark.cmdstan


def with_outliers(n: int = 800, seed: int = 4) -> pd.DataFrame:
    """y = 1 + 2 x + N(0, 0.5), with 5% of the rows shifted up by 10."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 1 + 2 * x + rng.normal(0, 0.5, n)
    y[rng.choice(n, n // 20, replace=False)] += 10
    return pd.DataFrame({"x": x, "y": y})


@cmdstan
def test_outliers_pull_a_gaussian_fit_but_not_a_student_one() -> None:
    df = with_outliers()
    gauss = hbstan.Model("y ~ x", df).sample(chains=2, seed=1).posterior
    student = hbstan.Model("y ~ x", df, family="student").sample(chains=2, seed=1).posterior
    g, s = gauss["Intercept"].values, student["Intercept"].values
    # the Gaussian intercept absorbs the outliers' mean shift (5% x 10 = 0.5), far outside its interval
    assert abs(g.mean() - 1.0) > 4 * g.std(), (g.mean(), g.std())
    assert abs(s.mean() - 1.0) < 3 * s.std() + 0.02, (s.mean(), s.std())
    assert abs(student["x"].values.mean() - 2.0) < 0.1
    assert student["sigma"].values.mean() < 0.7 < gauss["sigma"].values.mean()  # the scale of the bulk
    assert student["nu"].values.mean() < 5  # heavy tails found


@cmdstan
def test_student_backends_agree() -> None:
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(10), 15)
    df = pd.DataFrame({"x": rng.normal(size=150), "g": [f"g{j}" for j in g]})
    df["y"] = 0.5 + rng.normal(0, 0.6, 10)[g] + 0.8 * df["x"] + rng.standard_t(4, 150) * 0.7
    m = hbstan.Model("y ~ x + (1 | g)", df, family="student")
    stan = m.sample(chains=4, draws=1000, seed=3)
    pymc = sample_pymc(m, chains=4, draws=1000, warmup=1000, seed=3)
    c = compare_fits(stan, pymc)
    assert c.verdict == "agree", c.to_markdown()
