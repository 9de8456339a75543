"""Gamma response, log link: positive, right-skewed amounts (costs, durations, concentrations).

y ~ Gamma(shape, rate = shape / mu) with mu = exp(eta): mean mu, variance mu^2 / shape, so the
coefficient of variation 1 / sqrt(shape) is the same at every mean (brms's and R's ``Gamma``
parameterization). An offset enters on the log scale, as for the Poisson.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ..design import DataError
from ..priors import InverseGamma, Prior
from .base import AuxParam, Family


class Precision(AuxParam):
    """A dimensionless precision (the gamma's shape, the beta's phi): larger means less spread."""

    def default_prior(self, s_y: float) -> Prior:
        """InverseGamma(0.4, 0.3): median 2.1, 90% of its mass on 0.18-720.

        The prior brms uses for the negative binomial's shape, the shape of the gamma mixing
        distribution there (hbstan's ``negbinomial`` default too). It keeps the precision
        away from 0, where a gamma or beta response degenerates (draws underflow to 0, or
        pile up at 0 and 1), and has a heavy right tail for tightly concentrated data. For a
        gamma response it puts the coefficient of variation 1 / sqrt(shape) at median 0.70,
        90% on 0.037-2.4; for a beta response at mean 0.5, the SD 0.5 / sqrt(1 + phi) at
        median 0.29 (about the uniform's), 90% on 0.019-0.46. Data-free: both are
        dimensionless. brms's gamma(0.01, 0.01) is not used: 95% of its mass lies below 0.34
        (its median is 4e-29), so its prior predictive data are degenerate.
        """
        return InverseGamma(0.4, 0.3)


def check_positive(y: np.ndarray, name: str, family: str) -> None:
    """Raise :class:`~hbstan.DataError` naming the rows where ``y`` is not strictly positive."""
    bad = np.flatnonzero(~(y > 0))
    if bad.size:
        raise DataError(
            f"response {name!r} must be positive (> 0) for family={family!r}; rows {bad[:5].tolist()} "
            f"have {y[bad[:5]].tolist()}: a {family} density has no zeros or negative values. Drop "
            "those rows, or model the zeros apart (a hurdle model); for a response that can be "
            "negative use family='gaussian' or 'student'"
        )


def pearson_precision(r2: np.ndarray, df: float = 0.0) -> float:
    """Return 1 / (the mean squared Pearson residual): the gamma shape, or the beta's 1 + phi.

    ``r2`` are the squared Pearson residuals (residual^2 / the variance at a precision of 1);
    ``df`` the degrees of freedom spent on the means they are taken about, which makes a
    residual smaller than one about the true mean: the mean square is scaled up by n / (n - df).
    """
    return (1.0 - df / r2.size) / max(float(np.mean(r2)), 1e-12)


class GammaFamily(Family):
    """y ~ Gamma(shape, shape / exp(eta)): mean exp(eta), coefficient of variation 1 / sqrt(shape)."""

    name = "gamma"
    link = "log"
    integer_response = False
    censoring = True
    aux = (Precision("shape", "gamma shape (coefficient of variation 1 / sqrt(shape))"),)
    distributional = ("shape",)
    dispersion_from_residuals = True  # see working()

    def check_response(self, y, name, trials):  # noqa: D102
        check_positive(y, name, self.name)

    def response_scale(self, y, offset, trials):  # noqa: D102
        # the log of the mean (of y / exp(offset)): the intercept's location; 1 on the log scale
        return float(np.log(np.mean(y / np.exp(offset)))), 1.0

    def inverse_link(self, eta):  # noqa: D102
        return np.exp(eta)

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        a = aux["shape"]
        # rate a exp(-eta): a log(rate) - lgamma(a) + (a - 1) log(y) - rate y
        return a * (np.log(a) - eta) - gammaln(a) + (a - 1) * np.log(y) - a * y * np.exp(-eta)

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        a = np.broadcast_to(aux["shape"], np.shape(eta))
        return rng.gamma(a, np.exp(eta) / a)

    def working(self, y, trials, eta):  # noqa: D102
        # IRLS with variance mu^2 / shape: weight shape (the same for every row), working
        # residual (y - mu) / mu; the shape from the Pearson residuals of the pooled fit, which
        # still hold the group effects, so it errs small, towards non-centered (the safe side)
        r = y * np.exp(-eta) - 1.0
        return np.full(y.shape, pearson_precision(r * r)), r

    def refit_weights(self, y, trials, eta, fitted, df):  # noqa: D102
        r = y * np.exp(-fitted) - 1.0  # Pearson residuals about the fit with the group effects
        return np.full(y.shape, pearson_precision(r * r, df))

    def initial_eta(self, y, trials):  # noqa: D102
        return np.log(y)

    def empirical(self, y, index, J, offset, trials, response):  # noqa: D102
        rows = np.bincount(index, minlength=J).astype(float)
        y_j = np.bincount(index, weights=y, minlength=J)
        e_j = np.bincount(index, weights=np.exp(offset), minlength=J)
        return np.log(y_j / e_j), rows, f"log mean of {response} (empirical / intercept)", "observations in the group"

    def log_cdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        a = aux["shape"]
        return stats.gamma.logcdf(y, a, scale=np.exp(eta) / a)

    def log_ccdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        a = aux["shape"]
        return stats.gamma.logsf(y, a, scale=np.exp(eta) / a)

    def pymc_dist(self, eta, aux, trials):  # noqa: D102
        import pymc as pm
        import pytensor.tensor as pt

        a = aux["shape"]
        return pm.Gamma.dist(alpha=a, beta=a * pt.exp(-eta))
