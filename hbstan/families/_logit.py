"""What the logit-link families (Bernoulli, binomial) share."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, log_expit

from .base import Family


class LogitFamily(Family):
    """Successes out of ``n`` trials with success probability logit^-1(eta); n = 1: Bernoulli."""

    link = "logit"

    def _n(self, trials: np.ndarray | None, like: np.ndarray) -> np.ndarray:
        return np.ones_like(like) if trials is None else trials

    def inverse_link(self, eta):  # noqa: D102
        return 1.0 / (1.0 + np.exp(-eta))

    def mean(self, eta, aux, trials):  # noqa: D102
        p = self.inverse_link(eta)
        return p if trials is None else p * trials

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        if trials is None:
            return np.where(y == 1, log_expit(eta), log_expit(-eta))
        n = trials
        return gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1) + y * log_expit(eta) + (n - y) * log_expit(-eta)

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        n = 1 if trials is None else np.asarray(trials).astype(int)
        return rng.binomial(n, np.exp(log_expit(eta)))

    def working(self, y, trials, eta):  # noqa: D102
        p = np.clip(1 / (1 + np.exp(-eta)), 1e-6, 1 - 1e-6)
        w = trials * p * (1 - p)
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.where(w > 0, (y - trials * p) / w, 0.0)
        return w, e

    def initial_eta(self, y, trials):  # noqa: D102
        return np.log((y + 0.5) / (trials - y + 0.5))

    def empirical(self, y, index, J, offset, trials, response):  # noqa: D102
        n = self._n(trials, y)
        s_j = np.bincount(index, weights=y, minlength=J)
        n_j = np.bincount(index, weights=n, minlength=J)
        est = np.log((s_j + 0.5) / (n_j - s_j + 0.5))  # empirical logit, finite at 0 and n
        if trials is None:
            size, label = np.bincount(index, minlength=J).astype(float), "observations in the group"
        else:
            size, label = n_j, "trials in the group"
        return est, size, f"logit P({response}) (empirical logit / intercept)", label
