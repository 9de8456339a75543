"""Bernoulli response (0/1): logit (default), probit or cloglog link."""

from __future__ import annotations

import numpy as np

from ..design import DataError
from ._binary import BinaryFamily


class Bernoulli(BinaryFamily):
    """y ~ Bernoulli(F(eta)), F the inverse link; rows with identical predictors can be summed into binomial counts."""

    name = "bernoulli"
    multivariate = True
    aggregates_to = "binomial"

    def check_response(self, y, name, trials):  # noqa: D102
        bad = np.flatnonzero((y != 0) & (y != 1))
        if bad.size:
            raise DataError(
                f"response {name!r} must be 0 or 1 for family='bernoulli'; rows {bad[:5].tolist()} "
                f"have {y[bad[:5]].tolist()}"
            )

    def pymc_dist(self, eta, aux, trials):  # noqa: D102
        import pymc as pm

        if self.link == "logit":
            return pm.Bernoulli.dist(logit_p=eta)
        return pm.Bernoulli.dist(p=self.pymc_p(eta))
