"""Coverage of posterior intervals on simulated data of known truth, for every family x design.

    python validation/interval_coverage.py [--sims 35] [--only beta] [--only cumulative] [--seed 20260501]
    python validation/interval_coverage.py --programs [--only beta]   # which programs are compiled

For each entry of ``SPECS`` (a family, with a link where it has several: ``bernoulli_probit``)
and each of its designs (pooled ``y ~ x``, unpooled ``y ~ x + (1 | g)`` with
``pooling="unpooled"``, hierarchical ``y ~ x + (1 | g)``, correlated ``y ~ x + (1 + x | g)``,
independent ``y ~ x + (1 + x || g)`` where a family has no correlated terms), ``--sims`` data
sets (200 rows, 10 groups) are simulated with every parameter drawn from the prior the model is
then given (``SPECS``: the same distributions handed to hbstan through ``priors=`` and drawn in
NumPy). Each data set is fitted with CmdStan (2 chains x 500 warm-up + 500 draws, the program
specialized to the model) and each parameter's central 50% and 95% posterior intervals are
checked against its true value. The ordinal ``cumulative`` has K - 1 ordered thresholds in place
of the intercept (each checked: ``Intercept[c1|c2]``, ...), drawn as the sorted draws of their
common prior, which is the density of independent priors restricted to ordered vectors; the
multinomial ``categorical`` has an intercept, a coefficient and group terms per non-reference
category (``x[b]``, ``1|g_sigma[c]``, ...).

Because the truths are draws from the model's own prior, a correct program and sampler cover
them at the nominal rate on average over the simulations, up to the sampler's Monte Carlo
error (simulation-based calibration), however weakly the data identify a parameter; a cell is flagged where the
observed coverage falls outside the 99% binomial interval of the nominal rate. Coverage alone
cannot see a program that ignores its likelihood (the prior covers its own draws), so the
table also gives the posterior SD relative to the spread of the true values: well below 1
where the data speak. A data set that hbstan refuses (a categorical response missing a
category, a zero-inflated response of zeros only, a beta draw that rounds to 1) is recorded as
a failed fit and left out: leaving out simulations by a property of their data alone keeps the
posterior intervals calibrated on the rest.

Families that are not registered in ``hbstan.families`` (yet) are listed in the results as
skipped. Failed fits are recorded (error text, divergences, R-hat) and never stop the grid.

Writes ``validation/results/coverage.md`` and ``.json``, merging: each cell that ran replaces its
rows and the other cells' rows are kept (so ``--only`` runs a family at a time, and two such runs
may write at once: the merge holds a file lock).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import re
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, ndtr, softmax

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hbstan  # noqa: E402
from hbstan.backend import is_compiled  # noqa: E402
from hbstan.families import get_family  # noqa: E402

DESIGNS = ["pooled", "unpooled", "hierarchical", "correlated", "independent"]
LEVELS = (0.5, 0.95)
FLAG_LEVEL = 0.99  # a coverage outside this binomial interval of the nominal rate is flagged
SEED = 20260501

FORMULAS = {
    "pooled": "y ~ x",
    "unpooled": "y ~ x + (1 | g)",
    "hierarchical": "y ~ x + (1 | g)",
    "correlated": "y ~ x + (1 + x | g)",
    "independent": "y ~ x + (1 + x || g)",  # for a family without correlated terms (categorical)
}


@dataclass(frozen=True)
class Dist:
    """A prior handed to hbstan, and the same distribution drawn in NumPy."""

    prior: Any
    draw: Callable[[np.random.Generator], float]
    label: str


def normal(mu: float, sigma: float) -> Dist:
    """Normal(mu, sigma)."""
    return Dist(hbstan.Normal(mu, sigma), lambda rng: float(rng.normal(mu, sigma)), f"Normal({mu}, {sigma})")


def student_t(nu: float, mu: float, sigma: float) -> Dist:
    """Student-t(nu, mu, sigma)."""
    return Dist(hbstan.StudentT(nu, mu, sigma), lambda rng: float(mu + sigma * rng.standard_t(nu)),
                f"StudentT({nu}, {mu}, {sigma})")


def half_normal(sigma: float) -> Dist:
    """Half-normal with scale sigma."""
    return Dist(hbstan.HalfNormal(sigma), lambda rng: float(abs(rng.normal(0, sigma))), f"HalfNormal({sigma})")


def exponential(rate: float) -> Dist:
    """Exponential with rate ``rate`` (mean 1 / rate)."""
    return Dist(hbstan.Exponential(rate), lambda rng: float(rng.exponential(1 / rate)), f"Exponential({rate})")


def gamma(alpha: float, beta: float, lower: float = 0.0) -> Dist:
    """Gamma(shape alpha, rate beta), truncated below at ``lower`` (a parameter's bound)."""

    def draw(rng: np.random.Generator) -> float:
        while True:
            v = float(rng.gamma(alpha, 1 / beta))
            if v > lower:
                return v

    label = f"Gamma({alpha}, {beta})" + (f" truncated at {lower}" if lower else "")
    return Dist(hbstan.Gamma(alpha, beta), draw, label)


def inv_gamma(alpha: float, beta: float) -> Dist:
    """Inverse-gamma(shape alpha, scale beta): 1 / x ~ Gamma(alpha, rate beta), mean beta / (alpha - 1)."""
    return Dist(hbstan.InverseGamma(alpha, beta), lambda rng: float(beta / rng.gamma(alpha)),
                f"InverseGamma({alpha}, {beta})")


def beta(a: float, b: float) -> Dist:
    """Beta(a, b) on (0, 1)."""
    return Dist(hbstan.Beta(a, b), lambda rng: float(rng.beta(a, b)), f"Beta({a}, {b})")


# ---------------------------------------------------------------- responses given eta
# Written from each family's definition in NumPy/SciPy (not with hbstan's own draws).
Respond = Callable[[np.random.Generator, np.ndarray, dict[str, Any]], Any]


def _neg_binomial(rng: np.random.Generator, eta: np.ndarray, aux: dict[str, float]) -> np.ndarray:
    """NB2: mean mu = exp(eta), variance mu + mu^2 / shape (Stan's neg_binomial_2_log)."""
    phi = aux["shape"]
    mu = np.exp(eta)
    return rng.negative_binomial(phi, phi / (phi + mu))


def _count_dist(kind: str, eta: np.ndarray, aux: dict[str, float]) -> Any:
    """SciPy's Poisson (rate exp(eta)) or NB2 (mean exp(eta), shape) of each row."""
    mu = np.exp(eta)
    if kind == "poisson":
        return stats.poisson(mu)
    phi = aux["shape"]
    return stats.nbinom(phi, phi / (phi + mu))


def _zero_inflated(kind: str) -> Respond:
    """Draw a structural zero with probability zi, else a Poisson or NB2 count (which may be 0 too)."""

    def respond(rng: np.random.Generator, eta: np.ndarray, aux: dict[str, Any]) -> np.ndarray:
        count = rng.poisson(np.exp(eta)) if kind == "poisson" else _neg_binomial(rng, eta, aux)
        return np.where(rng.random(eta.shape) < aux["zi"], 0, count)

    return respond


def _hurdle(kind: str) -> Respond:
    """Draw a zero with probability hu, else a draw of the base distribution conditioned on y > 0.

    Counts: by the inverse CDF on (P(0), 1), i.e. the count truncated at 0; lognormal: any draw
    (it is positive).
    """

    def respond(rng: np.random.Generator, eta: np.ndarray, aux: dict[str, Any]) -> np.ndarray:
        if kind == "lognormal":
            positive = rng.lognormal(eta, aux["sigma"])
        else:
            dist = _count_dist(kind, eta, aux)
            p0 = dist.cdf(0)
            u = p0 + (1 - p0) * rng.random(eta.shape)
            # u above P(0) gives a count >= 1 (the max guards a P(0) that rounds to 1)
            positive = np.maximum(np.nan_to_num(dist.ppf(u), posinf=1.0), 1.0)
        return np.where(rng.random(eta.shape) < aux["hu"], 0.0, positive)

    return respond


def _binary(link: str) -> Respond:
    """Successes out of ``aux["trials"]`` (1 for a Bernoulli) with p the inverse link of eta."""
    inv = {"logit": expit, "probit": ndtr, "cloglog": lambda e: -np.expm1(-np.exp(e))}[link]

    def respond(rng: np.random.Generator, eta: np.ndarray, aux: dict[str, Any]) -> np.ndarray:
        return rng.binomial(aux.get("trials", 1), inv(eta))

    return respond


def _beta(rng: np.random.Generator, eta: np.ndarray, aux: dict[str, Any]) -> np.ndarray:
    """Beta with mean logit^-1(eta) and precision phi (Stan's beta_proportion)."""
    mu = expit(eta)
    return rng.beta(mu * aux["phi"], (1 - mu) * aux["phi"])


def _gamma(rng: np.random.Generator, eta: np.ndarray, aux: dict[str, Any]) -> np.ndarray:
    """Gamma with mean exp(eta) and shape (rate shape / mean)."""
    return rng.gamma(aux["shape"], np.exp(eta) / aux["shape"])


def _cumulative(rng: np.random.Generator, eta: np.ndarray, aux: dict[str, Any]) -> pd.Categorical:
    """Cut the latent eta + logistic noise at the ordered thresholds: categories 1..K as labels."""
    latent = eta + rng.logistic(size=eta.shape)
    k = (latent[:, None] > np.asarray(aux["thresholds"])[None, :]).sum(axis=1)
    return pd.Categorical.from_codes(k, categories=ORDINAL_LEVELS, ordered=True)


def _categorical(rng: np.random.Generator, eta: np.ndarray, aux: dict[str, Any]) -> pd.Categorical:
    """Multinomial logit: eta (n, K - 1) against the reference's 0; the first category is the reference."""
    p = softmax(np.column_stack([np.zeros(len(eta)), eta]), axis=1)
    k = np.array([rng.choice(p.shape[1], p=row) for row in p])
    return pd.Categorical.from_codes(k, categories=CATEGORY_LEVELS)


ORDINAL_LEVELS = ["c1", "c2", "c3", "c4"]  # the cumulative response's K = 4 ordered categories
CATEGORY_LEVELS = ["a", "b", "c"]  # the categorical response's categories, "a" the reference
MAX_TRIALS = 20  # binomial trials per row: uniform on 1..MAX_TRIALS


@dataclass(frozen=True)
class FamilySpec:
    """The generator of one family: priors of every parameter and the response given eta."""

    intercept: Dist  # the Intercept, and each group's intercept in the unpooled design
    slope: Dist  # the coefficient of x
    group_sd: Dist  # the SD of the varying intercepts and of the varying slopes
    aux: dict[str, Dist]  # auxiliary parameters by their hbstan names
    respond: Respond
    family: str = ""  # hbstan's family name (default: the SPECS key)
    link: str | None = None  # a link other than the family's default
    designs: tuple[str, ...] = ("pooled", "unpooled", "hierarchical", "correlated")
    trials: bool = False  # binomial: "y | trials(n)", n uniform on 1..MAX_TRIALS
    # "thresholds": K - 1 ordered thresholds (each drawn from ``intercept``, sorted) replace the
    # intercept; "categories": an intercept, a slope and group terms per non-reference category
    structure: str = "intercept"
    notes: dict[str, str] = field(default_factory=dict)  # extra lines of the priors' description


def _spec(**kw: Any) -> FamilySpec:
    """Make a new family's entry: the designs pooled, hierarchical and correlated (issue 15's grid)."""
    kw.setdefault("designs", ("pooled", "hierarchical", "correlated"))
    return FamilySpec(**kw)


SPECS: dict[str, FamilySpec] = {
    "gaussian": FamilySpec(
        normal(0, 1), normal(0, 1), half_normal(0.5), {"sigma": gamma(4, 4)},
        lambda rng, eta, a: rng.normal(eta, a["sigma"]),
    ),
    "student": FamilySpec(
        normal(0, 1), normal(0, 1), half_normal(0.5),
        {"sigma": gamma(4, 4), "nu": gamma(2, 0.1, lower=1.0)},  # nu: hbstan's default prior, nu > 1
        lambda rng, eta, a: eta + a["sigma"] * rng.standard_t(a["nu"], size=eta.shape),
    ),
    "poisson": FamilySpec(
        normal(1, 0.5), normal(0, 0.3), half_normal(0.3), {},
        lambda rng, eta, a: rng.poisson(np.exp(eta)),
    ),
    "negbinomial": FamilySpec(
        normal(1, 0.5), normal(0, 0.3), half_normal(0.3), {"shape": gamma(2, 0.4)}, _neg_binomial,
    ),
    # issue 15's families. The prior families are hbstan's defaults (Normal coefficients,
    # HalfNormal group SDs, Exponential sigma, InverseGamma shape and phi, Beta zi and hu,
    # StudentT thresholds and categorical intercepts) with values that keep the simulated data
    # away from degenerate corners: the values are Stan data, so the programs are the default
    # priors' programs.
    "bernoulli": _spec(intercept=normal(0, 1), slope=normal(0, 1), group_sd=half_normal(0.5), aux={},
                       respond=_binary("logit")),
    "bernoulli_probit": _spec(intercept=normal(0, 0.6), slope=normal(0, 0.6), group_sd=half_normal(0.3), aux={},
                              respond=_binary("probit"), family="bernoulli", link="probit",
                              designs=("hierarchical",)),
    "binomial": _spec(intercept=normal(0, 1), slope=normal(0, 1), group_sd=half_normal(0.5), aux={},
                      respond=_binary("logit"), trials=True),
    "binomial_cloglog": _spec(intercept=normal(-1, 0.5), slope=normal(0, 0.5), group_sd=half_normal(0.3), aux={},
                              respond=_binary("cloglog"), family="binomial", link="cloglog", trials=True,
                              designs=("hierarchical",)),
    "gamma": _spec(intercept=normal(1, 0.5), slope=normal(0, 0.5), group_sd=half_normal(0.3),
                   aux={"shape": inv_gamma(5, 20)}, respond=_gamma),
    "lognormal": _spec(intercept=normal(0, 1), slope=normal(0, 1), group_sd=half_normal(0.5),
                       aux={"sigma": exponential(2)}, respond=lambda rng, eta, a: rng.lognormal(eta, a["sigma"])),
    "beta": _spec(intercept=normal(0, 0.7), slope=normal(0, 0.5), group_sd=half_normal(0.5),
                  aux={"phi": inv_gamma(5, 60)}, respond=_beta),
    "cumulative": _spec(intercept=student_t(10, 0, 1.5), slope=normal(0, 1), group_sd=half_normal(0.5), aux={},
                        respond=_cumulative, structure="thresholds",
                        notes={"thresholds": "each of the K - 1 = 3 StudentT(10, 0, 1.5), sorted"}),
    "categorical": _spec(intercept=student_t(10, 0, 1), slope=normal(0, 1), group_sd=half_normal(0.5), aux={},
                         respond=_categorical, structure="categories",
                         designs=("pooled", "hierarchical", "independent"),
                         notes={"per category": "every prior, for each of the K - 1 = 2 non-reference categories"}),
    "zero_inflated_poisson": _spec(intercept=normal(1, 0.5), slope=normal(0, 0.3), group_sd=half_normal(0.3),
                                   aux={"zi": beta(2, 4)}, respond=_zero_inflated("poisson")),
    "zero_inflated_negbinomial": _spec(intercept=normal(1, 0.5), slope=normal(0, 0.3), group_sd=half_normal(0.3),
                                       aux={"shape": inv_gamma(4, 15), "zi": beta(2, 4)},
                                       respond=_zero_inflated("negbinomial")),
    "hurdle_poisson": _spec(intercept=normal(1, 0.5), slope=normal(0, 0.3), group_sd=half_normal(0.3),
                            aux={"hu": beta(2, 4)}, respond=_hurdle("poisson")),
    "hurdle_negbinomial": _spec(intercept=normal(1, 0.5), slope=normal(0, 0.3), group_sd=half_normal(0.3),
                                aux={"shape": inv_gamma(4, 15), "hu": beta(2, 4)}, respond=_hurdle("negbinomial")),
    "hurdle_lognormal": _spec(intercept=normal(0, 1), slope=normal(0, 1), group_sd=half_normal(0.5),
                              aux={"sigma": exponential(2), "hu": beta(2, 4)}, respond=_hurdle("lognormal")),
}
FAMILIES = list(SPECS)  # the grid's entries, in the order of the results
LKJ_ETA = 2.0


@dataclass(frozen=True)
class Settings:
    """Size of the simulated data and of each fit."""

    sims: int = 50
    n_rows: int = 200
    n_groups: int = 10
    min_per_group: int = 5
    chains: int = 2
    warmup: int = 500
    draws: int = 500
    parallel_chains: int = 2
    seed: int = SEED


def family_of(entry: str) -> str:
    """Return hbstan's family name of a grid entry (``bernoulli_probit`` -> ``bernoulli``)."""
    spec = SPECS.get(entry)
    return (spec.family or entry) if spec is not None else entry


def registered(family: str) -> bool:
    """Whether hbstan knows the family of a grid entry (a family being added may not have landed yet)."""
    try:
        get_family(family_of(family))
    except ValueError:
        return False
    return True


def formula(family: str, design: str) -> str:
    """Return the formula of a cell: the design's, with ``y | trials(n)`` for a binomial entry."""
    f = FORMULAS[design]
    return f.replace("y ~", "y | trials(n) ~", 1) if SPECS[family].trials else f


def sim_seeds(family: str, design: str, sim: int, seed: int = SEED) -> tuple[np.random.Generator, int]:
    """Return the data generator and the sampler seed of one simulation (from its cell and index only)."""
    ss = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(f"{family}/{design}".encode()), sim))
    data_seq, stan_seq = ss.spawn(2)
    return np.random.default_rng(data_seq), int(stan_seq.generate_state(1)[0] % (2**31 - 1))


def _varying(design: str, spec: FamilySpec, rng: np.random.Generator, J: int, suffix: str = "") -> tuple[
    dict[str, Any], np.ndarray, np.ndarray
]:
    """Draw the group terms of a hierarchical, correlated or independent design: (truth, intercepts, slopes)."""
    truth: dict[str, Any] = {}
    zeros = np.zeros(J)
    if design == "hierarchical":
        tau = spec.group_sd.draw(rng)
        r = rng.normal(0, tau, size=J)
        truth.update({f"1|g_sigma{suffix}": tau, f"1|g{suffix}": r})
        return truth, r, zeros
    tau = np.array([spec.group_sd.draw(rng), spec.group_sd.draw(rng)])
    if design == "correlated":
        rho = 2 * rng.beta(LKJ_ETA, LKJ_ETA) - 1  # LKJ(eta) on a 2 x 2 correlation matrix
        cov = np.outer(tau, tau) * np.array([[1, rho], [rho, 1]])
        r = rng.multivariate_normal(np.zeros(2), cov, size=J)
        truth.update({"1|g_sigma": tau[0], "x|g_sigma": tau[1], "g_corr": rho, "1|g": r[:, 0], "x|g": r[:, 1]})
    elif design == "independent":
        r = rng.normal(0, 1, size=(J, 2)) * tau
        truth.update({f"1|g_sigma{suffix}": tau[0], f"x|g_sigma{suffix}": tau[1],
                      f"1|g{suffix}": r[:, 0], f"x|g{suffix}": r[:, 1]})
    else:
        raise ValueError(f"unknown design {design!r}; valid designs: {DESIGNS}")
    return truth, r[:, 0], r[:, 1]


def simulate(
    family: str, design: str, rng: np.random.Generator, settings: Settings = Settings(),
    *, misscale: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One data set and its true parameter values, by the names of hbstan's posterior.

    ``misscale`` multiplies auxiliary parameters in the generator only (the reported truth is
    unchanged): a deliberately wrong model, for checking that the coverage check can fail.
    """
    spec = SPECS[family]
    n, J = settings.n_rows, settings.n_groups
    g = np.concatenate([np.repeat(np.arange(J), settings.min_per_group), rng.integers(J, size=n - settings.min_per_group * J)])
    x = rng.normal(size=n)
    x -= x.mean()  # the Intercept prior is on the intercept at the predictors' means: make them 0
    if spec.structure == "categories":
        return _simulate_categories(spec, design, rng, g, x, J)
    if spec.structure == "thresholds":
        cuts = np.sort([spec.intercept.draw(rng) for _ in ORDINAL_LEVELS[1:]])
        a = 0.0  # no intercept: the thresholds take its place
    else:
        a = spec.intercept.draw(rng)
    b = spec.slope.draw(rng)
    aux = {k: d.draw(rng) for k, d in spec.aux.items()}
    truth: dict[str, Any] = {}
    if design == "pooled":
        truth.update({"Intercept": a, "x": b})
        eta = a + b * x
    elif design == "unpooled":
        a_j = np.array([spec.intercept.draw(rng) for _ in range(J)])
        truth.update({"x": b, "1|g": a_j})
        eta = a_j[g] + b * x
    elif design in ("hierarchical", "correlated", "independent"):
        varying, r0, r1 = _varying(design, spec, rng, J)
        truth.update({"Intercept": a, "x": b, **varying})
        eta = a + r0[g] + (b + r1[g]) * x
    else:
        raise ValueError(f"unknown design {design!r}; valid designs: {DESIGNS}")
    truth.update(aux)
    gen_aux = {k: v * (misscale or {}).get(k, 1.0) for k, v in aux.items()}
    if spec.structure == "thresholds":
        del truth["Intercept"]
        truth.update({f"Intercept[{lo}|{hi}]": c for lo, hi, c in zip(ORDINAL_LEVELS[:-1], ORDINAL_LEVELS[1:], cuts, strict=True)})
        gen_aux["thresholds"] = cuts
    cols: dict[str, Any] = {}
    if spec.trials:
        gen_aux["trials"] = cols["n"] = rng.integers(1, MAX_TRIALS + 1, size=n)
    df = pd.DataFrame({"y": spec.respond(rng, eta, gen_aux), "x": x, "g": [f"g{j:02d}" for j in g], **cols})
    return df, truth


def _simulate_categories(
    spec: FamilySpec, design: str, rng: np.random.Generator, g: np.ndarray, x: np.ndarray, J: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate a categorical data set: per non-reference category its own intercept, slope and group terms."""
    truth: dict[str, Any] = {}
    etas = []
    for cat in CATEGORY_LEVELS[1:]:
        a, b = spec.intercept.draw(rng), spec.slope.draw(rng)
        truth.update({f"Intercept[{cat}]": a, f"x[{cat}]": b})
        eta = a + b * x
        if design != "pooled":
            varying, r0, r1 = _varying(design, spec, rng, J, suffix=f"[{cat}]")
            truth.update(varying)
            eta = eta + r0[g] + r1[g] * x
        etas.append(eta)
    y = spec.respond(rng, np.column_stack(etas), {})
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j:02d}" for j in g]}), truth


def build_model(family: str, design: str, df: pd.DataFrame) -> hbstan.Model:
    """Build the model of a cell, with the generator's distributions as its priors.

    A per-category family takes each key (``x``, ``1|g_sigma``) for every category, an ordinal
    one ``Intercept`` for every threshold.
    """
    spec = SPECS[family]
    priors: dict[str, Any] = {"x": spec.slope.prior, **{k: d.prior for k, d in spec.aux.items()}}
    priors["1|g" if design == "unpooled" else "Intercept"] = spec.intercept.prior
    if design in ("hierarchical", "correlated", "independent"):
        priors["1|g_sigma"] = spec.group_sd.prior
    if design in ("correlated", "independent"):
        priors["x|g_sigma"] = spec.group_sd.prior
    if design == "correlated":
        priors["g_corr"] = hbstan.LKJ(LKJ_ETA)
    pooling = "unpooled" if design == "unpooled" else None
    return hbstan.Model(formula(family, design), df, family=family_of(family), link=spec.link, pooling=pooling,
                        priors=priors)


_INDEXED = re.compile(r"(?P<var>.+)\[(?P<label>[^\[\]]+)\]")


def _draws(post: Any, name: str, labels: list[str]) -> np.ndarray:
    """Posterior draws of a parameter, (draws,) or (draws, groups) in the order of ``labels``.

    ``name[label]`` selects the coordinate ``label`` of the variable's dimension other than the
    groups (a threshold, or a category).
    """
    if name == "g_corr":
        da = post["g_corr"].sel(g_corr_effect="1", g_corr_effect_bis="x")
    else:
        m = _INDEXED.fullmatch(name)
        da = post[m["var"] if m else name]
        if m:
            dim = next(d for d in da.dims if d not in ("chain", "draw", "g") and m["label"] in da[d].values)
            da = da.sel({dim: m["label"]})
        if "g" in da.dims:
            da = da.sel(g=labels)
    v = da.values
    return v.reshape((-1,) + v.shape[2:])


def check_fit(post: Any, truth: dict[str, Any], labels: list[str]) -> dict[str, dict[str, float]]:
    """Check every true value against its posterior.

    Returns, per parameter, the share of its true values inside the central 50% and 95%
    intervals, the posterior SD (mean over groups) and the z-score of the truth (scalars).
    """
    out = {}
    for name, true in truth.items():
        d = _draws(post, name, labels)
        true = np.asarray(true, dtype=float)
        row: dict[str, float] = {}
        for level in LEVELS:
            lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2], axis=0)
            row[f"cover{int(level * 100)}"] = round(float(np.mean((lo <= true) & (true <= hi))), 4)
        sd = d.std(axis=0)
        row["post_sd"] = round(float(np.mean(sd)), 5)
        if true.ndim == 0:
            row["z"] = round(float((d.mean(axis=0) - true) / sd), 4)
        out[name] = row
    return out


def run_one(
    family: str, design: str, sim: int, settings: Settings = Settings(), *, misscale: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Simulate, fit and check one data set; a failure is returned as a record, never raised."""
    rng, stan_seed = sim_seeds(family, design, sim, settings.seed)
    df, truth = simulate(family, design, rng, settings, misscale=misscale)
    rec: dict[str, Any] = {"sim": sim, "stan_seed": stan_seed,
                           "truth": {k: np.round(np.asarray(v, dtype=float), 5).tolist() for k, v in truth.items()}}
    t0 = time.perf_counter()
    try:
        m = build_model(family, design, df)
        rec["program"] = hashlib.sha1(m.stan_code.encode()).hexdigest()[:10]
        rec["compiled_here"] = not is_compiled(m.stan_code)  # this fit's time includes the compile
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = m.sample(chains=settings.chains, warmup=settings.warmup, draws=settings.draws, seed=stan_seed,
                           parallel_chains=settings.parallel_chains, pointwise=False, output_dir=tmp,
                           program="specialized")
            diag = fit.diagnose(ess_min=100)
        labels = sorted(df["g"].unique())
        rec.update(ok=True, divergences=int(sum(diag.divergences)), max_rhat=round(diag.max_rhat, 4),
                   min_ess_bulk=round(diag.min_ess_bulk, 1), params=check_fit(fit.posterior, truth, labels))
    except Exception as err:  # noqa: BLE001 - any failure is a result of the grid, not the end of it
        rec.update(ok=False, error=f"{type(err).__name__}: {err}"[:2000])
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    return rec


def binomial_bounds(n: int, p: float, level: float = FLAG_LEVEL) -> tuple[float, float]:
    """Central ``level`` interval of the share of successes in ``n`` Bernoulli(p) trials."""
    a = (1 - level) / 2
    return float(stats.binom.ppf(a, n, p)) / n, float(stats.binom.ppf(1 - a, n, p)) / n


def summarize(family: str, design: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Coverage per parameter over a cell's simulations, with the binomial flag.

    Group-effect vectors: each simulation contributes the share of its groups covered; the
    flag treats the simulations as the trials (conservative: the groups of one simulation are
    not independent, and the mean of J shares varies less than one indicator).
    """
    ok = [r for r in records if r["ok"]]
    params: dict[str, dict[str, Any]] = {}
    if ok:
        for name in ok[0]["params"]:
            rows = [r["params"][name] for r in ok]
            truths = np.concatenate([np.atleast_1d(r["truth"][name]) for r in ok])
            truth_sd = float(np.std(truths))
            p: dict[str, Any] = {"n": len(rows), "vector": np.ndim(ok[0]["truth"][name]) > 0}
            flags = []
            for level in LEVELS:
                key = f"cover{int(level * 100)}"
                cov = float(np.mean([row[key] for row in rows]))
                lo, hi = binomial_bounds(len(rows), level)
                p[key] = cov
                p[f"bounds{int(level * 100)}"] = (lo, hi)
                if not lo <= cov <= hi:
                    flags.append(f"{int(level * 100)}% {'low' if cov < lo else 'high'}")
            p["sd_ratio"] = float(np.mean([row["post_sd"] for row in rows]) / truth_sd) if truth_sd > 0 else float("nan")
            if not p["vector"]:
                p["mean_z"] = float(np.mean([row["z"] for row in rows]))
            p["flag"] = ", ".join(flags)
            params[name] = p
    return {
        "family": family,
        "design": design,
        "formula": formula(family, design),
        "sims": len(records),
        "ok": len(ok),
        "errors": [f"sim {r['sim']}: {r['error']}" for r in records if not r["ok"]],
        "sims_with_divergences": sum(r["divergences"] > 0 for r in ok),
        "divergences": sum(r["divergences"] for r in ok),
        "sims_rhat_above_1.05": sum(r["max_rhat"] > 1.05 for r in ok),
        "programs": len({r.get("program") for r in records if r.get("program")}),
        "compiled": sum(bool(r.get("compiled_here")) for r in records),
        "seconds": round(sum(r["seconds"] for r in records), 1),
        "params": params,
    }


def run_cell(
    family: str, design: str, settings: Settings = Settings(), *, misscale: dict[str, float] | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """All simulations of one family x design: the summary and the per-simulation records."""
    records = []
    for s in range(settings.sims):
        rec = run_one(family, design, s, settings, misscale=misscale)
        records.append(rec)
        if progress and not rec["ok"]:
            print(f"  {family} {design} sim {s}: {rec['error'][:200]}", flush=True)
    return summarize(family, design, records), records


def selected(family: str, design: str, only: list[str] | None) -> bool:
    """Whether ``--only`` picks a cell.

    A value naming a grid entry picks that entry's cells (``binomial`` is not
    ``zero_inflated_negbinomial``); any other value picks the cells whose ``"family design"``
    contains it (``hierarchical``, ``poisson corr``).
    """
    if not only:
        return True
    return any(o == family if o in SPECS else o in f"{family} {design}" for o in only)


def report_programs(family: str, design: str, settings: Settings) -> tuple[int, int]:
    """Render the program of every simulation of a cell (no fit): (distinct programs, compiled)."""
    codes = set()
    for sim in range(settings.sims):
        rng, _ = sim_seeds(family, design, sim, settings.seed)
        df, _ = simulate(family, design, rng, settings)
        try:
            codes.add(build_model(family, design, df).stan_code)
        except Exception:  # noqa: BLE001, S112 - a data set hbstan refuses has no program
            continue
    return len(codes), sum(is_compiled(c) for c in codes)


def main() -> int:
    """Run the grid and write (merge) the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=Settings.sims, help="simulations per family x design")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--parallel-chains", type=int, default=Settings.parallel_chains)
    ap.add_argument("--only", action="append", default=None,
                    help="a grid entry (e.g. beta, bernoulli_probit) or a substring of 'family design'; repeatable")
    ap.add_argument("--programs", action="store_true",
                    help="only render the selected cells' programs and say how many are compiled (no fits)")
    ap.add_argument("--remake-md", action="store_true", help="only write the .md again from the .json (no fits)")
    ap.add_argument("--out", default=str(ROOT / "validation" / "results" / "coverage"))
    args = ap.parse_args()
    if args.remake_md:
        res = json.loads(Path(args.out).with_suffix(".json").read_text())
        Path(args.out).with_suffix(".md").write_text(_markdown(res["meta"], res["cells"]))
        return 0
    logging.getLogger("cmdstanpy").setLevel(logging.ERROR)
    logging.getLogger("hbstan").setLevel(logging.ERROR)
    settings = Settings(sims=args.sims, seed=args.seed, parallel_chains=args.parallel_chains)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ran = 0
    for family in FAMILIES:
        if not registered(family):
            print(f"SKIPPED {family}: family {family_of(family)!r} is not registered in hbstan.families", flush=True)
            continue
        for design in SPECS[family].designs:
            if not selected(family, design, args.only):
                continue
            if args.programs:
                n, done = report_programs(family, design, settings)
                print(f"{family:26s} {design:13s} {n} program(s), {done} compiled", flush=True)
                continue
            summary, recs = run_cell(family, design, settings, progress=True)
            summary.update(settings=dict(settings.__dict__), date=time.strftime("%Y-%m-%d"), hbstan=hbstan.__version__)
            meta = merge_results(out, summary, recs)  # after every cell: a stopped run keeps what it did
            ran += 1
            flagged = [f"{n} ({p['flag']})" for n, p in summary["params"].items() if p["flag"]]
            print(f"{family:26s} {design:13s} {summary['ok']}/{summary['sims']} fits, "
                  f"{summary['sims_with_divergences']} with divergences, {summary['compiled']} compiled, "
                  f"{summary['seconds']:.0f} s; flagged: {', '.join(flagged) or 'none'}", flush=True)
    if ran:
        print(f"{ran} cells run in {time.perf_counter() - t0:.0f} s; the results now hold {meta['cells']} cells, "
              f"{len(meta['flagged'])} flagged, {meta['failed_fits']} failed fits")
    return 0


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for ``path`` (two ``--only`` runs merging at once; the lock file is a temporary one)."""
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"hbstan-coverage-{key}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prior_labels(spec: FamilySpec) -> dict[str, str]:
    """Describe the generator's (= the model's) priors of a grid entry, for the results."""
    first = "thresholds" if spec.structure == "thresholds" else "intercept"
    out = {first: spec.intercept.label, "x": spec.slope.label, "group SDs": spec.group_sd.label,
           **{k: d.label for k, d in spec.aux.items()}}
    if "correlated" in spec.designs:
        out["g_corr"] = f"LKJ({LKJ_ETA})"
    if spec.link:
        out["link"] = spec.link
    if spec.trials:
        out["trials"] = f"uniform on 1..{MAX_TRIALS}"
    return {**out, **spec.notes}


def merge_results(out: Path, summary: dict[str, Any], recs: list[dict[str, Any]]) -> dict[str, Any]:
    """Put one cell's results into ``out``.json/.md, replacing that cell's and keeping the others'.

    Cells written before cells carried their own settings and date take the file's.
    """
    key = (summary["family"], summary["design"])
    with _locked(out):
        cells: dict[tuple[str, str], dict[str, Any]] = {}
        records: dict[str, list[dict[str, Any]]] = {}
        js = out.with_suffix(".json")
        if js.exists():
            old = json.loads(js.read_text())
            for c in old["cells"]:
                c.setdefault("settings", old["meta"]["settings"])
                c.setdefault("date", old["meta"]["date"])
                c.setdefault("hbstan", old["meta"]["hbstan"])
                cells[(c["family"], c["design"])] = c
            records = old["records"]
        cells[key] = summary
        records[f"{key[0]}/{key[1]}"] = recs

        def order(k: tuple[str, str]) -> tuple[int, int]:
            return (FAMILIES.index(k[0]) if k[0] in FAMILIES else len(FAMILIES),
                    DESIGNS.index(k[1]) if k[1] in DESIGNS else len(DESIGNS))

        keys = sorted(cells, key=order)
        ordered = [cells[k] for k in keys]
        families = list(dict.fromkeys(f for f, _ in keys))
        meta = {
            "hbstan": hbstan.__version__,
            "cmdstan": _cmdstan_version(),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}",
            "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"),
            "cells": len(ordered),
            "total_s": round(sum(c["seconds"] for c in ordered), 1),
            "settings": summary["settings"],
            "priors": {f: _prior_labels(SPECS[f]) for f in families if f in SPECS},
            "skipped": {f: f"family {family_of(f)!r} is not registered in hbstan.families (not available yet)"
                        for f in FAMILIES if not registered(f)},
            "flagged": [f"{c['family']} {c['design']} {n}: {p['flag']}"
                        for c in ordered for n, p in c["params"].items() if p["flag"]],
            "failed_fits": sum(c["sims"] - c["ok"] for c in ordered),
        }
        js.write_text(_json(meta, ordered, {f"{f}/{d}": records[f"{f}/{d}"] for f, d in keys}))
        out.with_suffix(".md").write_text(_markdown(meta, ordered))
    return meta


def _json(meta: dict[str, Any], cells: list[dict[str, Any]], records: dict[str, list[dict[str, Any]]]) -> str:
    """Write the results as JSON, one line per simulation record (readable, and small)."""
    cell_recs = ",\n".join(
        f"  {json.dumps(k)}: [\n" + ",\n".join(f"   {json.dumps(r)}" for r in recs) + "\n  ]" for k, recs in records.items()
    )
    head = json.dumps({"meta": meta, "cells": cells}, indent=1)
    return head[:-2] + ',\n "records": {\n' + cell_recs + "\n }\n}\n"


def _cmdstan_version() -> str:
    import cmdstanpy

    v = cmdstanpy.cmdstan_version()
    return ".".join(map(str, v)) if v else "unknown"


def _markdown(meta: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    s = meta["settings"]
    by_sims: dict[int, list[str]] = {}
    for c in cells:
        fams = by_sims.setdefault(c["settings"]["sims"], [])
        if c["family"] not in fams:
            fams.append(c["family"])
    sims = "; ".join(f"{n} simulations per cell for {', '.join(fams)}" for n, fams in by_sims.items())
    dates = {}
    for c in cells:
        dates[(c["date"], c["hbstan"])] = dates.get((c["date"], c["hbstan"]), 0) + 1
    runs = ", ".join(f"{n} cells on {d} (hbstan {v})" for (d, v), n in dates.items())
    lines = [
        "# Coverage of posterior intervals on simulated data",
        "",
        "`python validation/interval_coverage.py`: for each family x design, data sets of known truth are simulated with",
        "every parameter drawn from the prior the model is given, fitted with CmdStan, and each parameter's",
        "central 50% and 95% posterior intervals checked against the true value. With truths drawn from the",
        "model's own prior, a correct program covers them at the nominal rate on average (simulation-based",
        "calibration). **flag**: coverage outside the 99% binomial interval of the nominal rate over the",
        "simulations. *post SD / truth SD*: mean posterior SD over the spread of the true values (near 1 where",
        "the data say little beyond the prior; a program that ignored its likelihood would still cover, but",
        "with this ratio near 1 everywhere). *mean z*: mean of (posterior mean - truth) / posterior SD.",
        "Group-effect vectors (`1|g`, `x|g`) pool every group of every simulation; their flag counts",
        "simulations as the trials (conservative). The ordinal `cumulative` has a row per threshold",
        "(`Intercept[c1|c2]`, ...), the `categorical` a row per parameter and non-reference category",
        "(`x[b]`; categories a (reference), b, c), and its third design independent varying intercepts and",
        "slopes `(1 + x || g)`, since it has no correlated terms. A data set hbstan refuses (a categorical",
        "response missing a category, a zero-inflated or hurdle response of zeros only) counts as a failed",
        "fit and is left out, which keeps the intervals calibrated on the rest (a choice by the data alone).",
        "A *post SD / truth SD* above 100 comes from one fit whose chain stuck far out (its R-hat counts in the",
        "cells' table) and is printed as such.",
        "",
        f"CmdStan {meta['cmdstan']}, Python {meta['python']}, {meta['machine']}, {meta['cores']} cores (shared with "
        f"other jobs); {runs}; the cells' fits took {meta['total_s'] / 60:.1f} min in all (compiles included).",
        f"{sims}; {s['n_rows']} rows, {s['n_groups']} groups (at least "
        f"{s['min_per_group']} rows each), predictor x ~ N(0, 1) centered; {s['chains']} chains x "
        f"({s['warmup']} warm-up + {s['draws']} draws); seed {s['seed']}.",
        "",
        f"**{len(meta['flagged'])} flagged** of {sum(len(c['params']) for c in cells)} parameter rows; "
        f"{meta['failed_fits']} failed fits.",
    ]
    lines += [f"- {f}" for f in meta["flagged"]]
    rows = [p for c in cells for p in c["params"].values()]
    if rows:
        lines += ["", f"Over all {len(rows)} rows, mean coverage of the 50% intervals "
                  f"{np.mean([p['cover50'] for p in rows]):.3f} and of the 95% intervals {np.mean([p['cover95'] for p in rows]):.3f}."]
    if meta["skipped"]:
        lines += ["", "Skipped:", ""] + [f"- {f}: {why}" for f, why in meta["skipped"].items()]
    lines += ["", "Priors = generator (per family):", ""]
    for fam, pri in meta["priors"].items():
        lines.append(f"- {fam}: " + "; ".join(f"{k} {v}" for k, v in pri.items()))
    lines += [
        "",
        "| family | design | formula | fits ok | sims with divergences | sims with R-hat > 1.05 | programs | compiled here | seconds |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(f"| {c['family']} | {c['design']} | `{c['formula'].replace('|', chr(92) + '|')}` | {c['ok']}/{c['sims']} | "
                     f"{c['sims_with_divergences']} | {c['sims_rhat_above_1.05']} | {c['programs']} | "
                     f"{c.get('compiled', '')} | {c['seconds']:.0f} |")
    errors = [(c, e) for c in cells for e in c["errors"]]
    if errors:
        lines += ["", "Failed fits:", ""] + [f"- {c['family']} {c['design']} {e}" for c, e in errors]
    lines += [
        "",
        "| family | design | parameter | 50% | 95% | sims | post SD / truth SD | mean z | flag |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in cells:
        for name, p in c["params"].items():
            z = f"{p['mean_z']:+.2f}" if "mean_z" in p else ""
            ratio = f"{p['sd_ratio']:.2f}" if p["sd_ratio"] < 100 else "> 100 (stuck chain)"
            label = "`" + name.replace("|", "\\|") + "`" + (" (groups)" if p["vector"] else "")  # a bare | splits a cell
            lines.append(
                f"| {c['family']} | {c['design']} | {label} | {p['cover50']:.2f} | {p['cover95']:.2f} | {p['n']} | "
                f"{ratio} | {z} | {'**' + p['flag'] + '**' if p['flag'] else ''} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
