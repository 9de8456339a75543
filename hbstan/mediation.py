"""Mediation: the direct, indirect and total effects of a treatment in a path model.

Two ways to compute them, per posterior draw:

* **Products of coefficients** (``method="product"``) for linear paths (``mediator ~
  treatment + ...`` and ``outcome ~ treatment + mediator + ...``, each with a mean equal to
  its linear predictor: gaussian, student): indirect = a b (a: the treatment's coefficient in
  the mediator's formula, b: the mediator's in the outcome's), direct = c' (the treatment's
  in the outcome's; 0 when the outcome's formula leaves it out), total = c' + a b, per unit
  of the treatment (times ``treated - control`` when those are given).
* **Counterfactual contrasts** (``method="counterfactual"``) for any families and formulas
  (a Bernoulli outcome, a Poisson mediator, interactions): the natural effects of moving the
  treatment from ``control`` (t0) to ``treated`` (t1), averaged over the data's rows,

  - direct = E[Y(t1, M(t0))] - E[Y(t0, M(t0))] (the pure natural direct effect),
  - indirect = E[Y(t1, M(t1))] - E[Y(t1, M(t0))] (the total natural indirect effect),
  - total = E[Y(t1, M(t1))] - E[Y(t0, M(t0))] = direct + indirect,

  where M(t) is a draw of the mediator from its posterior predictive with the treatment set
  to t (the row's other predictors as observed) and E[Y(t, m)] the outcome's expected value
  with the treatment set to t and the mediator to m, per posterior draw. The two mediator
  draws of a row share their random numbers (for a Gaussian mediator M(t1) - M(t0) is then
  exactly a (t1 - t0)), so on a linear Gaussian path the contrasts equal the products of
  coefficients.

``method="auto"`` takes the products where the paths are linear and the counterfactual
contrasts elsewhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["mediation", "METHODS"]

METHODS = ("auto", "product", "counterfactual")


class _NotLinear(ValueError):
    """A path that products of coefficients do not cover (``method="auto"`` then contrasts)."""


def _coefficient(fit: Any, response: str, predictor: str, role: str) -> np.ndarray | None:
    """Return the draws (chain, draw) of ``predictor``'s coefficient in ``response``'s formula (None if absent)."""
    r = fit.model.response(response)
    d = r.spec.design
    for name, levels, _ in d.terms:
        if name == predictor:
            if levels:
                raise ValueError(
                    f"{predictor!r} is categorical in the formula of {response!r} (levels {levels}): mediation "
                    "needs one coefficient per path; code it as a 0/1 or numeric column"
                )
            if not r.family.linear_mean:
                raise _NotLinear(
                    f"mediation as products of coefficients needs linear paths (a mean equal to the linear predictor: "
                    f"gaussian, student): the {role} {response!r} has family={r.family.name!r} ({r.family.link} link); "
                    "method='counterfactual' (the default 'auto' picks it) computes the natural effects from predictions"
                )
            return np.asarray(fit.idata.posterior[f"{response}_{predictor}"].values)
        if ":" in name and predictor in name.split(":"):
            raise _NotLinear(
                f"the formula of {response!r} has the interaction {name!r}: the effect of {predictor!r} then "
                "depends on another variable, which products of coefficients do not cover; method='counterfactual' "
                "(the default 'auto' picks it) computes the natural effects from predictions"
            )
    if not r.family.linear_mean:
        raise _NotLinear(f"the {role} {response!r} has family={r.family.name!r}")
    return None


def _uses(fit: Any, response: str, column: str) -> bool:
    """Whether ``response``'s formula reads ``column`` as a predictor (of a population-level or varying term)."""
    from .effects import model_columns

    return model_columns(fit.model.response(response).spec).get(column) == "predictor"


def _treatment_values(data: pd.DataFrame, treatment: str, control: Any, treated: Any) -> tuple[float, float]:
    """``control`` and ``treated``, or their defaults: 0 and 1 for a 0/1 treatment, mean and mean + 1 SD otherwise."""
    col = data[treatment]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        if pd.api.types.is_bool_dtype(col):
            col = col.astype(int)
        else:
            raise ValueError(
                f"the treatment {treatment!r} is not numeric (dtype {col.dtype}): mediation sets it to two values; "
                "code it as a 0/1 or numeric column"
            )
    x = col.to_numpy(dtype=float)
    binary = set(np.unique(x)) <= {0.0, 1.0}
    if control is None:
        control = 0.0 if binary else float(x.mean())
    if treated is None:
        treated = 1.0 if binary else float(control) + float(x.std(ddof=1))
    for name, v in (("control", control), ("treated", treated)):
        if not (isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v)):
            raise ValueError(f"{name} must be a finite number (a value of the treatment {treatment!r}), got {v!r}")
    if float(control) == float(treated):
        raise ValueError(f"control and treated are both {control!r}: give two different values of {treatment!r}")
    return float(control), float(treated)


def _counterfactual(
    fit: Any, treatment: str, mediator: str, outcome: str, t0: float, t1: float, mediator_draws: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(direct, indirect, total), each (chain, draw): the natural effects as contrasts of predictions."""
    from .predict import predict_given

    m = fit.model
    if m.rescor:
        raise ValueError(
            "counterfactual mediation of a model with residual correlation (rescor) is not implemented: the "
            "outcome's mean would depend on the mediator's residual; fit the path model with rescor=False (as "
            "brms's mediation models do with set_rescor(FALSE))"
        )
    others = [u for u in fit.upstream(outcome) if u != mediator and treatment in _ancestors(fit, u)]
    if others:
        raise ValueError(
            f"the outcome {outcome!r} reads the response(s) {others}, which depend on the treatment {treatment!r} too: "
            "several mediators are not supported; give the mediator of a path with one"
        )
    rows = m.data.reset_index(drop=True)
    if mediator_draws > 1:  # each row several times: more mediator draws per row and posterior draw
        rows = pd.concat([rows] * mediator_draws, ignore_index=True)
    mfit, yfit = fit.response_fit(mediator), fit.response_fit(outcome)
    at = {t: rows.assign(**{treatment: t}) for t in (t0, t1)}
    # the same random numbers for both mediator draws of a row (common random numbers)
    med = {t: predict_given(mfit, at[t], {}, kind="response", rng=np.random.default_rng(seed)) for t in (t0, t1)}

    def outcome_mean(t: float, tm: float) -> np.ndarray:
        y = predict_given(yfit, at[t], {mediator: med[tm]}, kind="mean", rng=np.random.default_rng(seed))
        return y.mean(axis=-1)  # averaged over the rows: (chain, draw)

    y00, y10, y11 = outcome_mean(t0, t0), outcome_mean(t1, t0), outcome_mean(t1, t1)
    return y10 - y00, y11 - y10, y11 - y00


def _ancestors(fit: Any, response: str) -> set[str]:
    """Every column ``response`` depends on through the path model (its predictors and theirs)."""
    from .effects import model_columns

    seen: set[str] = set()
    todo = [response]
    while todo:
        name = todo.pop()
        for col in model_columns(fit.model.response(name).spec):
            if col not in seen:
                seen.add(col)
                if col in fit.model.response_names:
                    todo.append(col)
    return seen


def mediation(
    fit: Any,
    *,
    treatment: str,
    mediator: str,
    outcome: str,
    method: str = "auto",
    control: float | None = None,
    treated: float | None = None,
    prob: float = 0.95,
    draws: bool = False,
    mediator_draws: int = 1,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Summarize the direct, indirect and total effects of ``treatment`` on ``outcome`` through ``mediator``.

    Parameters
    ----------
    fit : hbstan.mvfit.MultivariateFit
        A fit of a model whose responses include ``mediator`` (a formula with ``treatment``)
        and ``outcome`` (a formula with ``mediator``, and ``treatment`` for a direct effect):
        ``Model(["m ~ t", "y ~ t + m"], data)``.
    treatment, mediator, outcome : str
        Column names: a numeric (or 0/1) predictor, and two responses.
    method : {"auto", "product", "counterfactual"}, default "auto"
        ``"product"``: products and sums of coefficients (linear paths: gaussian or student
        mediator and outcome, no interaction with the treatment or mediator);
        ``"counterfactual"``: the natural effects as contrasts of predictions, for any
        families (see :mod:`hbstan.mediation`); ``"auto"``: products where the paths are
        linear, contrasts elsewhere.
    control, treated : float, optional
        The treatment's two values t0 and t1. Defaults for the contrasts: 0 and 1 for a 0/1
        treatment, its mean and mean + 1 SD otherwise. The products are per unit of the
        treatment unless these are given (then times ``treated - control``).
    prob : float, default 0.95
        Mass of the equal-tailed intervals.
    draws : bool, default False
        Return every posterior draw (columns ``chain``, ``draw``, ``indirect``, ``direct``,
        ``total``) instead of their summaries; :func:`hbstan.plots.plot_mediation` draws them.
    mediator_draws : int, default 1
        Contrasts: draws of the mediator per row and posterior draw (more: less Monte Carlo
        error in each draw's effects, at proportional cost).
    seed : int, optional, default 0
        Contrasts: seed of the mediator's draws.

    Returns
    -------
    pandas.DataFrame
        One row per effect, ``indirect``, ``direct``, ``total`` and ``proportion_mediated``
        (indirect / total, per draw), with ``estimate`` (posterior mean), ``std_error``
        (posterior SD), ``lower`` and ``upper``. ``attrs`` holds ``method`` (the one used),
        ``control`` and ``treated``.

    Raises
    ------
    ValueError
        When the fit has no such responses or paths, ``method="product"`` meets a path that
        is not linear, or the treatment is not numeric.
    """
    if not hasattr(fit, "model") or not hasattr(fit.model, "responses"):
        raise ValueError(
            "mediation needs the fit of a model of several responses: hbstan.Model([mediator formula, outcome "
            "formula], data).sample()"
        )
    if not 0 < prob < 1:
        raise ValueError(f"prob must be between 0 and 1, got {prob!r}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {list(METHODS)}")
    if not (isinstance(mediator_draws, (int, np.integer)) and mediator_draws >= 1):
        raise ValueError(f"mediator_draws must be a positive integer, got {mediator_draws!r}")
    m = fit.model
    m.response(mediator), m.response(outcome)  # clear errors for unknown names
    if treatment not in m.data.columns:
        raise ValueError(f"the treatment {treatment!r} is not a column of the data; columns: {list(map(str, m.data.columns))}")
    if not _uses(fit, mediator, treatment):
        raise ValueError(f"the formula of the mediator {mediator!r} has no term {treatment!r}: add it (the path a)")
    if not _uses(fit, outcome, mediator):
        raise ValueError(f"the formula of the outcome {outcome!r} has no term {mediator!r}: add it (the path b)")
    used = method
    if method in ("auto", "product"):
        try:
            a = _coefficient(fit, mediator, treatment, "mediator")
            b = _coefficient(fit, outcome, mediator, "outcome")
            c = _coefficient(fit, outcome, treatment, "outcome")
            if a is None or b is None or (c is None and _uses(fit, outcome, treatment)):
                raise _NotLinear(
                    f"the treatment {treatment!r} or the mediator {mediator!r} enters a formula other than as a term "
                    "of its own (a transform, a varying slope only): products of coefficients do not cover it; "
                    "method='counterfactual' (the default 'auto' picks it) computes the natural effects from predictions"
                )
            used = "product"
        except _NotLinear:
            if method == "product":
                raise
            used = "counterfactual"
    if used == "product":
        assert a is not None and b is not None
        scale = 1.0
        if control is not None or treated is not None:
            t0, t1 = _treatment_values(m.data, treatment, control, treated)
            scale = t1 - t0
        else:
            t0, t1 = 0.0, 1.0
        direct = (np.zeros_like(a) if c is None else c) * scale
        indirect = a * b * scale
        total = direct + indirect
    else:
        t0, t1 = _treatment_values(m.data, treatment, control, treated)
        direct, indirect, total = _counterfactual(fit, treatment, mediator, outcome, t0, t1, int(mediator_draws), seed)
    attrs = {"method": used, "control": t0, "treated": t1, "treatment": treatment, "mediator": mediator,
             "outcome": outcome}
    if draws:
        C, D = indirect.shape
        out = pd.DataFrame({
            "chain": np.repeat(np.arange(C), D), "draw": np.tile(np.arange(D), C),
            "indirect": indirect.reshape(-1), "direct": direct.reshape(-1), "total": total.reshape(-1),
        })
        out.attrs.update(attrs)
        return out
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
    out = pd.DataFrame(rows)
    out.attrs.update(attrs)
    return out
