"""From a formula and a DataFrame to design matrices, group indices and labels.

Formulas use lme4/brms syntax. The population-level part and the expression of each varying
term are parsed and encoded by `formulae` (the parser bambi uses), so categorical predictors
get the treatment coding R and bambi users expect. hbstan itself only splits the formula into
its population-level part and its ``(expr | group)`` terms (formulae does not read ``||`` or
``trials()``), and keeps every user string out of the Stan program: column names and group
labels are carried as coordinates only.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FormulaError", "DataError", "GroupTerm", "ParsedFormula", "parse_formula", "Design", "Formula", "DparDesign",
]


class FormulaError(ValueError):
    """The formula cannot be read."""


class DataError(ValueError):
    """The data do not fit the model."""


@dataclass
class GroupTerm:
    """One ``(expr | factor)`` term of the formula."""

    expr: str
    factor: str
    correlated: bool  # '|' (True) or '||' (False)


@dataclass
class ParsedFormula:
    """A formula split into its parts."""

    formula: str
    response: str
    trials: str | None
    common: str
    groups: list[GroupTerm] = field(default_factory=list)
    se: str | None = None  # column of known standard errors: y | se(s) ~ ...
    se_sigma: bool = False  # se(s, sigma = TRUE): a residual SD is estimated besides them
    weights: str | None = None  # column of likelihood weights: y | weights(w) ~ ...
    cens: str | None = None  # column of censoring codes: y | cens(c) ~ ... or cens(c, y2)
    cens_upper: str | None = None  # column of the upper bounds of interval-censored rows (y2)
    # distributional parameters with their own formula: {"sigma": "x"} from "...; sigma ~ x"
    dpars: dict[str, str] = field(default_factory=dict)


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class Formula(str):
    """A model formula with formulas for auxiliary (distributional) parameters.

    ``Formula("y ~ x + (1 | g)", sigma="~ x")`` is brms's ``bf(y ~ x + (1 | g), sigma ~ x)`` and
    bambi's ``Formula("y ~ x + (1 | g)", "sigma ~ x")``: the residual SD varies with ``x`` on
    the log scale. It is the string ``"y ~ x + (1 | g); sigma ~ x"``, accepted (as such a
    string is) wherever a formula is: Model, spec files, the command line.
    """

    def __new__(cls, formula: str, **dpars: str) -> Formula:
        if not isinstance(formula, str):
            raise FormulaError(f"formula must be a string, got {formula!r}")
        parts = [formula.strip()]
        for name, rhs in dpars.items():
            if not isinstance(rhs, str):
                raise FormulaError(f"the formula of {name!r} must be a string such as '~ x', got {rhs!r}")
            rhs = rhs.strip()
            rhs = rhs[1:].strip() if rhs.startswith("~") else rhs
            parts.append(f"{name} ~ {rhs}")
        return super().__new__(cls, "; ".join(parts))

    @property
    def dpars(self) -> dict[str, str]:
        """The distributional parameters' right-hand sides."""
        return parse_formula(str(self)).dpars

    @property
    def main(self) -> str:
        """The formula of the mean, without those of the distributional parameters."""
        return _split_top_level(str(self), ";")[0].strip()


def _split_top_level(text: str, sep: str, where: tuple[str, int] | None = None) -> list[str]:
    """Split ``text`` on ``sep`` outside parentheses and outside `backticked` names.

    ``where`` = (whole formula, offset of ``text`` in it) makes errors point into the formula.
    """
    origin, offset = where or (text, 0)
    parts, depth, cur = [], 0, []
    in_tick = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "`":
            in_tick = not in_tick
        elif not in_tick and ch == "(":
            depth += 1
        elif not in_tick and ch == ")":
            depth -= 1
            if depth < 0:
                raise FormulaError(_at(origin, offset + i, "unbalanced ')': no '(' opens it"))
        if not in_tick and depth == 0 and text.startswith(sep, i):
            parts.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(ch)
        i += 1
    if in_tick:
        raise FormulaError(_at(origin, offset + text.rindex("`"), "unclosed backtick"))
    if depth != 0:
        raise FormulaError(_at(origin, offset + len(text), "unbalanced '(': a ')' is missing"))
    parts.append("".join(cur))
    return parts


def _at(text: str, pos: int, message: str) -> str:
    """An error message pointing at a position of the formula."""
    return f"{message} at position {pos}:\n  {text}\n  {' ' * pos}^"


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1] if len(name) > 1 and name[0] == name[-1] == "`" else name


_ADDITION = re.compile(r"^\s*(?P<name>[A-Za-z_]+)\s*\(\s*(?P<args>.*?)\s*\)\s*$")
_ADDITIONS = ("trials", "se", "weights", "cens")  # response additions hbstan reads (brms: y | addition(...) ~ ...)


def _response_additions(lhs: str, formula: str) -> tuple[str, dict[str, list[str]]]:
    """``"y | se(s, sigma = TRUE)"`` -> ``("y", {"se": ["s", "sigma = TRUE"]})``."""
    parts = _split_top_level(lhs, "|")
    if len(parts) == 1:
        return lhs, {}
    if len(parts) > 2:
        raise FormulaError(f"response {lhs!r} has more than one '|'; join additions with '+': 'y | se(s) + ...'")
    out: dict[str, list[str]] = {}
    for piece in _split_top_level(parts[1], "+"):
        m = _ADDITION.match(piece)
        if not m or m.group("name") not in _ADDITIONS:
            later = {"mi": "missing values", "trunc": "truncation"}
            name = m.group("name") if m else piece.strip()
            what = f" ({later[name]} is not supported yet)" if name in later else ""
            raise FormulaError(
                f"unknown response addition {piece.strip()!r} in {formula!r}{what}; hbstan reads "
                "'y | trials(n) ~ ...' (binomial), 'y | se(s) ~ ...' or 'y | se(s, sigma = TRUE) ~ ...' "
                "(known standard errors), 'y | weights(w) ~ ...' (likelihood weights) and 'y | cens(c) ~ ...' "
                "or 'y | cens(c, y2) ~ ...' (censoring), joined with '+'"
            )
        args = [a.strip() for a in _split_top_level(m.group("args"), ",")] if m.group("args") else []
        if not args or not args[0]:
            raise FormulaError(f"{m.group('name')}() in {formula!r} needs a column name")
        if m.group("name") in out:
            raise FormulaError(f"{m.group('name')}() appears twice in the response of {formula!r}")
        out[m.group("name")] = args
    return parts[0].strip(), out


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4/brms formula into response, population part and group terms.

    Parameters
    ----------
    formula : str
        E.g. ``"y ~ 1 + x + (1 + x | g)"``, ``"y ~ x + (1 + x || g)"``,
        ``"successes | trials(n) ~ x + (1 | g)"``, ``"y ~ (1 | a/b)"`` (nested: expands to
        ``(1 | a) + (1 | a:b)``).
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise FormulaError(
            f"formula must be a string of the form 'response ~ predictors', got {formula!r}"
        )
    main, *extra = _split_top_level(formula, ";")
    dpars: dict[str, str] = {}
    for part in extra:
        name, tilde, drhs = part.partition("~")
        name, drhs = name.strip(), drhs.strip()
        if not tilde or not _NAME.match(name) or not drhs:
            raise FormulaError(
                f"{part.strip()!r} in {formula!r} is not a formula of a distributional parameter; "
                "write 'y ~ x; sigma ~ z' (or hbstan.Formula('y ~ x', sigma='~ z'))"
            )
        if name in dpars:
            raise FormulaError(f"{formula!r} gives {name!r} two formulas")
        dpars[name] = drhs
    parsed = _parse_main(main.strip(), formula)
    parsed.dpars = dpars
    return parsed


def _parse_main(formula: str, whole: str) -> ParsedFormula:
    """The response's formula (``whole``: the formula with any distributional parts)."""
    lhs, _, rhs = formula.partition("~")
    lhs, rhs = lhs.strip(), rhs.strip()
    if not lhs:
        raise FormulaError(f"formula {formula!r} has no response left of '~'")
    if not rhs:
        raise FormulaError(f"formula {formula!r} has nothing right of '~' (use '1' for an intercept)")
    lhs, additions = _response_additions(lhs, formula)
    trials = additions["trials"][0] if "trials" in additions else None
    se, se_sigma = None, False
    if "se" in additions:
        se, *rest = additions["se"]
        for arg in rest:
            key, _, value = (t.strip() for t in arg.partition("="))
            if key != "sigma" or value.upper() not in ("TRUE", "FALSE"):
                raise FormulaError(f"se() in {formula!r} takes a column and sigma = TRUE or FALSE, got {arg!r}")
            se_sigma = value.upper() == "TRUE"
    weights = _one_column(additions, "weights", formula)
    cens = cens_upper = None
    if "cens" in additions:
        args = additions["cens"]
        if len(args) > 2 or any("=" in a for a in args):
            raise FormulaError(
                f"cens() in {formula!r} takes the column of censoring codes and, for interval censoring, "
                f"the column of upper bounds: 'y | cens(c)' or 'y | cens(c, y2)', got cens({', '.join(args)})"
            )
        cens = _unquote(args[0])
        cens_upper = _unquote(args[1]) if len(args) == 2 else None
    common: list[str] = []
    groups: list[GroupTerm] = []
    for piece in _split_top_level(rhs, "+", (formula, formula.index(rhs, formula.index("~")))):
        piece = piece.strip()
        if not piece:
            raise FormulaError(f"empty term in {rhs!r}: check for a doubled or trailing '+'")
        inner = piece[1:-1] if piece.startswith("(") and piece.endswith(")") else None
        if inner is not None and len(_split_top_level(inner, "|")) > 1:
            correlated = True
            parts = _split_top_level(inner, "||")
            if len(parts) == 1:
                parts = _split_top_level(inner, "|")
            else:
                correlated = False
            if len(parts) != 2:
                raise FormulaError(f"group term {piece!r} must be '(expr | group)' or '(expr || group)'")
            expr, factor = parts[0].strip(), parts[1].strip()
            if not expr or not factor:
                raise FormulaError(f"group term {piece!r} needs an expression and a grouping factor")
            if len(_split_top_level(factor, "/")) > 1:  # nesting a/b -> a, a:b
                levels = [f.strip() for f in _split_top_level(factor, "/")]
                for k in range(1, len(levels) + 1):
                    groups.append(GroupTerm(expr, ":".join(levels[:k]), correlated))
            else:
                groups.append(GroupTerm(expr, factor, correlated))
        else:
            common.append(piece)
    return ParsedFormula(
        whole, lhs, trials, " + ".join(common) if common else "1", groups, se, se_sigma, weights, cens, cens_upper
    )


def _one_column(additions: dict[str, list[str]], name: str, formula: str) -> str | None:
    """The single column argument of a response addition such as ``weights(w)``."""
    if name not in additions:
        return None
    if len(additions[name]) != 1:
        raise FormulaError(f"{name}() in {formula!r} takes one column, got {name}({', '.join(additions[name])})")
    return _unquote(additions[name][0])


def _formulae_design(formula: str, data: pd.DataFrame) -> Any:
    import formulae

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return formulae.design_matrices(formula, data, na_action="error")
    except KeyError as err:
        name = err.args[0] if err.args else "?"
        raise DataError(
            f"column {name!r} named in the formula is not in the data; "
            f"the data has columns {list(map(str, data.columns))}"
        ) from None
    except Exception as err:  # formulae's ParseError and friends
        if type(err).__name__ in {"ParseError", "ScanError"}:
            msg = str(err).rstrip(". ")
            token = msg.rsplit("'", 2)[-2] if msg.endswith("'") and msg.count("'") >= 2 else ""
            pos = formula.find(token) if token else -1
            if pos >= 0:
                raise FormulaError(_at(formula, pos, f"cannot parse the formula ({err})")) from None
            raise FormulaError(f"cannot parse the formula {formula!r}: {err}") from None
        raise DataError(f"formulae could not build the design for {formula!r}: {err}") from None


def _term_columns(dm_part: Any) -> list[tuple[str, list[str], slice]]:
    """(term name, level labels or [], column slice) for each term of a formulae design."""
    out = []
    for name, sl in dm_part.slices.items():
        term = dm_part.terms[name]
        labels = list(getattr(term, "labels", None) or [name])
        if len(labels) > 1 or (labels and labels[0] != name):
            levels = [lab[len(name) + 1 : -1] if lab.startswith(name + "[") else lab for lab in labels]
        else:
            levels = []
        out.append((name, levels, sl))
    return out


def _population(common: Any, N: int) -> tuple[bool, np.ndarray, list[tuple[str, list[str], slice]]]:
    """(has intercept, X without the intercept column, terms) of a formulae population design."""
    if common is None:
        return False, np.zeros((N, 0)), []
    full = np.asarray(common.design_matrix, dtype=float)
    cols = _term_columns(common)
    keep = [c for c in cols if c[0] != "Intercept"]
    idx = np.concatenate([np.arange(s.start, s.stop) for _, _, s in keep]) if keep else np.zeros(0, int)
    terms, start = [], 0
    for name, levels, s in keep:
        width = s.stop - s.start
        terms.append((name, levels, slice(start, start + width)))
        start += width
    return any(name == "Intercept" for name, _, _ in cols), full[:, idx], terms


def _columns_for(common: Any, terms: list[tuple[str, list[str], slice]], new: pd.DataFrame) -> np.ndarray:
    """The design matrix of ``terms`` (no intercept) for new rows."""
    if common is None or not terms:
        return np.zeros((len(new), 0))
    full = np.asarray(common.evaluate_new_data(new).design_matrix, dtype=float)
    cols = dict((n, s) for n, _, s in _term_columns(common))
    return full[:, np.concatenate([np.arange(cols[name].start, cols[name].stop) for name, _, _ in terms])]


@dataclass
class DparDesign:
    """The population-level design of a distributional parameter's formula (``sigma ~ x``)."""

    name: str  # the family's auxiliary parameter it predicts
    rhs: str
    has_intercept: bool
    X: np.ndarray
    terms: list[tuple[str, list[str], slice]]
    common_design: Any
    # its group terms (``sigma ~ x + (1 | g)``): hierarchical or correlated, always
    # non-centered; their effects are named ``sigma_1|g`` (the Stan program numbers them
    # after the main linear predictor's terms)
    blocks: list[Block] = field(default_factory=list)

    @property
    def K(self) -> int:
        """Number of predictor columns (intercept excluded)."""
        return self.X.shape[1]

    def columns_for(self, new: pd.DataFrame) -> np.ndarray:
        """Its design matrix (no intercept) for new rows."""
        return _columns_for(self.common_design, self.terms, new)


@dataclass
class Block:
    """A varying term: the effects in ``expr`` vary over the levels of ``factor``."""

    factor: str  # group name (coordinate name): the column, or columns joined by ':'
    columns: list[str]  # the grouping column(s)
    expr: str
    correlated: bool
    levels: list[str]  # group labels
    index: np.ndarray  # 0-based group of each row
    Z: np.ndarray  # N x M predictors of the varying effects
    effects: list[tuple[str, list[str], slice]]  # term name, levels, columns
    expr_design: Any  # formulae design, for new data
    pooling: str = "hierarchical"
    centered: bool = False
    U: np.ndarray | None = None
    U_names: list[str] = field(default_factory=list)
    U_means: np.ndarray | None = None
    dpar: str | None = None  # the distributional parameter whose formula holds the term (None: the mean's)

    @property
    def M(self) -> int:
        """Number of varying effects."""
        return self.Z.shape[1]

    @property
    def J(self) -> int:
        """Number of groups."""
        return len(self.levels)

    @property
    def has_intercept(self) -> bool:
        """Whether the first varying effect is an intercept."""
        return bool(self.effects) and self.effects[0][0] == "Intercept"

    def effect_name(self, term: str) -> str:
        """bambi-style name of a varying effect, e.g. ``1|county`` (``sigma_1|county`` in sigma's formula)."""
        prefix = f"{self.dpar}_" if self.dpar else ""
        return f"{prefix}{'1' if term == 'Intercept' else term}|{self.factor}"


def factor_columns(factor: str) -> list[str]:
    """Column names of a grouping factor such as ``county`` or ``a:b``."""
    return [_unquote(f) for f in _split_top_level(factor, ":")]


def group_labels(data: pd.DataFrame, names: list[str]) -> pd.Series:
    for name in names:
        if name not in data.columns:
            raise DataError(
                f"grouping column {name!r} named in the formula is not in the data; "
                f"the data has columns {list(map(str, data.columns))}"
            )
    if len(names) == 1:
        return data[names[0]].astype(str)
    out = data[names[0]].astype(str)
    for name in names[1:]:
        out = out + ":" + data[name].astype(str)
    return out


def _ordered_levels(data: pd.DataFrame, names: list[str], labels: pd.Series) -> list[str]:
    col = data[names[0]]
    if len(names) == 1 and isinstance(col.dtype, pd.CategoricalDtype):
        present = set(labels)
        return [str(c) for c in col.cat.categories if str(c) in present]
    if len(names) == 1 and pd.api.types.is_numeric_dtype(col):
        uniq = pd.unique(col)
        return [str(v) for v in sorted(uniq)]
    return sorted(pd.unique(labels))


def _block(g: GroupTerm, data: pd.DataFrame, response: str, dpar: str | None = None) -> Block:
    """Build the varying term ``g`` of the mean's formula, or of ``dpar``'s."""
    columns = factor_columns(g.factor)
    labels = group_labels(data, columns)
    levels = _ordered_levels(data, columns, labels)
    pos = {lab: i for i, lab in enumerate(levels)}
    index = labels.map(pos).to_numpy(dtype=int)
    edm = _formulae_design(f"{response} ~ {g.expr}", data)
    if edm.common is None:
        raise FormulaError(f"group term ({g.expr} | {g.factor}) has no effects")
    Z = np.asarray(edm.common.design_matrix, dtype=float)
    return Block(
        factor=":".join(columns),
        columns=columns,
        expr=g.expr,
        correlated=g.correlated,
        levels=levels,
        index=index,
        Z=Z,
        effects=_term_columns(edm.common),
        expr_design=edm.common,
        dpar=dpar,
    )


class Design:
    """Everything the data contribute to a model, before any Stan code exists."""

    def __init__(
        self,
        parsed: ParsedFormula,
        data: pd.DataFrame,
        *,
        family: str,
        pooling: str | None,
        group_predictors: dict[str, list[str]] | None,
        offset: Any = None,
        trials: Any = None,
        thresholds: bool = False,
        encode_response: Any = None,
    ) -> None:
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        if len(data) == 0:
            raise DataError("data has no rows: hbstan needs at least one observation")
        self.parsed = parsed
        self.family = family
        data = data.reset_index(drop=True)
        self.data = data
        self.N = len(data)

        # --- response -------------------------------------------------------------------
        self.response = _unquote(parsed.response)
        # a family may read the response column itself (an ordered Categorical): its numbers
        # then stand in for the column in the design matrices, its labels are kept
        encoded = (
            encode_response(data[self.response], self.response)
            if encode_response is not None and self.response in data.columns
            else None
        )
        self.response_levels: list[str] | None = None
        if encoded is not None:
            self.y, self.response_levels = encoded
            data = data.assign(**{self.response: self.y})
        else:
            y_dm = _formulae_design(f"{parsed.response} ~ 1", data)
            self.y = np.asarray(y_dm.response.design_matrix, dtype=float).reshape(-1)
            if y_dm.response.design_matrix.ndim == 2 and y_dm.response.design_matrix.shape[1] != 1:
                raise DataError(
                    f"response {parsed.response!r} must be a single numeric column, "
                    f"not a categorical one (it was encoded into {y_dm.response.design_matrix.shape[1]} columns)"
                )

        # --- population-level part ----------------------------------------------------------
        cdm = _formulae_design(f"{parsed.response} ~ {parsed.common}", data)
        self.common_design = cdm.common
        self.has_intercept, self.X, self.terms = _population(cdm.common, self.N)
        self.K = self.X.shape[1]

        # --- distributional parameters' formulas (population-level and group terms) -----------
        self.dpars: dict[str, DparDesign] = {}
        for name, drhs in parsed.dpars.items():
            sub = _parse_main(f"{parsed.response} ~ {drhs}", parsed.formula)
            ddm = _formulae_design(f"{parsed.response} ~ {sub.common}", data)
            has_i, X, terms = _population(ddm.common, self.N)
            dblocks = [_block(g, data, parsed.response, dpar=name) for g in sub.groups]
            self.dpars[name] = DparDesign(name, sub.common, has_i, X, terms, ddm.common, dblocks)

        # --- varying terms ---------------------------------------------------------------------
        self.blocks: list[Block] = [_block(g, data, parsed.response) for g in parsed.groups]

        # --- pooling of each block ----------------------------------------------------------
        self.pooling = pooling
        if pooling == "pooled":
            self.blocks = []
        for b in self.blocks:
            if pooling is None:
                b.pooling = "correlated" if (b.correlated and b.M > 1) else "hierarchical"
            elif pooling == "correlated":
                b.pooling = "correlated" if b.M > 1 else "hierarchical"
            else:
                b.pooling = pooling
        if any(b.pooling == "unpooled" for b in self.blocks):
            self._absorb_unpooled()
        # a distributional parameter's group terms: a population of effects (non-centered)
        for dp in self.dpars.values():
            if pooling == "pooled":
                dp.blocks = []
            for b in dp.blocks:
                if pooling == "unpooled":
                    raise FormulaError(
                        f"pooling='unpooled' with the group term ({b.expr} | {b.factor}) in the formula of "
                        f"{dp.name!r}: a distributional parameter's group effects need a population "
                        "distribution; use pooling=None (the default), 'hierarchical' or 'correlated'"
                    )
                correlated = pooling == "correlated" or (pooling is None and b.correlated)
                b.pooling = "correlated" if correlated and b.M > 1 else "hierarchical"

        # --- group-level predictors ---------------------------------------------------------
        for factor, cols in (group_predictors or {}).items():
            matches = [b for b in self.blocks if b.factor == factor and b.has_intercept]
            if not matches and any(b.factor == factor for dp in self.dpars.values() for b in dp.blocks):
                raise FormulaError(
                    f"group_predictors names {factor!r}, whose varying intercept is in a distributional "
                    "parameter's formula: group-level predictors enter the mean's group terms only; add "
                    "the predictor to that parameter's formula as a population-level term instead"
                )
            if not matches:
                have = [b.factor for b in self.blocks]
                raise FormulaError(
                    f"group_predictors names {factor!r}, but the model has no varying intercept "
                    f"for it; grouping factors with a varying intercept: "
                    f"{[b.factor for b in self.blocks if b.has_intercept] or have}"
                )
            block = matches[0]
            if block.pooling == "unpooled":
                raise FormulaError(
                    f"group_predictors for {factor!r} need a population distribution for the group "
                    "effects: use pooling='hierarchical' or 'correlated', not 'unpooled'"
                )
            if isinstance(cols, str):
                cols = [cols]
            block.U, block.U_names = self._group_matrix(block, list(cols))

        # --- thresholds (ordinal families): they replace the intercept ----------------------
        self.thresholds = thresholds
        if thresholds:
            self.has_intercept = False

    @property
    def centers_X(self) -> bool:
        """Whether the program centers X (and U) at their means: with an intercept or thresholds,
        which then absorb the centering (reported on the predictors' original scale)."""
        return self.has_intercept or self.thresholds

    # ------------------------------------------------------------------------------------------
    def _absorb_unpooled(self) -> None:
        """Unpooled effects replace the matching population-level ones (no global mean)."""
        drop_terms: set[str] = set()
        for b in self.blocks:
            if b.pooling != "unpooled":
                continue
            for name, _, _ in b.effects:
                if name == "Intercept":
                    self.has_intercept = False
                else:
                    drop_terms.add(name)
        if drop_terms:
            keep = [t for t in self.terms if t[0] not in drop_terms]
            idx = np.concatenate([np.arange(s.start, s.stop) for _, _, s in keep]) if keep else np.zeros(0, int)
            self.X = self.X[:, idx]
            terms, start = [], 0
            for name, levels, s in keep:
                width = s.stop - s.start
                terms.append((name, levels, slice(start, start + width)))
                start += width
            self.terms = terms
            self.K = self.X.shape[1]

    def _group_matrix(self, block: Block, cols: list[str]) -> tuple[np.ndarray, list[str]]:
        data = self.data
        U = np.zeros((block.J, len(cols)))
        for p, col in enumerate(cols):
            if col not in data.columns:
                raise DataError(
                    f"group predictor column {col!r} is not in the data; "
                    f"the data has columns {list(map(str, data.columns))}"
                )
            vals = pd.to_numeric(data[col], errors="coerce").to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(vals))
            if bad.size:
                raise DataError(
                    f"group predictor column {col!r} has missing or non-numeric values in rows "
                    f"{bad[:5].tolist()}: group predictors must be numeric and complete"
                )
            for j in range(block.J):
                v = vals[block.index == j]
                if np.ptp(v) > 1e-9 * max(1.0, np.abs(v).max()):
                    rows = np.flatnonzero(block.index == j)[:5].tolist()
                    raise DataError(
                        f"group predictor {col!r} is not constant within {block.factor} "
                        f"{block.levels[j]!r} (rows {rows}): a group-level predictor must take one "
                        "value per group"
                    )
                U[j, p] = v[0]
        return U, list(cols)

    # ------------------------------------------------------------------------------------------
    @property
    def dpar_blocks(self) -> list[Block]:
        """Return the distributional parameters' group terms in the program's order.

        The Stan program numbers them after the mean's (``design.blocks``), parameter by parameter.
        """
        return [b for dp in self.dpars.values() for b in dp.blocks]

    @property
    def all_blocks(self) -> list[Block]:
        """Return every varying term in the Stan program's order.

        The mean's, then the distributional parameters' (term ``i`` of the program is ``all_blocks[i - 1]``).
        """
        return self.blocks + self.dpar_blocks

    def common_for(self, new: pd.DataFrame) -> np.ndarray:
        """Population-level design matrix (without intercept) for new rows."""
        return _columns_for(self.common_design, self.terms, new)
