"""Poisson counts, log link (an exposure enters as a log offset)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .base import Family

# NumPy's Poisson sampler overflows past a rate of about 2^30: replicated counts are drawn at
# log-rate min(eta, 20), as the Stan program does
MAX_LOG_RATE = 20.0


class Poisson(Family):
    """y ~ Poisson(exp(eta))."""

    name = "poisson"
    link = "log"
    censoring = True

    def response_scale(self, y, offset, trials):  # noqa: D102
        rate = np.mean(y / np.exp(offset))
        return (float(np.log(rate)) if rate > 0 else 0.0), 1.0

    def inverse_link(self, eta):  # noqa: D102
        return np.exp(eta)

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        return y * eta - np.exp(eta) - gammaln(y + 1)

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        return rng.poisson(np.exp(np.minimum(eta, MAX_LOG_RATE)))

    def working(self, y, trials, eta):  # noqa: D102
        mu = np.exp(eta)
        return mu, (y - mu) / mu

    def initial_eta(self, y, trials):  # noqa: D102
        return np.log(y + 0.5)

    def empirical(self, y, index, J, offset, trials, response):  # noqa: D102
        rows = np.bincount(index, minlength=J).astype(float)
        y_j = np.bincount(index, weights=y, minlength=J)
        e_j = np.bincount(index, weights=np.exp(offset), minlength=J)
        est = np.log(np.maximum(y_j, 0.5) / e_j)
        return est, rows, f"log rate of {response} (empirical / intercept)", "observations in the group"

    def log_cdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        return stats.poisson.logcdf(y, np.exp(eta))

    def log_ccdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        return stats.poisson.logsf(y, np.exp(eta))

    def pymc_dist(self, eta, aux, trials):  # noqa: D102
        import pymc as pm
        import pytensor.tensor as pt

        return pm.Poisson.dist(mu=pt.exp(eta))
