"""Hurdle negative binomial counts, log link (brms's ``hurdle_negbinomial``).

y = 0 with probability ``hu``, else y ~ NegBinomial(exp(eta), shape) (as the ``negbinomial``
family) conditioned on y > 0. Expected response (1 - hu) mu / (1 - (shape / (shape + mu))^shape).
"""

from __future__ import annotations

from ._zero import Hurdle
from .hurdle_poisson import HU
from .negbinomial import NegBinomial


class HurdleNegBinomial(Hurdle, NegBinomial):
    """y ~ hu * [y = 0] + (1 - hu) * NegBinomial(exp(eta), shape | y > 0)."""

    name = "hurdle_negbinomial"
    aux = (*NegBinomial.aux, HU)
    distributional = ("shape", "hu")
    pymc_name = "HurdleNegativeBinomial"
