"""General programs: one precompiled Stan program per family whose structure is data.

rstanarm's approach to a first fit without a compile: the general program of a family takes
any number of varying terms, each with any number of effects, correlated (LKJ) or independent
by a data flag, through index arrays and flat parameter vectors
(``stan_templates/general.stan.j2``). Its priors are the specialized programs' default prior
families with the hyperparameters as data, so a model it supports has the same posterior on
it as on its specialized program; only the parameterization may differ (each term centered
or not as there, never centered on the intercept; a Gaussian model's only term integrated out
where the specialized program does so). The ordinal family's programs (``cumulative``, one
per link) have ordered thresholds in place of the intercept, their number (the response's
categories less one) as data, with the specialized programs' prior family on them; a
centered term's group intercepts are sampled relative to the thresholds' mean, as there.
The categorical family's program has a linear predictor per non-reference category (their
number as data), each with its own intercept, coefficients and copy of every varying term, as
the specialized program. :func:`hbstan.stan_backend.sample_stan` samples on it while the
specialized program compiles in the background.

This module decides which models the general program supports (:func:`unsupported`), renders
the program (:func:`general_program`), writes its data (:func:`general_data`) and reads its
output back under the specialized program's names (:func:`specialized_names`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._version import __version__
from .backend import compiled_model, is_compiled
from .centering import term_evidence
from .families import get_family
from .priors import LKJ, HalfNormal, Normal, Prior, StudentT
from .render import program as rendered_program

if TYPE_CHECKING:
    from .spec import ModelSpec

__all__ = ["GENERAL_FAMILIES", "PROGRAMS", "general_links", "all_programs", "unsupported", "general_program", "general_data", "is_marginal",
           "centered_terms", "program_terms", "specialized_names", "is_built", "build"]

# the families with a general program: every family (each at any of its links: a program per
# link); the ordinal family's thresholds and the categorical family's linear predictors, one
# per non-reference category, are parameters of data size
GENERAL_FAMILIES = (
    "gaussian", "bernoulli", "binomial", "poisson", "negbinomial", "gamma", "lognormal", "student", "beta",
    "zero_inflated_poisson", "zero_inflated_negbinomial", "hurdle_poisson", "hurdle_negbinomial", "hurdle_lognormal",
    "cumulative", "categorical",
)

# the prior family of an ordinal family's thresholds and of a categorical family's intercepts
# (brms's default, StudentT(3, 0, 2.5), in the specialized programs: hbstan.spec's default
# priors); the hyperparameters are data
THRESHOLD_PRIOR: type[Prior] = StudentT

# which program a fit runs on: Model.sample(program=...)
PROGRAMS = ("auto", "general", "specialized")


def general_links(family: str) -> tuple[str, ...]:
    """Return the links of ``family`` with a general program: all of its links, the default first."""
    fam = get_family(family)
    return fam.links or (fam.link,)


def general_program(family: str, link: str | None = None) -> str:
    """Render the general program of ``family`` (one of :data:`GENERAL_FAMILIES`) at ``link``.

    ``link`` is one of the family's links (default: its default link). Each link has a program
    of its own: the family template writes each link's likelihood (the logit one with Stan's
    GLM function), so a link is structure, as in the specialized programs.
    """
    if family not in GENERAL_FAMILIES:
        raise ValueError(f"no general program for family {family!r}; families with one: {list(GENERAL_FAMILIES)}")
    fam = get_family(family).with_link(link)
    aux = []
    for a in fam.aux:  # each with its default prior's family; the hyperparameters are data
        entry = {"name": a.name, "doc": a.doc, "lower": f"{a.lower:g}"}
        if math.isfinite(a.upper):  # a probability: <lower=0, upper=1>
            entry["upper"] = f"{a.upper:g}"
        entry["prior"] = _prior_descriptor(a.default_prior(1.0))
        aux.append(entry)
    ctx = {
        "general": True,  # keeps its render-cache key apart from the specialized programs'
        "version": __version__,
        "family": fam.name,
        "link": fam.link,
        "integer_response": fam.integer_response,
        "aux": aux,
        # what the family templates' macros read: no known SEs, no distributional formulas
        "se": False,
        "dpar_names": [],
        # the Gaussian program can integrate the group effects of a model's only term out
        # (data flag marginal), from the sufficient statistics the specialized programs use
        "marginal": fam.suff_stats,
        # ordinal: ordered thresholds (ncat - 1, data) replace the intercept
        "thresholds": fam.thresholds,
        # categorical: a linear predictor per non-reference category (ncat - 1, data)
        "per_category": fam.per_category,
    }
    if fam.thresholds or fam.per_category:  # the intercepts' prior family (the macros' descriptor)
        ctx["intercept_prior"] = _prior_descriptor(THRESHOLD_PRIOR())
    return rendered_program(ctx, template="general.stan.j2")


def _prior_descriptor(prior: Prior) -> dict[str, Any]:
    """Describe a prior family as the template macros read it: its Stan function and hyperparameters."""
    return {"stan_fn": prior.stan_fn, "args": list(prior.args), "data_args": list(prior.data_args()),
            "family": prior.family}


def all_programs(families: list[str] | None = None) -> list[tuple[str, str]]:
    """List (family, link) of every general program of ``families`` (default: all; others are skipped)."""
    return [(f, lk) for f in (families or GENERAL_FAMILIES) if f in GENERAL_FAMILIES for lk in general_links(f)]


def is_built(family: str, link: str | None = None) -> bool:
    """Whether the general program of ``family`` at ``link`` (default: its default) is compiled in the cache."""
    return is_compiled(general_program(family, link))


def build(families: list[str] | None = None) -> int:
    """Compile the general programs (of ``families``, default all; every link of each) not yet in the cache."""
    todo = all_programs(families)
    for f, lk in todo:
        compiled_model(general_program(f, lk))
    return len(todo)


def unsupported(model: ModelSpec) -> str | None:
    """Why ``model`` cannot run on its family's general program, or None when it can."""
    fam = model.family
    if fam.name not in GENERAL_FAMILIES:
        return f"family {fam.name!r} has no general program (families with one: {list(GENERAL_FAMILIES)})"
    d = model.design
    if model.se is not None or model.weights is not None or model.cens is not None:
        return "se(), weights() and cens() need the specialized program"
    if d.dpars:
        return "formulas for auxiliary parameters need the specialized program"
    if model.fixed_aux:
        return "a known sigma needs the specialized program"
    for blk in d.blocks:
        if blk.pooling not in ("hierarchical", "correlated"):
            return f"{blk.pooling} group effects ({blk.expr} | {blk.factor}) need the specialized program"
        if blk.pooling == "correlated" and blk.M < 2:
            return f"a correlated term with one effect ({blk.expr} | {blk.factor}) needs the specialized program"
        if blk.U is not None:
            return f"group-level predictors of {blk.factor!r} need the specialized program"
    if not d.has_intercept and not d.thresholds:
        return "a model without an intercept needs the specialized program"
    per_intercept = d.thresholds or fam.per_category  # a vector of intercepts (thresholds)
    expected: dict[str, type[Prior]] = {"Intercept": THRESHOLD_PRIOR if per_intercept else Normal, "b": Normal,
                                        "sd": HalfNormal, "corr": LKJ}
    expected.update({a.name: type(a.default_prior(1.0)) for a in fam.aux})
    for key, prior in model.priors.items():
        cls = _prior_class(model, key)
        if type(prior) is not expected[cls]:
            return (
                f"the prior of {key!r} is {prior}: the general program has the default prior families only "
                f"({expected[cls].__name__} there)"
            )
    return None


def _prior_class(model: ModelSpec, key: str) -> str:
    """Name the class of a prior key of a model the general program may support."""
    if key == "Intercept" or key in [a.name for a in model.family.aux]:
        return key
    if key in [f"Intercept[{lab}]" for lab in model.threshold_labels]:  # an ordinal family's threshold
        return "Intercept"
    if key in model.per_category_keys(["Intercept"]):  # a categorical family's intercept of a category
        return "Intercept"
    if isinstance(model.default_priors[key], LKJ):
        return "corr"
    if isinstance(model.default_priors[key], HalfNormal):
        return "sd"
    return "b"


def general_data(model: ModelSpec, *, prior_only: bool = False, pointwise: bool = False) -> dict[str, Any]:
    """Write the data of the general program for ``model`` (which it must support).

    The rows as they are (Bernoulli rows are not summed into counts: the same likelihood),
    the structure of the varying terms, and the hyperparameters of the model's priors in the
    order of the flat parameter vectors. Where the specialized program integrates a Gaussian
    model's group effects out (``model.marginalized``), so does the general one
    (``marginal`` = 1, with the same per-cell sufficient statistics), unless ``pointwise``
    asks the program for ``log_lik``, which needs the group effects sampled. A categorical
    model's terms are listed once per non-reference category, category after category
    (:func:`program_terms`), each copy with that category's priors.
    """
    reason = unsupported(model)
    if reason is not None:
        raise ValueError(f"the general program does not support this model: {reason}")
    d = model.design
    fam = model.family
    data: dict[str, Any] = {"N": d.N, "y": d.y.astype(int) if fam.integer_response else d.y}
    if d.thresholds or fam.per_category:
        data["ncat"] = model.ncat
    if fam.trials:
        data["trials"] = model.trials.astype(int)
    data.update(K=d.K, X=d.X, offsets=model.offset, means_X=d.X.mean(axis=0))
    blocks = program_terms(model)
    copies = len(blocks) // len(d.blocks) if d.blocks else 1  # of each term: one per category
    marginal = is_marginal(model, pointwise=pointwise)
    data.update(
        T=len(blocks),
        J=[blk.J for blk in blocks],
        M=[blk.M for blk in blocks],
        cor=[int(blk.pooling == "correlated") for blk in blocks],
        centered=[int(c) for c in centered_terms(model, marginal=marginal)] * copies,
        g=np.array([blk.index + 1 for blk in blocks], dtype=int).reshape(len(blocks), d.N),
        E=sum(blk.M for blk in blocks),
        Z=np.column_stack([blk.Z for blk in blocks]) if blocks else np.zeros((d.N, 0)),
    )
    if fam.suff_stats:  # the Gaussian program's sufficient statistics (sizes 0 unless marginal)
        data.update(marginal=int(marginal), S=0, P=0, Ax=np.zeros((d.K, 0)), Az=np.zeros((0, 0)), one_col=0,
                    ycenter=0.0, yy=np.zeros(0), Wy=np.zeros((0, 0)), WW=np.zeros((0, 0)))
        if marginal:
            data.update(model.suff_data())
    if d.thresholds:
        # the thresholds' priors, one per threshold; a centered term's group intercepts sampled
        # relative to their mean (as the specialized program does: the first centered term
        # with a varying intercept)
        _, v = model.class_prior([f"Intercept[{lab}]" for lab in model.threshold_labels], "the thresholds")
        data.update({f"prior_Intercept_{arg}": values for arg, values in v.items()})
        data["on_thresholds"] = next(
            (t for t, (blk, c) in enumerate(zip(blocks, data["centered"], strict=True), start=1) if c and blk.has_intercept), 0
        )
    elif fam.per_category:  # an intercept per non-reference category
        _, v = model.class_prior(model.per_category_keys(["Intercept"]), "the intercepts")
        data.update({f"prior_Intercept_{arg}": values for arg, values in v.items()})
    else:
        _, v = model.class_prior(["Intercept"], "the intercept")
        data.update(prior_Intercept_loc=v["loc"][0], prior_Intercept_scale=v["scale"][0])
    bkeys = [k for n, lv, _ in d.terms for k in ([f"{n}[{x}]" for x in lv] if lv else [n])]
    # (a categorical model's category after category, the order of to_vector(b))
    _, v = model.class_prior(model.per_category_keys(bkeys), "the coefficients (class 'b')")
    data.update(prior_b_loc=v.get("loc", []), prior_b_scale=v.get("scale", []))
    for a in fam.aux:  # the hyperparameters of each auxiliary parameter's prior
        for arg, values in model.class_prior([a.name], a.name)[1].items():
            data[f"prior_{a.name}_{arg}"] = values[0]
    sd_scale: list[float] = []
    eta: list[float] = []
    labels = model.category_labels
    for i, blk in enumerate(blocks, start=1):
        keys = model.block_keys(blk, "_sigma", per_category=False)
        if labels:  # this copy's category
            keys = [f"{k}[{labels[(i - 1) // len(d.blocks)]}]" for k in keys]
        sd_scale += model.class_prior(keys, f"the SDs of {blk.factor}")[1]["scale"]
        if blk.pooling == "correlated":
            cname = next(q.name for q in model.params if q.stan == f"Cor_{i}")
            eta.append(model.class_prior([cname], cname)[1]["eta"][0])
        else:
            eta.append(1.0)  # not used: independent effects
    data.update(prior_sd_scale=sd_scale, prior_L_eta=eta, prior_only=int(prior_only), pointwise=int(pointwise))
    return data


def program_terms(model: ModelSpec) -> list[Any]:
    """List the varying terms as the general program has them.

    The model's terms, or, for a family with a linear predictor per non-reference category, a
    copy of each for each such category, category after category (each copy with its own
    group effects and SDs, as on the specialized program).
    """
    blocks = list(model.design.blocks)
    return blocks * len(model.category_labels) if model.family.per_category else blocks


def is_marginal(model: ModelSpec, *, pointwise: bool = False) -> bool:
    """Whether the general program integrates ``model``'s group effects out.

    As its specialized program does: a Gaussian model with one hierarchical or correlated
    term (``model.marginalized``), unless the program is to compute ``log_lik`` (``pointwise``).
    """
    return bool(model.marginalized and not pointwise)


def centered_terms(model: ModelSpec, *, marginal: bool = False) -> list[bool]:
    """Whether each varying term is centered on the general program.

    As on the specialized program: ``centered=`` where given for the term, else the choice
    from the data (:mod:`hbstan.centering`), which a Gaussian term whose effects the
    specialized program integrates out gets here too when the general program samples them
    (with ``marginal`` the general program integrates them out too: no choice to make, False,
    and no evidence computed).
    """
    option = model.options["centered"]
    blocks = model.design.blocks
    out = []
    evidence = None
    for t, blk in enumerate(blocks):
        given = option.get(blk.factor, "auto") if isinstance(option, dict) else option
        if given != "auto":
            out.append(bool(given))
        elif not (model.marginalized and t == 0):
            out.append(bool(blk.centered))
        elif marginal:
            out.append(False)  # integrated out: not sampled
        else:
            if evidence is None:
                evidence = term_evidence(model.family, model.design.y, model.design.X, model.offset, blocks,
                                         trials=model.trials)
            out.append(bool(evidence[t].centered))
    return out


def _cpc_cholesky(cpc: np.ndarray, M: int) -> np.ndarray:
    """Cholesky factors (..., M, M) of correlation matrices from canonical partial correlations.

    ``cpc`` is (..., M (M - 1) / 2), row by row, as the program's function cpc_cholesky reads it.
    """
    L = np.zeros((*cpc.shape[:-1], M, M))
    L[..., 0, 0] = 1.0
    k = 0
    for i in range(1, M):
        sum_sqs = np.zeros(cpc.shape[:-1])
        for j in range(i):
            L[..., i, j] = cpc[..., k] * np.sqrt(1 - sum_sqs)
            sum_sqs = sum_sqs + L[..., i, j] ** 2
            k += 1
        L[..., i, i] = np.sqrt(np.maximum(1 - sum_sqs, 0.0))
    return L


def specialized_names(
    model: ModelSpec, get: Callable[[str], np.ndarray], *, marginal: bool = False
) -> Callable[[str], np.ndarray]:
    """Read the general program's draws under the specialized program's Stan names.

    ``get(name)`` returns a general program variable's draws, (chain, draw, ...); the result
    does the same for the names :func:`hbstan.stan_backend.params_from_stan` asks for
    (``b_Intercept``, ``b``, ``sigma``, ``sd_i``, ``r_i``, ``Cor_i``), cutting each term's
    part out of the flat vectors, and for ``L_i``, the Cholesky factor of ``Cor_i`` (built from
    the term's canonical partial correlations as the program builds it), which
    :func:`hbstan.marginal.group_effect_draws` reads. With ``marginal`` (the program
    integrated term 1's group effects out: :func:`is_marginal`) there are no ``r_1`` draws.
    A categorical model's ``sd_i`` and ``r_i`` join the term's copies (:func:`program_terms`),
    a block of its effects per category, as the specialized program lays them out.
    """
    T = len(model.design.blocks)
    blocks = program_terms(model)
    pos_e, pos_r, pos_cor, pos_c = [], [], [], []
    e = r = q = c = 0
    for t, blk in enumerate(blocks):
        pos_e.append(e)
        pos_r.append(r)
        pos_cor.append(q)
        pos_c.append(c)
        e += blk.M
        r += 0 if (marginal and t == 0) else blk.J * blk.M
        q += blk.M * blk.M if blk.pooling == "correlated" else 0
        c += blk.M * (blk.M - 1) // 2 if blk.pooling == "correlated" else 0
    memo: dict[str, np.ndarray] = {}

    def flat(name: str) -> np.ndarray:
        if name not in memo:
            memo[name] = get(name)
        return memo[name]

    def group_effects(t: int) -> np.ndarray:
        """Program term t's group effects, effect after effect, J values each -> (chain, draw, J, M)."""
        blk = blocks[t]
        part = flat("r")[..., pos_r[t]:pos_r[t] + blk.J * blk.M]
        return np.swapaxes(part.reshape(*part.shape[:2], blk.M, blk.J), -1, -2)

    def read(name: str) -> np.ndarray:
        kind, _, i = name.partition("_")
        if kind in ("sd", "r", "Cor", "L") and i.isdigit():
            t = int(i) - 1
            blk = blocks[t]
            copies = range(t, len(blocks), T)  # the term's copy of each category (one: the term)
            if kind == "sd":
                return np.concatenate([flat("sd")[..., pos_e[c]:pos_e[c] + blk.M] for c in copies], axis=-1)
            if kind == "L":
                return _cpc_cholesky(flat("cpc")[..., pos_c[t]:pos_c[t] + blk.M * (blk.M - 1) // 2], blk.M)
            if kind == "r":
                if marginal and t == 0:
                    raise KeyError("r_1 is integrated out on this run of the general program: hbstan draws it")
                return np.concatenate([group_effects(c) for c in copies], axis=-1)
            part = flat("Cor")[..., pos_cor[t]:pos_cor[t] + blk.M * blk.M]  # column after column
            return np.swapaxes(part.reshape(*part.shape[:2], blk.M, blk.M), -1, -2)
        return get(name)

    return read
