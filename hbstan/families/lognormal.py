"""Lognormal response: log(y) ~ N(eta, sigma), a positive response that is normal on the log scale.

The linear predictor is the mean (and median) of log(y), identity link as in brms; the
expected response is exp(eta + sigma^2 / 2). ``sigma`` is the SD of log(y), its default prior
scaled by the SD of log(y) as the Gaussian's is by the SD of y, and ``sigma=`` fixes it as the
Gaussian's. An offset is added to the mean of log(y).
"""

from __future__ import annotations

import numpy as np

from .base import Family
from .gamma import check_positive
from .gaussian import Sigma

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


class LogNormal(Family):
    """y ~ LogNormal(eta, sigma): log(y) ~ N(eta, sigma), mean exp(eta + sigma^2 / 2)."""

    name = "lognormal"
    link = "identity"
    integer_response = False
    censoring = True
    aux = (Sigma("sigma", "SD of log(y)"),)
    distributional = ("sigma",)

    def check_response(self, y, name, trials):  # noqa: D102
        check_positive(y, name, self.name)

    def response_scale(self, y, offset, trials):  # noqa: D102
        # the Gaussian's m_y and s_y on the scale the linear predictor lives on: log(y)
        ly = np.log(y) - offset
        return float(np.mean(ly)), float(np.std(ly)) if y.size > 1 else 0.0

    def inverse_link(self, eta):  # noqa: D102
        return eta

    def mean(self, eta, aux, trials):  # noqa: D102
        return np.exp(eta + 0.5 * np.square(aux["sigma"]))

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        sigma = aux["sigma"]
        ly = np.log(y)
        z = (ly - eta) / sigma
        return -0.5 * z * z - np.log(sigma) - _LOG_SQRT_2PI - ly

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        return np.exp(rng.normal(eta, aux["sigma"]))

    def log_prob_zero(self, eta, aux):
        """Log P(y = 0) = -inf: no mass at zero (its hurdle version)."""
        return np.full(np.shape(eta), -np.inf)

    def draw_positive(self, rng, eta, aux):
        """Draws conditioned on y > 0: every draw is positive."""
        return LogNormal.draw(self, rng, eta, aux, None)

    def working(self, y, trials, eta):  # noqa: D102
        # the Gaussian's on log(y): constant weights 1 / residual variance
        e = np.log(y) - eta
        return np.full(y.shape, 1.0 / max(float(np.var(e)), 1e-12)), e

    def initial_eta(self, y, trials):  # noqa: D102
        return np.full(y.shape, float(np.mean(np.log(y))))

    def empirical(self, y, index, J, offset, trials, response):  # noqa: D102
        rows = np.bincount(index, minlength=J).astype(float)
        est = np.bincount(index, weights=np.log(y), minlength=J) / rows
        return est, rows, f"log {response} (group mean / intercept)", "observations in the group"

    def log_cdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        return stats.norm.logcdf(np.log(y), eta, aux["sigma"])

    def log_ccdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        return stats.norm.logsf(np.log(y), eta, aux["sigma"])

    def pymc_dist(self, eta, aux, trials):  # noqa: D102
        import pymc as pm

        return pm.LogNormal.dist(**self.pymc_params(eta, aux))

    def pymc_params(self, eta, aux):
        """Return the PyMC distribution's parameters (of its hurdle version too)."""
        return {"mu": eta, "sigma": aux["sigma"]}
