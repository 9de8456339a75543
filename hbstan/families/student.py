"""Student-t response, identity link: y ~ Student-t(nu, eta, sigma), robust to outliers."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ..priors import Gamma, Prior
from .base import AuxParam, Family
from .gaussian import Gaussian, Sigma


class _Nu(AuxParam):
    def default_prior(self, s_y: float) -> Prior:
        """Gamma(2, 0.1) (brms's default): mean 20, most mass on 3-50."""
        return Gamma(2.0, 0.1)


class Student(Gaussian):
    """Heavy-tailed errors: scale ``sigma`` and degrees of freedom ``nu`` (> 1) are estimated.

    Shares the Gaussian's identity link, data-scaled location and group estimates; it has no
    sufficient statistics, so its group effects are always sampled.
    """

    name = "student"
    rescor = "multi_student_t_cholesky"
    aux = (Sigma("sigma", "residual scale"), _Nu("nu", "degrees of freedom", lower=1.0))
    suff_stats = False

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        nu, sigma = aux["nu"], aux["sigma"]
        z = (y - eta) / sigma
        return (
            gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi) - np.log(sigma)
            - (nu + 1) / 2 * np.log1p(z * z / nu)
        )

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        nu = np.broadcast_to(aux["nu"], np.shape(eta))
        return eta + aux["sigma"] * rng.standard_t(nu)

    # the Gaussian's in-place version is the normal density's: back to the generic one
    fill_pointwise = Family.fill_pointwise

    def log_cdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        return stats.t.logcdf(y, aux["nu"], eta, aux["sigma"])

    def log_ccdf(self, y, eta, aux, trials):  # noqa: D102
        from scipy import stats  # lazily: importing scipy.stats costs every process a fraction of a second
        return stats.t.logsf(y, aux["nu"], eta, aux["sigma"])

    def pymc_dist(self, eta, aux, trials):  # noqa: D102
        import pymc as pm

        return pm.StudentT.dist(nu=aux["nu"], mu=eta, sigma=aux["sigma"])
