"""Categorical regression (brms's ``categorical``): an unordered response in K categories.

The multinomial logit against a reference category, the first: each other category k has a
linear predictor eta_k of its own (its own intercept, coefficients and group effects), and

    P(y = k) = exp(eta_k) / sum_j exp(eta_j),   eta_1 = 0,

so eta_k is the log odds of category k against the reference. In the program the linear
predictors are the columns 2..K of a matrix (column 1 is 0) and the likelihood is Stan's
``categorical_logit_glm`` (no group terms) or ``categorical_logit``. In the posterior every
coefficient has a last dimension ``category`` whose coordinates are the labels of the K - 1
non-reference categories (brms's ``b_mu<level>_x``); group effects, and their SDs, are
independent across categories, as brms's ``(1 | g)`` in a categorical model.

The response is a pandas Categorical (its categories in order; the first is the reference),
text (categories in sorted order, as pandas and R's ``factor`` give them) or whole numbers
1..K. Inside hbstan it is the category number 1..K; the labels are coordinates only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_softmax, softmax

from ..design import DataError
from ._categories import category_numbers
from .base import Family

__all__ = ["Categorical"]


def _with_reference(eta: np.ndarray) -> np.ndarray:
    """(..., K): the K - 1 linear predictors with the reference category's 0 in front."""
    eta = np.asarray(eta, float)
    return np.concatenate([np.zeros(eta.shape[:-1] + (1,)), eta], axis=-1)


class Categorical(Family):
    """Unordered y in 1..K: P(y = k) = softmax(0, eta_2, ..., eta_K)_k (multinomial logit).

    ``eta`` arguments of the NumPy methods carry the K - 1 linear predictors on a last axis:
    (..., n, K - 1).
    """

    name = "categorical"
    link = "logit"
    links = ("logit",)
    integer_response = True
    per_category = True
    weighting = False  # not yet: the PyMC side would need a weighted pm.Potential

    # ------------------------------------------------------------------ data
    def encode_response(self, column: pd.Series, name: str) -> tuple[np.ndarray, list[str]]:
        """Category numbers 1..K and the K category labels (the first is the reference)."""
        dtype = column.dtype
        example = (
            f"df[{name!r}] = pd.Categorical(df[{name!r}], categories=[reference, ...])"
        )
        if isinstance(dtype, pd.CategoricalDtype):
            levels = [str(c) for c in dtype.categories]
            y = column.cat.codes.to_numpy().astype(float) + 1.0
        elif pd.api.types.is_bool_dtype(dtype):
            raise DataError(
                f"response {name!r} holds True/False: for two categories use family='bernoulli'; "
                f"for family='categorical' pass category labels, numbers 1..K or {example}"
            )
        elif pd.api.types.is_numeric_dtype(dtype):
            y = column.to_numpy(dtype=float)
            levels = category_numbers(y, name, "categorical", "the reference", f"pass labels: {example}")
        else:  # text: the sorted distinct values, as pd.Categorical gives them
            cat = pd.Categorical(column.astype(str))
            levels = [str(c) for c in cat.categories]
            y = cat.codes.astype(float) + 1.0
        if len(levels) < 2:
            only = levels[0] if levels else "none"
            raise DataError(
                f"response {name!r} has a single category ({only!r}): family='categorical' needs at "
                "least 2 (with exactly 2, family='bernoulli' is the same model)"
            )
        counts = np.bincount(y.astype(int), minlength=len(levels) + 1)[1:]
        empty = [lab for lab, n in zip(levels, counts, strict=True) if n == 0]
        if empty:
            raise DataError(
                f"response {name!r} has no rows in category(ies) {empty[:5]} of {levels}: the odds of an "
                "unobserved category cannot be estimated; drop it (for a Categorical: "
                f"df[{name!r}] = df[{name!r}].cat.remove_unused_categories())"
            )
        return y, levels

    def check_response(self, y, name, trials):  # noqa: D102
        return None  # encode_response has checked it

    def response_scale(self, y, offset, trials):  # noqa: D102
        return 0.0, 1.0  # the log-odds scale, as for the Bernoulli

    # ------------------------------------------------------------------ NumPy
    def category_probs(self, eta: np.ndarray, aux: Any) -> np.ndarray:
        """P(y = k), k = 1..K: (..., n, K) from eta (..., n, K - 1); each row sums to 1."""
        return softmax(_with_reference(eta), axis=-1)

    def inverse_link(self, eta):  # noqa: D102
        return self.category_probs(eta, {})

    def mean(self, eta, aux, trials):  # noqa: D102
        raise TypeError(
            "family='categorical' has unordered categories and no mean: predict kind='probs' (each "
            "category's probability) or kind='response' (draws of the category number)"
        )

    def log_lik(self, y, eta, aux, trials):  # noqa: D102
        lp = log_softmax(_with_reference(eta), axis=-1)  # (..., n, K)
        k = np.asarray(y).astype(int) - 1
        return np.take_along_axis(lp, np.broadcast_to(k[:, None], lp.shape[:-1] + (1,)), axis=-1)[..., 0]

    def draw(self, rng, eta, aux, trials):  # noqa: D102
        cum = np.cumsum(self.category_probs(eta, aux), axis=-1)
        u = rng.random(cum.shape[:-1])
        # the first category whose cumulative probability reaches u (rounding: at most K)
        return np.minimum(1 + np.sum(cum < u[..., None], axis=-1), cum.shape[-1]).astype(np.int64)

    # ------------------------------------------------------------------ PyMC
    def pymc_likelihood(self, name, eta, aux, y, trials, dims):  # noqa: D102
        import pymc as pm
        import pytensor.tensor as pt

        # eta (N, K - 1); PyMC's categories are 0..K-1, the reference's logit 0
        logits = pt.concatenate([pt.zeros((eta.shape[0], 1)), eta], axis=1)
        obs = np.asarray(y).astype(int) - 1
        return pm.Categorical(name, logit_p=logits, observed=obs, dims=dims)
