"""Prior distributions.

Each prior knows the Stan density it renders to (structure) and the hyperparameter values it
passes as Stan data (values). Changing a prior's *values* therefore never recompiles; changing
its *family* does, because it changes the program text.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "Prior",
    "Normal",
    "StudentT",
    "Cauchy",
    "Logistic",
    "HalfNormal",
    "HalfCauchy",
    "HalfStudentT",
    "Exponential",
    "Gamma",
    "InverseGamma",
    "Beta",
    "LKJ",
    "parse_prior",
    "format_prior",
]


def _check_positive(name: str, value: float, dist: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{dist}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{dist}: {name} must be a positive finite number, got {value!r}")
    return value


def _check_finite(name: str, value: float, dist: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{dist}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{dist}: {name} must be finite, got {value!r}")
    return value


@dataclass(frozen=True)
class Prior:
    """Base class of hbstan's priors.

    Subclasses set ``stan_fn`` (the Stan ``_lpdf`` function), ``args`` (the hyperparameter
    names in the order of the Stan call, ``"0"`` for a literal zero) and ``positive``
    (True for distributions on the positive half-line).
    """

    stan_fn: ClassVar[str] = ""
    args: ClassVar[tuple[str, ...]] = ()
    positive: ClassVar[bool] = False

    @property
    def family(self) -> str:
        """Name of the distribution family, e.g. ``"Normal"``."""
        return type(self).__name__

    def values(self) -> dict[str, float]:
        """Hyperparameter values keyed by the names in ``args`` (literals left out)."""
        raise NotImplementedError

    def data_args(self) -> tuple[str, ...]:
        """Hyperparameters that travel as Stan data."""
        return tuple(a for a in self.args if a != "0")

    def mean_sd(self) -> tuple[float, float]:
        """Mean and standard deviation where finite (used to simulate and to report)."""
        raise NotImplementedError

    def __str__(self) -> str:
        vals = ", ".join(f"{k}={v:g}" for k, v in self.values().items())
        return f"{self.family}({vals})"


@dataclass(frozen=True)
class Normal(Prior):
    """Normal(mu, sigma) prior: ``sigma`` must be positive."""

    mu: float = 0.0
    sigma: float = 1.0
    stan_fn: ClassVar[str] = "normal"
    args: ClassVar[tuple[str, ...]] = ("loc", "scale")

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", _check_finite("mu", self.mu, "Normal"))
        object.__setattr__(self, "sigma", _check_positive("sigma", self.sigma, "Normal"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"loc": self.mu, "scale": self.sigma}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        return self.mu, self.sigma


@dataclass(frozen=True)
class StudentT(Prior):
    """Student-t(nu, mu, sigma) prior: ``nu`` and ``sigma`` must be positive."""

    nu: float = 3.0
    mu: float = 0.0
    sigma: float = 1.0
    stan_fn: ClassVar[str] = "student_t"
    args: ClassVar[tuple[str, ...]] = ("nu", "loc", "scale")

    def __post_init__(self) -> None:
        object.__setattr__(self, "nu", _check_positive("nu", self.nu, "StudentT"))
        object.__setattr__(self, "mu", _check_finite("mu", self.mu, "StudentT"))
        object.__setattr__(self, "sigma", _check_positive("sigma", self.sigma, "StudentT"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"nu": self.nu, "loc": self.mu, "scale": self.sigma}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        sd = self.sigma * math.sqrt(self.nu / (self.nu - 2)) if self.nu > 2 else math.inf
        return self.mu, sd


@dataclass(frozen=True)
class Cauchy(Prior):
    """Cauchy(alpha, beta) prior: location ``alpha``, positive scale ``beta``."""

    alpha: float = 0.0
    beta: float = 1.0
    stan_fn: ClassVar[str] = "cauchy"
    args: ClassVar[tuple[str, ...]] = ("loc", "scale")

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _check_finite("alpha", self.alpha, "Cauchy"))
        object.__setattr__(self, "beta", _check_positive("beta", self.beta, "Cauchy"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"loc": self.alpha, "scale": self.beta}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        return self.alpha, math.inf


@dataclass(frozen=True)
class Logistic(Prior):
    """Logistic(mu, s) prior: location ``mu``, positive scale ``s``.

    Logistic(0, 1) on a logit-scale intercept is uniform on its probability (brms's default
    for the intercepts of ``zi`` and ``hu`` formulas).
    """

    mu: float = 0.0
    s: float = 1.0
    stan_fn: ClassVar[str] = "logistic"
    args: ClassVar[tuple[str, ...]] = ("loc", "scale")

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", _check_finite("mu", self.mu, "Logistic"))
        object.__setattr__(self, "s", _check_positive("s", self.s, "Logistic"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"loc": self.mu, "scale": self.s}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        return self.mu, self.s * math.pi / math.sqrt(3.0)


@dataclass(frozen=True)
class HalfNormal(Prior):
    """Half-normal prior with positive scale ``sigma`` (for standard deviations)."""

    sigma: float = 1.0
    stan_fn: ClassVar[str] = "normal"
    args: ClassVar[tuple[str, ...]] = ("0", "scale")
    positive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", _check_positive("sigma", self.sigma, "HalfNormal"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"scale": self.sigma}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        return self.sigma * math.sqrt(2 / math.pi), self.sigma * math.sqrt(1 - 2 / math.pi)


@dataclass(frozen=True)
class HalfCauchy(Prior):
    """Half-Cauchy prior with positive scale ``beta`` (Gelman 2006 for group SDs)."""

    beta: float = 1.0
    stan_fn: ClassVar[str] = "cauchy"
    args: ClassVar[tuple[str, ...]] = ("0", "scale")
    positive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", _check_positive("beta", self.beta, "HalfCauchy"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"scale": self.beta}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        return math.inf, math.inf


@dataclass(frozen=True)
class HalfStudentT(Prior):
    """Half-Student-t prior with positive ``nu`` and scale ``sigma``."""

    nu: float = 3.0
    sigma: float = 1.0
    stan_fn: ClassVar[str] = "student_t"
    args: ClassVar[tuple[str, ...]] = ("nu", "0", "scale")
    positive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "nu", _check_positive("nu", self.nu, "HalfStudentT"))
        object.__setattr__(self, "sigma", _check_positive("sigma", self.sigma, "HalfStudentT"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"nu": self.nu, "scale": self.sigma}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        return math.inf, math.inf


@dataclass(frozen=True)
class Exponential(Prior):
    """Exponential prior with positive rate ``lam`` (mean ``1/lam``)."""

    lam: float = 1.0
    stan_fn: ClassVar[str] = "exponential"
    args: ClassVar[tuple[str, ...]] = ("rate",)
    positive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "lam", _check_positive("lam", self.lam, "Exponential"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"rate": self.lam}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        return 1 / self.lam, 1 / self.lam


@dataclass(frozen=True)
class Gamma(Prior):
    """Gamma prior with positive shape ``alpha`` and rate ``beta`` (mean ``alpha/beta``)."""

    alpha: float = 2.0
    beta: float = 0.1
    stan_fn: ClassVar[str] = "gamma"
    args: ClassVar[tuple[str, ...]] = ("shape", "rate")
    positive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _check_positive("alpha", self.alpha, "Gamma"))
        object.__setattr__(self, "beta", _check_positive("beta", self.beta, "Gamma"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"shape": self.alpha, "rate": self.beta}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        return self.alpha / self.beta, math.sqrt(self.alpha) / self.beta


@dataclass(frozen=True)
class InverseGamma(Prior):
    """Inverse-gamma prior with positive shape ``alpha`` and scale ``beta`` (1/x ~ Gamma(alpha, rate beta))."""

    alpha: float = 0.4
    beta: float = 0.3
    stan_fn: ClassVar[str] = "inv_gamma"
    args: ClassVar[tuple[str, ...]] = ("shape", "scale")
    positive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _check_positive("alpha", self.alpha, "InverseGamma"))
        object.__setattr__(self, "beta", _check_positive("beta", self.beta, "InverseGamma"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"shape": self.alpha, "scale": self.beta}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        a, b = self.alpha, self.beta
        mean = b / (a - 1) if a > 1 else math.inf
        sd = b / ((a - 1) * math.sqrt(a - 2)) if a > 2 else math.inf
        return mean, sd


@dataclass(frozen=True)
class Beta(Prior):
    """Beta prior with positive shapes ``alpha`` and ``beta`` (mean ``alpha / (alpha + beta)``).

    For a probability such as a zero-inflation or hurdle probability; ``Beta(1, 1)`` is
    uniform. brms's spelling ``beta(a, b)`` reads as this prior.
    """

    alpha: float = 1.0
    beta: float = 1.0
    stan_fn: ClassVar[str] = "beta"
    args: ClassVar[tuple[str, ...]] = ("alpha", "beta")

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _check_positive("alpha", self.alpha, "Beta"))
        object.__setattr__(self, "beta", _check_positive("beta", self.beta, "Beta"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"alpha": self.alpha, "beta": self.beta}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        a, b = self.alpha, self.beta
        return a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


@dataclass(frozen=True)
class LKJ(Prior):
    """LKJ prior on a correlation matrix with positive shape ``eta`` (1 = uniform)."""

    eta: float = 2.0
    stan_fn: ClassVar[str] = "lkj_corr_cholesky"
    args: ClassVar[tuple[str, ...]] = ("eta",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "eta", _check_positive("eta", self.eta, "LKJ"))

    def values(self) -> dict[str, float]:  # noqa: D102
        return {"eta": self.eta}

    def mean_sd(self) -> tuple[float, float]:  # noqa: D102
        return 0.0, math.nan


def _prior_classes() -> dict[str, type[Prior]]:
    return {name: globals()[name] for name in __all__ if isinstance(globals().get(name), type) and name != "Prior"}


def _key(family: str) -> str:
    """Family names compared without case and underscores: brms's ``student_t`` is ``StudentT``."""
    key = family.replace("_", "").lower()
    return _ALIASES.get(key, key)


# brms / Stan spellings of hbstan's priors
_ALIASES = {
    "lkjcorr": "lkj", "lkjcorrcholesky": "lkj", "halft": "halfstudentt", "halfstudent": "halfstudentt",
    "invgamma": "inversegamma",
}


def format_prior(prior: Prior) -> str:
    """Write a prior as a string that :func:`parse_prior` reads back exactly.

    Unlike ``str(prior)`` (6 significant digits), values keep full precision:
    ``format_prior(Normal(0, 2.5))`` is ``"Normal(mu=0.0, sigma=2.5)"``.
    """
    if not isinstance(prior, Prior):
        raise TypeError(f"expected an hbstan prior, got {prior!r}")
    args = ", ".join(f"{f.name}={float(getattr(prior, f.name))!r}" for f in dataclasses.fields(prior))
    return f"{type(prior).__name__}({args})"


_CALL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.S)
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_ARG = re.compile(rf"^\s*(?:([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?({_NUMBER})\s*$")


def parse_prior(text: str, *, name: str | None = None) -> Prior:
    """Read a prior from a string such as ``"Normal(0, 10)"`` or ``"HalfNormal(sigma=2.5)"``.

    Parameters
    ----------
    text : str
        ``Family(args)``: a prior class of :mod:`hbstan.priors` with numeric arguments,
        positional (in the class's order) and/or by keyword. Family names ignore case and
        underscores, so brms's spellings work too: ``"normal(0, 2.5)"``,
        ``"student_t(3, 0, 2.5)"``, ``"exponential(1)"``, ``"lkj(2)"``. Nothing is evaluated:
        the string is matched against a small grammar.
    name : str, optional
        What the prior is for (used in error messages), e.g. ``"Intercept"``.

    Returns
    -------
    hbstan.Prior

    Raises
    ------
    ValueError
        Naming the bad string and what would be valid.
    """
    where = f"prior for {name!r}" if name else "prior"
    classes = _prior_classes()
    if not isinstance(text, str):
        raise ValueError(f"{where} must be a string such as \"Normal(0, 10)\", got {text!r}")
    m = _CALL.match(text)
    if not m:
        raise ValueError(
            f"{where}: cannot read {text!r}; write a prior as Family(arguments), e.g. "
            f"\"Normal(0, 10)\" or \"HalfNormal(sigma=1)\"; families: {sorted(classes)}"
        )
    family, inner = m.group(1), m.group(2)
    lookup = {_key(k): v for k, v in classes.items()}
    cls = lookup.get(_key(family))
    if cls is None:
        raise ValueError(f"{where}: unknown prior family {family!r} in {text!r}; families: {sorted(classes)}")
    fields = [f.name for f in dataclasses.fields(cls)]
    signature = f"{cls.__name__}({', '.join(fields)})"
    kwargs: dict[str, float] = {}
    positional_done = False
    pieces = [] if not inner.strip() else inner.split(",")
    if len(pieces) > len(fields):
        raise ValueError(f"{where}: {text!r} has {len(pieces)} arguments; {signature} takes at most {len(fields)}")
    for i, piece in enumerate(pieces):
        am = _ARG.match(piece)
        if not am:
            raise ValueError(
                f"{where}: cannot read argument {piece.strip()!r} of {text!r}; arguments are numbers, "
                f"optionally named: {signature}"
            )
        key, value = am.group(1), float(am.group(2))
        if key is None:
            if positional_done:
                raise ValueError(f"{where}: positional argument {piece.strip()!r} after a named one in {text!r}")
            key = fields[i]
        else:
            positional_done = True
            if key not in fields:
                raise ValueError(f"{where}: {cls.__name__} has no argument {key!r} (in {text!r}); it takes {signature}")
        if key in kwargs:
            raise ValueError(f"{where}: argument {key!r} given twice in {text!r}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ValueError(f"{where}: {err} (in {text!r})") from None
