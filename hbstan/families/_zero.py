"""What the zero-inflated and hurdle families share: a probability of zero and a base family.

brms's definitions, with its parameter names:

* **zero-inflated** (``zi``): y = 0 with probability zi (a structural zero), else y follows the
  base family, which may give a zero too: P(0) = zi + (1 - zi) P_base(0), and
  P(y) = (1 - zi) P_base(y) for y > 0. Expected response (1 - zi) mu.
* **hurdle** (``hu``): y = 0 with probability hu, else y follows the base family conditioned on
  y > 0: P(0) = hu, P(y) = (1 - hu) P_base(y) / (1 - P_base(0)) for y > 0 (a continuous base
  has P_base(0) = 0). Expected response (1 - hu) mu / (1 - P_base(0)).

The linear predictor is the base family's (the log mean of the counts, or the mean of log(y)
for the lognormal), and the base family keeps its link, response scale, starting values and
group estimates, computed on the positive responses: the zeros say little (zero-inflated) or
nothing (hurdle) about the base family's mean. A base family gives the log probability of
zero (:meth:`log_prob_zero`) and draws conditioned on y > 0 (:meth:`draw_positive`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..design import DataError
from ..priors import Beta, Prior
from .base import AuxParam, Family

__all__ = ["ZeroProbability", "ZeroInflated", "Hurdle", "log1m_exp"]


@dataclass(frozen=True)
class ZeroProbability(AuxParam):
    """The probability of a zero from the zero part (``zi``, ``hu``), in (0, 1)."""

    upper: float = 1.0

    def default_prior(self, s_y: float) -> Prior:
        """Beta(1, 1), uniform on (0, 1): brms's default for ``zi`` and ``hu``."""
        return Beta(1.0, 1.0)


def log1m_exp(x: Any) -> Any:
    """log(1 - exp(x)) for x <= 0, accurate at both ends (Maechler 2012)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(x > -np.log(2.0), np.log(-np.expm1(np.minimum(x, 0.0))), np.log1p(-np.exp(np.minimum(x, 0.0))))


def _rows(a: Any, keep: np.ndarray) -> Any:
    """``a[keep]`` for a per-row array, ``a`` itself for a scalar or None."""
    return a[keep] if np.ndim(a) else a


class _ZeroPart(Family):
    """A base family (the next class in the MRO) with a probability of zero ``prob``."""

    prob: ClassVar[str]  # the name of the zero probability: "zi" or "hu"
    # each family lists its own: its base family's and the zero probability
    distributional: ClassVar[tuple[str, ...]] = ()
    censoring: ClassVar[bool] = False  # the zero part has no CDF in the template (yet)
    aggregates_to: ClassVar[str | None] = None  # zeros of single rows: rows cannot be summed
    weighting: ClassVar[bool] = False  # its PyMC side has no pymc_dist to weight (yet)
    pymc_name: ClassVar[str]  # PyMC's distribution of the family (its psi is 1 - zi or 1 - hu)

    def check_response(self, y, name, trials):  # noqa: D102
        if self.integer_response:  # the base's count check allows zeros
            super().check_response(y, name, trials)
        else:
            bad = np.flatnonzero(~(y >= 0))
            if bad.size:
                raise DataError(
                    f"response {name!r} must be zero or positive (>= 0) for family={self.name!r}; rows "
                    f"{bad[:5].tolist()} have {y[bad[:5]].tolist()}"
                )
        if not np.any(y > 0):
            raise DataError(
                f"response {name!r} holds only zeros: family={self.name!r} needs positive values to "
                "estimate the mean of its non-zero part"
            )

    def response_scale(self, y, offset, trials):  # noqa: D102
        pos = y > 0
        return super().response_scale(y[pos], _rows(offset, pos), _rows(trials, pos))

    def working(self, y, trials, eta):  # noqa: D102
        # the base family's IRLS weights on the positive responses; the zeros get weight 0
        # (a hurdle's zeros say nothing about mu, a zero-inflated model's little): the
        # information errs small, towards the non-centered choice (the safe side)
        pos = y > 0
        w, e = np.zeros(y.shape), np.zeros(y.shape)
        w[pos], e[pos] = super().working(y[pos], _rows(trials, pos), eta[pos])
        return w, e

    def refit_weights(self, y, trials, eta, fitted, df):  # noqa: D102
        pos = y > 0  # as working: the positive responses only
        wp = super().refit_weights(y[pos], _rows(trials, pos), eta[pos], fitted[pos], df * pos.mean())
        if wp is None:
            return None
        w = np.zeros(y.shape)
        w[pos] = wp
        return w

    def initial_eta(self, y, trials):  # noqa: D102
        pos = y > 0
        start = super().initial_eta(y[pos], _rows(trials, pos))
        out = np.full(y.shape, float(np.mean(start)))
        out[pos] = start
        return out

    def empirical(self, y, index, J, offset, trials, response):  # noqa: D102
        # the base family's group estimates from the positive responses (NaN for a group
        # without any), with the group's number of observations
        pos = y > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            est, _, label, xlabel = super().empirical(
                y[pos], index[pos], J, _rows(offset, pos), _rows(trials, pos), f"{response} > 0"
            )
        has = np.bincount(index[pos], minlength=J) > 0
        return np.where(has, est, np.nan), np.bincount(index, minlength=J).astype(float), label, xlabel

    def pymc_likelihood(self, name, eta, aux, y, trials, dims):  # noqa: D102
        # PyMC's zero-inflated and hurdle distributions take psi, the probability of the
        # base (non-zero) component: 1 - zi, 1 - hu
        import pymc as pm

        dist = getattr(pm, self.pymc_name)
        obs = y.astype(int) if self.integer_response else y
        return dist(name, psi=1.0 - aux[self.prob], **self.pymc_params(eta, aux), observed=obs, dims=dims)


class ZeroInflated(_ZeroPart):
    """Zero-inflated version of the base family: a structural zero with probability ``zi``."""

    prob = "zi"

    def mean(self, eta, aux, trials):  # noqa: D102
        return (1.0 - aux["zi"]) * super().mean(eta, aux, trials)

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        zi = aux["zi"]
        base = np.log1p(-zi) + super().log_lik(y, eta, aux, trials)
        return np.where(y == 0, np.logaddexp(np.log(zi), base), base)

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        y = super().draw(rng, eta, aux, trials)
        return np.where(rng.random(np.shape(y)) < aux["zi"], 0, y)


class Hurdle(_ZeroPart):
    """Hurdle version of the base family: zero with probability ``hu``.

    Else the base family conditioned on a positive value.
    """

    prob = "hu"

    def mean(self, eta, aux, trials):  # noqa: D102
        return (1.0 - aux["hu"]) * super().mean(eta, aux, trials) / np.exp(log1m_exp(self.log_prob_zero(eta, aux)))

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        hu = aux["hu"]
        pos = y > 0
        base = super().log_lik(np.where(pos, y, 1), eta, aux, trials)  # (1 in place of 0: unused)
        return np.where(pos, np.log1p(-hu) + base - log1m_exp(self.log_prob_zero(eta, aux)), np.log(hu))

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        y = self.draw_positive(rng, eta, aux)
        return np.where(rng.random(np.shape(y)) < aux["hu"], 0, y)
