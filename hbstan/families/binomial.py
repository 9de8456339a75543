"""Binomial response (successes out of trials): logit (default), probit or cloglog link."""

from __future__ import annotations

import numpy as np

from ..design import DataError
from ._binary import BinaryFamily


class Binomial(BinaryFamily):
    """y ~ Binomial(trials, F(eta)), F the inverse link; trials from ``y | trials(n)`` or ``trials=``."""

    name = "binomial"
    multivariate = True
    trials = True

    def check_response(self, y, name, trials):  # noqa: D102
        super().check_response(y, name, trials)
        n = trials
        bad = np.flatnonzero((n != np.round(n)) | (n < 0))
        if bad.size:
            raise DataError(f"trials must be non-negative whole numbers; rows {bad[:5].tolist()} are not")
        over = np.flatnonzero(y > n)
        if over.size:
            raise DataError(
                f"response {name!r} exceeds the number of trials in rows {over[:5].tolist()} "
                f"(successes {y[over[:5]].tolist()} > trials {n[over[:5]].tolist()})"
            )

    def pymc_dist(self, eta, aux, trials):  # noqa: D102
        import pymc as pm

        if self.link == "logit":
            return pm.Binomial.dist(n=trials.astype(int), logit_p=eta)
        return pm.Binomial.dist(n=trials.astype(int), p=self.pymc_p(eta))
