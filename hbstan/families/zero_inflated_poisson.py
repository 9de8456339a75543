"""Zero-inflated Poisson counts, log link (brms's ``zero_inflated_poisson``).

y = 0 with probability ``zi`` (a structural zero), else y ~ Poisson(exp(eta)): counts with more
zeros than a Poisson of their mean allows (a population partly not at risk). Expected
response (1 - zi) exp(eta); an exposure enters as a log offset of the Poisson rate.
"""

from __future__ import annotations

from ._zero import ZeroInflated, ZeroProbability
from .poisson import Poisson

ZI = ZeroProbability("zi", "zero-inflation probability (of a structural zero)")


class ZeroInflatedPoisson(ZeroInflated, Poisson):
    """y ~ zi * [y = 0] + (1 - zi) * Poisson(exp(eta))."""

    name = "zero_inflated_poisson"
    aux = (ZI,)
    distributional = ("zi",)
    pymc_name = "ZeroInflatedPoisson"
