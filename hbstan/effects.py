"""Predictions on a grid, average comparisons and average slopes, from the posterior draws.

What brms's ``conditional_effects`` and the marginaleffects package (``datagrid``,
``predictions``, ``avg_comparisons``, ``avg_slopes``) compute, on any hbstan fit and on the
response scale (or the link scale with ``kind="link"``). Everything here is NumPy on the
model spec and the posterior draws, through :func:`hbstan.predict.predict`, so each row of a
result summarizes one posterior distribution: its mean (``estimate``), SD (``std_error``) and
equal-tailed interval (``lower``, ``upper``).

Group effects (``re_formula=``):

- ``"auto"`` (the default): a varying term's group effects enter where the rows hold its
  grouping column(s): fitted groups with their estimated effects, new levels with effects
  drawn from the population (as :meth:`hbstan.Fit.predict` does). Where the rows lack the
  grouping column, that term's effects are zero: the prediction for a typical group, at the
  population mean of the effects. :func:`datagrid` leaves grouping columns out unless you
  name them, so a grid predicts at the population level by default (as brms's
  ``conditional_effects``) and per group when you ask for the groups.
- ``None`` (or ``"NA"``, brms's ``re_formula = NA``): every term's effects are zero, whatever
  the rows hold.
- Grouping factors or brms-style varying terms (``"county"``, ``"(1 | county)"``,
  ``["a", "b"]``): those terms' effects enter, the others' are zero. A term is included or
  left out as a whole.

Group-level predictors (``group_predictors=``) shift the population mean of a term's
intercepts, so they always enter, as population-level predictors do.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .design import factor_columns, group_labels, parse_formula
from .predict import Posterior, predict

if TYPE_CHECKING:
    from .spec import ModelSpec

__all__ = [
    "datagrid",
    "predictions",
    "avg_comparisons",
    "avg_slopes",
    "model_columns",
    "varying_terms",
    "is_continuous",
    "levels_of",
    "span",
    "summarize",
]

KINDS = ("mean", "response", "link")
# per-draw averages over the rows are computed in chunks of rows holding about this many values
CHUNK_VALUES = 4_000_000


# ------------------------------------------------------------------------------------ columns
def _spec(fit: Any) -> ModelSpec:
    model = getattr(fit, "model", fit)
    if not hasattr(model, "design"):
        raise TypeError(f"expected an hbstan Fit (or its model), got {type(fit).__name__}")
    return model


def _var_names(terms: Mapping[str, Any], columns: Collection[str]) -> list[str]:
    """Return the data columns a formulae design's terms read, in the order of the terms."""
    out: list[str] = []
    for term in terms.values():
        names = getattr(term, "var_names", set()) or set()
        out += sorted(n for n in names if n in columns and n not in out)
    return out


def model_columns(fit: Any) -> dict[str, str]:
    """Return the data columns a model reads, each with its role.

    Parameters
    ----------
    fit : hbstan.Fit or model
        The fit (or the model spec it was made from).

    Returns
    -------
    dict of str to str
        Column name -> role, in formula order: ``"predictor"`` (population-level or varying
        effects' predictors), ``"group"`` (grouping columns), ``"group predictor"``, and
        ``"trials"``, ``"offset"``, ``"exposure"`` where the model has them. The response is
        not listed.
    """
    m = _spec(fit)
    d = m.design
    cols = set(map(str, m.data.columns))
    roles: dict[str, str] = {}
    if d.common_design is not None:
        for c in _var_names(d.common_design.terms, cols):
            roles.setdefault(c, "predictor")
    for blk in d.blocks:
        for c in _var_names(blk.expr_design.terms, cols):
            roles.setdefault(c, "predictor")
    for blk in d.blocks:
        for c in blk.columns:
            roles.setdefault(c, "group")
        for c in blk.U_names:
            roles.setdefault(c, "group predictor")
    for what, col in m.column_args.items():
        roles.setdefault(col, what)
    roles.pop(d.response, None)
    return roles


def _check_column(m: ModelSpec, name: Any, what: str) -> str:
    roles = model_columns(m)
    if name not in roles:
        raise ValueError(
            f"{what}: {name!r} is not a column the model {m.formula!r} reads; its columns are {list(roles)}"
        )
    return str(name)


def _is_binary(col: pd.Series) -> bool:
    """Tell whether a column is numeric 0/1 (both values present), treated as two levels."""
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    values = set(pd.unique(col.dropna()).tolist())
    return values == {0, 1}


def is_continuous(col: pd.Series) -> bool:
    """Tell whether a column is on a continuous scale (numeric, not boolean, not 0/1)."""
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) and not _is_binary(col)


def levels_of(col: pd.Series) -> list[Any]:
    """Return the observed values of a non-continuous column, in the order formulae and hbstan use."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        present = set(col.dropna().tolist())
        return [c for c in col.cat.categories if c in present]
    values = pd.unique(col.dropna()).tolist()
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def span(col: pd.Series, n: int = 50) -> list[Any]:
    """Default values of a grid column: ``n`` points over the observed range, or every level."""
    if is_continuous(col):
        lo, hi = float(col.min()), float(col.max())
        return np.linspace(lo, hi, n).tolist() if hi > lo else [lo]
    return levels_of(col)


def _typical(col: pd.Series) -> Any:
    """Return the value a grid holds an unnamed column at: the mean, or the most common value."""
    if is_continuous(col):
        return float(col.mean())
    counts = col.value_counts(sort=False)
    return counts.index[int(np.argmax(counts.to_numpy()))]  # first of the most common, in data order


def _as_dtype(values: list[Any], like: pd.Series) -> Any:
    if isinstance(like.dtype, pd.CategoricalDtype):
        return pd.Categorical(values, categories=like.cat.categories, ordered=like.cat.ordered)
    if pd.api.types.is_bool_dtype(like):
        return pd.array(values, dtype=bool)
    return values


# ------------------------------------------------------------------------------------ datagrid
def datagrid(fit: Any, *vary: str, n: int = 50, **values: Any) -> pd.DataFrame:
    """Build a grid of new rows: named columns vary, the model's other columns are held fixed.

    As marginaleffects' ``datagrid``. The rows are every combination of the named columns'
    values; the other columns the model reads are held at their mean (numbers) or most common
    value (categories, text, booleans and 0/1 columns) in the fitted data. Grouping columns
    are left out unless named, so predictions on the grid leave out those terms' group effects
    (the population-level prediction; see :mod:`hbstan.effects`); where a grouping column is
    named, its group-level predictors follow each group's value. A trials column is held at 1,
    so the mean of a binomial model is the probability of success.

    Parameters
    ----------
    fit : hbstan.Fit or model
        The fit (or its model).
    *vary : str
        Columns that vary over their default span: ``n`` evenly spaced points from the
        smallest to the largest observed value for numbers, every observed level for
        categories, text and booleans, 0 and 1 for a 0/1 column, every fitted group for a
        grouping column.
    n : int, default 50
        Number of points of a numeric column's default span.
    **values
        Columns with the values they take (a scalar or a list), e.g. ``x=[0, 1, 2]`` or
        ``g="a"``; groups not seen in fitting are allowed (their effects are drawn from the
        population when predicting).

    Returns
    -------
    pandas.DataFrame
        One row per combination: the named columns first, in the order given, then the held
        ones.

    Raises
    ------
    ValueError
        For a column the model does not read (naming the ones it does), a column named twice,
        or a category or text value not seen in fitting.
    """
    m = _spec(fit)
    data = m.data
    roles = model_columns(m)
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer of at least 2, got {n!r}")
    named: dict[str, list[Any]] = {}
    for name in vary:
        if name in named:
            raise ValueError(f"datagrid: column {name!r} is named twice")
        _check_column(m, name, "datagrid")
        named[name] = levels_of(data[name]) if roles[name] == "group" else span(data[name], n)
    for name, v in values.items():
        if name in named:
            raise ValueError(f"datagrid: column {name!r} is named twice")
        _check_column(m, name, "datagrid")
        vals = list(v) if isinstance(v, (list, tuple, np.ndarray, pd.Series, pd.Index, range)) else [v]
        if not vals:
            raise ValueError(f"datagrid: no values given for {name!r}")
        col = data[name]
        if roles[name] != "group" and (not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            known = levels_of(col)
            bad = [x for x in vals if x not in known]
            if bad:
                raise ValueError(f"datagrid: {name!r} has no level(s) {bad} in the fitted data; its levels are {known}")
        named[name] = vals
    if named:
        grid = pd.DataFrame(list(itertools.product(*named.values())), columns=list(named))
    else:
        grid = pd.DataFrame(index=range(1))
    for name in named:
        grid[name] = _as_dtype(grid[name].tolist(), data[name])
    d = m.design
    follow = {}  # group predictor -> grouping columns it follows
    for blk in d.blocks:
        if all(c in named for c in blk.columns):
            follow.update({u: blk.columns for u in blk.U_names if u not in named})
    for name, role in roles.items():
        if name in named or role == "group":
            continue
        if name in follow:
            grid[name] = _group_values(data, grid, follow[name], name)
        elif role == "trials":
            grid[name] = 1
        else:
            grid[name] = _as_dtype([_typical(data[name])] * len(grid), data[name])
    return grid


def _group_values(data: pd.DataFrame, grid: pd.DataFrame, columns: list[str], name: str) -> np.ndarray:
    """Each grid row's value of a group-level predictor, from its group in the fitted data."""
    fitted = pd.Series(data[name].to_numpy(), index=group_labels(data, columns).to_numpy())
    fitted = fitted[~fitted.index.duplicated()]
    labels = group_labels(grid, columns)
    new = sorted(set(labels) - set(fitted.index))
    if new:
        raise ValueError(
            f"datagrid: the group-level predictor {name!r} of new group(s) {new[:5]} is unknown; "
            f"give its value ({name}=...)"
        )
    return fitted.loc[labels.to_numpy()].to_numpy()


# ------------------------------------------------------------------------------------ group terms
def _normalize(expr: str) -> str:
    return "".join(expr.split())


def varying_terms(fit: Any, re_formula: Any, data: pd.DataFrame) -> set[int]:
    """Return the varying terms (1-based) whose group effects enter predictions for ``data``.

    See :mod:`hbstan.effects` for the values of ``re_formula``.
    """
    m = _spec(fit)
    blocks = m.design.blocks
    if isinstance(re_formula, str) and re_formula == "auto":
        chosen = {i for i, b in enumerate(blocks, start=1) if all(c in data.columns for c in b.columns)}
    elif re_formula is None or (isinstance(re_formula, str) and re_formula.strip() in ("NA", "~0", "~ 0")):
        chosen = set()
    else:
        items = [re_formula] if isinstance(re_formula, str) else list(re_formula)
        chosen = set()
        for item in items:
            chosen |= _terms_named(m, str(item))
    for i, b in enumerate(blocks, start=1):
        if b.pooling == "unpooled" and i not in chosen:
            raise ValueError(
                f"the unpooled term ({b.expr} | {b.factor}) has no population to predict from: its "
                f"group effects replace the population-level ones, so predictions need them (give "
                f"the column(s) {b.columns} and include the term in re_formula)"
            )
    return chosen


def _terms_named(m: ModelSpec, item: str) -> set[int]:
    blocks = m.design.blocks
    fitted = [f"({b.expr} | {b.factor})" for b in blocks]
    if "|" not in item:
        cols = factor_columns(item.strip())
        hits = {i for i, b in enumerate(blocks, start=1) if b.columns == cols}
        if not hits:
            raise ValueError(
                f"re_formula: {item!r} is not a grouping factor of {m.formula!r}; its grouping factors are "
                f"{[b.factor for b in blocks]} (varying terms {fitted})"
            )
        return hits
    text = item.strip()
    parsed = parse_formula(("__y " if text.startswith("~") else "__y ~ ") + text)
    if not parsed.groups:
        raise ValueError(f"re_formula {item!r} names no varying term such as (1 | g); the fitted terms are {fitted}")
    hits = set()
    for g in parsed.groups:
        cols = factor_columns(g.factor)
        match = [
            i for i, b in enumerate(blocks, start=1) if b.columns == cols and _normalize(b.expr) == _normalize(g.expr)
        ]
        if not match:
            raise ValueError(
                f"re_formula: ({g.expr} | {g.factor}) is not a varying term of {m.formula!r}; terms are "
                f"included or left out whole, so give one of {fitted} (or its grouping factor's name)"
            )
        hits |= set(match)
    return hits


# ------------------------------------------------------------------------------------ summaries
def _check_prob(prob: float) -> None:
    if not (isinstance(prob, (int, float)) and 0 < prob < 1):
        raise ValueError(f"prob must be between 0 and 1 (e.g. 0.95), got {prob!r}")


def _check_kind(kind: str, allowed: Sequence[str] = KINDS) -> None:
    if kind not in allowed:
        raise ValueError(f"kind must be one of {list(allowed)}, got {kind!r}")


def _check_single_predictor(m: ModelSpec, what: str) -> None:
    """Refuse an average effect of a family with one linear predictor per category."""
    if m.family.per_category:
        raise ValueError(
            f"{what} is not supported for family={m.family.name!r} (one prediction per category, no "
            "mean); compare each category's probability instead: kind='probs'"
        )


def _check_probs(m: ModelSpec, kind: str, what: str) -> list[str] | None:
    """Return the response categories for ``kind="probs"`` (None for another kind).

    Refuses what the family cannot give: probabilities of a family without categories, a
    mean or link contrast of a family with one prediction per category.
    """
    if kind == "probs":
        if not m.design.response_levels:
            raise ValueError(
                f"{what}(kind='probs') compares the probabilities of response categories: family="
                f"{m.family.name!r} has none; use kind='mean' or 'link'"
            )
        return [str(c) for c in m.design.response_levels]
    _check_single_predictor(m, what)
    return None


def summarize(draws: np.ndarray, prob: float) -> dict[str, np.ndarray]:
    """Posterior mean, SD and equal-tailed ``prob`` interval of (draws, k) arrays, per column."""
    a = (1 - prob) / 2
    lower, upper = np.quantile(draws, [a, 1 - a], axis=0)
    return {
        "estimate": draws.mean(axis=0),
        "std_error": draws.std(axis=0, ddof=1) if draws.shape[0] > 1 else np.zeros(draws.shape[1:]),
        "lower": lower,
        "upper": upper,
    }


def _grid_from(m: ModelSpec, grid: Any) -> pd.DataFrame:
    if isinstance(grid, pd.DataFrame):
        return grid
    if isinstance(grid, str):
        return datagrid(m, grid)
    if isinstance(grid, Mapping):
        vary = [k for k, v in grid.items() if v is None]
        return datagrid(m, *vary, **{k: v for k, v in grid.items() if v is not None})
    if isinstance(grid, (list, tuple)):
        return datagrid(m, *grid)
    raise TypeError(
        f"grid must be a column name, a list of them or a mapping of column -> values (None: the default "
        f"span), got {type(grid).__name__}"
    )


def predictions(
    fit: Posterior,
    data: pd.DataFrame | None = None,
    *,
    grid: Any = None,
    kind: str = "mean",
    prob: float = 0.95,
    re_formula: Any = "auto",
    seed: int | None = None,
) -> pd.DataFrame:
    """See :meth:`hbstan.Fit.predictions`."""
    _check_kind(kind, (*KINDS, "probs"))
    _check_prob(prob)
    m = fit.model
    if data is not None and grid is not None:
        raise ValueError("give either data (new rows) or grid (columns to vary), not both")
    if data is None:
        data = m.data if grid is None else _grid_from(m, grid)
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise ValueError("predictions need a non-empty pandas DataFrame of rows")
    include = varying_terms(m, re_formula, data)
    if kind == "probs" or (kind == "link" and m.family.per_category):
        # one row per data row and response category (for the link of a per-category family:
        # per non-reference category), the category in a column
        da = predict(fit, data, kind=kind, seed=seed, include=include)
        cats = list(da.coords["category"].values)
        probs = da.values.reshape(-1, len(data), len(cats))
        parts = []
        for k, cat in enumerate(cats):
            part = data.copy()
            part["category"] = cat
            for key, value in summarize(probs[:, :, k], prob).items():
                part[key] = value
            parts.append(part)
        return pd.concat(parts).sort_index(kind="stable")
    draws = predict(fit, data, kind=kind, seed=seed, include=include).values
    out = data.copy()
    for key, value in summarize(draws.reshape(-1, len(data)), prob).items():
        out[key] = value
    return out


# ------------------------------------------------------------------------------------ averages
def _by_codes(data: pd.DataFrame, by: Any) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Each row's group (0..G-1) and the groups' labels (None without ``by``)."""
    if by is None:
        return np.zeros(len(data), dtype=int), None
    names = [by] if isinstance(by, str) else list(by)
    bad = [b for b in names if b not in data.columns]
    if bad:
        raise ValueError(f"by: {bad[0]!r} is not a column of the data; its columns are {list(map(str, data.columns))}")
    if not names:
        return np.zeros(len(data), dtype=int), None
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(data[names]), sort=True)
    groups = pd.DataFrame(list(uniques), columns=names)
    return np.asarray(codes), groups


def _averages(
    fit: Posterior,
    frames: Sequence[pd.DataFrame],
    codes: np.ndarray,
    kind: str,
    include: set[int],
    seed: int | None,
) -> list[np.ndarray]:
    """Per draw and group of rows, the average prediction for each (counterfactual) data frame: (S, G) each.

    With ``kind="probs"`` (S, K, G): each of the K response categories' probability.

    The rows are taken in chunks (about ``CHUNK_VALUES`` predictions at a time), so the
    fitted data of any size fit in memory; every frame's chunk uses the same seed, so rows of
    groups not seen in fitting get the same drawn effects in each counterfactual.
    """
    post = fit.idata.posterior
    S = post.sizes["chain"] * post.sizes["draw"]
    G = int(codes.max()) + 1
    counts = np.bincount(codes, minlength=G).astype(float)
    K = len(fit.model.design.response_levels) if kind == "probs" else 1
    sums = [np.zeros((S, K, G)) for _ in frames]
    step = max(1, CHUNK_VALUES // (S * K))
    n = len(frames[0])
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        onehot = np.zeros((rows.stop - start, G))
        onehot[np.arange(rows.stop - start), codes[rows]] = 1.0
        for k, frame in enumerate(frames):
            chunk = frame.iloc[rows]
            values = predict(fit, chunk, kind=kind, seed=seed, include=include).values
            # (chain, draw, rows[, category]) -> (S, K, rows), averaged into the groups
            values = values.reshape(S, len(chunk), K).transpose(0, 2, 1)
            sums[k] += values @ onehot
    return [s / counts if kind == "probs" else s[:, 0] / counts for s in sums]


def _result(
    rows: list[tuple[str, str, np.ndarray]], groups: pd.DataFrame | None, prob: float, categories: list[str] | None = None
) -> pd.DataFrame:
    """Tidy table: one row per (term, contrast[, category][, by group]).

    From (S, G) per-draw averages, or (S, K, G) with the K response ``categories``.
    """
    if categories is not None:  # a row per category, the category after the contrast
        rows = [(t, c, d[:, k]) for t, c, d in rows for k in range(len(categories))]
    parts = []
    for i, (term, contrast, draws) in enumerate(rows):
        table = pd.DataFrame({"term": term, "contrast": contrast}, index=range(draws.shape[1]))
        if categories is not None:
            table["category"] = categories[i % len(categories)]
        if groups is not None:
            table = pd.concat([table, groups.reset_index(drop=True)], axis=1)
        for key, value in summarize(draws, prob).items():
            table[key] = value
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _rows_data(m: ModelSpec, data: pd.DataFrame | None) -> pd.DataFrame:
    if data is None:
        return m.data.reset_index(drop=True)
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise ValueError("data must be a non-empty pandas DataFrame of rows to average over")
    return data.reset_index(drop=True)


def _set(data: pd.DataFrame, name: str, value: Any) -> pd.DataFrame:
    """Copy ``data`` with column ``name`` replaced (a scalar, or one value per row)."""
    out = data.copy()
    like = data[name]
    if np.ndim(value) == 0:
        out[name] = _as_dtype([value] * len(data), like) if not is_continuous(like) else value
    else:
        out[name] = value
    return out


def avg_comparisons(
    fit: Posterior,
    variable: str,
    contrast: Any = None,
    *,
    by: str | Sequence[str] | None = None,
    kind: str = "mean",
    prob: float = 0.95,
    re_formula: Any = "auto",
    data: pd.DataFrame | None = None,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Average comparison of one predictor: the change in the prediction, averaged over the rows.

    As marginaleffects' ``avg_comparisons``: for each posterior draw, every row of the data is
    predicted twice, with ``variable`` set to a low and a high value and the other columns as
    they are; the difference (high - low), averaged over the rows (within each ``by`` group),
    is one draw of the average comparison. The result summarizes these draws.

    Parameters
    ----------
    fit : hbstan.Fit
        The fit.
    variable : str
        The column to change (one the model reads).
    contrast : number or (low, high), optional
        For a numeric column, a number ``h`` compares each row's value with its value plus
        ``h`` (default 1), and ``(a, b)`` sets every row to ``a`` then ``b``. A 0/1 column
        compares 0 with 1 by default. For a categorical, text or boolean column the default
        compares each level with the first (reference) level, one row each, and ``(a, b)``
        compares level ``b`` with level ``a``.
    by : str or list of str, optional
        Average within the groups of rows these columns of the data define (one result row
        per group and contrast), e.g. a grouping column.
    kind : {"mean", "link", "probs"}, default "mean"
        Compare expected values on the response scale (the inverse link of the linear
        predictor; for binomial models, the expected number of successes for each row's
        trials) or the linear predictor itself (log-odds, log rate); ``"probs"``, for the
        ordinal and categorical families, each response category's probability (a result row
        per category, as marginaleffects does for brms's ordinal models).
    prob : float, default 0.95
        Mass of the equal-tailed interval.
    re_formula : default "auto"
        Which varying terms' group effects enter (see :mod:`hbstan.effects`); the fitted rows
        hold every grouping column, so by default each row's own group effects enter.
    data : pandas.DataFrame, optional
        Rows to average over (default: the fitted data).
    seed : int, optional
        Seed of the effects of groups not seen in fitting (if ``data`` has any).

    Returns
    -------
    pandas.DataFrame
        Columns ``term``, ``contrast`` (e.g. ``"+1"``, ``"1 - 0"``, ``"b - a"``), with
        ``kind="probs"`` ``category``, the ``by`` columns, ``estimate`` (posterior mean),
        ``std_error`` (posterior SD), ``lower`` and ``upper`` (equal-tailed ``prob`` interval).
    """
    _check_kind(kind, ("mean", "link", "probs"))
    _check_prob(prob)
    m = fit.model
    categories = _check_probs(m, kind, "avg_comparisons")
    _check_column(m, variable, "avg_comparisons")
    rows = _rows_data(m, data)
    if variable not in rows.columns:
        raise ValueError(f"avg_comparisons: the data have no column {variable!r}")
    col = m.data[variable]
    codes, groups = _by_codes(rows, by)
    include = varying_terms(m, re_formula, rows)
    pairs: list[tuple[str, Any, Any]] = []  # label, low, high (scalar, or per-row values)
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    if numeric and model_columns(m)[variable] != "group":
        if contrast is None:
            contrast = (0, 1) if _is_binary(col) else 1.0
        if np.ndim(contrast) == 0:
            try:
                h = float(contrast)
            except (TypeError, ValueError):
                raise ValueError(f"contrast for the numeric {variable!r} must be a number or (low, high), got {contrast!r}") from None
            x = pd.to_numeric(rows[variable]).to_numpy(dtype=float)
            pairs.append((f"{h:+g}", x, x + h))
        else:
            a, b = _pair(contrast, variable)
            pairs.append((f"{b:g} - {a:g}", float(a), float(b)))
    else:
        known = levels_of(col)
        if contrast is None:
            pairs += [(f"{lev} - {known[0]}", known[0], lev) for lev in known[1:]]
        else:
            if np.ndim(contrast) == 0:
                raise ValueError(
                    f"contrast for {variable!r} (levels {known}) must be a pair of levels (low, high), got {contrast!r}"
                )
            a, b = _pair(contrast, variable)
            bad = [v for v in (a, b) if v not in known]
            if bad and model_columns(m)[variable] != "group":
                raise ValueError(f"avg_comparisons: {variable!r} has no level(s) {bad}; its levels are {known}")
            pairs.append((f"{b} - {a}", a, b))
    results = []
    for label, lo, hi in pairs:
        low, high = _averages(fit, [_set(rows, variable, lo), _set(rows, variable, hi)], codes, kind, include, seed)
        results.append((variable, label, high - low))
    return _result(results, groups, prob, categories)


def _pair(contrast: Any, variable: str) -> tuple[Any, Any]:
    try:
        a, b = contrast
    except (TypeError, ValueError):
        raise ValueError(f"contrast for {variable!r} must be (low, high), got {contrast!r}") from None
    return a, b


def avg_slopes(
    fit: Posterior,
    variable: str,
    *,
    by: str | Sequence[str] | None = None,
    eps: float | None = None,
    kind: str = "mean",
    prob: float = 0.95,
    re_formula: Any = "auto",
    data: pd.DataFrame | None = None,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Average slope of one numeric predictor: d(prediction)/d(variable), averaged over the rows.

    As marginaleffects' ``avg_slopes``: for each posterior draw, the derivative at each row is
    the centered finite difference (f(x + eps/2) - f(x - eps/2)) / eps with the row's other
    columns as they are, and its average over the rows (within each ``by`` group) is one draw
    of the average slope. For a linear Gaussian model it is the coefficient itself.

    Parameters
    ----------
    fit : hbstan.Fit
        The fit.
    variable : str
        A numeric column the model reads (for categories use :func:`avg_comparisons`).
    by : str or list of str, optional
        Average within the groups of rows these columns define.
    eps : float, optional
        Step of the finite difference (default: 1e-4 times the observed range of the column,
        as marginaleffects).
    kind : {"mean", "link", "probs"}, default "mean"
        Slope of the expected value on the response scale, or of the linear predictor; with
        ``"probs"`` (ordinal and categorical families) of each category's probability.
    prob : float, default 0.95
        Mass of the equal-tailed interval.
    re_formula : default "auto"
        Which varying terms' group effects enter (see :mod:`hbstan.effects`).
    data : pandas.DataFrame, optional
        Rows to average over (default: the fitted data).
    seed : int, optional
        Seed of the effects of groups not seen in fitting (if ``data`` has any).

    Returns
    -------
    pandas.DataFrame
        Columns ``term``, ``contrast`` (``"dY/dX"``), with ``kind="probs"`` ``category``,
        the ``by`` columns, ``estimate``, ``std_error``, ``lower`` and ``upper``.
    """
    _check_kind(kind, ("mean", "link", "probs"))
    _check_prob(prob)
    m = fit.model
    categories = _check_probs(m, kind, "avg_slopes")
    _check_column(m, variable, "avg_slopes")
    col = m.data[variable]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise ValueError(
            f"avg_slopes needs a numeric column; {variable!r} holds categories ({levels_of(col)[:5]}): "
            "use avg_comparisons for the differences between its levels"
        )
    rows = _rows_data(m, data)
    if variable not in rows.columns:
        raise ValueError(f"avg_slopes: the data have no column {variable!r}")
    if eps is None:
        width = float(col.max() - col.min())
        eps = 1e-4 * (width if width > 0 else 1.0)
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    codes, groups = _by_codes(rows, by)
    include = varying_terms(m, re_formula, rows)
    x = pd.to_numeric(rows[variable]).to_numpy(dtype=float)
    low, high = _averages(
        fit, [_set(rows, variable, x - eps / 2), _set(rows, variable, x + eps / 2)], codes, kind, include, seed
    )
    return _result([(variable, "dY/dX", (high - low) / eps)], groups, prob, categories)
