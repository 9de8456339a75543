"""Gaussian response, identity link: y ~ N(eta, sigma)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..priors import Exponential, Normal, Prior
from .base import AuxParam, Family


class Sigma(AuxParam):
    """The residual SD (or scale) of an identity-link family, scaled to the response."""

    def default_prior(self, s_y: float) -> Prior:
        """Exponential(1 / s_y): mean s_y, the SD of the response."""
        return Exponential(1.0 / s_y)

    def formula_intercept_prior(self, s_y: float) -> Prior:
        """Normal(log s_y, 1.5) on the log scale: around the response's SD (the scalar default
        Exponential(1 / s_y) has its median at 0.7 s_y and an SD of about 1.3 on the log scale)."""
        return Normal(float(np.log(s_y)), 1.5)


class Gaussian(Family):
    """Normal likelihood with residual SD ``sigma`` (fixed with ``Model(..., sigma=...)``)."""

    name = "gaussian"
    link = "identity"
    integer_response = False
    aux = (Sigma("sigma", "residual SD"),)
    suff_stats = True
    known_se = True
    distributional = ("sigma",)
    censoring = True
    multivariate = True
    rescor = "multi_normal_cholesky"
    linear_mean = True

    def check_response(self, y: np.ndarray, name: str, trials: np.ndarray | None) -> None:  # noqa: D102
        return None

    def response_scale(self, y, offset, trials):  # noqa: D102
        return float(np.mean(y)), float(np.std(y)) if y.size > 1 else 0.0

    def inverse_link(self, eta):  # noqa: D102
        return eta

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        sigma = aux["sigma"]
        z = (y - eta) / sigma
        return -0.5 * z * z - np.log(sigma) - 0.5 * np.log(2 * np.pi)

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        return rng.normal(eta, aux["sigma"])

    def fill_pointwise(self, y, eta, aux, trials, rng, ll, rep):
        """In place, without (draws x rows) temporaries; ``eta`` may live in ``ll``."""
        sigma: Any = aux["sigma"]
        # eta + sigma * z: the very draws rng.normal(eta, sigma) gives, without its broadcasting
        rng.standard_normal(out=rep)
        rep *= sigma
        rep += eta
        # ll = -0.5 * z * z - log(sigma) - 0.5 * log(2 pi), z = (y - eta) / sigma
        z = np.subtract(y, eta, out=ll)
        z /= sigma
        np.square(z, out=ll)
        ll *= -0.5
        ll -= np.log(sigma) + 0.5 * np.log(2 * np.pi)

    def working(self, y, trials, eta):  # noqa: D102
        e = y - eta
        return np.full(y.shape, 1.0 / max(float(np.var(e)), 1e-12)), e

    def initial_eta(self, y, trials):  # noqa: D102
        return np.full(y.shape, float(np.mean(y)))

    def empirical(self, y, index, J, offset, trials, response):  # noqa: D102
        rows = np.bincount(index, minlength=J).astype(float)
        est = np.bincount(index, weights=y, minlength=J) / rows
        return est, rows, f"{response} (group mean / intercept)", "observations in the group"

    def log_cdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        return stats.norm.logcdf(y, eta, aux["sigma"])

    def log_ccdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        return stats.norm.logsf(y, eta, aux["sigma"])

    def pymc_dist(self, eta, aux, trials):  # noqa: D102
        import pymc as pm

        return pm.Normal.dist(mu=eta, sigma=aux["sigma"])

