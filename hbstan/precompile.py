"""Compile the common model structures ahead of time (``hbstan precompile``).

A program depends only on structure (family, how terms vary, prior families), never on data
sizes or prior values, so a handful of executables serves most models. Building them once,
for instance after installing hbstan, means a first fit does not wait for the C++ compiler.
The general programs (:mod:`hbstan.general`, one per family whose structure is data) are
built first: with them, a first fit of any formula they support samples at once.
"""

from __future__ import annotations

import itertools
import logging
from typing import Iterator

import numpy as np
import pandas as pd

from .backend import compiled_model
from .design import FormulaError
from .families import FAMILIES, get_family
from .general import all_programs, general_program
from .model import Model

__all__ = ["common_models", "precompile"]

log = logging.getLogger("hbstan")

DESIGNS = {
    "pooled": ("y ~ x", {}),
    "intercept": ("y ~ x + (1 | g)", {}),
    "intercept+gp": ("y ~ x + (1 | g)", {"group_predictors": {"g": ["u"]}}),
    "slopes": ("y ~ x + (1 + x || g)", {}),
    "correlated": ("y ~ x + (1 + x | g)", {}),
    "correlated+gp": ("y ~ x + (1 + x | g)", {"group_predictors": {"g": ["u"]}}),
    "unpooled": ("y ~ x + (1 | g)", {"pooling": "unpooled"}),
}


def _data(seed: int = 0, n: int = 200, J: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    df = pd.DataFrame({"x": rng.normal(size=n), "g": [f"g{j}" for j in g], "n": rng.integers(3, 9, n)})
    df["u"] = np.linspace(-1, 1, J)[g]
    df["y"] = rng.uniform(0.05, 0.95, n)  # valid for every real-valued family (gaussian to beta)
    df["yb"] = rng.integers(0, 2, n)  # 0/1: valid counts for every integer family
    df["yc"] = rng.integers(1, 4, n)  # categories 1..3 (ordinal and categorical families)
    return df


def common_models(families: list[str] | None = None, designs: list[str] | None = None) -> Iterator[tuple[str, Model]]:
    """(label, Model) for each common structure, in both parameterizations."""
    df = _data()
    for family, design in itertools.product(families or list(FAMILIES), designs or list(DESIGNS)):
        formula, kw = DESIGNS[design]
        fam = get_family(family)
        lhs = ("yb | trials(n)" if fam.trials else "yb") if fam.integer_response else "y"
        if fam.thresholds or fam.per_category:
            lhs = "yc"
        formula = lhs + formula[1:]
        if fam.suff_stats and design not in ("pooled", "unpooled"):
            # the default for these: group effects integrated out of the likelihood
            yield f"{family}/{design}/integrated out", Model(formula, data=df, family=family, **kw)
        for centered in ([False, True] if design != "pooled" and design != "unpooled" else [False]):
            try:
                m = Model(formula, data=df, family=family, centered=centered, **kw)
            except FormulaError as err:  # a structure the family does not have (categorical: correlated terms)
                log.info("hbstan: no %s/%s program: %s", family, design, err)
                break
            yield f"{family}/{design}/{'centered' if centered else 'non-centered'}", m


def precompile(
    families: list[str] | None = None, designs: list[str] | None = None, *, general_only: bool = False
) -> int:
    """Compile the general programs and every common structure not yet in the cache.

    Returns how many programs were compiled or found. ``general_only=True`` builds only the
    general programs (of ``families``, default all that have one, at each of their links):
    once per machine, after which the first fit of a supported formula does not wait for the compiler.
    """
    seen: set[str] = set()
    for family, link in all_programs(families):
        log.info("hbstan: precompiling the general %s program (%s link)", family, link)
        code = general_program(family, link)
        compiled_model(code)
        seen.add(code)
    if general_only:
        return len(seen)
    for label, m in common_models(families, designs):
        code = m.stan_code
        if code in seen:
            continue
        seen.add(code)
        log.info("hbstan: precompiling %s", label)
        compiled_model(code)
    return len(seen)
