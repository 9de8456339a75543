"""Student-t response, identity link: y ~ Student-t(nu, eta, sigma), robust to outliers."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ..priors import Exponential, Gamma, Prior
from .base import AuxParam
from .gaussian import Gaussian


class _Sigma(AuxParam):
    def default_prior(self, s_y: float) -> Prior:
        """Exponential(1 / s_y), as the Gaussian residual SD."""
        return Exponential(1.0 / s_y)


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
    aux = (_Sigma("sigma", "residual scale"), _Nu("nu", "degrees of freedom", lower=1.0))
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

    def fill_pointwise(self, y, eta, aux, trials, rng, ll, rep):  # noqa: D102
        rep[...] = self.draw(rng, eta, aux, trials)
        ll[...] = self.log_lik(y, eta, aux, trials)

    def pymc_likelihood(self, name, eta, aux, y, trials, dims):  # noqa: D102
        import pymc as pm

        return pm.StudentT(name, nu=aux["nu"], mu=eta, sigma=aux["sigma"], observed=y, dims=dims)
