"""What the success-probability families (Bernoulli, binomial) share: the probability and its links.

The probability of a success is p = F(eta) for the link's inverse F:

- ``logit`` (default): F(eta) = 1 / (1 + exp(-eta)), the logistic CDF;
- ``probit``: F(eta) = Phi(eta), the standard normal CDF (a latent normal threshold model);
- ``cloglog``: F(eta) = 1 - exp(-exp(eta)), the complementary log-log (an event of a Poisson
  process with log-rate eta happening at least once; asymmetric, as for rare events).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln, log_expit, log_ndtr, logit, ndtr, ndtri

from .base import Family

__all__ = ["BinaryFamily", "log_p", "inverse_link"]

LINKS = ("logit", "probit", "cloglog")


def inverse_link(link: str, eta: np.ndarray) -> np.ndarray:
    """p = F(eta)."""
    if link == "logit":
        return expit(eta)
    if link == "probit":
        return ndtr(eta)
    return -np.expm1(-np.exp(eta))  # cloglog


def log_p(link: str, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p, log(1 - p)), each accurate in its tail."""
    eta = np.asarray(eta, float)
    if link == "logit":
        return log_expit(eta), log_expit(-eta)
    if link == "probit":
        return log_ndtr(eta), log_ndtr(-eta)
    e = np.exp(eta)  # cloglog: 1 - p = exp(-e^eta)
    with np.errstate(divide="ignore"):
        return np.log(-np.expm1(-e)), -e


def _link(link: str, p: np.ndarray) -> np.ndarray:
    """eta = F^-1(p)."""
    if link == "logit":
        return logit(p)
    if link == "probit":
        return ndtri(p)
    return np.log(-np.log1p(-p))  # cloglog


def _dp_deta(link: str, eta: np.ndarray) -> np.ndarray:
    """dp / deta for the probit and cloglog links."""
    if link == "probit":
        return np.exp(-0.5 * eta**2) / np.sqrt(2 * np.pi)
    return np.exp(eta - np.exp(eta))  # cloglog


class BinaryFamily(Family):
    """Successes out of ``n`` trials with success probability F(eta); n = 1: Bernoulli."""

    link = "logit"
    links = LINKS

    def _n(self, trials: np.ndarray | None, like: np.ndarray) -> np.ndarray:
        return np.ones_like(like) if trials is None else trials

    def inverse_link(self, eta):  # noqa: D102
        return inverse_link(self.link, eta)

    def mean(self, eta, aux, trials):  # noqa: D102
        p = self.inverse_link(eta)
        return p if trials is None else p * trials

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        lp, lq = log_p(self.link, eta)
        if trials is None:
            return np.where(y == 1, lp, lq)
        n = trials
        # 0 * log(0) is 0 here: a certain outcome that happened has probability 1
        with np.errstate(invalid="ignore"):
            ly = np.where(y > 0, y * lp, 0.0)
            lny = np.where(n - y > 0, (n - y) * lq, 0.0)
        return gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1) + ly + lny

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        n = 1 if trials is None else np.asarray(trials).astype(int)
        return rng.binomial(n, self.inverse_link(eta))

    def working(self, y, trials, eta):  # noqa: D102
        p = np.clip(self.inverse_link(eta), 1e-6, 1 - 1e-6)
        d = p * (1 - p) if self.link == "logit" else np.maximum(_dp_deta(self.link, eta), 1e-12)
        w = trials * d**2 / (p * (1 - p))
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.where(w > 0, (y - trials * p) / (trials * d), 0.0)
        return w, e

    def initial_eta(self, y, trials):  # noqa: D102
        return _link(self.link, (y + 0.5) / (trials + 1.0))

    def empirical(self, y, index, J, offset, trials, response):  # noqa: D102
        n = self._n(trials, y)
        s_j = np.bincount(index, weights=y, minlength=J)
        n_j = np.bincount(index, weights=n, minlength=J)
        est = _link(self.link, (s_j + 0.5) / (n_j + 1.0))  # empirical link, finite at 0 and n
        if trials is None:
            size, label = np.bincount(index, minlength=J).astype(float), "observations in the group"
        else:
            size, label = n_j, "trials in the group"
        return est, size, f"{self.link} P({response}) (empirical {self.link} / intercept)", label

    def pymc_p(self, eta):
        """The success probability as a PyTensor expression (probit and cloglog links)."""
        import pytensor.tensor as pt

        if self.link == "probit":
            return 0.5 * pt.erfc(-eta / np.sqrt(2.0))
        return -pt.expm1(-pt.exp(eta))  # cloglog
