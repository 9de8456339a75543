"""Negative binomial counts, log link: overdispersed counts (an exposure enters as a log offset).

y ~ NegBinomial(mu = exp(eta), shape), Stan's ``neg_binomial_2_log``: mean mu, variance
mu + mu^2 / shape. A gamma-Poisson mixture: y ~ Poisson(mu g) with g ~ Gamma(shape, rate shape)
(mean 1), so a small ``shape`` means strong overdispersion and shape -> infinity is the Poisson.
The parameter is called ``shape`` as in brms (Stan calls it phi).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, expit

from ..priors import InverseGamma, Prior
from .base import AuxParam
from .poisson import MAX_LOG_RATE, Poisson


class _Shape(AuxParam):
    def default_prior(self, s_y: float) -> Prior:
        """InverseGamma(0.4, 0.3), brms's default (brms issue 1614).

        An approximation of the penalized-complexity prior that shrinks towards the Poisson
        (shape -> infinity): median 2.1, 90% of its mass on 0.18-720.
        """
        return InverseGamma(0.4, 0.3)


def _inv_shape(y: np.ndarray, mu: np.ndarray, inflate: float) -> float:
    """Method-of-moments 1 / shape from var = mu + mu^2 / shape about the means ``mu``.

    ``inflate`` scales the squared residuals up for the degrees of freedom spent on ``mu``.
    """
    excess = float(np.sum(inflate * (y - mu) ** 2 - mu))
    return max(excess / max(float(np.sum(mu**2)), 1e-300), 0.0)  # 0: no overdispersion


class NegBinomial(Poisson):
    """y ~ NegBinomial(exp(eta), shape): the mean as Poisson, variance mu + mu^2 / shape.

    Shares the Poisson's log link, data-scaled location (log of the mean rate), response
    checks, starting values and group estimates; adds the ``shape`` (> 0).
    """

    name = "negbinomial"
    aux = (_Shape("shape", "negative binomial shape (variance mu + mu^2 / shape)"),)
    aggregates_to = None  # sums of negative binomial counts are not negative binomial with the same shape
    distributional = ("shape",)
    dispersion_from_residuals = True  # see working()

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        phi = aux["shape"]
        log_phi = np.log(phi)
        # log(1 + mu / phi) without overflow, and log C(y + phi - 1, y) = -log(y + phi) -
        # log B(y + 1, phi): accurate for a large shape, where lgamma(y + phi) - lgamma(phi) cancels
        log1p_ratio = np.logaddexp(0.0, eta - log_phi)
        return (
            -np.log(y + phi) - betaln(y + 1.0, phi)
            + y * (eta - log_phi - log1p_ratio) - phi * log1p_ratio
        )

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        # gamma-Poisson mixture with the Poisson's overflow guard: the Poisson log-rate
        # eta + log(g) is drawn at min(., 20), as the Stan program does
        phi = np.broadcast_to(aux["shape"], np.shape(eta))
        g = rng.gamma(phi, 1.0 / phi)
        with np.errstate(divide="ignore"):  # g underflows to 0 for a tiny shape: rate 0, y = 0
            log_rate = np.minimum(eta + np.log(g), MAX_LOG_RATE)
        return rng.poisson(np.exp(log_rate))

    def log_prob_zero(self, eta, aux):
        """Log P(y = 0) = -shape log(1 + mu / shape) (zero-inflated and hurdle versions)."""
        phi = aux["shape"]
        return -phi * np.logaddexp(0.0, eta - np.log(phi))

    def draw_positive(self, rng, eta, aux):
        """Draw counts conditioned on y > 0, exactly, as a gamma-Poisson mixture.

        With r = shape / mu the rate of the gamma, the first event of the Poisson process on
        (0, 1) falls at t with density proportional to (r + t)^-(shape + 1) (inverse CDF), the
        Poisson rate given t is Gamma(shape + 1, rate r + t), and the count is
        1 + Poisson(rate (1 - t)); log rate capped as in :meth:`draw`.
        """
        eta = np.asarray(eta, dtype=float)
        phi = np.broadcast_to(aux["shape"], eta.shape)
        r = phi * np.exp(-eta)
        p_pos = -np.expm1(self.log_prob_zero(eta, aux))
        with np.errstate(invalid="ignore", divide="ignore"):  # a vanishing mean: NaN rate, the count 1
            t = r * np.expm1(-np.log1p(-rng.random(eta.shape) * p_pos) / phi)
            rate = rng.gamma(phi + 1.0, 1.0 / (r + t)) * (1.0 - t)
            log_rate = np.log(np.fmax(rate, 1e-300))
        return 1 + rng.poisson(np.exp(np.fmin(log_rate, MAX_LOG_RATE)))

    def working(self, y, trials, eta):  # noqa: D102
        # IRLS weights of the negative binomial at a shape estimated by the method of moments
        # from the pooled fit (var = mu + mu^2 / shape): the pooled residuals still hold the
        # group effects, so the shape is underestimated and the weights err small, towards
        # the non-centered choice (the safe one)
        mu = np.exp(eta)
        return mu / (1.0 + mu * _inv_shape(y, mu, 1.0)), (y - mu) / mu

    def refit_weights(self, y, trials, eta, fitted, df):  # noqa: D102
        mu = np.exp(eta)
        return mu / (1.0 + mu * _inv_shape(y, np.exp(fitted), y.size / (y.size - df)))

    def log_cdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        phi = aux["shape"]
        return stats.nbinom.logcdf(y, phi, expit(np.log(phi) - eta))  # p = phi / (phi + exp(eta))

    def log_ccdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        phi = aux["shape"]
        return stats.nbinom.logsf(y, phi, expit(np.log(phi) - eta))

    def pymc_dist(self, eta, aux, trials):  # noqa: D102
        import pymc as pm

        return pm.NegativeBinomial.dist(**self.pymc_params(eta, aux))

    def pymc_params(self, eta, aux):  # noqa: D102
        return {**super().pymc_params(eta, aux), "alpha": aux["shape"]}
