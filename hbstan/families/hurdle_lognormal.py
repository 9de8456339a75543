"""Hurdle lognormal response (brms's ``hurdle_lognormal``): amounts that are zero or positive.

y = 0 with probability ``hu``, else log(y) ~ N(eta, sigma) as the ``lognormal`` family (identity
link on the mean of log(y)): spending, rainfall, durations with exact zeros. Expected response
(1 - hu) exp(eta + sigma^2 / 2). The default priors of the intercept and ``sigma`` are scaled
by log(y) of the positive responses.
"""

from __future__ import annotations

from ._zero import Hurdle
from .hurdle_poisson import HU
from .lognormal import LogNormal


class HurdleLogNormal(Hurdle, LogNormal):
    """y ~ hu * [y = 0] + (1 - hu) * LogNormal(eta, sigma)."""

    name = "hurdle_lognormal"
    aux = (*LogNormal.aux, HU)
    distributional = ("sigma", "hu")
    pymc_name = "HurdleLogNormal"
