"""Beta response, logit link: proportions and rates strictly between 0 and 1.

y ~ Beta(mu phi, (1 - mu) phi) with mu = logit^-1(eta): mean mu, variance mu (1 - mu) / (1 + phi),
so ``phi`` is a precision (brms's and Stan's ``beta_proportion`` parameterization, Ferrari &
Cribari-Neto 2004). For successes out of a known number of trials use ``binomial`` instead.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln

from ..design import DataError
from .base import Family
from .gamma import Precision, pearson_precision

# replicated responses are kept inside (0, 1): at most the largest double below 1 (Stan's
# 1 - machine_precision() / 2) and at least 1e-300
DRAW_MIN, DRAW_MAX = 1e-300, 1.0 - np.finfo(float).eps / 2


class Beta(Family):
    """y ~ Beta(logit^-1(eta) phi, logit^-1(-eta) phi): mean logit^-1(eta), precision phi."""

    name = "beta"
    link = "logit"
    integer_response = False
    aux = (Precision("phi", "beta precision (variance mu (1 - mu) / (1 + phi))"),)
    distributional = ("phi",)
    dispersion_from_residuals = True  # see working()

    def check_response(self, y, name, trials):  # noqa: D102
        bad = np.flatnonzero(~((y > 0) & (y < 1)))
        if bad.size:
            raise DataError(
                f"response {name!r} must lie strictly between 0 and 1 for family='beta'; rows "
                f"{bad[:5].tolist()} have {y[bad[:5]].tolist()}. A beta density has no exact 0 or 1: "
                "for proportions of n units shrink them as (y (n - 1) + 0.5) / n (Smithson & "
                "Verkuilen 2006), or use family='binomial' with y | trials(n) for counts out of n; "
                "percentages go in as fractions (y / 100)"
            )

    def response_scale(self, y, offset, trials):  # noqa: D102
        # the logit of the mean proportion, less the mean offset; 1 on the logit scale
        m = float(np.mean(y))
        return float(np.log(m / (1 - m)) - np.mean(offset)), 1.0

    def inverse_link(self, eta):  # noqa: D102
        return expit(eta)

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        phi = aux["phi"]
        # the shape parameters from logit^-1(eta) and logit^-1(-eta): each accurate in its tail
        a, b = expit(eta) * phi, expit(-eta) * phi
        return gammaln(phi) - gammaln(a) - gammaln(b) + (a - 1) * np.log(y) + (b - 1) * np.log1p(-y)

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        phi = aux["phi"]
        y = rng.beta(expit(eta) * phi, expit(-eta) * phi)
        # at a small shape parameter a draw can round to exactly 0 or 1 (Beta(1.2, 0.08): 1 in 20
        # draws is within 2^-53 of 1): such draws are kept inside (0, 1), as the program does
        return np.clip(y, DRAW_MIN, DRAW_MAX)

    def working(self, y, trials, eta):  # noqa: D102
        # IRLS of beta regression: d mu / d eta = mu (1 - mu) and variance mu (1 - mu) / (1 + phi),
        # so weight mu (1 - mu) (1 + phi) and working residual (y - mu) / (mu (1 - mu)); phi from
        # the Pearson residuals of the pooled fit, which still hold the group effects, so it
        # errs small, towards non-centered (the safe side)
        mu = np.clip(expit(eta), 1e-6, 1 - 1e-6)
        v = mu * (1 - mu)
        return v * pearson_precision((y - mu) ** 2 / v), (y - mu) / v

    def refit_weights(self, y, trials, eta, fitted, df):  # noqa: D102
        mu = np.clip(expit(eta), 1e-6, 1 - 1e-6)
        m = np.clip(expit(fitted), 1e-6, 1 - 1e-6)  # Pearson residuals about the fit with the group effects
        return mu * (1 - mu) * pearson_precision((y - m) ** 2 / (m * (1 - m)), df)

    def initial_eta(self, y, trials):  # noqa: D102
        m = (y + np.mean(y)) / 2  # halfway to the mean: finite, and never at the logit's extremes
        return np.log(m) - np.log1p(-m)

    def empirical(self, y, index, J, offset, trials, response):  # noqa: D102
        rows = np.bincount(index, minlength=J).astype(float)
        m = np.bincount(index, weights=y, minlength=J) / rows
        return np.log(m) - np.log1p(-m), rows, f"logit mean of {response} (empirical / intercept)", "observations in the group"

    def pymc_dist(self, eta, aux, trials):  # noqa: D102
        import pymc as pm
        import pytensor.tensor as pt

        phi = aux["phi"]
        return pm.Beta.dist(alpha=pt.sigmoid(eta) * phi, beta=pt.sigmoid(-eta) * phi)

