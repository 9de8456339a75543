"""Response families: one module each, and the registry that ``Model(family=...)`` reads.

A new family is a subclass of :class:`Family` in a module of its own, registered here with
:func:`register`, plus its template ``stan_templates/families/<name>.stan.j2`` (see the README's
"Adding a family").
"""

from __future__ import annotations

from .base import AuxParam, Family
from .bernoulli import Bernoulli
from .beta import Beta
from .binomial import Binomial
from .categorical import Categorical
from .cumulative import Cumulative
from .gamma import GammaFamily
from .gaussian import Gaussian
from .hurdle_lognormal import HurdleLogNormal
from .hurdle_negbinomial import HurdleNegBinomial
from .hurdle_poisson import HurdlePoisson
from .lognormal import LogNormal
from .negbinomial import NegBinomial
from .poisson import Poisson
from .student import Student
from .zero_inflated_negbinomial import ZeroInflatedNegBinomial
from .zero_inflated_poisson import ZeroInflatedPoisson

__all__ = ["AuxParam", "Family", "FAMILIES", "register", "get_family"]

FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family to the registry (its ``name`` becomes a valid ``family=``)."""
    FAMILIES[family.name] = family
    return family


for _fam in (
    Gaussian(), Student(), Bernoulli(), Binomial(), Poisson(), NegBinomial(), GammaFamily(), LogNormal(), Beta(),
    ZeroInflatedPoisson(), ZeroInflatedNegBinomial(), HurdlePoisson(), HurdleNegBinomial(), HurdleLogNormal(),
    Cumulative(), Categorical(),
):
    register(_fam)


def get_family(name: str | Family) -> Family:
    """The registered family of that name (a Family is returned as it is)."""
    if isinstance(name, Family):
        return name
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown family {name!r}; valid families: {sorted(FAMILIES)}") from None
