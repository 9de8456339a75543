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
    multivariate = True
    link = "log"
    censoring = True
    # rows with identical predictors and groups sum into one count with their summed exposure:
    # the same likelihood up to a constant (sum_i Poisson(y_i | e_i mu) ~ Poisson(sum y | mu sum e))
    aggregates_to = "poisson"

    def response_scale(self, y, offset, trials):  # noqa: D102
        rate = np.mean(y / np.exp(offset))
        return (float(np.log(rate)) if rate > 0 else 0.0), 1.0

    def inverse_link(self, eta):  # noqa: D102
        return np.exp(eta)

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        return y * eta - np.exp(eta) - gammaln(y + 1)

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        return rng.poisson(np.exp(np.minimum(eta, MAX_LOG_RATE)))

    def log_prob_zero(self, eta, aux):
        """Log P(y = 0) = -mu (zero-inflated and hurdle versions)."""
        return -np.exp(eta)

    def draw_positive(self, rng, eta, aux):
        """Draw counts conditioned on y > 0, exactly.

        The first event of a Poisson process of rate mu on (0, 1) falls at t (inverse CDF of
        the exponential truncated to (0, 1)) and the count is 1 + the events after it,
        Poisson(mu (1 - t)); log rate capped as in :meth:`draw`.
        """
        eta = np.asarray(eta, dtype=float)
        mu = np.exp(eta)
        with np.errstate(divide="ignore", invalid="ignore"):  # mu = 0: t is NaN, the count 1
            t = -np.log1p(-rng.random(eta.shape) * -np.expm1(-mu)) / mu
            log_rate = eta + np.log(np.fmax(1.0 - t, 1e-300))
        return 1 + rng.poisson(np.exp(np.fmin(log_rate, MAX_LOG_RATE)))

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

        return pm.Poisson.dist(**self.pymc_params(eta, aux))

    def pymc_params(self, eta, aux):
        """Return the PyMC distribution's parameters (of its zero-inflated and hurdle versions too)."""
        import pytensor.tensor as pt

        return {"mu": pt.exp(eta)}
