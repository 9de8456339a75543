"""Simulated data of the GLMM benchmark rows (issue 19), from a fixed seed.

Each generator draws the group effects from their population distribution, then the
responses; the truth is returned alongside (``df.attrs["truth"]``) for reference.

* ``bernoulli_crossed``: a poll: 10,000 respondents, two predictors (``x1`` continuous,
  ``x2`` 0/1), three crossed grouping factors of 50, 12 and 8 levels (``state``, ``age``,
  ``edu``).
* ``binomial_obs``: binomial trials (5-40 per row) of 600 plots in 30 sites, one predictor,
  a per-observation effect ``(1 | obs)`` for overdispersion plus a site intercept.
* ``poisson_slopes``: counts of 60 sites, each surveyed in 8 years with 4 visits a year of
  varying effort (``exposure="effort"``); the year's trend varies by site, correlated with the
  site's level (``(1 + year | site)``).

Newer families (issues 15 and 19), one data set per family group:

* ``negbinomial_slopes``: overdispersed counts (negative binomial, shape 4) of 50 clinics x
  40 patients, one predictor whose effect varies by clinic, correlated with the clinic's level.
* ``zip_intercept``: counts with extra zeros (zero-inflated Poisson, zi 0.3) of 2,000 nests in
  40 sites with a site intercept.
* ``cumulative_intercept``: ordinal ratings 1-5 (cumulative logit) of 2,000 items by 40 raters
  with a rater intercept on the latent scale.
* ``gamma_intercept``: positive amounts (gamma, log link, shape 5) of 2,000 claims in 40
  regions with a region intercept.
* ``beta_intercept``: proportions in (0, 1) (beta, logit link, precision 20) of 2,000 plots in
  40 fields with a field intercept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["GENERATORS", "simulate"]

SEED = 20261126


def _labels(prefix: str, idx: np.ndarray) -> list[str]:
    return [f"{prefix}{i + 1:02d}" for i in idx]


def bernoulli_crossed(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 10_000
    levels = {"state": 50, "age": 12, "edu": 8}
    sd = {"state": 0.5, "age": 0.3, "edu": 0.4}
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.integers(0, 2, n).astype(float)})
    eta = -0.3 + 0.4 * df["x1"].to_numpy() - 0.5 * df["x2"].to_numpy()
    for f, k in levels.items():
        idx = rng.integers(0, k, n)
        eta = eta + rng.normal(0, sd[f], k)[idx]
        df[f] = _labels(f, idx)
    df["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    df.attrs["truth"] = {"Intercept": -0.3, "x1": 0.4, "x2": -0.5, **{f"1|{f}_sigma": s for f, s in sd.items()}}
    return df


def binomial_obs(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sites, per_site = 30, 20
    n = sites * per_site
    site = np.repeat(np.arange(sites), per_site)
    x = rng.normal(size=n)
    trials = rng.integers(5, 41, n)
    eta = -0.5 + 0.6 * x + rng.normal(0, 0.7, sites)[site] + rng.normal(0, 0.5, n)
    y = rng.binomial(trials, 1 / (1 + np.exp(-eta)))
    df = pd.DataFrame({"y": y, "n": trials, "x": x, "site": _labels("site", site), "obs": _labels("obs", np.arange(n))})
    df.attrs["truth"] = {"Intercept": -0.5, "x": 0.6, "1|site_sigma": 0.7, "1|obs_sigma": 0.5}
    return df


def poisson_slopes(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sites, years, visits = 60, 8, 4
    site = np.repeat(np.arange(sites), years * visits)
    year = np.tile(np.repeat(np.arange(years), visits), sites)
    yr = (year - (years - 1) / 2) / 2.0  # centered, in units of two years
    sd, rho = np.array([0.6, 0.25]), -0.4
    cov = np.diag(sd) @ np.array([[1, rho], [rho, 1]]) @ np.diag(sd)
    r = rng.multivariate_normal(np.zeros(2), cov, sites)
    effort = rng.uniform(0.5, 3.0, site.size)  # hours of survey
    eta = 1.0 + r[site, 0] + (-0.15 + r[site, 1]) * yr + np.log(effort)
    df = pd.DataFrame(
        {"count": rng.poisson(np.exp(eta)), "year": yr, "effort": effort, "site": _labels("site", site)}
    )
    df.attrs["truth"] = {"Intercept": 1.0, "year": -0.15, "1|site_sigma": 0.6, "year|site_sigma": 0.25, "site_corr": rho}
    return df


def negbinomial_slopes(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    clinics, per = 50, 40
    clinic = np.repeat(np.arange(clinics), per)
    x = rng.normal(size=clinic.size)
    sd, rho = np.array([0.5, 0.3]), 0.3
    cov = np.diag(sd) @ np.array([[1, rho], [rho, 1]]) @ np.diag(sd)
    r = rng.multivariate_normal(np.zeros(2), cov, clinics)
    mu = np.exp(1.2 + r[clinic, 0] + (0.4 + r[clinic, 1]) * x)
    shape = 4.0
    count = rng.negative_binomial(shape, shape / (shape + mu))  # mean mu, variance mu + mu^2 / shape
    df = pd.DataFrame({"count": count, "x": x, "clinic": _labels("clinic", clinic)})
    df.attrs["truth"] = {
        "Intercept": 1.2, "x": 0.4, "shape": shape, "1|clinic_sigma": 0.5, "x|clinic_sigma": 0.3, "clinic_corr": rho,
    }
    return df


def _one_intercept(rng: np.random.Generator, groups: int, per: int, sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group index, a normal predictor and the linear predictor's group part of groups x per rows."""
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=g.size)
    return g, x, rng.normal(0, sd, groups)[g]


def zip_intercept(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, x, u = _one_intercept(rng, 40, 50, 0.6)
    rate = np.exp(0.8 + 0.5 * x + u)
    zi = 0.3
    count = np.where(rng.uniform(size=g.size) < zi, 0, rng.poisson(rate))
    df = pd.DataFrame({"count": count, "x": x, "site": _labels("site", g)})
    df.attrs["truth"] = {"Intercept": 0.8, "x": 0.5, "zi": zi, "1|site_sigma": 0.6}
    return df


def cumulative_intercept(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, x, u = _one_intercept(rng, 40, 50, 0.8)
    cuts = np.array([-1.5, -0.3, 0.7, 2.0])  # P(y <= k) = logistic(c_k - eta)
    latent = 0.7 * x + u + rng.logistic(size=g.size)
    rating = 1 + np.searchsorted(cuts, latent)
    df = pd.DataFrame({"rating": rating, "x": x, "rater": _labels("rater", g)})
    df.attrs["truth"] = {"Intercept": cuts.tolist(), "x": 0.7, "1|rater_sigma": 0.8}
    return df


def gamma_intercept(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, x, u = _one_intercept(rng, 40, 50, 0.4)
    mu = np.exp(2.0 + 0.3 * x + u)
    shape = 5.0
    df = pd.DataFrame({"amount": rng.gamma(shape, mu / shape), "x": x, "region": _labels("region", g)})
    df.attrs["truth"] = {"Intercept": 2.0, "x": 0.3, "shape": shape, "1|region_sigma": 0.4}
    return df


def beta_intercept(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, x, u = _one_intercept(rng, 40, 50, 0.5)
    mu = 1 / (1 + np.exp(-(-0.5 + 0.4 * x + u)))
    phi = 20.0
    df = pd.DataFrame({"cover": rng.beta(mu * phi, (1 - mu) * phi), "x": x, "field": _labels("field", g)})
    df.attrs["truth"] = {"Intercept": -0.5, "x": 0.4, "phi": phi, "1|field_sigma": 0.5}
    return df


GENERATORS = {
    "bernoulli_crossed": bernoulli_crossed,
    "binomial_obs": binomial_obs,
    "poisson_slopes": poisson_slopes,
    "negbinomial_slopes": negbinomial_slopes,
    "zip_intercept": zip_intercept,
    "cumulative_intercept": cumulative_intercept,
    "gamma_intercept": gamma_intercept,
    "beta_intercept": beta_intercept,
}


def simulate(name: str, seed: int = SEED) -> pd.DataFrame:
    """The data set ``name`` (a key of ``GENERATORS``) at ``seed``."""
    try:
        return GENERATORS[name](seed)
    except KeyError:
        raise ValueError(f"unknown simulated data set {name!r}; valid: {sorted(GENERATORS)}") from None
