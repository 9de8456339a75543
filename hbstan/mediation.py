"""Mediation: the direct, indirect and total effects of a treatment in a path model.

For linear Gaussian paths (``mediator ~ treatment + ...`` and ``outcome ~ treatment +
mediator + ...``, both Gaussian with the identity link) the effects are products and sums of
coefficients, per posterior draw: indirect = a b (a: the treatment's coefficient in the
mediator's formula, b: the mediator's in the outcome's), direct = c' (the treatment's in the
outcome's; 0 when the outcome's formula leaves it out), total = c' + a b.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["mediation"]


def _coefficient(fit: Any, response: str, predictor: str, role: str) -> np.ndarray | None:
    """Return the draws (chain, draw) of ``predictor``'s coefficient in ``response``'s formula (None if absent)."""
    r = fit.model.response(response)
    if not r.family.linear_mean:
        raise ValueError(
            f"mediation of linear paths (a mean equal to the linear predictor: gaussian, student): the {role} "
            f"{response!r} has family={r.family.name!r} ({r.family.link} link); the counterfactual contrast of a "
            "non-linear path is not implemented yet"
        )
    d = r.spec.design
    for name, levels, _ in d.terms:
        if name == predictor:
            if levels:
                raise ValueError(
                    f"{predictor!r} is categorical in the formula of {response!r} (levels {levels}): mediation "
                    "needs one coefficient per path; code it as a 0/1 or numeric column"
                )
            return np.asarray(fit.idata.posterior[f"{response}_{predictor}"].values)
        if ":" in name and predictor in name.split(":"):
            raise ValueError(
                f"the formula of {response!r} has the interaction {name!r}: the effect of {predictor!r} then "
                "depends on another variable, which linear mediation does not cover"
            )
    return None


def mediation(
    fit: Any,
    *,
    treatment: str,
    mediator: str,
    outcome: str,
    prob: float = 0.95,
    draws: bool = False,
) -> pd.DataFrame:
    """Summarize the direct, indirect and total effects of ``treatment`` on ``outcome`` through ``mediator``.

    Parameters
    ----------
    fit : hbstan.mvfit.MultivariateFit
        A fit of a model whose responses include ``mediator`` (a formula with ``treatment``)
        and ``outcome`` (a formula with ``mediator``, and ``treatment`` for a direct effect),
        both Gaussian, identity link: ``Model(["m ~ t", "y ~ t + m"], data)``.
    treatment, mediator, outcome : str
        Column names: a numeric (or 0/1) predictor, and two responses.
    prob : float, default 0.95
        Mass of the equal-tailed intervals.
    draws : bool, default False
        Return every posterior draw (columns ``chain``, ``draw``, ``indirect``, ``direct``,
        ``total``) instead of their summaries.

    Returns
    -------
    pandas.DataFrame
        One row per effect, ``indirect`` (a b), ``direct`` (c'), ``total`` (c' + a b) and
        ``proportion_mediated`` (a b / (c' + a b), per draw), with ``estimate`` (posterior
        mean), ``std_error`` (posterior SD), ``lower`` and ``upper``.

    Raises
    ------
    ValueError
        When the fit has no such responses or paths, a path is not linear Gaussian, or the
        treatment is categorical or interacts with another predictor.
    """
    if not hasattr(fit, "model") or not hasattr(fit.model, "responses"):
        raise ValueError(
            "mediation needs the fit of a model of several responses: hbstan.Model([mediator formula, outcome "
            "formula], data).sample()"
        )
    if not 0 < prob < 1:
        raise ValueError(f"prob must be between 0 and 1, got {prob!r}")
    a = _coefficient(fit, mediator, treatment, "mediator")
    if a is None:
        raise ValueError(f"the formula of the mediator {mediator!r} has no term {treatment!r}: add it (the path a)")
    b = _coefficient(fit, outcome, mediator, "outcome")
    if b is None:
        raise ValueError(f"the formula of the outcome {outcome!r} has no term {mediator!r}: add it (the path b)")
    c = _coefficient(fit, outcome, treatment, "outcome")
    direct = np.zeros_like(a) if c is None else c
    indirect = a * b
    total = direct + indirect
    if draws:
        C, D = a.shape
        return pd.DataFrame({
            "chain": np.repeat(np.arange(C), D), "draw": np.tile(np.arange(D), C),
            "indirect": indirect.reshape(-1), "direct": direct.reshape(-1), "total": total.reshape(-1),
        })
    with np.errstate(divide="ignore", invalid="ignore"):
        share = indirect / total
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    rows = []
    for name, x in (("indirect", indirect), ("direct", direct), ("total", total), ("proportion_mediated", share)):
        x = x.reshape(-1)
        rows.append({
            "effect": name, "estimate": float(np.mean(x)), "std_error": float(np.std(x, ddof=1)),
            "lower": float(np.quantile(x, lo)), "upper": float(np.quantile(x, hi)),
        })
    return pd.DataFrame(rows)
