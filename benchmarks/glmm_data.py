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


GENERATORS = {"bernoulli_crossed": bernoulli_crossed, "binomial_obs": binomial_obs, "poisson_slopes": poisson_slopes}


def simulate(name: str, seed: int = SEED) -> pd.DataFrame:
    """The data set ``name`` (a key of ``GENERATORS``) at ``seed``."""
    try:
        return GENERATORS[name](seed)
    except KeyError:
        raise ValueError(f"unknown simulated data set {name!r}; valid: {sorted(GENERATORS)}") from None
