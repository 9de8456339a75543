"""Response additions ``y | weights(w) ~ ...`` (likelihood weights) and ``y | cens(c) ~ ...`` /
``cens(c, y2)`` (left, right and interval censoring), in brms's syntax and coding.

Each is checked against an answer that does not use it: a weighted model against the same
data with every row repeated w times (exactly, by CmdStan's log density, and by sampling), a
censored model against numerical integration of the closed-form posterior, against PyMC, and
against the known truth that a naive fit of the censored data misses. Programs shared between
tests (same structure): gaussian and poisson weighted with one varying intercept, gaussian
censored pooled, poisson censored with one varying intercept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hbstan
from hbstan.backend import compiled_model

from .reference_density import log_lik as reference_log_lik
from .reference_density import random_point

cmdstan = pytest.mark.cmdstan

PRIORS = {"Intercept": hbstan.Normal(0, 10), "b": hbstan.Normal(0, 5), "sd": hbstan.HalfNormal(2)}


def _weighted_data(family: str, n: int = 48, J: int = 4, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.arange(n) % J
    x = rng.normal(size=n)
    eta = 0.5 + 0.6 * x + rng.normal(0, 0.4, J)[g]
    df = pd.DataFrame({"x": x, "g": [f"g{j}" for j in g], "w": rng.integers(0, 4, n)})
    df.loc[:J, "w"] = 1  # every group keeps a row after duplication
    df["y"] = rng.poisson(np.exp(eta)) if family == "poisson" else eta + rng.normal(0, 1, n)
    return df


def _duplicated(df: pd.DataFrame) -> pd.DataFrame:
    """Each row repeated w times, with weight 1: the independent reference of integer weights."""
    return df.loc[df.index.repeat(df["w"])].assign(w=1).reset_index(drop=True)


def _model(df: pd.DataFrame, family: str) -> hbstan.Model:
    priors = dict(PRIORS, **({"sigma": hbstan.Exponential(0.5)} if family == "gaussian" else {}))
    return hbstan.Model("y | weights(w) ~ x + (1 | g)", df, family=family, priors=priors, centered=False)


# ------------------------------------------------------------------ reading and checking
def test_additions_are_read_checked_and_structure_only() -> None:
    df = _weighted_data("gaussian")
    df["c"] = np.where(df["y"] > 1.5, "right", np.where(df["y"] < -0.5, "left", "none"))
    m = hbstan.Model("y | weights(w) + cens(c) ~ x + (1 | g)", df)
    data = m.stan_data
    assert data["weights"].tolist() == df["w"].tolist()
    assert data["cens"].tolist() == df["c"].map({"left": -1, "none": 0, "right": 1}).tolist()
    assert data["y2"].tolist() == df["y"].tolist()  # no interval rows: the bounds are y
    # the row-wise likelihood: no sufficient statistics, integrated-out effects or threads
    assert not m.suff_stats and not m.marginalized and not m.threads_supported
    # numeric codes give the same data; values change the data, never the program
    num = hbstan.Model("y | weights(w) + cens(c) ~ x + (1 | g)", df.assign(c=df["c"].map({"left": -1, "none": 0, "right": 1})))
    assert num.stan_data["cens"].tolist() == data["cens"].tolist() and num.stan_code == m.stan_code
    other = hbstan.Model("y | weights(w) + cens(c) ~ x + (1 | g)", df.assign(w=2.5, c="none"))
    assert other.stan_code == m.stan_code
    assert "weights" not in m.stan_code.split("data {")[0]  # no column name in the header
    # Bernoulli rows with weights are not summed into counts
    b = hbstan.Model("yb | weights(w) ~ x", df.assign(yb=(df["y"] > 0).astype(int)), family="bernoulli")
    assert not b.aggregated
    with pytest.raises(ValueError, match="aggregate=True sums Bernoulli rows"):
        hbstan.Model("yb | weights(w) ~ x", df.assign(yb=(df["y"] > 0).astype(int)), family="bernoulli", aggregate=True)
    # a model without additions renders as before
    plain = hbstan.Model("y ~ x + (1 | g)", df)
    assert "weights" not in plain.stan_code and "cens" not in plain.stan_code
    # a saved run rebuilds the additions from its formula
    assert hbstan.Model(m.formula, df, **{k: v for k, v in m.resolved_options().items() if v is not None}).stan_data["cens"].tolist() == data["cens"].tolist()


def test_numpy_censored_log_lik_against_closed_forms() -> None:
    """The families' censored pointwise log-likelihood (LOO's input) against sums of the pmf and
    the normal CDF written with math.erfc."""
    from math import erfc, exp, factorial, log, sqrt

    fam = hbstan.families.get_family("poisson")
    y = np.array([0.0, 3.0, 2.0, 4.0, 0.0])
    y2 = np.array([0.0, 3.0, 2.0, 6.0, 0.0])
    cens = np.array([1, 1, -1, 2, 0])
    eta = np.log(np.array([1.5, 2.0, 2.5, 3.0, 1.0]))
    ll = fam.log_lik(y, eta, {}, None)
    fam.censor_log_lik(ll, y, y2, cens, eta, {}, None)

    def pmf(k: int, lam: float) -> float:
        return exp(-lam) * lam**k / factorial(k)

    lam = np.exp(eta)
    expected = [
        0.0,  # right censored at 0: P(Y >= 0) = 1
        log(1 - sum(pmf(k, lam[1]) for k in range(3))),  # P(Y >= 3)
        log(sum(pmf(k, lam[2]) for k in range(3))),  # P(Y <= 2)
        log(sum(pmf(k, lam[3]) for k in range(4, 7))),  # P(4 <= Y <= 6)
        log(pmf(0, lam[4])),
    ]
    np.testing.assert_allclose(ll, expected, rtol=1e-10, atol=1e-12)

    gauss = hbstan.families.get_family("gaussian")
    y = np.array([1.0, -0.5, 0.2])
    y2 = np.array([1.0, -0.5, 1.7])
    eta = np.array([[0.3, 0.1, 0.5]])
    ll = gauss.log_lik(y, eta, {"sigma": 1.3}, None)
    gauss.censor_log_lik(ll, y, y2, np.array([1, -1, 2]), eta, {"sigma": 1.3}, None)

    def cdf(v: float, mu: float) -> float:
        return 0.5 * erfc(-(v - mu) / (1.3 * sqrt(2)))

    expected = [log(1 - cdf(1.0, 0.3)), log(cdf(-0.5, 0.1)), log(cdf(1.7, 0.5) - cdf(0.2, 0.5))]
    np.testing.assert_allclose(ll[0], expected, rtol=1e-10)


@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_pymc_row_log_lik_equals_the_reference(family: str) -> None:
    """The PyMC backend's weighted, censored likelihood (PyMC's logcdf / logccdf) at a point
    equals the scipy reference of tests/reference_density.py."""
    pytest.importorskip("pymc")
    from hbstan.pymc_backend import row_log_lik

    df = _weighted_data(family)
    rng = np.random.default_rng(4)
    df["c"] = rng.choice([-1, 0, 1, 2], len(df))
    df["y2"] = np.where(df["c"] == 2, df["y"] + (rng.integers(0, 3, len(df)) if family == "poisson" else 0.8), df["y"])
    m = hbstan.Model("y | weights(w) + cens(c, y2) ~ x + (1 | g)", df, family=family, centered=False)
    pt_ = random_point(m, rng)
    eta = pt_.Intercept + (m.design.X - m.design.X.mean(axis=0)) @ pt_.b + pt_.r[1][m.design.blocks[0].index, 0]
    aux = {"sigma": pt_.sigma} if family == "gaussian" else {}
    got = float(row_log_lik(m, eta, aux).sum().eval())
    ref = reference_log_lik(m, pt_, {"z_1"}, weights=df["w"].to_numpy(), cens=df["c"].to_numpy(), y2=df["y2"].to_numpy())
    # rel 1e-7: PyMC differences the CDFs, which loses digits in the upper tail (the reference
    # differences the CCDFs there); one row of this point is 5 SDs out
    assert got == pytest.approx(ref, rel=1e-7)


# ------------------------------------------------------------------ weights
def _likelihood(cm, m: hbstan.Model, point: dict) -> float:
    """CmdStan's log likelihood of ``m``'s data at a point given on the original scale (b_Intercept)."""
    d = m.design
    sd = point["sd_1"]
    params = {
        "Intercept": point["b_Intercept"] + float(d.X.mean(axis=0) @ point["b"]),
        "b": point["b"], "sd_1": sd, "z_1": (point["r_1"] / sd).T,
    }
    if "sigma" in point:
        params["sigma"] = point["sigma"]
    lp = {
        po: float(cm.log_prob(params=params, data=m.stan_data_for(prior_only=po, pointwise=False), jacobian=False, sig_figs=16)["lp__"].iloc[0])
        for po in (False, True)
    }
    return lp[False] - lp[True]


@cmdstan
@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_weights_equal_duplicated_rows(family: str) -> None:
    """Integer weights: the weighted model's likelihood equals that of the data with each row
    repeated w times, exactly (CmdStan's log density at random points, up to a constant), and
    the two posteriors agree (hbstan.compare_fits)."""
    df = _weighted_data(family)
    m, dup = _model(df, family), _model(_duplicated(df), family)
    assert m.stan_code == dup.stan_code  # one executable serves both
    cm = compiled_model(m.program())
    rng = np.random.default_rng(7)
    diffs, moves = [], []
    for _ in range(4):
        point = {"b_Intercept": rng.normal(0.5, 0.3), "b": rng.normal(0.5, 0.3, 1), "sd_1": np.array([rng.uniform(0.2, 1)]),
                 "r_1": rng.normal(0, 0.4, (4, 1))}
        if family == "gaussian":
            point["sigma"] = rng.uniform(0.6, 1.5)
        a, b = _likelihood(cm, m, point), _likelihood(cm, dup, point)
        diffs.append(a - b)
        moves.append(a)
    assert np.ptp(diffs) < 1e-8 * (1 + np.max(np.abs(moves))), diffs
    assert np.ptp(moves) > 1.0  # the likelihood moves with the parameters
    # ... and the fits agree (the centered intercept's prior sits at each data set's mean of x:
    # its Normal(0, 10) hardly differs there)
    fa = m.sample(chains=4, draws=500, seed=3)
    fb = dup.sample(chains=4, draws=500, seed=4)
    res = hbstan.compare_fits(fa, fb)
    assert res.verdict == "agree", res.to_markdown()


# ------------------------------------------------------------------ censoring
def _censored_normal(n: int = 40, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(3.0, 2.0, n)
    df = pd.DataFrame({"y": z, "c": "none", "y2": z})
    df.loc[z > 4.5, ["y", "c"]] = [4.5, "right"]  # detection limits
    df.loc[z < 1.0, ["y", "c"]] = [1.0, "left"]
    mid = (z > 2.0) & (z < 3.0)  # known only to lie between 2 and 3
    df.loc[mid, ["y", "y2", "c"]] = [2.0, 3.0, "interval"]
    return df


def _grid_posterior_means(df: pd.DataFrame, mu0: float, s0: float, rate: float) -> tuple[float, float]:
    """Posterior means of (mu, sigma) by numerical integration of the censored normal likelihood."""
    mu = np.linspace(-2, 8, 801)[:, None]
    sigma = np.linspace(0.05, 8, 800)[None, :]
    logp = stats.norm.logpdf(mu, mu0, s0) + stats.expon.logpdf(sigma, scale=1 / rate)
    for y, c, y2 in zip(df["y"], df["c"], df["y2"]):
        if c == "none":
            logp = logp + stats.norm.logpdf(y, mu, sigma)
        elif c == "right":
            logp = logp + stats.norm.logsf(y, mu, sigma)
        elif c == "left":
            logp = logp + stats.norm.logcdf(y, mu, sigma)
        else:
            logp = logp + np.log(stats.norm.cdf(y2, mu, sigma) - stats.norm.cdf(y, mu, sigma))
    p = np.exp(logp - logp.max())
    p /= p.sum()
    return float((p * mu).sum()), float((p * sigma).sum())


@cmdstan
def test_censored_normal_equals_numerical_integration() -> None:
    import arviz as az

    df = _censored_normal()
    assert set(df["c"]) == {"none", "left", "right", "interval"}
    m = hbstan.Model("y | cens(c, y2) ~ 1", df, priors={"Intercept": hbstan.Normal(0, 10), "sigma": hbstan.Exponential(0.2)})
    fit = m.sample(chains=4, draws=2000, seed=8, pointwise="stan")
    mu_ref, sigma_ref = _grid_posterior_means(df, 0.0, 10.0, 0.2)
    mcse = az.mcse(fit.idata, var_names=["Intercept", "sigma"])
    post = fit.posterior
    assert abs(float(post["Intercept"].mean()) - mu_ref) < 4 * float(mcse["Intercept"]) + 0.01
    assert abs(float(post["sigma"].mean()) - sigma_ref) < 4 * float(mcse["sigma"]) + 0.01
    # the program's pointwise log_lik and hbstan's NumPy one: scipy's censored terms
    mu, sigma = post["Intercept"].values[..., None], post["sigma"].values[..., None]
    y, y2, c = df["y"].to_numpy(), df["y2"].to_numpy(), df["c"].to_numpy()
    expected = np.select(
        [c == "none", c == "right", c == "left"],
        [stats.norm.logpdf(y, mu, sigma), stats.norm.logsf(y, mu, sigma), stats.norm.logcdf(y, mu, sigma)],
        np.log(stats.norm.cdf(y2, mu, sigma) - stats.norm.cdf(y, mu, sigma)),
    )
    np.testing.assert_allclose(fit.idata.log_likelihood["log_lik"].values, expected, rtol=1e-4, atol=1e-4)
    from hbstan.pointwise import log_lik_and_y_rep

    ll, rep = log_lik_and_y_rep(m, {k: post[k].values for k in ("Intercept", "sigma")}, np.random.default_rng(1))
    np.testing.assert_allclose(ll, expected, rtol=1e-9)
    # replicated data are draws of the uncensored response: beyond the detection limits too
    assert (rep > 4.5).mean() > 0.1 and (rep < 1.0).mean() > 0.1


@cmdstan
def test_censoring_recovers_the_truth_a_naive_fit_misses() -> None:
    """Right censoring at a threshold flattens the naive slope; the censored fit recovers it."""
    rng = np.random.default_rng(11)
    n = 300
    x = rng.uniform(-1, 1, n)
    z = 1.0 + 2.0 * x + rng.normal(0, 1.0, n)
    limit = 2.0
    df = pd.DataFrame({"x": x, "y": np.minimum(z, limit), "c": np.where(z > limit, 1, 0), "none": 0})
    assert 0.2 < df["c"].mean() < 0.5
    cens = hbstan.Model("y | cens(c) ~ x", df).sample(chains=4, draws=1000, seed=2)
    naive = hbstan.Model("y | cens(none) ~ x", df).sample(chains=4, draws=1000, seed=2)  # the same program
    for name, truth in (("x", 2.0), ("sigma", 1.0), ("Intercept", 1.0)):
        lo, hi = np.quantile(cens.posterior[name].values, [0.005, 0.995])
        assert lo < truth < hi, (name, lo, hi)
    lo, hi = np.quantile(naive.posterior["x"].values, [0.005, 0.995])
    assert hi < 2.0, (lo, hi)  # the naive slope is biased towards 0: the truth lies outside


@cmdstan
def test_censored_poisson_agrees_with_pymc() -> None:
    pytest.importorskip("pymc")
    rng = np.random.default_rng(21)
    n, J = 80, 5
    g = np.arange(n) % J
    x = rng.normal(size=n)
    z = rng.poisson(np.exp(1.0 + 0.4 * x + rng.normal(0, 0.3, J)[g]))
    df = pd.DataFrame({"x": x, "g": [f"g{j}" for j in g], "y": np.minimum(z, 4), "c": np.where(z >= 4, "right", "none")})
    df["y2"] = df["y"]
    low = z <= 1  # some counts known only as "0 or 1" (interval) or "at most 1" (left)
    df.loc[low & (np.arange(n) % 2 == 0), ["y", "y2", "c"]] = [0, 1, "interval"]
    df.loc[low & (np.arange(n) % 2 == 1), ["y", "c"]] = [1, "left"]
    m = hbstan.Model("y | cens(c, y2) ~ x + (1 | g)", df, family="poisson", centered=False)
    res = hbstan.compare_backends(m, chains=4, draws=1000, seed=5)
    assert res.verdict == "agree", res.to_markdown()


@cmdstan
@pytest.mark.parametrize("family", ["gaussian", "lognormal"])
def test_censored_far_tails_equal_scipy(family: str) -> None:
    """Rows censored 15 (gaussian) and 40 (lognormal) SDs out: the program's probabilities equal
    scipy's. Stan Math's normal_lccdf is -inf beyond 10 SDs and its lognormal_lcdf/lccdf beyond
    about 38, so the templates write them with normal_lcdf, which has an asymptotic tail."""
    far = 15.0 if family == "gaussian" else 40.0
    y = [1.0, 2.0, far, -far] if family == "gaussian" else [1.0, 2.0, np.exp(far), np.exp(-far)]
    df = pd.DataFrame({"y": y, "c": ["none", "none", "right", "left"], "x": [0.0, 1.0, 0.0, 1.0]})
    df["y2"] = df["y"]
    if family == "gaussian":  # the program of test_censored_normal_equals_numerical_integration
        m = hbstan.Model("y | cens(c, y2) ~ 1", df)
        params = {"Intercept": 0.0, "b": [], "sigma": 1.0}
    else:  # the program of test_log_density's lognormal_sigma_formula_censored, pooled
        m = hbstan.Model(hbstan.Formula("y | cens(c, y2) ~ x", sigma="~ x"), df, family="lognormal")
        params = {"Intercept": 0.0, "b": [0.0], "Intercept_sigma": 0.0, "b_sigma": [0.0]}
    cm = compiled_model(m.program())
    lp = [
        float(cm.log_prob(params=params, data=m.stan_data_for(prior_only=po, pointwise=False), jacobian=False, sig_figs=18)["lp__"].iloc[0])
        for po in (False, True)
    ]
    z = np.asarray(y) if family == "gaussian" else np.log(y)
    expected = stats.norm.logpdf(z[:2]).sum() + stats.norm.logsf(far) + stats.norm.logcdf(-far)
    if family == "lognormal":
        expected -= z[:2].sum()  # the Jacobian of log y in the density of the uncensored rows
    assert stats.norm.logsf(far) < -100  # far out indeed
    np.testing.assert_allclose(lp[0] - lp[1], expected, rtol=1e-8)
