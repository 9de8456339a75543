"""Hurdle Poisson counts, log link (brms's ``hurdle_poisson``).

y = 0 with probability ``hu``, else y ~ Poisson(exp(eta)) conditioned on y > 0: one process
decides whether a count is zero (crossing the hurdle), another how large a positive count is.
Expected response (1 - hu) mu / (1 - exp(-mu)), mu = exp(eta).
"""

from __future__ import annotations

from ._zero import Hurdle, ZeroProbability
from .poisson import Poisson

HU = ZeroProbability("hu", "hurdle probability (of a zero)")


class HurdlePoisson(Hurdle, Poisson):
    """y ~ hu * [y = 0] + (1 - hu) * Poisson(exp(eta) | y > 0)."""

    name = "hurdle_poisson"
    aux = (HU,)
    distributional = ("hu",)
    pymc_name = "HurdlePoisson"
