"""Zero-inflated negative binomial counts, log link (brms's ``zero_inflated_negbinomial``).

y = 0 with probability ``zi`` (a structural zero), else y ~ NegBinomial(exp(eta), shape) as the
``negbinomial`` family (variance mu + mu^2 / shape): overdispersed counts with extra zeros.
Expected response (1 - zi) exp(eta).
"""

from __future__ import annotations

from ._zero import ZeroInflated
from .negbinomial import NegBinomial
from .zero_inflated_poisson import ZI


class ZeroInflatedNegBinomial(ZeroInflated, NegBinomial):
    """y ~ zi * [y = 0] + (1 - zi) * NegBinomial(exp(eta), shape)."""

    name = "zero_inflated_negbinomial"
    aux = (*NegBinomial.aux, ZI)
    distributional = ("shape", "zi")
    pymc_name = "ZeroInflatedNegativeBinomial"
