"""The zero-inflated and hurdle families (issue 15): ``zero_inflated_poisson``,
``zero_inflated_negbinomial``, ``hurdle_poisson``, ``hurdle_negbinomial``, ``hurdle_lognormal``,
each a family module over a shared base (``hbstan/families/_zero.py``) and one template.

Without CmdStan: the NumPy draws (the exact zero-truncated samplers of the hurdle families)
follow scipy's distributions, the PyMC likelihoods (``psi`` = 1 - zi) equal the NumPy ones,
impossible responses are refused naming their rows, and the default priors are brms's.
With CmdStan: a hierarchical zero-inflated Poisson fit recovers the truth it was simulated from,
and its posterior predictive zero share matches the data where a Poisson fit's falls far short;
the same for a hurdle negative binomial; the programs' own log_lik and y_rep agree with the
NumPy family; the PyMC backend samples the same posterior (one zero-inflated, one hurdle
family). Their NumPy log-likelihoods and means are checked against scipy in
``tests/test_families.py``, their log density in ``validation/log_density.py`` (whole grid) and
``tests/test_log_density.py`` (one variant per family).

Compiled programs: every fit here uses a structure of the log-density subset (the same
formula shape, family and pooling is the same executable), plus the Poisson's hierarchical
program for the comparison.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hbstan
from hbstan.families import get_family
from hbstan.pointwise import log_lik_and_y_rep

from .reference_density import grid_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
from grid import Variant  # noqa: E402

cmdstan = pytest.mark.cmdstan

FAMILIES = ["zero_inflated_poisson", "zero_inflated_negbinomial", "hurdle_poisson", "hurdle_negbinomial", "hurdle_lognormal"]
FORMULA = "y ~ x + (1 | g)"
# the fits' program: y ~ x + (1 | g), non-centered, as Variant(family, "hierarchical", True,
# False, False) of the log-density subset (tests/test_log_density.py)
OPTIONS = {"centered": False}
TRUTH = {
    "zero_inflated_poisson": {"Intercept": 1.5, "x": 0.4, "zi": 0.3, "1|g_sigma": 0.5},
    "hurdle_negbinomial": {"Intercept": 1.0, "x": 0.5, "shape": 2.0, "hu": 0.4, "1|g_sigma": 0.5},
}


def simulate(family: str, n: int = 600, J: int = 20, seed: int = 21) -> pd.DataFrame:
    """Counts from ``family`` with eta = Intercept + x b + a_g, a_g ~ N(0, 1|g_sigma), J groups."""
    t = TRUTH[family]
    rng = np.random.default_rng(seed)
    g = np.arange(n) % J
    x = rng.normal(size=n)
    a = rng.normal(0, t["1|g_sigma"], J)
    mu = np.exp(t["Intercept"] + t["x"] * x + a[g])
    if family == "zero_inflated_poisson":  # a structural zero with probability zi
        y = np.where(rng.random(n) < t["zi"], 0, rng.poisson(mu))
    else:  # zero with probability hu, else a negative binomial count > 0 (by rejection)
        s = t["shape"]
        y = np.zeros(n, dtype=int)
        todo = rng.random(n) >= t["hu"]
        while todo.any():
            draw = rng.negative_binomial(s, s / (s + mu[todo]))
            idx = np.flatnonzero(todo)
            y[idx] = draw
            todo[idx[draw > 0]] = False
    return pd.DataFrame({"x": x, "g": [f"g{j:02d}" for j in g], "y": y})


def zero_share(fit: hbstan.Fit) -> np.ndarray:
    """Share of zeros in each replicated data set (chain x draw)."""
    return (fit.idata.posterior_predictive["y"].values == 0).mean(axis=-1)


@pytest.fixture(scope="module")
def fits() -> dict[str, hbstan.Fit]:
    """Fits by (family, data), 2 chains x 1000 draws, fitted on first use."""
    return {}


def _fit(fits: dict, family: str, data_family: str) -> hbstan.Fit:
    key = (family, data_family)
    if key not in fits:
        m = hbstan.Model(FORMULA, simulate(data_family), family=family, **OPTIONS)
        fits[key] = m.sample(chains=2, draws=1000, seed=1)
    return fits[key]


# ------------------------------------------------------------------ NumPy side
@pytest.mark.parametrize("mu", [0.05, 1.0, 12.0])
def test_hurdle_poisson_draws_are_the_zero_truncated_poisson(mu: float) -> None:
    """The exact sampler (first arrival, then the rest) against scipy's pmf over P(y > 0)."""
    fam = get_family("hurdle_poisson")
    n = 200_000
    draws = fam.draw(np.random.default_rng(5), np.full(n, np.log(mu)), {"hu": 0.25}, None)
    assert abs(np.mean(draws == 0) - 0.25) < 5 * np.sqrt(0.25 * 0.75 / n)
    pos = draws[draws > 0]
    ref = stats.poisson(mu)
    for k in range(1, int(mu + 3 * np.sqrt(mu)) + 2):
        p = ref.pmf(k) / ref.sf(0)
        assert abs(np.mean(pos == k) - p) < 5 * np.sqrt(p * (1 - p) / pos.size) + 1e-4, k


@pytest.mark.parametrize("mu, shape", [(0.1, 2.0), (3.0, 0.3), (3.0, 5.0), (40.0, 1.0)])
def test_hurdle_negbinomial_draws_are_the_zero_truncated_negative_binomial(mu: float, shape: float) -> None:
    """The exact gamma-Poisson sampler conditioned on y > 0 against scipy's nbinom over P(y > 0)."""
    fam = get_family("hurdle_negbinomial")
    n = 200_000
    draws = fam.draw(np.random.default_rng(6), np.full(n, np.log(mu)), {"shape": shape, "hu": 0.25}, None)
    pos = draws[draws > 0]
    ref = stats.nbinom(shape, shape / (shape + mu))
    for k in list(range(1, 8)) + [int(mu), int(2 * mu)]:
        if k < 1:
            continue
        p = ref.pmf(k) / ref.sf(0)
        assert abs(np.mean(pos == k) - p) < 5 * np.sqrt(p * (1 - p) / pos.size) + 1e-4, k
    assert pos.mean() == pytest.approx(mu / ref.sf(0), rel=0.03)


def test_zero_inflated_draws_have_the_zero_share() -> None:
    """P(0) = zi + (1 - zi) P_base(0), for the Poisson and negative binomial bases."""
    n, mu, zi = 200_000, 2.0, 0.3
    for name, aux, p0 in (
        ("zero_inflated_poisson", {"zi": zi}, stats.poisson(mu).pmf(0)),
        ("zero_inflated_negbinomial", {"shape": 1.5, "zi": zi}, stats.nbinom(1.5, 1.5 / (1.5 + mu)).pmf(0)),
    ):
        draws = get_family(name).draw(np.random.default_rng(7), np.full(n, np.log(mu)), aux, None)
        p = zi + (1 - zi) * p0
        assert abs(np.mean(draws == 0) - p) < 5 * np.sqrt(p * (1 - p) / n), name


def test_draws_stay_finite_at_extreme_rates() -> None:
    """Huge and tiny means: capped log rates (as the programs), no overflow, counts > 0 past the hurdle."""
    eta = np.array([60.0, 0.0, -30.0, -800.0])
    for name, aux in (("hurdle_poisson", {"hu": 1e-9}), ("hurdle_negbinomial", {"shape": np.array([0.05, 0.002, 1.0, 3.0]), "hu": 1e-9})):
        with np.errstate(over="ignore"):
            rep = get_family(name).draw(np.random.default_rng(1), eta, aux, None)
        assert np.all((rep >= 1) & (rep <= 2**31)), (name, rep)
        assert rep[3] == 1  # a vanishing mean: the truncated count is 1


@pytest.mark.parametrize("family", FAMILIES)
def test_pymc_likelihood_equals_numpy(family: str) -> None:
    """PyMC's zero-inflated and hurdle distributions (psi: the probability of the base
    component, 1 - zi or 1 - hu) give the family's NumPy log-likelihood row by row."""
    pm = pytest.importorskip("pymc")
    fam = get_family(family)
    rng = np.random.default_rng(2)
    eta = rng.normal(0.5, 0.8, 300)
    aux = {"zi": 0.35, "hu": 0.35, "shape": 1.7, "sigma": 0.8}
    aux = {a.name: aux[a.name] for a in fam.aux}
    y = fam.draw(rng, eta, aux, None)
    assert np.mean(y == 0) > 0.3
    with pm.Model():
        obs = fam.pymc_likelihood("y", eta, aux, y, None, None)
    logp = pm.logp(obs, y.astype(int) if fam.integer_response else y).eval()
    np.testing.assert_allclose(logp, fam.log_lik(y, eta, aux, None), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(
    "family, y, rows, what",
    [
        ("zero_inflated_poisson", [0, 1, 2.5, -1, 3], [2, 3], "non-negative whole numbers"),
        ("hurdle_negbinomial", [0, 4, 0, 1.5], [3], "non-negative whole numbers"),
        ("hurdle_lognormal", [0.0, 2.0, -0.5, 1.0, -3.0], [2, 4], "zero or positive"),
    ],
)
def test_impossible_responses_are_refused_naming_the_rows(family: str, y: list, rows: list, what: str) -> None:
    df = pd.DataFrame({"y": y, "x": np.arange(len(y), dtype=float)})
    with pytest.raises(hbstan.DataError, match=re.escape(what) + ".*" + re.escape(f"rows {rows}")):
        hbstan.Model("y ~ x", df, family=family)


@pytest.mark.parametrize("family", FAMILIES)
def test_only_zeros_are_refused(family: str) -> None:
    df = pd.DataFrame({"y": [0, 0, 0, 0], "x": [0.0, 1.0, 2.0, 3.0]})
    with pytest.raises(hbstan.DataError, match="holds only zeros"):
        hbstan.Model("y ~ x", df, family=family)


def test_default_priors_are_brms_and_the_base_familys() -> None:
    df = simulate("zero_inflated_poisson")
    y = df["y"].to_numpy()
    for family in FAMILIES[:4]:
        pri = hbstan.Model(FORMULA, df, family=family).priors
        prob = "zi" if family.startswith("zero") else "hu"
        assert pri[prob] == hbstan.Beta(1, 1)  # brms's beta(1, 1)
        # the base family's location: the log of the mean of the positive counts
        assert pri["Intercept"].values() == pytest.approx({"loc": np.log(y[y > 0].mean()), "scale": 2.5})
        if "negbinomial" in family:
            assert pri["shape"] == hbstan.InverseGamma(0.4, 0.3)
    amounts = df.assign(y=np.where(y > 0, np.exp(df["x"]), 0.0))
    ly = np.log(amounts["y"][amounts["y"] > 0])
    pri = hbstan.Model(FORMULA, amounts, family="hurdle_lognormal").priors
    assert pri["hu"] == hbstan.Beta(1, 1)
    assert pri["sigma"].values() == pytest.approx({"rate": 1 / ly.std(ddof=0)})
    # brms's string works too
    m = hbstan.Model(FORMULA, df, family="zero_inflated_poisson", priors={"zi": "beta(2, 5)"})
    assert m.priors["zi"] == hbstan.Beta(2, 5)


# ------------------------------------------------------------------ fits
@cmdstan
@pytest.mark.parametrize("family", sorted(TRUTH))
def test_recovers_the_truth_and_the_share_of_zeros(fits: dict, family: str) -> None:
    """Known truth recovered (hierarchical), and the posterior predictive share of zeros
    reproduces the data's where a Poisson fit of the same data falls far short."""
    data = simulate(family)
    fit = _fit(fits, family, family)
    post = fit.posterior
    for name, true in TRUTH[family].items():
        draws = post[name].values.ravel()
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo < true < hi, (name, true, lo, hi)
    observed = float(np.mean(data["y"] == 0))
    if family == "hurdle_negbinomial":  # hu is the share of zeros, exactly what the data show
        assert post["hu"].values.mean() == pytest.approx(observed, abs=0.01)
    else:  # zi: the structural zeros, fewer than all zeros
        assert abs(post["zi"].values.mean() - TRUTH[family]["zi"]) < 0.05
    d = fit.diagnose()
    # the non-centered Intercept mixes slowly (bulk ESS 180-380 of 2000 draws), so R-hat over
    # 2 chains scatters around 1.01: seeds 1-16 of the zero-inflated Poisson fit gave max R-hat
    # 1.003-1.028, above 1.01 on 6 of 16 seeds with the program's former likelihood statement
    # and on 9 of 16 with the current one (same log density to 1e-13, same ESS)
    assert sum(d.divergences) == 0 and d.max_rhat < 1.05, str(d)
    lo, hi = np.quantile(zero_share(fit), [0.005, 0.995])
    assert lo < observed < hi, (observed, lo, hi)
    poisson = _fit(fits, "poisson", family)
    assert zero_share(poisson).max() < observed - 0.1, (observed, zero_share(poisson).max())


# one structure per family, as in the log-density subset: the programs' own log_lik and y_rep
POINTWISE = {
    "zero_inflated_poisson": None,  # the recovery fit's structure, on its data
    "hurdle_negbinomial": None,
    "zero_inflated_negbinomial": Variant("zero_inflated_negbinomial", "crossed", True, True, True),
    "hurdle_poisson": Variant("hurdle_poisson", "unpooled", False, False, True),
    "hurdle_lognormal": Variant("hurdle_lognormal", "correlated_centered", False, True, False),
}


@cmdstan
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.filterwarnings("ignore::hbstan.SamplingWarning")  # a short run: only its draws matter
def test_program_pointwise_agrees_with_numpy(family: str) -> None:
    """The template's log_lik and y_rep (its Stan functions) against the NumPy family."""
    v = POINTWISE[family]
    if v is None:
        m = hbstan.Model(FORMULA, simulate(family), family=family, **OPTIONS)
        threads = None
    else:
        m = v.model(grid_data(), predictors=True, offset=True)[0]
        threads = 2 if v.threads else None
    fit = m.sample(chains=2, draws=150, warmup=150, seed=3, pointwise="stan", sig_figs=15, threads_per_chain=threads)
    post = {k: fit.idata.posterior[k].values for k in fit.idata.posterior.data_vars}
    ll, rep = log_lik_and_y_rep(m, post, np.random.default_rng(0))
    # rtol 1e-8: at a draw with the negative binomial's shape near 1e6 (its prior's far tail,
    # reached in a 150-draw chain) Stan's and SciPy's log-mass differ by a few 1e-9 relative
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, ll, rtol=1e-8, atol=1e-9)
    stan_rep = fit.idata.posterior_predictive[m.design.response].values
    assert np.all(stan_rep >= 0)
    # per row, the same share of zeros and the same mean of the replicated responses
    for f in (lambda r: r == 0, lambda r: r):
        a, b = f(rep).astype(float), f(stan_rep).astype(float)
        se = np.sqrt(a.var(axis=(0, 1)) / 300 + b.var(axis=(0, 1)) / 300) + 1e-9
        z = (a.mean(axis=(0, 1)) - b.mean(axis=(0, 1))) / se
        assert np.mean(np.abs(z) > 3.5) < 0.01
    assert stan_rep.var() == pytest.approx(rep.var(), rel=0.1)


@cmdstan
@pytest.mark.parametrize("family", ["zero_inflated_poisson", "hurdle_negbinomial"])
def test_backends_agree(family: str) -> None:
    pytest.importorskip("pymc")
    m = hbstan.Model(FORMULA, simulate(family), family=family, **OPTIONS)
    c = hbstan.compare_backends(m, chains=2, draws=2000, seed=3)
    assert c.verdict == "agree", c.to_markdown()
