"""Binomial response (successes out of trials), logit link."""

from __future__ import annotations

import numpy as np

from ..design import DataError
from ._logit import LogitFamily


class Binomial(LogitFamily):
    """y ~ Binomial(trials, logit^-1(eta)); trials from ``y | trials(n)`` or ``trials=``."""

    name = "binomial"
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

        return pm.Binomial.dist(n=trials.astype(int), logit_p=eta)
