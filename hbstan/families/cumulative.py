"""Cumulative ordinal regression (brms's ``cumulative``): an ordered response in K categories.

A latent y* = eta + e, with e logistic (``link="logit"``, default) or standard normal
(``link="probit"``), falls between ordered thresholds c_1 < ... < c_{K-1}:

    P(y <= k) = F(c_k - eta),   k = 1..K-1,

so P(y = k) = F(c_k - eta) - F(c_{k-1} - eta) with c_0 = -inf and c_K = +inf. The thresholds
replace the intercept: the linear predictor eta has none, and group effects shift the latent
scale. In the program the thresholds are the family's parameter ``Intercept`` (Stan
``ordered[ncat - 1]``), at the predictors' means; the posterior reports them on the
original scale of the predictors (``Intercept`` with one coordinate per threshold, labelled
``"1|2"``, ``"2|3"``, ... from the category labels). Their default prior is brms's,
student_t(3, 0, 2.5) on each.

The response is an ordered pandas Categorical (its categories, in order, are the K
categories, even if some are not observed) or whole numbers 1..K (K the largest). Inside
hbstan it is the category number 1..K; the labels are coordinates only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit, log_ndtr, ndtr

from ..design import DataError
from ._categories import category_numbers
from .base import Family

__all__ = ["Cumulative", "threshold_labels"]


def threshold_labels(levels: list[str]) -> list[str]:
    """Coordinates of the K - 1 thresholds: ``"a|b"`` between consecutive categories a and b."""
    return [f"{a}|{b}" for a, b in zip(levels[:-1], levels[1:])]


def _log_cdf(link: str, x: np.ndarray) -> np.ndarray:
    return log_expit(x) if link == "logit" else log_ndtr(x)


def _log_diff(link: str, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """log(F(hi) - F(lo)) for hi > lo (either may be infinite), accurate in both tails.

    Where the interval lies mostly below 0 the difference of CDFs is used, F(hi) - F(lo) =
    F(hi) (1 - F(lo) / F(hi)); above 0 the difference of survival functions, F(-lo) - F(-hi),
    so that neither rounds to 1 - 1.
    """
    upper = (hi + lo) > 0  # nan (inf - inf) cannot occur: hi > lo
    a = np.where(upper, -lo, hi)
    b = np.where(upper, -hi, lo)
    la = _log_cdf(link, a)
    with np.errstate(divide="ignore"):
        lb = _log_cdf(link, b)
        return la + np.log1p(-np.exp(lb - la))


class Cumulative(Family):
    """Ordinal y in 1..K: P(y <= k) = F(c_k - eta), F logistic (logit) or normal (probit)."""

    name = "cumulative"
    link = "logit"
    links = ("logit", "probit")
    integer_response = True
    thresholds = True
    weighting = False  # its PyMC side has no pymc_dist to weight (yet)

    # ------------------------------------------------------------------ data
    def encode_response(self, column: pd.Series, name: str) -> tuple[np.ndarray, list[str]]:
        """Category numbers 1..K and the K category labels."""
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            if not dtype.ordered:
                raise DataError(
                    f"response {name!r} is an unordered pandas Categorical; family='cumulative' needs "
                    "the order of its categories: make it ordered, e.g. "
                    f"df[{name!r}] = pd.Categorical(df[{name!r}], categories=[lowest, ..., highest], ordered=True)"
                )
            levels = [str(c) for c in dtype.categories]
            if len(levels) < 2:
                raise DataError(f"response {name!r} has {len(levels)} category: family='cumulative' needs at least 2")
            return column.cat.codes.to_numpy().astype(float) + 1.0, levels
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise DataError(
                f"response {name!r} holds {dtype} values; family='cumulative' needs category numbers "
                "1..K or an ordered pandas Categorical, e.g. "
                f"df[{name!r}] = pd.Categorical(df[{name!r}], categories=[lowest, ..., highest], ordered=True)"
            )
        y = column.to_numpy(dtype=float)
        levels = category_numbers(y, name, "cumulative", "the lowest", "pass an ordered pandas Categorical")
        if len(levels) < 2:
            raise DataError(f"response {name!r} has a single category (every row is 1): there is nothing to model")
        return y, levels

    def check_response(self, y, name, trials):  # noqa: D102
        return None  # encode_response has checked it

    def response_scale(self, y, offset, trials):  # noqa: D102
        return 0.0, 1.0  # the latent scale: F has unit scale (logistic SD 1.8, normal SD 1)

    # ------------------------------------------------------------------ NumPy
    def _F(self, x: np.ndarray) -> np.ndarray:
        return expit(x) if self.link == "logit" else ndtr(x)

    def cum_probs(self, eta: np.ndarray, aux: dict[str, Any]) -> np.ndarray:
        """P(y <= k), k = 1..K-1: (..., n, K - 1)."""
        c = aux["thresholds"]  # (..., 1, K - 1) broadcasting against eta[..., None]
        return self._F(c - np.asarray(eta)[..., None])

    def category_probs(self, eta: np.ndarray, aux: dict[str, Any]) -> np.ndarray:
        """P(y = k), k = 1..K: (..., n, K); each row sums to 1."""
        cp = self.cum_probs(eta, aux)
        shape = cp.shape[:-1] + (1,)
        return np.diff(np.concatenate([np.zeros(shape), cp, np.ones(shape)], axis=-1), axis=-1)

    def mean(self, eta, aux, trials):  # noqa: D102
        # the expected category number: 1 + sum_k P(y > k)
        cp = self.cum_probs(eta, aux)
        return 1.0 + np.sum(1.0 - cp, axis=-1)

    def inverse_link(self, eta):  # pragma: no cover - the mean needs the thresholds
        raise TypeError("family='cumulative' has no mean without its thresholds: use mean(eta, aux, trials)")

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        c = np.asarray(aux["thresholds"], float)  # (..., 1, K - 1)
        inf = np.full(c.shape[:-1] + (1,), np.inf)
        cpad = np.concatenate([-inf, c, inf], axis=-1)  # c_0 = -inf, ..., c_K = +inf
        k = np.asarray(y).astype(int)
        hi = np.take(cpad, k, axis=-1)[..., 0, :]  # c_y: (..., n)
        lo = np.take(cpad, k - 1, axis=-1)[..., 0, :]  # c_{y-1}
        return _log_diff(self.link, hi - eta, lo - eta)

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        eta = np.asarray(eta, float)
        e = rng.logistic(size=eta.shape) if self.link == "logit" else rng.standard_normal(eta.shape)
        latent = eta + e
        c = np.asarray(aux["thresholds"], float)
        return 1 + np.sum(c < latent[..., None], axis=-1).astype(np.int64)

    # ------------------------------------------------------------------ centering rule and plots
    # On the latent scale, approximately: the category numbers are scored as standardized
    # latent values (each category at the latent mean of its slice of the pooled
    # distribution), the rows weighted by the information of an ordinal observation about a
    # shift of eta, which for the logistic is 1/3 of a binary one at p = 1/2 (var(logistic)
    # = pi^2/3); it is a rough guide for the centering rule, not an estimate.
    def _scores(self, y: np.ndarray) -> np.ndarray:
        K = int(np.max(y))
        counts = np.bincount(y.astype(int), minlength=K + 1)[1:].astype(float) + 0.5
        cum = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
        mid = (cum[:-1] + cum[1:]) / 2
        if self.link == "logit":
            s = np.log(mid / (1 - mid))
        else:
            from scipy.special import ndtri

            s = ndtri(mid)
        return s[y.astype(int) - 1]

    def working(self, y, trials, eta):  # noqa: D102
        e = self._scores(y) - eta
        scale2 = np.pi**2 / 3 if self.link == "logit" else 1.0
        return np.full(y.shape, 1.0 / scale2), e

    def initial_eta(self, y, trials):  # noqa: D102
        return np.zeros(y.shape)

    def empirical(self, y, index, J, offset, trials, response):  # noqa: D102
        rows = np.bincount(index, minlength=J).astype(float)
        est = np.bincount(index, weights=self._scores(y), minlength=J) / rows
        return est, rows, f"latent {response} (mean category score)", "observations in the group"

    # ------------------------------------------------------------------ PyMC
    def pymc_likelihood(self, name, eta, aux, y, trials, dims):  # noqa: D102
        import pymc as pm

        # PyMC's categories are 0..K-1 with P(y <= k) = F(c_k - eta): the same convention
        obs = np.asarray(y).astype(int) - 1
        if self.link == "logit":
            return pm.OrderedLogistic(name, eta=eta, cutpoints=aux["thresholds"], observed=obs, dims=dims, compute_p=False)
        return pm.OrderedProbit(name, eta=eta, cutpoints=aux["thresholds"], sigma=1.0, observed=obs, dims=dims, compute_p=False)
