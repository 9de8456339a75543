"""Several responses in one model: a list of formulas resolved into one Stan program.

:class:`MultiSpec` builds one univariate :class:`~hbstan.spec.ModelSpec` per response (its
design, family, default priors and parameterization choices are the univariate ones), then
joins them: every response's coefficients, auxiliary parameters and group terms get names of
their own, and one program rendered from ``stan_templates/mv.stan.j2`` holds every response's
likelihood (each written by its family's template), their group terms (the design templates)
and, for Gaussian or Student-t responses, their residual correlation (``rescor``).

Names (brms's ``b_y_x1`` written hbstan's way): a response's parameter is its univariate name
prefixed with the response and ``_``: ``y_Intercept``, ``y_x1``, ``y_sigma``, ``y_1|g``,
``y_1|g_sigma``, ``y_g_corr``; the residual correlation matrix is ``rescor`` (dims
``rescor_response`` and ``rescor_response_bis``, the response names as coordinates), and a
Student-t model with residual correlation has one ``nu``, shared by its responses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ._version import __version__
from .design import DataError, FormulaError, parse_formula
from .families import FAMILIES, Family, get_family
from .priors import LKJ, Prior, parse_prior
from .render import program as rendered_program
from .spec import POOLINGS, ModelSpec, ParamInfo, missing_values

__all__ = ["MultiSpec", "Response", "JointBlock", "MV_FAMILIES", "RESCOR_FAMILIES", "DEFAULT_RESCOR_PRIOR"]

log = logging.getLogger("hbstan")

# the families a response of a multivariate model may have (this first step: Family.multivariate)
MV_FAMILIES = tuple(f.name for f in FAMILIES.values() if f.multivariate)
# the families whose residuals may be correlated (rescor=True: Family.rescor), all of one family
RESCOR_FAMILIES = tuple(f.name for f in FAMILIES.values() if f.rescor)
# the residual correlations' prior: LKJ(2), as hbstan's group-level correlations (mildly
# favours small correlations; brms's default for rescor is LKJ(1), uniform over matrices)
DEFAULT_RESCOR_PRIOR = LKJ(2.0)
# the options of a univariate model the first step does not take per response
_UNIVARIATE_ONLY = ("se", "weights", "cens")


@dataclass
class Response:
    """One response of a multivariate model: its univariate spec and its place in the program."""

    k: int  # 1-based position: Stan names carry it (y_1, b_1, sigma_1)
    name: str  # the response column: the prefix of its posterior names
    spec: ModelSpec  # the univariate model of this response alone
    first_block: int  # global number of its first group term, minus 1 (blocks are numbered across responses)

    @property
    def family(self) -> Family:
        """The response's family."""
        return self.spec.family

    def block_number(self, local: int) -> int:
        """Return the global (program) number of this response's group term ``local`` (1-based)."""
        return self.first_block + local


@dataclass
class JointBlock:
    """Group terms of several responses with one ID and grouping factor (brms's ``(1 |p| g)``).

    Their effects are one correlated block: one vector of SDs, one LKJ-correlated Cholesky
    factor, standardized effects ``z`` (non-centered); each member term's ``r_i`` is its
    columns of the block's ``r``.
    """

    number: int  # its number in the program (after every response's terms): sd_n, L_n, z_n, r_n
    ident: str  # the ID (``p``)
    factor: str  # the grouping factor
    name: str  # its correlation matrix in the posterior and priors: ``g_corr_p``
    members: list[tuple[Response, int]]  # (response, its local term number), in formula order

    @property
    def M(self) -> int:
        """Number of effects in the block (every member's)."""
        return sum(r.spec.design.blocks[i - 1].M for r, i in self.members)

    @property
    def J(self) -> int:
        """Number of groups."""
        r, i = self.members[0]
        return r.spec.design.blocks[i - 1].J

    def labels(self) -> list[str]:
        """Its effects' labels: ``y1_1``, ``y2_1``, ``y2_x`` (response, then effect)."""
        out = []
        for r, i in self.members:
            for term, levels, _ in r.spec.design.blocks[i - 1].effects:
                base = f"{r.name}_{'1' if term == 'Intercept' else term}"
                out += [f"{base}[{lv}]" for lv in levels] if levels else [base]
        return out


def _as_list(value: Any, n: int, what: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{what} has {len(value)} entries for {n} formulas: give one per formula, or one for all")
        return list(value)
    return [value] * n


def _columns_named(formula: str, data: pd.DataFrame) -> list[Any]:
    """Columns of ``data`` whose names appear in ``formula`` as whole words (or backticked)."""
    out = []
    for c in data.columns:
        name = str(c)
        if f"`{name}`" in formula or re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", formula):
            out.append(c)
    return out


class MultiSpec:
    """Several responses, each with its formula and family, in one model.

    Built by :class:`hbstan.Model` from a list of formulas (same arguments); read-only once
    built. See :class:`hbstan.multivariate.MultivariateModel` for the parameters.
    """

    def __init__(
        self,
        formulas: Sequence[str],
        data: pd.DataFrame,
        family: str | Family | Sequence[str | Family] = "gaussian",
        *,
        link: str | None | Sequence[str | None] = None,
        rescor: bool | None = None,
        priors: Mapping[str, Prior | str] | None = None,
        pooling: str | None = None,
        centered: bool | str | Mapping[str, bool | str] = "auto",
        dropna: bool = False,
    ) -> None:
        if isinstance(formulas, str) or len(formulas) < 2:
            raise ValueError(
                "a model of several responses needs a list of at least two formulas, one per response; for one "
                "response pass its formula itself: hbstan.Model('y ~ x', data)"
            )
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid values: None, {list(POOLINGS)}")
        n = len(formulas)
        families = [get_family(f) for f in _as_list(family, n, "family")]
        links = _as_list(link, n, "link")
        self.formulas = [str(f) for f in formulas]
        # brms's ID syntax (1 |p| g): group terms with one ID share one correlated block
        self.term_ids: dict[tuple[int, str, str], str] = {}
        plain = [self._strip_ids(k, f) for k, f in enumerate(self.formulas, start=1)]
        self.source_data = data
        self.options = {
            "family": family, "link": link, "rescor": rescor, "priors": priors, "pooling": pooling,
            "centered": centered, "dropna": dropna,
        }
        parsed = []
        for k, (f, fam) in enumerate(zip(plain, families, strict=True), start=1):
            p = parse_formula(f)
            if not fam.multivariate:
                raise ValueError(
                    f"family={fam.name!r} (response {k}, {f!r}) is not supported in a multivariate model "
                    f"yet; supported families: {list(MV_FAMILIES)}"
                )
            for addition in _UNIVARIATE_ONLY:
                if getattr(p, addition):
                    raise FormulaError(
                        f"{addition}() in {f!r}: response additions other than trials() are not supported in a "
                        "multivariate model yet; fit that response alone"
                    )
            if p.dpars:
                raise FormulaError(
                    f"{f!r} gives {sorted(p.dpars)} a formula: distributional parameters are not supported in a "
                    "multivariate model yet"
                )
            resp = p.response.strip("`")
            if resp not in data.columns:
                raise DataError(
                    f"response {resp!r} of formula {k} ({f!r}) is not a column of the data; the data has "
                    f"columns {list(map(str, data.columns))}"
                )
            parsed.append(p)
        names = [p.response.strip("`") for p in parsed]
        dup = sorted({r for r in names if names.count(r) > 1})
        if dup:
            raise FormulaError(f"response(s) {dup} appear in more than one formula: each formula models one response")
        # one set of rows for every response: rows missing in any response's columns go together
        self._plain = plain
        data = self._complete_rows(data, dropna)
        self.data = data
        self.rescor = self._resolve_rescor(rescor, families, names)
        user = dict(priors or {})
        routed, self.rescor_prior = self._route_priors(user, names, families, links, data, pooling, centered)
        self.responses: list[Response] = []
        first = 0
        for k, (f, fam, lk, name) in enumerate(zip(plain, families, links, names, strict=True), start=1):
            spec = ModelSpec(
                f, data, family=fam, link=lk, pooling=pooling, priors=routed[k - 1], centered=centered,
                suff_stats=False, marginalize=False, aggregate=False,
            )
            self.responses.append(Response(k, name, spec, first))
            first += len(spec.design.blocks)
        # a multivariate Student-t has one nu for every response
        self.shared_nu = self.rescor and "nu" in {a.name for a in families[0].aux}
        self.joint_blocks: list[JointBlock] = self._joint_blocks(first)
        self.params = tuple(self._param_table())
        taken: dict[str, int] = {}
        for p in self.params:
            taken[p.name] = taken.get(p.name, 0) + 1
        clash = sorted(k for k, v in taken.items() if v > 1)
        if clash:
            raise FormulaError(
                f"two parameters of this multivariate model would both be named {clash}: a response's "
                "parameters are named response_term; rename a column"
            )
        self.priors = self._collect_priors()
        self._code: str | None = None

    # ------------------------------------------------------------------ group terms across responses
    _ID_TERM = re.compile(r"\(([^()|]+)\|\s*([A-Za-z_][\w.]*)\s*\|([^()|]+)\)")

    def _strip_ids(self, k: int, formula: str) -> str:
        """Rewrite ``(expr |p| g)`` as ``(expr | g)``, remembering the term's ID ``p``."""

        def plain(match: re.Match[str]) -> str:
            expr, ident, factor = (t.strip() for t in match.groups())
            self.term_ids[(k, factor, expr)] = ident
            return f"({expr} | {factor})"

        return self._ID_TERM.sub(plain, formula)

    def _joint_blocks(self, first_free: int) -> list[JointBlock]:
        """Group terms sharing an ID and a grouping factor across responses: one correlated block each."""
        members: dict[tuple[str, str], list[tuple[Response, int]]] = {}
        for r in self.responses:
            for i, blk in enumerate(r.spec.design.blocks, start=1):
                ident = self.term_ids.get((r.k, blk.factor, blk.expr))
                if ident is not None:
                    members.setdefault((ident, blk.factor), []).append((r, i))
        out: list[JointBlock] = []
        for (ident, factor), terms in members.items():
            if len({r.k for r, _ in terms}) < 2:
                continue  # an ID used in one formula only: the term as it is
            for r, i in terms:
                blk = r.spec.design.blocks[i - 1]
                if blk.pooling not in ("hierarchical", "correlated"):
                    raise FormulaError(
                        f"({blk.expr} |{ident}| {factor}) in the formula of {r.name!r}: group effects correlated across "
                        f"responses need pooling 'hierarchical' or 'correlated', not {blk.pooling!r}"
                    )
                blk.centered = False  # sampled non-centered, as one block
            number = first_free + len(out) + 1
            name = f"{factor}_corr_{ident}"
            out.append(JointBlock(number, ident, factor, name, terms))
        return out

    def joint_of(self, r: Response, local: int) -> tuple[JointBlock, int] | None:
        """Return the joint block holding response ``r``'s group term ``local`` and the term's first column in it (0-based)."""
        for jb in self.joint_blocks:
            start = 0
            for rr, i in jb.members:
                if rr.k == r.k and i == local:
                    return jb, start
                start += rr.spec.design.blocks[i - 1].M
        return None

    # ------------------------------------------------------------------ input checks
    def _complete_rows(self, data: pd.DataFrame, dropna: bool) -> pd.DataFrame:
        used: list[Any] = []
        for f in self.formulas:
            used += [c for c in _columns_named(f, data) if c not in used]
        bad = np.zeros(len(data), bool)
        for col in used:
            miss = missing_values(data[col])
            if miss.any() and not dropna:
                rows = np.flatnonzero(miss)
                raise DataError(
                    f"column {col!r} has {rows.size} missing or infinite value(s), first in rows "
                    f"{data.index[rows[:5]].tolist()}; every response of a multivariate model uses the same rows: "
                    "fix or remove them, or pass dropna=True to drop rows incomplete in any response's columns"
                )
            bad |= miss
        if bad.any():
            log.warning("hbstan: dropna=True dropped %d of %d rows with missing values", bad.sum(), len(data))
            data = data.loc[~bad]
        return data.reset_index(drop=True)

    @staticmethod
    def _resolve_rescor(rescor: bool | None, families: list[Family], names: list[str]) -> bool:
        densities = {f.rescor for f in families}
        if rescor is None:  # brms: on where every response is Gaussian (jointly normal residuals)
            return densities == {"multi_normal_cholesky"}
        if rescor not in (True, False):
            raise ValueError(f"rescor must be True, False or None (default), got {rescor!r}")
        if rescor:
            other = [(n, f.name) for n, f in zip(names, families, strict=True) if not f.rescor]
            if other:
                raise ValueError(
                    "rescor=True models the residual correlation of Gaussian or Student-t responses; "
                    + ", ".join(f"response {n!r} has family={fam!r}" for n, fam in other)
                    + ": pass rescor=False (responses of other families can share group terms instead)"
                )
            if len(densities) > 1:
                raise ValueError(
                    "rescor=True needs every response Gaussian or every response Student-t (one multivariate "
                    f"distribution); these responses have families {[f.name for f in families]}"
                )
        return bool(rescor)

    def _route_priors(
        self, user: dict[str, Any], names: list[str], families: list[Family], links: list[Any],
        data: pd.DataFrame, pooling: Any, centered: Any,
    ) -> tuple[list[dict[str, Any]], Prior]:
        """Hand each response the priors meant for it; return them and the rescor prior.

        A key ``response_key`` (``y_x1``, ``y_sigma``, ``y_b``) goes to that response as
        ``key``; a key every response may take (a class such as ``b`` or ``sd``, or a name such
        as ``Intercept``) goes to each response that has it; ``rescor`` is the residual
        correlations' LKJ prior.
        """
        routed: list[dict[str, Any]] = [{} for _ in names]
        rescor_prior: Prior = DEFAULT_RESCOR_PRIOR
        self.joint_priors: dict[str, Prior] = {}
        joint_names = {f"{factor}_corr_{ident}" for (_, factor, _), ident in self.term_ids.items()}
        if not user:
            return routed, rescor_prior
        valid: list[set[str]] = []
        for f, fam, lk in zip(self._plain, families, links, strict=True):
            s = ModelSpec(f, data, family=fam, link=lk, pooling=pooling, centered=centered, suff_stats=False,
                          marginalize=False, aggregate=False)
            valid.append(set(s.default_priors) | set(s.prior_classes()))
        order = sorted(range(len(names)), key=lambda i: -len(names[i]))  # longest prefix first
        for key, prior in user.items():
            if key == "rescor":
                if isinstance(prior, str):
                    prior = parse_prior(prior, name=key)
                if not isinstance(prior, LKJ):
                    raise ValueError(f"prior for 'rescor' must be an LKJ prior such as hbstan.LKJ(2), got {prior!r}")
                if not self.rescor:
                    raise ValueError("a prior for 'rescor' was given, but this model has no residual correlation")
                rescor_prior = prior
                continue
            if key in joint_names:  # the correlations of group terms with one ID (brms's |p|)
                if isinstance(prior, str):
                    prior = parse_prior(prior, name=key)
                if not isinstance(prior, LKJ):
                    raise ValueError(f"prior for {key!r} must be an LKJ prior such as hbstan.LKJ(2), got {prior!r}")
                self.joint_priors[key] = prior
                continue
            hit = next((i for i in order if key.startswith(f"{names[i]}_") and key[len(names[i]) + 1:] in valid[i]), None)
            if hit is not None:
                routed[hit][key[len(names[hit]) + 1:]] = prior
                continue
            takers = [i for i in range(len(names)) if key in valid[i]]
            if not takers:
                every = sorted({f"{names[i]}_{v}" for i in range(len(names)) for v in valid[i]})
                shared = sorted(set.intersection(*valid))
                raise ValueError(
                    f"unknown prior name {key!r}; valid names for this model: response_name keys {every}, "
                    f"keys for every response that has them {shared}" + (", 'rescor'" if self.rescor else "")
                )
            for i in takers:
                routed[i].setdefault(key, prior)
        return routed, rescor_prior

    # ------------------------------------------------------------------ names
    def stan_name(self, r: Response, stan: str) -> str:
        """Return the program's name of a univariate spec's Stan variable ``stan`` for response ``r``."""
        m = re.fullmatch(r"(r|sd|Cor|gamma)_(\d+)", stan)
        if m:
            return f"{m.group(1)}_{r.block_number(int(m.group(2)))}"
        if stan == "nu" and self.shared_nu:
            return "nu"
        return f"{stan}_{r.k}"

    def _param_table(self) -> list[ParamInfo]:
        out: list[ParamInfo] = []
        shared_done = False
        for r in self.responses:
            factors = {blk.factor for blk in r.spec.design.blocks}
            for p in r.spec.params:
                stan = self.stan_name(r, p.stan)
                if stan == "nu" and self.shared_nu:
                    if not shared_done:
                        out.append(replace(p, name="nu", stan="nu"))
                        shared_done = True
                    continue

                local = re.fullmatch(r"(sd|Cor)_(\d+)", p.stan)
                joint = self.joint_of(r, int(local.group(2))) if local else None
                if joint is not None and local.group(1) == "Cor":
                    continue  # its correlations are the joint block's
                if joint is not None:  # its SDs are entries of the joint block's
                    jb, start = joint
                    stan = f"sd_{jb.number}"
                    p = replace(p, cols=slice(p.cols.start + start, p.cols.stop + start))
                coords = None if p.coords is None else {
                    (d if d in factors else f"{r.name}_{d}"): v for d, v in p.coords.items()
                }
                dims = tuple(d if d in factors else f"{r.name}_{d}" for d in p.dims)
                out.append(replace(p, name=f"{r.name}_{p.name}", stan=stan, dims=dims, coords=coords))
        for jb in self.joint_blocks:
            labels = jb.labels()
            dims = (f"{jb.name}_effect", f"{jb.name}_effect_bis")
            out.append(ParamInfo(jb.name, f"Cor_{jb.number}", "corr", None, dims, {dims[0]: labels, dims[1]: labels}))
        if self.rescor:
            labels = [r.name for r in self.responses]
            dims = ("rescor_response", "rescor_response_bis")
            out.append(ParamInfo("rescor", "Rescor", "corr", None, dims, {dims[0]: labels, dims[1]: labels}))
        return out

    def _collect_priors(self) -> dict[str, Prior]:
        pri: dict[str, Prior] = {}
        dropped = {
            (r.k, p.name) for r in self.responses for p in r.spec.params
            if p.kind == "corr" and self.joint_of(r, int(p.stan.split("_")[1])) is not None
        }
        for r in self.responses:
            for k, p in r.spec.priors.items():
                if (r.k, k) in dropped:  # a member term's correlations: the joint block's below
                    continue
                if k == "nu" and self.shared_nu:
                    pri.setdefault("nu", p)
                else:
                    pri[f"{r.name}_{k}"] = p
        for jb in self.joint_blocks:
            pri[jb.name] = self.joint_priors.get(jb.name, DEFAULT_RESCOR_PRIOR)
        if self.rescor:
            pri["rescor"] = self.rescor_prior
        return pri

    @property
    def response_names(self) -> list[str]:
        """The responses, in the order of the formulas."""
        return [r.name for r in self.responses]

    @property
    def N(self) -> int:
        """Number of rows (every response has one per row)."""
        return len(self.data)

    def response(self, name: str) -> Response:
        """Return the response of that name."""
        for r in self.responses:
            if r.name == name:
                return r
        raise ValueError(f"unknown response {name!r}; this model's responses: {self.response_names}")

    # ------------------------------------------------------------------ Stan program
    def structure(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Template context of ``mv.stan.j2`` (structure only) and prior hyperparameter data."""
        hyper: dict[str, Any] = {}
        responses, blocks = [], []
        sd_parts: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}  # joint block: its members' SD priors
        functions_seen: set[tuple[str, str]] = set()
        for r in self.responses:
            ctx, h = r.spec.structure()

            def move(old: str, new: str, desc: dict[str, Any] | None, h: dict[str, Any] = h) -> None:
                for a in (desc or {}).get("data_args", []):
                    hyper[f"prior_{new}_{a}"] = h[f"prior_{old}_{a}"]

            rc: dict[str, Any] = {
                "k": r.k,
                "family": ctx["family"],
                "link": ctx["link"],
                "integer_response": ctx["integer_response"],
                "trials": r.family.trials,
                "has_intercept": ctx["has_intercept"],
                "center": ctx["center"],
                # what the family's macros read of a univariate context
                "se": False,
                "dpar_names": [],
                "dpars": [],
                "blocks": [],
                "priors": dict(ctx["priors"]),
                "aux": [],
                # the family's Stan functions, written once per family and link
                "functions": (ctx["family"], ctx["link"]) not in functions_seen,
            }
            functions_seen.add((ctx["family"], ctx["link"]))
            if "Intercept" in ctx["priors"]:
                move("Intercept", f"Intercept_{r.k}", ctx["priors"]["Intercept"])
            move("b", f"b_{r.k}", ctx["priors"]["b"])
            for a in ctx["aux"]:
                entry = dict(a)
                entry["stan"] = self.stan_name(r, a["name"])
                entry["declare"] = entry["stan"] != "nu" or r.k == 1
                if "prior" in a and entry["declare"]:
                    move(a["name"], entry["stan"], a["prior"])
                rc["aux"].append(entry)
            for b in ctx["blocks"]:
                g = r.block_number(b["i"])
                # no centering on the intercept or slopes, no split-off mean: those refer to the
                # univariate program's names (Intercept, b)
                gb = dict(
                    b, i=g, M=f"M_{g}", on_intercept=False, center_slopes=False, split=False, marginal=False,
                    response=r.k, member_of=None,
                )
                joint = self.joint_of(r, b["i"])
                if joint is not None:  # its effects are columns of the joint block's
                    jb, start = joint
                    width = r.spec.design.blocks[b["i"] - 1].M
                    gb.update(member_of=jb.number, start=start + 1, end=start + width, centered=False)
                    sd_parts.setdefault(jb.number, []).append((b["sd_prior"], {
                        a: np.atleast_1d(h[f"prior_sd_{b['i']}_{a}"]) for a in b["sd_prior"]["data_args"]
                    }))
                else:
                    for key, stem in (("sd_prior", "sd"), ("lkj_prior", "L"), ("r_prior", "r"), ("gamma_prior", "gamma")):
                        if key in b:
                            move(f"{stem}_{b['i']}", f"{stem}_{g}", b[key])
                rc["blocks"].append(gb)
                blocks.append(gb)
            responses.append(rc)
        joints = []
        for jb in self.joint_blocks:
            parts = sd_parts[jb.number]
            if len({d["stan_fn"] for d, _ in parts}) > 1:
                raise ValueError(
                    f"the group SDs of the terms with ID {jb.ident!r} ({jb.factor}) must have priors of one family "
                    f"(one statement for the block); got {sorted({d['family'] for d, _ in parts})}"
                )
            sd_desc = parts[0][0]
            for a in sd_desc["data_args"]:
                hyper[f"prior_sd_{jb.number}_{a}"] = np.concatenate([v[a] for _, v in parts]).tolist()
            lkj = self.priors[jb.name]
            lkj_desc = {"stan_fn": lkj.stan_fn, "args": list(lkj.args), "data_args": list(lkj.data_args()),
                        "family": lkj.family}
            for a, v in lkj.values().items():
                hyper[f"prior_L_{jb.number}_{a}"] = v
            joints.append({
                "i": jb.number, "pooling": "correlated", "centered": False, "marginal": False, "on_intercept": False,
                "center_slopes": False, "split": False, "dpar": None, "has_U": False, "M": f"M_{jb.number}",
                "sd_prior": sd_desc, "lkj_prior": lkj_desc,
                "members": [r.block_number(i) for r, i in jb.members],
            })
        ctx_all: dict[str, Any] = {
            "version": __version__,
            "responses": responses,
            "blocks": blocks,
            "joint_blocks": joints,
            "rescor": None,
        }
        if self.rescor:
            desc = {"stan_fn": self.rescor_prior.stan_fn, "args": list(self.rescor_prior.args),
                    "data_args": list(self.rescor_prior.data_args()), "family": self.rescor_prior.family}
            for a, v in self.rescor_prior.values().items():
                hyper[f"prior_Lrescor_{a}"] = v
            ctx_all["rescor"] = {
                "density": self.responses[0].family.rescor,  # multi_normal_cholesky, multi_student_t_cholesky
                "nu": self.shared_nu,
                "prior": desc,
            }
        return ctx_all, hyper

    @property
    def stan_code(self) -> str:
        """The rendered Stan program (no user string appears in it)."""
        return self.program()

    def program(self) -> str:
        """Render the Stan program of the model (once)."""
        if self._code is None:
            ctx, _ = self.structure()
            self._code = rendered_program(ctx, template="mv.stan.j2")
        return self._code

    def stan_data_for(self, *, prior_only: bool = False, pointwise: bool = True) -> dict[str, Any]:
        """Return the data dict handed to CmdStan."""
        _, hyper = self.structure()
        data: dict[str, Any] = {"N": self.N, "R": len(self.responses)}
        for r in self.responses:
            s, d, k = r.spec, r.spec.design, r.k
            data[f"y_{k}"] = d.y.astype(int) if r.family.integer_response else d.y
            if r.family.trials:
                data[f"trials_{k}"] = s.trials.astype(int)
            data[f"K_{k}"] = d.K
            data[f"X_{k}"] = d.X
            data[f"offsets_{k}"] = s.offset
            if d.centers_X:
                data[f"means_X_{k}"] = d.X.mean(axis=0)
            for i, blk in enumerate(d.blocks, start=1):
                g = r.block_number(i)
                data[f"J_{g}"] = blk.J
                data[f"M_{g}"] = blk.M
                data[f"g_{g}"] = blk.index + 1
                data[f"Z_{g}"] = blk.Z
        for jb in self.joint_blocks:
            data[f"J_{jb.number}"] = jb.J
            data[f"M_{jb.number}"] = jb.M
        data.update(hyper)
        data["prior_only"] = int(prior_only)
        data["pointwise"] = int(pointwise)
        return data

    # ------------------------------------------------------------------ text
    def link_summary(self) -> str:
        """Each response's family and link: ``"y1: gaussian (identity); y2: bernoulli (logit)"``."""
        return "; ".join(f"{r.name}: {r.family.name} ({r.family.link})" for r in self.responses)

    def prior_table(self) -> pd.DataFrame:
        """Return the priors in use, one row per coefficient: name, prior."""
        return pd.DataFrame([{"name": k, "prior": str(p)} for k, p in self.priors.items()])

    def __str__(self) -> str:
        """Each response's formula and family, the residual correlation, the terms and the priors."""
        lines = []
        for r in self.responses:
            lines.append(f"Formula {r.k}: {r.spec.formula}")
            lines.append(f"  Family: {r.family.name} ({r.spec.link_summary()})")
            for blk in r.spec.design.blocks:
                how = "unpooled (independent priors)" if blk.pooling == "unpooled" else (
                    f"{blk.pooling}, {'centered' if blk.centered else 'non-centered'}"
                )
                lines.append(f"    Term: ({blk.expr} | {blk.factor}), {blk.J} groups: {how}")
        lines.append(f"    Data: {self.N} rows")
        lines.append(
            "  Rescor: " + ("residual correlation of " + ", ".join(self.response_names) if self.rescor else "none")
        )
        lines += ["", "Priors:", self.prior_table().to_string(index=False)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"hbstan.Model({self.formulas!r}, family={[r.family.name for r in self.responses]!r}, N={self.N})"
