"""The option grid of hbstan's rendered programs, for the log-density validation.

A *variant* is one program structure: family, design of the group terms, with or without an
intercept, group-level predictors, threads (reduce_sum). Predictors and offsets are Stan data,
so each program is checked on four data sets (with and without population-level predictors,
with and without an offset) without compiling again.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import hbstan
from hbstan.render import templates_dir

# response and options of each family entry (bernoulli twice: row by row and summed into counts)
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "gaussian": ("y", {}),
    "gaussian_known_sigma": ("y", {"sigma": 1.1}),
    "student": ("y", {"family": "student"}),
    "bernoulli": ("yb", {"family": "bernoulli", "aggregate": False}),
    "bernoulli_aggregated": ("yb", {"family": "bernoulli", "aggregate": True}),
    "binomial": ("yk | trials(nt)", {"family": "binomial"}),
    "bernoulli_probit": ("yb", {"family": "bernoulli", "link": "probit", "aggregate": False}),
    "bernoulli_cloglog_aggregated": ("yb", {"family": "bernoulli", "link": "cloglog", "aggregate": True}),
    "binomial_cloglog": ("yk | trials(nt)", {"family": "binomial", "link": "cloglog"}),
    "gaussian_sigma_formula": ("y", {}),
    "student_sigma_formula": ("y", {"family": "student"}),
    "lognormal_sigma_formula": ("yl", {"family": "lognormal"}),
    "negbinomial_shape_formula": ("yp", {"family": "negbinomial"}),
    "gamma_shape_formula": ("yg", {"family": "gamma"}),
    "beta_phi_formula": ("yq", {"family": "beta"}),
    "zero_inflated_poisson_zi_formula": ("yz", {"family": "zero_inflated_poisson"}),
    "zero_inflated_negbinomial_formulas": ("yz", {"family": "zero_inflated_negbinomial"}),
    "hurdle_poisson_hu_formula": ("yz", {"family": "hurdle_poisson"}),
    "hurdle_negbinomial_formulas": ("yz", {"family": "hurdle_negbinomial"}),
    "hurdle_lognormal_formulas": ("yh", {"family": "hurdle_lognormal"}),
    "poisson": ("yp", {"family": "poisson"}),
    "negbinomial": ("yp", {"family": "negbinomial"}),
    "gamma": ("yg", {"family": "gamma"}),
    "lognormal": ("yl", {"family": "lognormal"}),
    "beta": ("yq", {"family": "beta"}),
    "zero_inflated_poisson": ("yz", {"family": "zero_inflated_poisson"}),
    "zero_inflated_negbinomial": ("yz", {"family": "zero_inflated_negbinomial"}),
    "hurdle_poisson": ("yz", {"family": "hurdle_poisson"}),
    "hurdle_negbinomial": ("yz", {"family": "hurdle_negbinomial"}),
    "hurdle_lognormal": ("yh", {"family": "hurdle_lognormal"}),
    "cumulative": ("yo", {"family": "cumulative"}),
    "cumulative_probit": ("yo", {"family": "cumulative", "link": "probit"}),
    "categorical": ("ycat", {"family": "categorical"}),
    # response additions: likelihood weights, and censoring (left, right and interval rows)
    "gaussian_weighted": ("y | weights(w)", {}),
    "bernoulli_weighted": ("yb | weights(w)", {"family": "bernoulli"}),
    "poisson_weighted": ("yp | weights(w)", {"family": "poisson"}),
    "beta_weighted": ("yq | weights(w)", {"family": "beta"}),
    "gaussian_censored": ("y | cens(cc, y_hi)", {}),
    "student_censored": ("y | cens(cc, y_hi)", {"family": "student"}),
    "lognormal_censored": ("yl | cens(cc, yl_hi)", {"family": "lognormal"}),
    "gamma_censored": ("yg | cens(cc, yg_hi)", {"family": "gamma"}),
    "poisson_censored": ("yp | cens(cc, yp_hi)", {"family": "poisson"}),
    "negbinomial_censored": ("yp | cens(cc, yp_hi)", {"family": "negbinomial"}),
    # ... with a formula for the auxiliary parameter
    "gaussian_sigma_formula_weighted": ("y | weights(w)", {}),
    "beta_phi_formula_weighted": ("yq | weights(w)", {"family": "beta"}),
    "lognormal_sigma_formula_censored": ("yl | cens(cc, yl_hi)", {"family": "lognormal"}),
    "gamma_shape_formula_censored": ("yg | cens(cc, yg_hi)", {"family": "gamma"}),
    # ... with group terms in that formula (numbered after the mean's, non-centered)
    "gaussian_sigma_groups": ("y", {}),
    "lognormal_sigma_correlated_groups": ("yl", {"family": "lognormal"}),
}
# count families: an offset enters as an exposure (log offset)
COUNTS = {"poisson", "negbinomial", "zero_inflated_poisson", "zero_inflated_negbinomial", "hurdle_poisson", "hurdle_negbinomial"}
EXPOSURE = {f for f, (_, kw) in FAMILIES.items() if f in COUNTS or kw.get("family") in COUNTS}
# the additions meet fewer designs (they change the likelihood, not the group terms): pooled
# with an intercept, hierarchical with an intercept and a group predictor, crossed without one
ADDITIONS = {f for f in FAMILIES if f.endswith(("_weighted", "_censored"))}
ADDITION_VARIANTS = (("pooled", True, False), ("hierarchical", True, True), ("crossed", False, False))

# group terms and options of each design; the Gaussian-only ones use sufficient statistics
DESIGNS: dict[str, tuple[str, dict[str, Any]]] = {
    "pooled": ("", {}),
    "unpooled": ("(1 | g)", {"pooling": "unpooled"}),
    "hierarchical": ("(1 | g)", {"centered": False}),
    "hierarchical_centered": ("(1 | g)", {"centered": True}),
    "independent_slopes": ("(1 + x || g)", {"centered": False}),
    "correlated": ("(1 + x | g)", {"centered": False}),
    "correlated_centered": ("(1 + x | g)", {"centered": True}),
    "crossed": ("(1 | g) + (1 + x || h)", {"centered": {"g": True, "h": False}}),
    "suff_pooled": ("", {"suff_stats": True}),
    "suff_sampled": ("(1 + x | g)", {"suff_stats": True, "marginalize": False, "centered": False}),
    "marginal": ("(1 | g)", {"marginalize": True}),
    "marginal_correlated": ("(1 + x | g)", {"marginalize": True}),
}
SUFF_DESIGNS = {"suff_pooled", "suff_sampled", "marginal", "marginal_correlated"}
# a link other than the default changes only the likelihood line: those entries run on a few
# designs (the pooled one, a non-centered, a centered and a crossed one)
LINK_FAMILIES = {"bernoulli_probit", "bernoulli_cloglog_aggregated", "binomial_cloglog"}
LINK_DESIGNS = {"pooled", "hierarchical", "correlated_centered", "crossed"}
# ordinal families: thresholds replace the intercept, so '0 + ...' renders the same program as
# '1 + ...' (the intercept variants only); no unpooled design (unpooled group intercepts
# cannot be told apart from the thresholds: refused); the probit link on two designs
ORDINAL_DESIGNS = {"cumulative": LINK_DESIGNS, "cumulative_probit": {"hierarchical", "correlated_centered"}}
# the categorical family (a linear predictor per category): independent group effects only
# (correlated and unpooled terms and group predictors are refused), no reduce_sum, no offset
# (refused: the data sets with one are listed as such)
CATEGORICAL_DESIGNS = {"pooled", "hierarchical", "hierarchical_centered", "independent_slopes", "crossed"}
# formulas for auxiliary parameters ("; sigma ~ x"): the row-by-row likelihood only (no
# threads, no sufficient statistics), on the same few designs; two formulas at once where a
# family has two such parameters
DPAR_FAMILIES = {
    "gaussian_sigma_formula": "; sigma ~ x",
    "student_sigma_formula": "; sigma ~ x",
    "lognormal_sigma_formula": "; sigma ~ x",
    "negbinomial_shape_formula": "; shape ~ x",
    "gamma_shape_formula": "; shape ~ x",
    "beta_phi_formula": "; phi ~ x",
    "zero_inflated_poisson_zi_formula": "; zi ~ x",
    "zero_inflated_negbinomial_formulas": "; shape ~ x; zi ~ x",
    "hurdle_poisson_hu_formula": "; hu ~ x",
    "hurdle_negbinomial_formulas": "; shape ~ x; hu ~ x",
    "hurdle_lognormal_formulas": "; sigma ~ x; hu ~ x",
    "gaussian_sigma_formula_weighted": "; sigma ~ x",
    "beta_phi_formula_weighted": "; phi ~ x",
    "lognormal_sigma_formula_censored": "; sigma ~ x",
    "gamma_shape_formula_censored": "; shape ~ x",
    "gaussian_sigma_groups": "; sigma ~ x + (1 | g)",
    "lognormal_sigma_correlated_groups": "; sigma ~ x + (1 + x | h)",
}


@dataclass(frozen=True)
class Variant:
    """One program structure of the grid."""

    family: str
    design: str
    intercept: bool
    group_predictors: bool
    threads: bool

    @property
    def name(self) -> str:
        """A readable label."""
        parts = [self.family, self.design, "intercept" if self.intercept else "no intercept"]
        if self.group_predictors:
            parts.append("group predictor")
        if self.threads:
            parts.append("threads")
        return ", ".join(parts)

    def model(
        self, df: pd.DataFrame, *, predictors: bool, offset: bool
    ) -> tuple[hbstan.Model, np.ndarray | None, np.ndarray | None, dict[str, np.ndarray]]:
        """The model on ``df``; the offset (log exposure included) and trials it was given; and
        its weights, censoring codes and upper bounds (``weights``, ``cens``, ``y2``) if any."""
        y, fam_kw = FAMILIES[self.family]
        terms, design_kw = DESIGNS[self.design]
        rhs = ["1" if self.intercept else "0"] + (["x", "c"] if predictors else []) + ([terms] if terms else [])
        kw: dict[str, Any] = {**fam_kw, **design_kw}
        if self.family.startswith("gaussian") and self.design not in SUFF_DESIGNS:
            kw["suff_stats"] = False  # the row-by-row likelihood (normal_id_glm)
        if self.group_predictors:
            kw["group_predictors"] = {"g": ["u"]}
        off = None
        if offset and self.family in EXPOSURE:
            kw["exposure"] = "t"
            off = np.log(df["t"].to_numpy())
        elif offset:
            kw["offset"] = "off"
            off = df["off"].to_numpy()
        trials = df["nt"].to_numpy() if self.family.startswith("binomial") else None
        rows: dict[str, np.ndarray] = {}
        if "weights(" in y:
            rows["weights"] = df["w"].to_numpy()
        if "cens(" in y:
            rows["cens"] = df["cc"].to_numpy()
            rows["y2"] = df[y.split(",")[1].strip(" )")].to_numpy()
        dpar = DPAR_FAMILIES.get(self.family, "")
        return hbstan.Model(f"{y} ~ {' + '.join(rhs)}{dpar}", df, **kw), off, trials, rows


def variants() -> list[Variant]:
    """The grid: every family x design x intercept, each with two of the four combinations of
    group predictors and threads (FF and TT with an intercept, FT and TF without), so every
    pair of options meets somewhere; combinations a design does not have are left out. The
    weighted and censored entries (no threads: their likelihood is row by row) meet the three
    designs of ``ADDITION_VARIANTS``."""
    out = []
    for fam in sorted(ADDITIONS, key=list(FAMILIES).index):
        out += [Variant(fam, design, intercept, gp, False) for design, intercept, gp in ADDITION_VARIANTS]
    for fam, design, intercept in itertools.product(FAMILIES, DESIGNS, (True, False)):
        if fam in ADDITIONS:
            continue
        if design in SUFF_DESIGNS and not fam.startswith("gaussian"):
            continue
        if (fam in LINK_FAMILIES or fam in DPAR_FAMILIES) and design not in LINK_DESIGNS:
            continue
        if fam in ORDINAL_DESIGNS and (design not in ORDINAL_DESIGNS[fam] or not intercept):
            continue
        if fam == "categorical" and design not in CATEGORICAL_DESIGNS:
            continue
        has_g_intercept = design not in ("pooled", "suff_pooled", "unpooled")
        combos = [(False, False), (True, True)] if intercept else [(False, True), (True, False)]
        for gp, threads in combos:
            gp = gp and has_g_intercept and fam != "categorical"
            # sufficient statistics, formulas for sigma and the categorical family: no reduce_sum
            threads = threads and design not in SUFF_DESIGNS and fam not in DPAR_FAMILIES and fam != "categorical"
            v = Variant(fam, design, intercept, gp, threads)
            if v not in out:
                out.append(v)
    return out


BINOMIAL_GLM_ALONE = "binomial_logit_glm alone (issue 13's bug)"
LIKELIHOOD_DROPPED = "row-by-row likelihood statement dropped"


def broken_templates(tmp: Path) -> dict[str, tuple[Path, Variant]]:
    """Deliberately broken copies of the templates under ``tmp``, each with a variant it breaks.

    ``BINOMIAL_GLM_ALONE``: the binomial family without its no-predictor branch (the templates
    before issue 13's fix); ``LIKELIHOOD_DROPPED``: the skeleton without its row-by-row
    likelihood statement.
    """
    out = {}
    a = tmp / "binomial_glm_alone"
    shutil.copytree(templates_dir(), a)
    fam = a / "families" / "binomial.stan.j2"
    text = fam.read_text()
    start = text.index("cols(Xc) > 0 ? ")
    end = text.index(" : binomial_logit_lupmf", start)
    # the GLM call alone: the condition and its no-predictor branch (to the end of the line) go
    fam.write_text(text[:start] + text[start + len("cols(Xc) > 0 ? "):end] + text[text.index("\n", end):])
    out[BINOMIAL_GLM_ALONE] = (a, Variant("binomial", "hierarchical", True, False, False))
    b = tmp / "likelihood_dropped"
    shutil.copytree(templates_dir(), b)
    skel = b / "model.stan.j2"
    text = skel.read_text()
    line = "    target += {{ fam.glm(m) }};\n"
    assert line in text
    skel.write_text(text.replace(line, ""))
    out[LIKELIHOOD_DROPPED] = (b, Variant("poisson", "hierarchical", True, False, False))
    return out
