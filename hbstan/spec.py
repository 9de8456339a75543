"""The model specification: a formula, a DataFrame and options resolved into everything a backend needs.

:class:`ModelSpec` is public and immutable once built: its design matrices and blocks, priors,
options, parameterization choices and parameter table are what the backends (CmdStan, PyMC)
and every consumer (predictions, plots, run directories) read. :class:`hbstan.Model` adds
sampling to it.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ._version import __version__
from .centering import TermEvidence, term_evidence
from .design import Block, DataError, Design, FormulaError, parse_formula
from .families import FAMILIES, Family, get_family
from .options import MODEL_OPTIONS
from .priors import LKJ, HalfNormal, Normal, Prior, StudentT, parse_prior
from .render import program as rendered_program

__all__ = ["ModelSpec", "POOLINGS", "ParamInfo", "missing_values"]

log = logging.getLogger("hbstan")

POOLINGS = ("pooled", "unpooled", "hierarchical", "correlated")

# brms's censoring codes: cens(c) holds these words or numbers
CENS_CODES = {"left": -1, "none": 0, "right": 1, "interval": 2}


@dataclass
class ParamInfo:
    """How one user-facing posterior variable maps onto the Stan output."""

    name: str  # user-facing name (ArviZ variable)
    stan: str  # Stan variable it is read from
    kind: str  # "scalar", "vector", "matrix_cols", "corr"
    cols: slice | None = None  # which entries of the Stan variable (vector/last axis)
    dims: tuple[str, ...] = ()
    coords: dict[str, list[str]] | None = None
    # a family with one linear predictor per non-reference category: a last dim "category"
    # (Stan holds such a variable as entries x categories, or flat, category after category)
    per_category: bool = False


def _identifiers(text: str) -> set[str]:
    """Names a formula may refer to: bare identifiers and `backticked` names."""
    return set(re.findall(r"`([^`]*)`", text)) | set(re.findall(r"[^\W\d][\w.]*", text))


def _sd(x: np.ndarray) -> float:
    return float(np.std(x)) if x.size > 1 else 0.0


def _families_with(test: Any) -> str:
    """``family='a' or family='b'``: the registered families that pass ``test``."""
    return " or ".join(f"family={f.name!r}" for f in FAMILIES.values() if test(f))


def _option_for(option: Any, factor: str) -> Any:
    """A per-grouping-factor option: the dict's entry for ``factor`` ("auto" if absent), or the value."""
    return option.get(factor, "auto") if isinstance(option, Mapping) else option


def _check_constant(X: np.ndarray, terms: list[tuple[str, list[str], slice]], where: str, fix: str) -> None:
    """Raise :class:`DataError` for a predictor column that is the same in every row."""
    for name, _, sl in terms:
        for c in range(sl.start, sl.stop):
            if _sd(X[:, c]) == 0:
                raise DataError(f"predictor {name!r}{where} is constant (every row is {X[0, c]:g}): {fix}")


def missing_values(s: pd.Series) -> np.ndarray:
    """Return which entries of a column are missing, or infinite in a numeric column (one bool per row)."""
    miss = s.isna().to_numpy().copy()
    if pd.api.types.is_numeric_dtype(s):
        with np.errstate(invalid="ignore"):
            miss |= ~np.isfinite(s.to_numpy(dtype=float, na_value=np.nan))
    return miss


class ModelSpec:
    """A resolved model: formula, data, family, design, priors, options and parameter table.

    Built by :class:`hbstan.Model` (same arguments); read-only once built. Backends take a
    spec and sampler options and return a :class:`~hbstan.Fit`.
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        family: str | Family = "gaussian",
        pooling: str | None = None,
        group_predictors: Mapping[str, list[str] | str] | None = None,
        priors: Mapping[str, Prior] | None = None,
        sigma: float | None = None,
        *,
        trials: Any = None,
        offset: Any = None,
        exposure: Any = None,
        centered: bool | str | Mapping[str, bool | str] = "auto",
        suff_stats: bool | str = "auto",
        marginalize: bool | str = "auto",
        aggregate: bool | str = "auto",
        dropna: bool = False,
        link: str | None = None,
    ) -> None:
        fam = get_family(family).with_link(link)
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid values: None, {list(POOLINGS)}")
        if sigma is not None:
            if "sigma" not in [a.name for a in fam.aux]:
                raise ValueError(
                    f"sigma= (a known residual SD) only applies to {_families_with(lambda f: 'sigma' in [a.name for a in f.aux])}"
                )
            if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
                raise ValueError(f"sigma must be a positive number, got {sigma!r}")
        self.formula = formula
        # the constructor's arguments, for Model.replace (data as given, before dropna)
        self.source_data = data
        given = locals()
        self.options: dict[str, Any] = {o.name: given[o.name] for o in MODEL_OPTIONS}
        self.family: Family = fam
        self.link = fam.link
        # auxiliary parameters given as known values (data, not parameters)
        self.fixed_aux: dict[str, float] = {} if sigma is None else {"sigma": float(sigma)}
        parsed = parse_formula(formula)
        for name in parsed.dpars:
            if name not in fam.distributional:
                aux = [a.name for a in fam.aux]
                raise FormulaError(
                    f"{name!r} cannot have a formula of its own in family={fam.name!r}"
                    + (f" (its auxiliary parameters: {aux}; with a formula: {list(fam.distributional)})" if aux else
                       " (it has no auxiliary parameters)")
                    + f"; families whose sigma may: {_families_with(lambda f: 'sigma' in f.distributional)}"
                )
            if name in self.fixed_aux:
                raise ValueError(f"{name}= gives a known {name}, and the formula gives it predictors: drop one")
            if parsed.se:
                raise FormulaError(
                    f"se() with a formula for {name!r}: known standard errors and a modelled residual SD "
                    "together are not supported"
                )
        if parsed.trials and not fam.trials:
            raise FormulaError(
                f"trials() in the response needs {_families_with(lambda f: f.trials)}, not {fam.name!r}"
            )
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        data = self._check_missing(parsed, data, group_predictors, dropna)
        self.data = data
        self.design = Design(
            parsed, data, family=fam.name, pooling=pooling, group_predictors=dict(group_predictors or {}),
            thresholds=fam.thresholds, encode_response=fam.encode_response,
        )
        self.pooling = pooling
        if fam.per_category:
            self._check_per_category(group_predictors, offset, exposure)
        for blk in self.design.blocks:
            if fam.thresholds and blk.pooling == "unpooled" and blk.has_intercept:
                raise FormulaError(
                    f"family={fam.name!r} has thresholds in place of an intercept: unpooled group "
                    f"intercepts ({blk.expr} | {blk.factor}) cannot be told apart from them; use "
                    "pooling='hierarchical' (group effects that shift the latent scale)"
                )
            if blk.pooling in ("hierarchical", "correlated") and blk.J < 2:
                raise DataError(
                    f"grouping factor {blk.factor!r} has a single group ({blk.levels[0]!r}): a "
                    "hierarchical design needs at least 2 groups; use pooling='pooled' or drop "
                    "the group term"
                )
            choice = _option_for(centered, blk.factor)
            if choice not in (True, False, "auto"):
                raise ValueError(f"centered must be True, False or 'auto' (per factor in a dict), got {choice!r}")
            blk.centered = False
        for blk in self.design.dpar_blocks:  # always non-centered
            if blk.J < 2:
                raise DataError(
                    f"grouping factor {blk.factor!r} in the formula of {blk.dpar!r} has a single group "
                    f"({blk.levels[0]!r}): its group effects need at least 2 groups; drop the group term"
                )
        if suff_stats not in (True, False, "auto"):
            raise ValueError(f"suff_stats must be True, False or 'auto', got {suff_stats!r}")
        self._suff_option = suff_stats
        self._centered_option = centered
        # column names of per-row quantities, looked up again in new data by predict()
        self.column_args = {
            k: v
            for k, v in {
                "trials": trials if trials is not None else parsed.trials, "offset": offset, "exposure": exposure,
                "se": parsed.se, "weights": parsed.weights, "cens": parsed.cens, "cens_upper": parsed.cens_upper,
            }.items()
            if isinstance(v, str)
        }
        # known standard errors of the responses (y | se(s) ~ ...): added in quadrature to the
        # residual SD, which is estimated only with se(s, sigma = TRUE) (brms's default: not)
        self.se = self._vector_arg(parsed.se, "se") if parsed.se else None
        if self.se is not None:
            if not fam.known_se:
                raise FormulaError(
                    f"se() gives known standard errors of the responses: it needs "
                    f"{_families_with(lambda f: f.known_se)}, not {fam.name!r}"
                )
            bad = np.flatnonzero(~(self.se > 0))
            if bad.size:
                raise DataError(
                    f"se column {parsed.se!r} must hold positive standard errors; rows {bad[:5].tolist()} "
                    f"have {self.se[bad[:5]].tolist()}"
                )
            if sigma is not None:
                raise ValueError(
                    "sigma= (a known residual SD) and se() (known standard errors) together: drop sigma=, "
                    "or write se(s, sigma = TRUE) to estimate a residual SD besides the standard errors"
                )
            if not parsed.se_sigma:
                self.fixed_aux["sigma"] = 0.0  # no residual SD beyond the known errors
        # likelihood weights (y | weights(w) ~ ...): each row's log-likelihood times its weight
        self.weights = self._vector_arg(parsed.weights, "weights") if parsed.weights else None
        if parsed.weights and not fam.weighting:
            raise FormulaError(f"weights() needs {_families_with(lambda f: f.weighting)}, not {fam.name!r}")
        if self.weights is not None:
            bad = np.flatnonzero(~(self.weights >= 0))
            if bad.size:
                raise DataError(
                    f"weights column {parsed.weights!r} must hold non-negative weights; rows {bad[:5].tolist()} "
                    f"have {self.weights[bad[:5]].tolist()}"
                )
        # censoring (y | cens(c) ~ ... or cens(c, y2)): brms's codes per row, and the upper
        # bounds of interval-censored rows (y elsewhere)
        self.cens, self.cens_upper = self._censoring(parsed, fam)
        self.trials = self._vector_arg(trials if trials is not None else parsed.trials, "trials")
        if fam.trials and self.trials is None:
            raise ValueError(
                f"family={fam.name!r} needs the number of trials: write 'successes | trials(n) ~ ...' "
                "or pass trials='column'"
            )
        off = self._vector_arg(offset, "offset")
        exp_ = self._vector_arg(exposure, "exposure")
        if exp_ is not None:
            bad = np.flatnonzero(~(exp_ > 0))
            if bad.size:
                raise DataError(f"exposure must be positive; rows {bad[:5].tolist()} are not")
            off = (off if off is not None else 0.0) + np.log(exp_)
        self.offset = off if off is not None else np.zeros(self.design.N)
        self._check_response()
        self._check_predictors()
        self.suff_stats = self._suff_eligible() if suff_stats == "auto" else bool(suff_stats)
        if aggregate not in (True, False, "auto"):
            raise ValueError(f"aggregate must be True, False or 'auto', got {aggregate!r}")
        if aggregate is True and not fam.aggregates_to:
            raise ValueError(
                f"aggregate=True applies to {_families_with(lambda f: bool(f.aggregates_to))} only, not {fam.name!r}"
            )
        if aggregate is True and self._row_wise:
            raise ValueError(
                f"aggregate=True sums {fam.name.capitalize()} rows: it cannot keep weights() or cens() per row"
            )
        # weighted or censored rows are not exchangeable: no aggregation (simplest correct choice)
        self._patterns = (
            self._row_patterns() if fam.aggregates_to and aggregate is not False and not self._row_wise else None
        )
        n_pat = 0 if self._patterns is None else int(self._patterns.max()) + 1
        self.aggregated = bool(
            self._patterns is not None and (aggregate is True or n_pat <= self.design.N // 2)
        )
        if self.suff_stats and not self._suff_eligible(strict=True):
            raise ValueError(
                "suff_stats=True needs family='gaussian', at most one grouping term, no se(), weights() or "
                "cens() and no formula for sigma; "
                f"this model has family={fam.name!r} and {len(self.design.blocks)} grouping terms"
            )
        if marginalize not in (True, False, "auto"):
            raise ValueError(f"marginalize must be True, False or 'auto', got {marginalize!r}")
        blocks = self.design.blocks
        can_marginalize = (
            self.suff_stats and len(blocks) == 1 and blocks[0].pooling in ("hierarchical", "correlated")
        )
        if marginalize is True and not can_marginalize:
            raise ValueError(
                "marginalize=True needs family='gaussian' with sufficient statistics (suff_stats not "
                "False) and exactly one grouping term with pooling 'hierarchical' or 'correlated'"
            )
        term_auto = bool(blocks) and _option_for(centered, blocks[0].factor) == "auto"
        self.marginalized = bool(can_marginalize and (marginalize is True or (marginalize == "auto" and term_auto)))
        # parameterization of the sampled terms (an integrated-out term has none: no evidence needed)
        sampled = [
            t for t, blk in enumerate(blocks) if blk.pooling != "unpooled" and not (self.marginalized and t == 0)
        ]
        # crossed terms with varying intercepts: each term's mean is sampled apart from its
        # group intercepts' deviations, and the intercept as the level of the data (see
        # split_means), so each term can be centered on its own evidence
        self.split_means = self._split_means(sampled)
        self.term_evidence: list[TermEvidence] = []
        # (a per-category family has no single working response: its terms are non-centered
        # unless centered=True, as brms's)
        if not fam.per_category and any(_option_for(centered, blocks[t].factor) == "auto" for t in sampled):
            self.term_evidence = term_evidence(
                fam, self.design.y, self.design.X, self.offset, blocks, trials=self.trials,
                known_var=self.se**2 if self.se is not None and self.fixed_aux.get("sigma") == 0.0 else None,
                weights=self.weights, censored=None if self.cens is None else self.cens != 0,
                one_centered_intercept=not self.split_means,
            )
        for t, blk in enumerate(blocks):
            opt = _option_for(centered, blk.factor)
            if t not in sampled:
                blk.centered = False if opt == "auto" or blk.pooling == "unpooled" else bool(opt)
            elif opt == "auto":
                blk.centered = False if fam.per_category else self.term_evidence[t].centered
            else:
                blk.centered = bool(opt)
        self.params = self._param_table()
        if not self.params:
            raise FormulaError(
                f"formula {formula!r} leaves nothing to estimate (no intercept, predictors, group terms "
                "or residual SD): add an intercept ('1') or predictors"
            )
        self.priors = self._resolve_priors(dict(priors or {}))
        self._code: dict[bool, str] | None = None
        self.params = tuple(self.params)
        self._frozen = True

    # ------------------------------------------------------------------ input checks
    def _check_missing(
        self, parsed: Any, data: pd.DataFrame, group_predictors: Any, dropna: bool
    ) -> pd.DataFrame:
        # the upper bounds of interval censoring may be missing on the other rows (checked apart)
        names = _identifiers(parsed.formula) - {parsed.cens_upper}
        for cols in (group_predictors or {}).values():
            names |= set([cols] if isinstance(cols, str) else cols)
        used = [c for c in data.columns if str(c) in names]
        data = data.copy()
        for col in used:
            self._check_type(parsed.formula, data, col)
            s = data[col]
            if s.dtype == object and len(s.dropna()) and all(
                isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in s.dropna()
            ):
                data[col] = pd.to_numeric(s)  # numbers held in an object column
        bad_rows = np.zeros(len(data), bool)
        for col in used:
            miss = missing_values(data[col])
            if miss.any():
                if not dropna:
                    rows = np.flatnonzero(miss)
                    raise DataError(
                        f"column {col!r} has {rows.size} missing or infinite value(s), first in rows "
                        f"{data.index[rows[:5]].tolist()}; fix or remove them, or pass dropna=True "
                        "to drop incomplete rows"
                    )
                bad_rows |= miss
        if bad_rows.any():
            log.warning("hbstan: dropna=True dropped %d of %d rows with missing values", bad_rows.sum(), len(data))
            data = data.loc[~bad_rows]
        return data.reset_index(drop=True)

    @staticmethod
    def _check_type(formula: str, data: pd.DataFrame, col: Any) -> None:
        s = data[col]
        if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
            raise DataError(
                f"column {col!r} holds dates or times, which hbstan cannot use directly; convert it "
                "to a number (e.g. days since a start date) or to categories (wrap it in C())"
            )
        if s.dtype == object:
            kinds = pd.Series([type(v).__name__ for v in s.dropna()]).value_counts()
            if len(kinds) > 1:
                rare = kinds.index[-1]
                rows = [i for i, v in enumerate(s) if type(v).__name__ == rare and pd.notna(v)][:5]
                kinds = kinds.index
                raise DataError(
                    f"column {col!r} mixes value types {sorted(kinds)} (e.g. rows {rows}); make it "
                    "all numbers (pd.to_numeric) or all text (categories)"
                )
        if (s.dtype == object or pd.api.types.is_string_dtype(s)) and f"C({col}" not in formula:
            vals = s.dropna().astype(str)
            as_num = pd.to_numeric(vals, errors="coerce")
            if len(vals) and as_num.notna().all() and vals.str.contains(r"[.eE]").any():
                raise DataError(
                    f"column {col!r} holds numbers stored as text (e.g. {vals.iloc[0]!r}); convert it "
                    "with pd.to_numeric, or write C(" + str(col) + ") to use it as categories"
                )

    def _vector_arg(self, value: Any, what: str) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, str):
            if value not in self.data.columns:
                raise DataError(
                    f"{what} column {value!r} is not in the data; the data has columns "
                    f"{list(map(str, self.data.columns))}"
                )
            value = self.data[value]
        arr = np.asarray(value, dtype=float).reshape(-1)
        if arr.shape[0] != len(self.data):
            raise DataError(f"{what} has {arr.shape[0]} values but the data has {len(self.data)} rows")
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{what} has missing or infinite values in rows {np.flatnonzero(~np.isfinite(arr))[:5].tolist()}")
        return arr

    @property
    def threshold_labels(self) -> list[str]:
        """Coordinates of the thresholds of an ordinal family, ``"a|b"`` between consecutive
        categories a and b (empty for other families)."""
        levels = self.design.response_levels
        if not self.design.thresholds or not levels:
            return []
        return [f"{a}|{b}" for a, b in zip(levels[:-1], levels[1:])]

    @property
    def ncat(self) -> int:
        """Number of response categories of an ordinal or categorical family (0 for other families)."""
        categories = self.design.thresholds or self.family.per_category
        return len(self.design.response_levels or []) if categories else 0

    @property
    def category_labels(self) -> list[str]:
        """Labels of the non-reference categories of a per-category family.

        They are the ``category`` coordinates of its coefficients; empty for other families.
        """
        return list(self.design.response_levels[1:]) if self.family.per_category else []

    def per_category_keys(self, keys: list[str]) -> list[str]:
        """Expand prior keys per non-reference category (a per-category family).

        Each key becomes ``key[category]``, category after category (the order of the
        program's vectors); other families' keys stay as they are.
        """
        cats = self.category_labels
        return [f"{k}[{c}]" for c in cats for k in keys] if cats else list(keys)

    def _check_per_category(self, group_predictors: Any, offset: Any, exposure: Any) -> None:
        """Refuse what a family with one linear predictor per category does not support (yet)."""
        fam, d = self.family, self.design
        if offset is not None or exposure is not None:
            raise ValueError(
                f"family={fam.name!r} has a linear predictor per category: an offset or exposure is not "
                "supported (it would shift every category's log odds alike); drop offset=/exposure="
            )
        if group_predictors:
            raise FormulaError(
                f"group_predictors with family={fam.name!r} are not supported yet (they would need "
                "coefficients per category); add the group-level predictor to the formula instead"
            )
        for blk in d.blocks:
            if blk.pooling == "correlated":
                raise FormulaError(
                    f"family={fam.name!r}: correlated group effects ({blk.expr} | {blk.factor}) are not "
                    f"supported yet; write ({blk.expr} || {blk.factor}) for independent effects (each "
                    "category gets its own group effects and SDs, as brms's (1 | g))"
                )
            if blk.pooling == "unpooled":
                raise FormulaError(
                    f"family={fam.name!r}: unpooled group effects ({blk.expr} | {blk.factor}) are not "
                    "supported; use pooling='hierarchical' (or the grouping column as a predictor)"
                )
        names = {blk.factor for blk in d.blocks} | {t[0] for t in d.terms}
        if "category" in names:
            raise FormulaError(
                f"family={fam.name!r} labels its coefficients with a dimension 'category': a predictor or "
                "grouping factor may not be named 'category'; rename the column"
            )

    def _censoring(self, parsed: Any, fam: Family) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Censoring codes (-1, 0, 1, 2) and upper bounds from ``cens(c)`` / ``cens(c, y2)``."""
        if parsed.cens is None:
            return None, None
        if not fam.censoring:
            raise FormulaError(f"cens() needs {_families_with(lambda f: f.censoring)}, not {fam.name!r}")
        for col in (parsed.cens, parsed.cens_upper):
            if col is not None and col not in self.data.columns:
                raise DataError(
                    f"censoring column {col!r} is not in the data; the data has columns {list(map(str, self.data.columns))}"
                )
        raw = self.data[parsed.cens]
        words = raw.astype(str).str.strip().str.lower().map(CENS_CODES)
        numbers = pd.to_numeric(raw, errors="coerce")
        code = words.where(words.notna(), numbers.where(numbers.isin(list(CENS_CODES.values()))))
        bad = np.flatnonzero(code.isna().to_numpy())
        if bad.size:
            raise DataError(
                f"censoring column {parsed.cens!r} has codes hbstan does not know in rows {bad[:5].tolist()} "
                f"({raw.iloc[bad[:5]].tolist()}); valid codes (brms's): 'left', 'none', 'right', 'interval' "
                "or -1, 0, 1, 2"
            )
        cens = code.to_numpy(dtype=int)
        y = self.design.y
        upper = y.copy()
        interval = np.flatnonzero(cens == 2)
        if interval.size and parsed.cens_upper is None:
            raise DataError(
                f"rows {interval[:5].tolist()} of {parsed.cens!r} are interval censored: write "
                "'y | cens(c, y2) ~ ...' with the column y2 of their upper bounds (y is the lower bound)"
            )
        if parsed.cens_upper is not None:
            y2 = pd.to_numeric(self.data[parsed.cens_upper], errors="coerce").to_numpy(dtype=float)
            lo = y[interval]
            hi = y2[interval]
            ok = np.isfinite(hi) & ((hi >= lo) if fam.integer_response else (hi > lo))
            if fam.integer_response:
                ok &= hi == np.round(hi)
            if not ok.all():
                rows = interval[~ok][:5]
                need = "a whole number at least y" if fam.integer_response else "a number above y"
                raise DataError(
                    f"the upper bound {parsed.cens_upper!r} of interval-censored rows must be {need} (the lower "
                    f"bound); rows {rows.tolist()} have y = {y[rows].tolist()} and {parsed.cens_upper} = {y2[rows].tolist()}"
                )
            upper[interval] = hi
        return cens, upper

    def _check_response(self) -> None:
        self.family.check_response(self.design.y, self.design.response, self.trials)

    def _check_predictors(self) -> None:
        d = self.design
        for name, dp in d.dpars.items():
            if not dp.has_intercept and dp.K == 0 and not dp.blocks:
                raise FormulaError(f"the formula of {name!r} ({dp.rhs!r}) has no intercept and no predictors")
            _check_constant(dp.X, dp.terms, f" in the formula of {name!r}", "remove it from that formula")
            Xc = dp.X - dp.X.mean(axis=0) if dp.has_intercept else dp.X
            if dp.K > 1 and np.linalg.matrix_rank(Xc) < dp.K:
                raise DataError(f"the predictors of {name!r} ({dp.rhs!r}) are perfectly collinear: remove one")
        _check_constant(
            d.X, d.terms, "", "its coefficient cannot be estimated apart from the intercept; remove it from the formula"
        )
        if d.K > 1:
            # with an intercept the program centers X (columns that add up to a constant are
            # collinear with the intercept); without one, X is used as given (full dummy coding)
            Xc = d.X - d.X.mean(axis=0) if d.centers_X else d.X
            rank = np.linalg.matrix_rank(Xc)
            if rank < d.K:
                raise DataError(
                    f"the predictors {[t[0] for t in d.terms]} are perfectly collinear (rank {rank} "
                    f"< {d.K} columns): some are linear combinations of others; remove one"
                )

    # ------------------------------------------------------------------ parameters
    def _param_table(self) -> list[ParamInfo]:
        d = self.design
        out: list[ParamInfo] = []
        if self.family.per_category:
            return self._per_category_params()
        if d.has_intercept:
            out.append(ParamInfo("Intercept", "b_Intercept", "scalar"))
        if d.thresholds:  # one per threshold, between consecutive categories ("1|2", ...)
            labels = self.threshold_labels
            out.append(
                ParamInfo("Intercept", "b_Intercept", "vector", slice(0, len(labels)), ("Intercept_dim",),
                          {"Intercept_dim": labels})
            )
        for name, levels, sl in d.terms:
            if levels:
                out.append(ParamInfo(name, "b", "vector", sl, (f"{name}_dim",), {f"{name}_dim": levels}))
            else:
                out.append(ParamInfo(name, "b", "vector", sl))
        for a in self.family.aux:
            dp = d.dpars.get(a.name)
            if dp is not None:  # its formula's coefficients (log scale), named "sigma_Intercept", "sigma_x"
                if dp.has_intercept:
                    out.append(ParamInfo(f"{a.name}_Intercept", f"b_{a.name}_Intercept", "scalar"))
                for name, levels, sl in dp.terms:
                    pname = f"{a.name}_{name}"
                    if levels:
                        out.append(ParamInfo(pname, f"b_{a.name}", "vector", sl, (f"{pname}_dim",), {f"{pname}_dim": levels}))
                    else:
                        out.append(ParamInfo(pname, f"b_{a.name}", "vector", sl))
            elif a.name not in self.fixed_aux:
                out.append(ParamInfo(a.name, a.name, "scalar"))
        taken = {p.name for p in out}
        corr_names: set[str] = set()
        for i, blk in enumerate(d.blocks, start=1):
            out += self._block_params(i, blk, corr_names)
            for p, col in enumerate(blk.U_names):
                name = col if col not in taken else f"{blk.factor}:{col}"
                out.append(ParamInfo(name, f"gamma_{i}", "vector", slice(p, p + 1)))
            taken |= {p.name for p in out}
        # the distributional parameters' group terms, numbered after the mean's: "sigma_1|g"
        # and its SD "sigma_1|g_sigma", correlations "sigma_g_corr"
        for i, blk in enumerate(d.dpar_blocks, start=len(d.blocks) + 1):
            out += self._block_params(i, blk, corr_names, corr_prefix=f"{blk.dpar}_")
        seen: set[str] = set()
        for p in out:
            if p.name in seen:
                raise FormulaError(
                    f"two of the model's quantities would be named {p.name!r} (a column or grouping "
                    "factor's name collides with a generated name): rename the column"
                )
            seen.add(p.name)
        return out

    def _block_params(self, i: int, blk: Block, corr_names: set[str], corr_prefix: str = "") -> list[ParamInfo]:
        """Return varying term ``i``'s effects (``r_i``), their SDs (``sd_i``) and correlations (``Cor_i``).

        The correlations are named ``<corr_prefix><factor>_corr``, numbered from 2 where
        ``corr_names`` (updated here) already has that name.
        """
        out: list[ParamInfo] = []
        for term, levels, sl in blk.effects:
            ename = blk.effect_name(term)
            extra = (f"{ename}_dim",) if levels else ()
            coords = {blk.factor: blk.levels}
            if levels:
                coords[f"{ename}_dim"] = levels
            out.append(ParamInfo(ename, f"r_{i}", "matrix_cols", sl, (blk.factor, *extra), coords))
            if blk.pooling != "unpooled":
                out.append(ParamInfo(f"{ename}_sigma", f"sd_{i}", "vector", sl, extra, coords if levels else None))
        if blk.pooling == "correlated":
            base = f"{corr_prefix}{blk.factor}_corr"
            name, k = base, 2
            while name in corr_names:
                name, k = f"{base}_{k}", k + 1
            corr_names.add(name)
            labels = self._effect_labels(blk)
            dims = (f"{name}_effect", f"{name}_effect_bis")
            out.append(ParamInfo(name, f"Cor_{i}", "corr", None, dims, {dims[0]: labels, dims[1]: labels}))
        return out

    def _per_category_params(self) -> list[ParamInfo]:
        """Build the parameter table of a per-category family.

        Every variable has a last dim ``category`` (the non-reference categories' labels).
        """
        d = self.design
        cat = {"category": self.category_labels}
        out: list[ParamInfo] = []
        if d.has_intercept:
            out.append(ParamInfo("Intercept", "b_Intercept", "scalar", None, ("category",), cat, True))
        for name, levels, sl in d.terms:  # Stan's b: matrix[K, ncat - 1]
            if levels:
                out.append(ParamInfo(
                    name, "b", "vector", sl, (f"{name}_dim", "category"), {f"{name}_dim": levels, **cat}, True
                ))
            else:
                out.append(ParamInfo(name, "b", "vector", sl, ("category",), cat, True))
        for i, blk in enumerate(d.blocks, start=1):  # r_i and sd_i: one block of M per category
            for term, levels, sl in blk.effects:
                ename = blk.effect_name(term)
                extra = (f"{ename}_dim",) if levels else ()
                coords = {blk.factor: blk.levels, **cat}
                scoords = dict(cat)
                if levels:
                    coords[f"{ename}_dim"] = scoords[f"{ename}_dim"] = levels
                out.append(ParamInfo(ename, f"r_{i}", "matrix_cols", sl, (blk.factor, *extra, "category"), coords, True))
                out.append(ParamInfo(f"{ename}_sigma", f"sd_{i}", "vector", sl, (*extra, "category"), scoords, True))
        return out

    @staticmethod
    def _effect_labels(blk: Block) -> list[str]:
        labels = []
        for term, levels, _ in blk.effects:
            base = "1" if term == "Intercept" else term
            labels += [f"{base}[{lv}]" for lv in levels] if levels else [base]
        return labels

    # ------------------------------------------------------------------ priors
    def _default_priors(self) -> dict[str, Prior]:
        d = self.design
        y = d.y
        loc, s_y = self.family.response_scale(y, self.offset, self.trials)
        if s_y == 0:
            raise DataError(f"response {d.response!r} is constant: there is nothing to model")
        pri: dict[str, Prior] = {}
        if d.has_intercept:
            pri["Intercept"] = Normal(loc, 2.5 * s_y)
        for lab in self.threshold_labels:  # brms's default for the thresholds of ordinal families
            pri[f"Intercept[{lab}]"] = StudentT(3.0, 0.0, 2.5)
        for name, levels, sl in d.terms:
            for c, lab in zip(range(sl.start, sl.stop), levels or [None]):
                key = name if lab is None else f"{name}[{lab}]"
                pri[key] = Normal(0.0, 2.5 * s_y / _sd(d.X[:, c]))
        for a in self.family.aux:
            dp = d.dpars.get(a.name)
            if dp is not None:
                # on the link scale (log or logit): the family's intercept prior; a coefficient
                # of 1 / s_x changes the linear predictor by 1 per SD of its predictor (times
                # e on the log scale)
                if dp.has_intercept:
                    pri[f"{a.name}_Intercept"] = a.formula_intercept_prior(s_y)
                for key, c in self.dpar_keys(a.name):
                    pri[key] = Normal(0.0, 1.0 / _sd(dp.X[:, c]))
            elif a.name not in self.fixed_aux:
                pri[a.name] = a.default_prior(s_y)
        # (terms by their number i: Block is a dataclass whose == compares arrays, so no list.index)
        for i, blk in enumerate(d.blocks, start=1):
            for term, levels, sl in blk.effects:
                ename = blk.effect_name(term)
                for c, lab in zip(range(sl.start, sl.stop), levels or [None]):
                    key = ename if lab is None else f"{ename}[{lab}]"
                    sz = 1.0 if term == "Intercept" else (_sd(blk.Z[:, c]) or 1.0)
                    if blk.pooling == "unpooled":
                        pri[key] = Normal(loc if term == "Intercept" else 0.0, 2.5 * s_y / sz)
                    else:
                        skey = f"{ename}_sigma" if lab is None else f"{ename}_sigma[{lab}]"
                        pri[skey] = HalfNormal(s_y / sz)
            if blk.pooling == "correlated":
                name = next(p.name for p in self.params if p.stan == f"Cor_{i}")
                pri[name] = LKJ(2.0)
            for p, col in enumerate(blk.U_names if blk.U is not None else []):
                su = _sd(blk.U[:, p])
                if su == 0:
                    raise DataError(
                        f"group predictor {col!r} is the same for every {blk.factor}: remove it"
                    )
                pname = next(
                    q.name for q in self.params if q.stan == f"gamma_{i}" and q.cols.start == p
                )
                pri[pname] = Normal(0.0, 2.5 * s_y / su)
        for i, blk in enumerate(d.dpar_blocks, start=len(d.blocks) + 1):
            # on the link scale (log or logit), like the coefficients of its formula: a unit SD
            # of the group effects (per SD of a varying slope's predictor)
            for term, levels, sl in blk.effects:
                ename = blk.effect_name(term)
                for c, lab in zip(range(sl.start, sl.stop), levels or [None], strict=False):
                    sz = 1.0 if term == "Intercept" else (_sd(blk.Z[:, c]) or 1.0)
                    pri[f"{ename}_sigma" if lab is None else f"{ename}_sigma[{lab}]"] = HalfNormal(1.0 / sz)
            if blk.pooling == "correlated":
                pri[next(p.name for p in self.params if p.stan == f"Cor_{i}")] = LKJ(2.0)
        if self.family.per_category:
            # each key once per non-reference category; the intercepts brms's student_t(3, 0, 2.5)
            pri = {
                k: (StudentT(3.0, 0.0, 2.5) if key == "Intercept" else p)
                for key, p in pri.items() for k in self.per_category_keys([key])
            }
        return pri

    def prior_classes(self) -> dict[str, list[str]]:
        """Class keys users may give, each with the coefficient keys it covers."""
        keys = list(self.default_priors)
        classes: dict[str, list[str]] = {}
        d = self.design
        for name, levels, _ in d.terms:
            if levels:
                classes[name] = [f"{name}[{lv}]" for lv in levels]
        if d.thresholds:
            classes["Intercept"] = [f"Intercept[{lab}]" for lab in self.threshold_labels]
        classes["b"] = [k for n, lv, _ in d.terms for k in ([f"{n}[{x}]" for x in lv] if lv else [n])]
        dkeys = {k for name in d.dpars for k, _ in self.dpar_keys(name)}
        for name in d.dpars:
            classes[f"b_{name}"] = [k for k, _ in self.dpar_keys(name)]
        # the SDs of a distributional parameter's group effects: class "sd_sigma" (brms's
        # class = "sd", dpar = "sigma"), apart from the mean's class "sd"
        for name, dp in d.dpars.items():
            classes[f"sd_{name}"] = [k for blk in dp.blocks for k in self.block_keys(blk, "_sigma", per_category=False)]
            dkeys |= set(classes[f"sd_{name}"])
        for blk in d.dpar_blocks:
            for term, levels, _ in blk.effects:
                if levels:
                    ename = blk.effect_name(term)
                    classes[f"{ename}_sigma"] = [f"{ename}_sigma[{lv}]" for lv in levels]
        sd_keys = [k for k in keys if (k.endswith("_sigma") or "_sigma[" in k) and k not in dkeys]
        dcorr = {p.name for p in self.params if p.kind == "corr" and p.stan in self._dpar_stan("Cor")}
        classes["sd"] = [k for k in sd_keys if k != "sigma"]
        classes["corr"] = [k for k in keys if isinstance(self.default_priors[k], LKJ) and k not in dcorr]
        gam = [p.name for p in self.params if p.stan.startswith("gamma_")]
        classes["gamma"] = gam
        for blk in d.blocks:
            for term, levels, _ in blk.effects:
                ename = blk.effect_name(term)
                if levels:
                    if blk.pooling == "unpooled":
                        classes[ename] = [f"{ename}[{lv}]" for lv in levels]
                    else:
                        classes[f"{ename}_sigma"] = [f"{ename}_sigma[{lv}]" for lv in levels]
        if self.family.per_category:
            # every class over all categories, and each base key (``x``, ``1|g_sigma``) a class
            # of its per-category keys
            classes = {k: self.per_category_keys(v) for k, v in classes.items() if k not in ("sd", "corr")}
            classes["sd"] = [k for k in keys if "_sigma" in k]
            classes["corr"] = []
            base = ["Intercept"] if d.has_intercept else []
            base += [k for n, lv, _ in d.terms for k in ([f"{n}[{x}]" for x in lv] if lv else [n])]
            base += [k for blk in d.blocks for k in self.block_keys(blk, "_sigma", per_category=False)]
            for k in base:
                classes.setdefault(k, self.per_category_keys([k]))
        # the class-wide keys are always accepted (a no-op where the design has no such term,
        # e.g. "b" in an unpooled model whose slopes all vary by group)
        return {
            k: v for k, v in classes.items()
            if v or k in ("b", "sd", "corr", "gamma", *(f"b_{n}" for n in d.dpars), *(f"sd_{n}" for n in d.dpars))
        }

    def _dpar_stan(self, prefix: str) -> set[str]:
        """Stan names ``<prefix>_<i>`` of the distributional parameters' group terms."""
        d = self.design
        return {f"{prefix}_{i}" for i in range(len(d.blocks) + 1, len(d.all_blocks) + 1)}

    def dpar_keys(self, name: str) -> list[tuple[str, int]]:
        """Prior keys of the coefficients in ``name``'s formula (``sigma_x``, ``sigma_c[b]``), with their columns."""
        out = []
        for term, levels, sl in self.design.dpars[name].terms:
            for c, lab in zip(range(sl.start, sl.stop), levels or [None]):
                out.append((f"{name}_{term}" if lab is None else f"{name}_{term}[{lab}]", c))
        return out

    def _resolve_priors(self, user: dict[str, Prior]) -> dict[str, Prior]:
        self.default_priors = self._default_priors()
        pri = dict(self.default_priors)
        classes = self.prior_classes()
        valid = sorted(set(pri) | set(classes))
        # class-wide keys first, then individual coefficients override them
        for key in sorted(user, key=lambda k: k in pri):
            prior = user[key]
            if isinstance(prior, str):  # "normal(0, 2.5)", brms's spelling, or "Normal(0, 2.5)"
                prior = parse_prior(prior, name=key)
            if not isinstance(prior, Prior):
                raise ValueError(
                    f"prior for {key!r} must be an hbstan prior such as hbstan.Normal(0, 1) or a string "
                    f"such as 'normal(0, 1)', got {prior!r}"
                )
            targets = classes[key] if key in classes else ([key] if key in pri else None)
            if targets is None:
                raise ValueError(f"unknown prior name {key!r}; valid names for this model: {valid}")
            for t in targets:
                is_corr = isinstance(self.default_priors[t], LKJ)
                if is_corr != isinstance(prior, LKJ):
                    want = "an LKJ prior" if is_corr else "a prior other than LKJ"
                    raise ValueError(f"prior for {key!r} must be {want}, got {prior}")
                pri[t] = prior
        return pri

    # ------------------------------------------------------------------ Stan program
    def class_prior(self, keys: list[str], what: str) -> tuple[Prior | None, dict[str, list[float]]]:
        """One family for a vector class: its descriptor and per-element hyperparameters."""
        if not keys:
            return None, {}
        fams = {type(self.priors[k]) for k in keys}
        if len(fams) > 1:
            raise ValueError(
                f"the priors of {what} ({keys}) must share one family (hbstan renders one "
                f"statement per class); got {sorted(f.__name__ for f in fams)}"
            )
        values: dict[str, list[float]] = {}
        for k in keys:
            for a, v in self.priors[k].values().items():
                values.setdefault(a, []).append(v)
        return self.priors[keys[0]], values

    def block_keys(self, blk: Block, suffix: str, *, per_category: bool = True) -> list[str]:
        """Prior keys of a grouping term's effects (``suffix`` "_sigma": of their SDs).

        With a per-category family, once per category (unless ``per_category=False``).
        """
        keys = []
        for term, levels, _ in blk.effects:
            ename = blk.effect_name(term) + suffix
            keys += [f"{ename}[{lv}]" for lv in levels] if levels else [ename]
        return self.per_category_keys(keys) if per_category else keys

    def _on_intercept(self) -> int | None:
        """Return the term (1-based) centered on the intercept, or None.

        That is the first centered (sampled) term with a varying intercept whose mean is not
        sampled apart. An ordinal model's thresholds play the intercept's part: shifting every
        threshold and every group intercept alike leaves the likelihood unchanged, so its group
        intercepts are sampled around the thresholds' mean (``a = r - mean(Intercept)``).
        """
        d = self.design
        return next(
            (
                i for i, blk in enumerate(d.blocks, start=1)
                if blk.centered and blk.has_intercept and (d.has_intercept or bool(d.thresholds))
                and not (self.marginalized and i == 1)
                and not self.family.per_category  # a vector of intercepts, one per category
                and i - 1 not in self.split_means  # its mean sampled on its own instead
            ),
            None,
        )

    def slope_coefficients(self, i: int) -> list[int] | None:
        """Per effect of term i (1-based), the coefficient its group values are centered on.

        For the term centered on the intercept with varying slopes: the population-level
        coefficient (1-based column of X, 0 for none) of each effect's predictor (hierarchical
        centering of slopes: a = r + b_k where effect m's predictor is X's column k; the
        group values then no longer trade off against the coefficient). None where the term
        has no slopes to center, or is a distributional formula's term (numbered after the mean's).
        """
        d = self.design
        if i > len(d.blocks):
            return None
        blk = d.blocks[i - 1]
        if i != self._on_intercept() or blk.M < 2:
            return None
        return [0] + [
            next((k + 1 for k in range(d.K) if np.array_equal(blk.Z[:, m], d.X[:, k])), 0) for m in range(1, blk.M)
        ]

    def _split_means(self, sampled: list[int]) -> tuple[int, ...]:
        """Return the terms (0-based) whose group intercepts' mean the program samples on its own.

        With two or more crossed terms with varying intercepts, the intercept and the terms'
        means are identified by the data only through their sum: the sampler moves along a
        ridge (with one term centered on the intercept, on the ridge of the others' means). The
        program then samples, per such term, the mean m = sd w / sqrt(J) (w ~ N(0, 1)) apart
        from the deviations of the group intercepts from their mean, and the intercept as the
        level of the data, Intercept + the sum of the means: the same posterior, with the
        level pinned down by the data and each mean by its prior. Hierarchical terms (not
        correlated: their intercepts' mean would carry the slopes' correlation) without
        group-level predictors, in a model with an intercept and one linear predictor.
        """
        d, fam = self.design, self.family
        if not d.has_intercept or fam.per_category or d.thresholds:
            return ()
        split = tuple(
            t for t in sampled
            if d.blocks[t].pooling == "hierarchical" and d.blocks[t].has_intercept and d.blocks[t].U is None
        )
        return split if len(split) > 1 else ()

    @property
    def _sums_exposure(self) -> bool:
        """Whether aggregation sums the rows' exposures (a family that aggregates into itself: Poisson)."""
        return self.family.aggregates_to == self.family.name

    def _row_patterns(self) -> np.ndarray:
        """Index of each row's pattern of (X, offset, groups, Z): rows that share one are exchangeable.

        Poisson rows need not share the offset: their exposures add up.
        """
        d = self.design
        cols = [d.X] if self._sums_exposure else [d.X, self.offset[:, None]]
        for blk in d.blocks:
            cols += [blk.index[:, None].astype(float), blk.Z]
        _, inverse = np.unique(np.column_stack(cols), axis=0, return_inverse=True)
        return inverse.reshape(-1)

    def _aggregate(self, data: dict[str, Any]) -> dict[str, Any]:
        """Sum the rows of each pattern (the same likelihood up to a constant).

        Bernoulli rows into binomial counts; Poisson counts into one count whose exposure is
        the sum of the rows' exposures (offset log(sum_i exp(offset_i))).
        """
        pat = self._patterns
        n_pat = int(pat.max()) + 1
        first = np.zeros(n_pat, dtype=int)
        first[pat[::-1]] = np.arange(len(pat))[::-1]  # first row of each pattern
        out: dict[str, Any] = {
            "N": n_pat,
            "y": np.bincount(pat, weights=self.design.y, minlength=n_pat).astype(int),
            "X": data["X"][first],
        }
        if self._sums_exposure:
            off = np.asarray(data["offsets"], float)
            top = np.full(n_pat, -np.inf)
            np.maximum.at(top, pat, off)
            out["offsets"] = top + np.log(np.bincount(pat, weights=np.exp(off - top[pat]), minlength=n_pat))
        else:
            out["trials"] = np.bincount(pat, minlength=n_pat).astype(int)
            out["offsets"] = data["offsets"][first]
        for i in range(1, len(self.design.blocks) + 1):
            out[f"g_{i}"] = data[f"g_{i}"][first]
            out[f"Z_{i}"] = data[f"Z_{i}"][first]
        return out

    def _suff_eligible(self, strict: bool = False) -> bool:
        d = self.design
        # weights and censoring change each row's contribution: the row-by-row likelihood
        # (weighted sums of squares would do for weights, but the simplest correct choice is off)
        if (
            not self.family.suff_stats or len(d.blocks) > 1 or self.se is not None or self._row_wise
            or d.dpars
        ):
            return False
        cells = d.blocks[0].J if d.blocks else 1
        return strict or d.N >= 2 * cells

    def _suff_columns(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], int]:
        """Distinct columns W of [1, X, Z] and the maps from X and Z columns onto them."""
        d = self.design
        cols: list[np.ndarray] = []
        one_col = 0
        if d.has_intercept or any(b.has_intercept for b in d.blocks):
            cols.append(np.ones(d.N))
            one_col = 1

        def place(v: np.ndarray) -> int:
            for k, c in enumerate(cols):
                if np.array_equal(c, v):
                    return k
            cols.append(v)
            return len(cols) - 1

        Ax = np.zeros((d.K, 0))
        x_pos = [place(d.X[:, k]) for k in range(d.K)]
        z_pos = [[place(b.Z[:, m]) for m in range(b.M)] for b in d.blocks]
        P = len(cols)
        Ax = np.zeros((d.K, P))
        for k, p in enumerate(x_pos):
            Ax[k, p] = 1.0
        Azs = []
        for b, pos in zip(d.blocks, z_pos):
            Az = np.zeros((b.M, P))
            for m, p in enumerate(pos):
                Az[m, p] = 1.0
            Azs.append(Az)
        return np.column_stack(cols) if cols else np.zeros((d.N, 0)), Ax, Azs, one_col

    def suff_data(self) -> dict[str, Any]:
        """Per-cell sufficient statistics (computed once per model: the data do not change)."""
        memo: dict[str, Any] | None = getattr(self, "_suff_memo", None)
        if memo is None:
            memo = self._suff_memo = self._compute_suff_data()
        return memo

    def _compute_suff_data(self) -> dict[str, Any]:
        d = self.design
        W, Ax, Azs, one_col = self._suff_columns()
        P = W.shape[1]
        if P == 0:
            raise ValueError("sufficient statistics need at least one predictor column; use suff_stats=False")
        cell = d.blocks[0].index if d.blocks else np.zeros(d.N, dtype=int)
        S = d.blocks[0].J if d.blocks else 1
        ys = d.y - self.offset
        center = float(np.mean(ys)) if one_col else 0.0
        ys = ys - center
        yy = np.bincount(cell, weights=ys * ys, minlength=S)
        Wy = np.column_stack([np.bincount(cell, weights=W[:, p] * ys, minlength=S) for p in range(P)])
        WW = np.column_stack(
            [np.bincount(cell, weights=W[:, p] * W[:, q], minlength=S) for p in range(P) for q in range(p, P)]
        )
        out: dict[str, Any] = {"S": S, "P": P, "Ax": Ax, "ycenter": center, "yy": yy, "Wy": Wy, "WW": WW}
        if Azs:
            out["Az"] = Azs[0]
        if one_col:
            out["one_col"] = one_col
        return out

    def structure(self, threads: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Template context (structure only) and prior hyperparameter data."""
        d = self.design
        hyper: dict[str, Any] = {}

        def add(name: str, prior: Prior | None, values: dict[str, list[float]], vector: bool) -> dict[str, Any]:
            if prior is None:  # empty class: declare the family of the default, size 0
                prior = Normal(0, 1)
                values = {"loc": [], "scale": []}
            for a in prior.data_args():
                hyper[f"prior_{name}_{a}"] = values[a] if vector else values[a][0]
            return {"stan_fn": prior.stan_fn, "args": list(prior.args), "data_args": list(prior.data_args()), "family": prior.family}

        # the family whose template writes the likelihood: Bernoulli rows summed into binomial
        # counts are binomial data
        fam = (
            get_family(self.family.aggregates_to).with_link(self.family.link)
            if (self.aggregated and not threads) else self.family
        )
        ctx: dict[str, Any] = {
            "version": __version__,
            "family": fam.name,
            "link": fam.link,
            "integer_response": fam.integer_response,
            "aux": [],
            "has_intercept": d.has_intercept,
            "thresholds": d.thresholds,
            "per_category": fam.per_category,
            "center": d.centers_X,
            "suff": self.suff_stats,
            "se": self.se is not None,
            "weights": self.weights is not None,
            "cens": self.cens is not None,
            "marginal": self.marginalized,
            "suff_ones": self.suff_stats and (d.has_intercept or any(b.has_intercept for b in d.blocks)),
            "threads": threads,
            "priors": {},
            "blocks": [],
            "dpars": [],
            "dpar_names": list(d.dpars),
        }
        if d.has_intercept:
            p, v = self.class_prior(self.per_category_keys(["Intercept"]), "the intercept")
            ctx["priors"]["Intercept"] = add("Intercept", p, v, fam.per_category)
        if d.thresholds:
            keys = [f"Intercept[{lab}]" for lab in self.threshold_labels]
            p, v = self.class_prior(keys, "the thresholds")
            ctx["priors"]["Intercept"] = add("Intercept", p, v, True)
        bkeys = [k for n, lv, _ in d.terms for k in ([f"{n}[{x}]" for x in lv] if lv else [n])]
        p, v = self.class_prior(self.per_category_keys(bkeys), "the coefficients (class 'b')")
        ctx["priors"]["b"] = add("b", p, v, True)
        for a in fam.aux:
            dp = d.dpars.get(a.name)
            entry = {
                "name": a.name, "doc": a.doc, "lower": f"{a.lower:g}", "fixed": a.name in self.fixed_aux,
                "dpar": dp is not None,
            }
            if math.isfinite(a.upper):  # bounded above too (a probability): <lower=0, upper=1>
                entry["upper"] = f"{a.upper:g}"
            if dp is not None:
                dctx: dict[str, Any] = {
                    "name": a.name, "doc": a.doc, "has_intercept": dp.has_intercept, "priors": {},
                    "link": a.link, "inverse_link": a.stan_inverse_link,
                }
                dctx["blocks"] = bool(dp.blocks)  # whether its formula has group terms
                if dp.has_intercept:
                    p, v = self.class_prior([f"{a.name}_Intercept"], f"the intercept of {a.name}")
                    dctx["priors"]["Intercept"] = add(f"Intercept_{a.name}", p, v, False)
                p, v = self.class_prior([k for k, _ in self.dpar_keys(a.name)], f"the coefficients of {a.name}")
                dctx["priors"]["b"] = add(f"b_{a.name}", p, v, True)
                ctx["dpars"].append(dctx)
            elif not entry["fixed"]:
                p, v = self.class_prior([a.name], a.name)
                entry["prior"] = add(a.name, p, v, False)
            ctx["aux"].append(entry)
        def lkj_prior(i: int) -> dict[str, Any]:
            """Return the LKJ prior of term i's correlations (its parameter Cor_i), as its template reads it."""
            cname = next(q.name for q in self.params if q.stan == f"Cor_{i}")
            p, v = self.class_prior([cname], cname)
            return add(f"L_{i}", p, v, False)

        # the first centered (sampled) term with a varying intercept is centered on the Intercept
        on_intercept = self._on_intercept()
        ctx["level"] = bool(self.split_means)
        for i, blk in enumerate(d.blocks, start=1):
            b: dict[str, Any] = {
                "i": i,
                "pooling": blk.pooling,
                "centered": blk.centered,
                "marginal": self.marginalized and i == 1,
                "on_intercept": i == on_intercept,
                "on_thresholds": i == on_intercept and bool(d.thresholds),  # centered on the thresholds' mean
                "split": i - 1 in self.split_means,
                # its slopes centered on their population-level coefficients too
                "center_slopes": self.slope_coefficients(i) is not None,
                "has_U": blk.U is not None,
                "has_intercept": blk.has_intercept,  # its first effect is an intercept (predictor 1)
                # the number of group effects: one block of M_i per category with a per-category family
                "M": f"M_{i} * (ncat - 1)" if fam.per_category else f"M_{i}",
                "dpar": None,  # in the mean's linear predictor
            }
            if blk.pooling == "unpooled":
                p, v = self.class_prior(self.block_keys(blk, ""), f"the effects of {blk.factor}")
                b["r_prior"] = add(f"r_{i}", p, v, True)
            else:
                p, v = self.class_prior(self.block_keys(blk, "_sigma"), f"the SDs of {blk.factor}")
                b["sd_prior"] = add(f"sd_{i}", p, v, True)
            if blk.pooling == "correlated":
                b["lkj_prior"] = lkj_prior(i)
            if blk.U is not None:
                gkeys = [q.name for q in self.params if q.stan == f"gamma_{i}"]
                p, v = self.class_prior(gkeys, f"the group-level predictors of {blk.factor}")
                b["gamma_prior"] = add(f"gamma_{i}", p, v, True)
            ctx["blocks"].append(b)
        # the distributional parameters' group terms, numbered after the mean's: the same design
        # templates, always non-centered; the linear predictor of their parameter takes them
        for i, blk in enumerate(d.dpar_blocks, start=len(d.blocks) + 1):
            b = {
                "i": i, "pooling": blk.pooling, "centered": False, "marginal": False, "on_intercept": False,
                "split": False, "center_slopes": False, "has_U": False, "M": f"M_{i}", "dpar": blk.dpar,
                "has_intercept": blk.has_intercept,
            }
            p, v = self.class_prior(self.block_keys(blk, "_sigma"), f"the SDs of {blk.factor} in {blk.dpar}'s formula")
            b["sd_prior"] = add(f"sd_{i}", p, v, True)
            if blk.pooling == "correlated":
                b["lkj_prior"] = lkj_prior(i)
            ctx["blocks"].append(b)
        return ctx, hyper

    @property
    def _row_wise(self) -> bool:
        """Whether rows carry weights or censoring (each row's likelihood is its own)."""
        return self.weights is not None or self.cens is not None

    @property
    def threads_supported(self) -> bool:
        """Whether a threaded (reduce_sum) program exists for this model.

        Not with sufficient statistics (whose cost does not grow with the rows), known
        standard errors, weights, censoring, formulas for auxiliary parameters or a linear
        predictor per category.
        """
        return (
            not self.suff_stats and self.se is None and not self._row_wise and not self.design.dpars
            and not self.family.per_category
        )

    def link_summary(self) -> str:
        """The link of each estimated parameter: ``"mu = identity; sigma = log"``."""
        fam, dp = self.family, self.design.dpars
        return "; ".join(
            [f"mu = {fam.link}"]
            + [f"{a.name} = {a.link if a.name in dp else 'identity'}" for a in fam.aux if a.name not in self.fixed_aux]
        )

    @property
    def known_sigma(self) -> float | None:
        """The residual SD given as known (``sigma=``), or None when it is estimated."""
        sigma = self.options["sigma"]
        return None if sigma is None else float(sigma)

    @property
    def stan_code(self) -> str:
        """The rendered Stan program (no user string appears in it)."""
        return self.program()

    def program(self, *, threads: bool = False) -> str:
        """The Stan program; ``threads=True`` renders the reduce_sum variant."""
        if self._code is None:
            self._code = {}
        if threads not in self._code:
            ctx, _ = self.structure(threads)
            # read back when this structure was rendered before by the same templates and code
            # (saves Jinja's template compilation, the costly part, in every new process)
            self._code[threads] = rendered_program(ctx)
        return self._code[threads]

    def stan_data_for(
        self,
        *,
        prior_only: bool = False,
        threads: bool = False,
        grainsize: int = 1,
        pointwise: bool = True,
        draw_effects: bool = True,
    ) -> dict[str, Any]:
        """The data dict handed to CmdStan.

        A program with sufficient statistics needs the rows only to compute ``log_lik`` and
        ``y_rep`` itself (``pointwise``); without it no rows are passed (``N_rows`` = 0), so
        the data file, and CmdStan's reading of it, grows with the number of groups. Where the
        group effects are integrated out, ``draw_effects`` says whether the program draws
        them (else hbstan does, from the population-level draws: :mod:`hbstan.marginal`).
        """
        d = self.design
        _, hyper = self.structure(threads)
        data: dict[str, Any] = {"N": d.N}
        n = d.N
        if self.suff_stats:  # the template's m.suff
            n = d.N if pointwise else 0
            data["N_rows"] = n
        if d.thresholds or self.family.per_category:
            data["ncat"] = self.ncat
        data["y"] = d.y[:n].astype(int) if self.family.integer_response else d.y[:n]
        data.update(self.fixed_aux)
        if self.family.trials:
            data["trials"] = self.trials[:n].astype(int)
        if self.se is not None:
            data["se"] = self.se[:n]
        if self.weights is not None:
            data["weights"] = self.weights
        if self.cens is not None:
            data["cens"] = self.cens
            data["y2"] = self.cens_upper.astype(int) if self.family.integer_response else self.cens_upper
        data.update(K=d.K, X=d.X[:n], offsets=self.offset[:n])
        for name, dp in d.dpars.items():
            data[f"K_{name}"] = dp.K
            data[f"X_{name}"] = dp.X[:n]
            if dp.has_intercept:
                data[f"means_X_{name}"] = dp.X.mean(axis=0)
        if d.centers_X:
            data["means_X"] = d.X.mean(axis=0)
        for i, blk in enumerate(d.all_blocks, start=1):
            data[f"J_{i}"] = blk.J
            data[f"M_{i}"] = blk.M
            data[f"g_{i}"] = blk.index[:n] + 1
            data[f"Z_{i}"] = blk.Z[:n]
            slopes = self.slope_coefficients(i)
            if slopes is not None:
                data[f"zb_{i}"] = slopes
            if blk.U is not None:
                data[f"P_{i}"] = blk.U.shape[1]
                data[f"U_{i}"] = blk.U
        if self.suff_stats:
            data.update(self.suff_data())
        if self.aggregated and not threads:
            data.update(self._aggregate(data))
        if threads:
            data["grainsize"] = int(grainsize)
        data.update(hyper)
        data["prior_only"] = int(prior_only)
        data["pointwise"] = int(pointwise)
        if self.marginalized:
            data["draw_effects"] = int(draw_effects or pointwise)
        return data

    @property
    def stan_data(self) -> dict[str, Any]:
        """The data dict handed to CmdStan (likelihood on)."""
        return self.stan_data_for()

    def resolved_options(self) -> dict[str, Any]:
        """Every option of :data:`MODEL_OPTIONS` as resolved for this model (None: not set).

        Rebuilding with these and the same data gives the very same program and data: the
        ``"auto"`` choices are replaced by what was chosen, priors are those that differ from
        the defaults, and per-row quantities are their column names. A run's spec file saves
        them.

        Raises
        ------
        ValueError
            When trials, offset or exposure were given as arrays rather than column names: such
            a model cannot be rebuilt from its data; pass column names instead.
        """
        d = self.design
        cols = dict(self.column_args)
        out: dict[str, Any] = {o.name: None for o in MODEL_OPTIONS}
        out["family"] = self.family.name
        out["link"] = self.family.link if self.family.link != get_family(self.family.name).link else None
        out["pooling"] = self.pooling
        out["group_predictors"] = {blk.factor: list(blk.U_names) for blk in d.blocks if blk.U is not None} or None
        out["priors"] = {k: p for k, p in self.priors.items() if self.default_priors.get(k) != p} or None
        out["sigma"] = self.known_sigma
        if self.family.trials:
            if "trials" not in cols:
                raise ValueError(
                    "the binomial trials were given as an array: a saved model must find them in its "
                    "data; add them as a column and pass trials='column' (or write 'y | trials(n) ~ ...')"
                )
            if d.parsed.trials is None or d.parsed.trials != cols["trials"]:
                out["trials"] = cols["trials"]
        off = np.zeros(d.N)
        if "offset" in cols:
            off = off + self.data[cols["offset"]].to_numpy(dtype=float)
            out["offset"] = cols["offset"]
        if "exposure" in cols:
            off = off + np.log(self.data[cols["exposure"]].to_numpy(dtype=float))
            out["exposure"] = cols["exposure"]
        if not np.allclose(off, self.offset, rtol=0, atol=1e-12):
            raise ValueError(
                "the offset or exposure was given as an array: a saved model must find it in its data; "
                "add it as a column and pass offset='column' (or exposure='column')"
            )
        flags = {blk.factor: bool(blk.centered) for blk in d.blocks}
        out["centered"] = flags if len(set(flags.values())) > 1 else next(iter(flags.values()), False)
        out["marginalize"] = bool(self.marginalized)
        out["suff_stats"] = bool(self.suff_stats)
        out["aggregate"] = bool(self.aggregated) if self.family.aggregates_to else None
        out["dropna"] = False  # the data a model keeps are already complete
        return out

    # read-only once built: the backends and consumers share one spec
    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False) and not name.startswith("_"):
            raise AttributeError(
                f"a model specification is read-only: build a new one (model.replace({name}=...)) "
                f"instead of setting {name!r}"
            )
        object.__setattr__(self, name, value)

    def prior_table(self) -> pd.DataFrame:
        """The priors in use, one row per coefficient: name, prior, and whether it is a default."""
        rows = [
            {"name": k, "prior": str(p), "default": self.default_priors.get(k) == p}
            for k, p in self.priors.items()
        ]
        return pd.DataFrame(rows)
    def __str__(self) -> str:
        """The formula, family and links, data, each term's design and parameterization, and the priors."""
        fam = self.family
        d = self.design
        links = self.link_summary()
        lines = [
            f"Formula: {self.formula}",
            f" Family: {fam.name} ({links})" + (f"; known {', '.join(f'{k} = {v:g}' for k, v in self.fixed_aux.items())}" if self.fixed_aux else ""),
            f"   Data: {d.N} rows",
        ]
        for i, blk in enumerate(d.blocks, start=1):
            if blk.pooling == "unpooled":
                how = "unpooled (independent priors)"
            elif self.marginalized and i == 1:
                how = f"{blk.pooling}, integrated out of the likelihood (drawn exactly afterwards)"
            else:
                how = f"{blk.pooling}, {'centered' if blk.centered else 'non-centered'}"
            lines.append(f"   Term: ({blk.expr} | {blk.factor}), {blk.J} groups: {how}")
        for blk in d.dpar_blocks:
            lines.append(f"   Term of {blk.dpar}: ({blk.expr} | {blk.factor}), {blk.J} groups: {blk.pooling}, non-centered")
        notes = []
        if self.suff_stats:
            notes.append("likelihood from per-group sufficient statistics")
        if self.aggregated:
            notes.append(
                "Poisson rows with identical predictors and groups summed into one count each, their exposures summed"
                if self._sums_exposure else "identical Bernoulli rows summed into binomial counts"
            )
        if self.weights is not None:
            notes.append("likelihood weights (each row's log-likelihood times its weight)")
        if self.cens is not None:
            counts = {w: int(np.sum(self.cens == c)) for w, c in CENS_CODES.items() if w != "none"}
            notes.append("censored rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if notes:
            lines.append(f"   Also: {'; '.join(notes)}")
        lines += ["", "Priors:", self.prior_table().to_string(index=False)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        designs = ", ".join(f"{b.factor}: {b.pooling}" for b in self.design.blocks) or "pooled"
        return f"hbstan.Model({self.formula!r}, family={self.family.name!r}, {designs}, N={self.design.N})"

    # ------------------------------------------------------------------ sampling
