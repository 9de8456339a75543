"""What a response family is: the one place that knows a distribution and its link."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import copy

import numpy as np
import pandas as pd

from ..design import DataError
from ..priors import Logistic, Prior, StudentT

__all__ = ["AuxParam", "Family"]


@dataclass(frozen=True)
class AuxParam:
    """An auxiliary (distributional) parameter of a family, such as the Gaussian residual SD.

    It is one scalar, named ``name`` in the Stan program, the posterior and ``priors=``; a
    model may fix it as known data instead (``sigma=`` for the Gaussian).
    """

    name: str
    doc: str  # what it is, for the program's comments and the docs
    lower: float = 0.0  # lower bound of its support
    upper: float = math.inf  # upper bound of its support (1 for a probability)

    def default_prior(self, s_y: float) -> Prior:  # pragma: no cover - every family overrides
        """Data-scaled default prior; ``s_y`` is the family's response scale."""
        raise NotImplementedError

    @property
    def link(self) -> str:
        """The link of a formula for this parameter: ``"log"`` on (0, inf), ``"logit"`` on (0, 1)."""
        if self.lower == 0.0 and self.upper == 1.0:
            return "logit"
        if self.lower == 0.0 and math.isinf(self.upper):
            return "log"
        raise NotImplementedError(f"no link for a parameter on ({self.lower:g}, {self.upper:g})")

    @property
    def stan_inverse_link(self) -> str:
        """The Stan function mapping the formula's linear predictor to the parameter."""
        return {"log": "exp", "logit": "inv_logit"}[self.link]

    def inverse_link(self, eta: Any) -> Any:
        """NumPy: the parameter's values from its formula's linear predictor ``eta``."""
        if self.link == "logit":
            from scipy.special import expit

            return expit(eta)
        return np.exp(eta)

    def formula_intercept_prior(self, s_y: float) -> Prior:
        """Default prior of the intercept of a formula for this parameter, on the link scale.

        brms's: Student-t(3, 0, 2.5) on the log scale, Logistic(0, 1) on the logit scale
        (uniform on the probability).
        """
        return Logistic(0.0, 1.0) if self.link == "logit" else StudentT(3.0, 0.0, 2.5)


class Family:
    """A response distribution with its link, as every layer of hbstan needs it.

    Subclasses (one module each under ``hbstan/families/``) set the class attributes and
    implement the methods; the template ``stan_templates/families/<name>.stan.j2`` holds the
    Stan side (data declarations, the likelihood, log_lik and y_rep). Nothing else in hbstan
    tests a family's name: code asks the family.

    Attributes
    ----------
    name : str
        ``family=`` value and template name.
    link : str
        The link function of the mean (``"identity"``, ``"logit"``, ``"log"``, ...); the first
        of ``links``, unless :meth:`with_link` chose another.
    links : tuple of str
        The links the family offers (``Model(link=...)``); the first is the default.
    integer_response : bool
        Whether the response holds counts (Stan ``int``) rather than reals.
    trials : bool
        Whether the response is successes out of a number of trials (``trials()``).
    aux : tuple of AuxParam
        Auxiliary parameters, in the order the program declares them.
    suff_stats : bool
        Capability: the likelihood has per-group sufficient statistics, and the group effects
        of one term can be integrated out (Gaussian).
    aggregates_to : str or None
        Capability: rows with identical predictors can be summed into this family's counts
        (Bernoulli rows into binomial ones: the same likelihood up to a constant). A family
        that aggregates into itself (Poisson) sums the counts of rows with identical
        predictors and groups and their exposures (the offsets on the exp scale).
    distributional : tuple of str
        Capability: the auxiliary parameters that may get a formula of their own
        (``Formula("y ~ x", sigma="~ z")``), on the scale of :attr:`AuxParam.link` (log for a
        positive parameter, logit for a probability); the template writes their per-row value
        as ``mac.aux(m, name, rows)``.
    known_se : bool
        Capability: ``y | se(s) ~ ...`` gives known standard errors, added in quadrature to
        the residual SD ``sigma`` (the template writes its scale as ``mac.scale(m)``).
    thresholds : bool
        Capability: ordered thresholds replace the intercept (ordinal families). The linear
        predictor then has no intercept and no term is centered on one; the program declares
        ``ordered[ncat - 1] Intercept`` (thresholds at the predictors' means), the posterior
        reports ``Intercept`` per threshold on the predictors' original scale, and the NumPy
        methods read the thresholds as ``aux["thresholds"]`` (draws shaped (..., 1, ncat - 1)).
        Such a family reads its response with :meth:`encode_response` and gives
        :meth:`category_probs`.
    per_category : bool
        Capability: one linear predictor per non-reference response category (the multinomial
        logit, ``categorical``). The intercept, each coefficient and each group effect then has
        a last dimension ``category`` (the labels of categories 2..K), the program declares
        ``vector[ncat - 1] Intercept`` and ``matrix[K, ncat - 1] b`` and one block of group
        effects per category, and the NumPy methods take ``eta`` shaped (..., n, K - 1). Such a
        family reads its response with :meth:`encode_response` and gives :meth:`category_probs`.
        Offsets, group-level predictors and correlated or unpooled terms are not supported.
    weighting : bool
        Capability: ``y | weights(w) ~ ...`` (each row's log-likelihood times its weight; the
        template's ``log_lik`` macro takes the rows).
    censoring : bool
        Capability: ``y | cens(c) ~ ...`` (left, right and interval censoring). The family
        gives its log CDF and log CCDF (:meth:`log_cdf`, :meth:`log_ccdf`, and the template's
        ``lcdf`` / ``lccdf`` macros); for counts right censoring is P(Y >= y), as in brms.
    multivariate : bool
        Capability: a response of a model of several responses (``Model([f1, f2])``); its
        template's ``partial_args``, ``glm``, ``log_lik`` and ``y_rep`` macros become that
        response's Stan functions.
    rescor : str or None
        Capability: residual correlation between responses of this family (``rescor=True``):
        the Stan density of the rows' responses (``multi_normal_cholesky``), with the residual
        SDs ``sigma`` and, where the family has it, one ``nu`` shared by the responses.
    linear_mean : bool
        Capability: the mean of the response is its linear predictor (E[y] = eta), so effects
        along a path of such responses are products and sums of coefficients
        (:func:`hbstan.mediation`).
    """

    name: ClassVar[str]
    link: str
    links: ClassVar[tuple[str, ...]] = ()
    integer_response: ClassVar[bool] = True
    trials: ClassVar[bool] = False
    aux: ClassVar[tuple[AuxParam, ...]] = ()
    suff_stats: ClassVar[bool] = False
    aggregates_to: ClassVar[str | None] = None
    known_se: ClassVar[bool] = False
    thresholds: ClassVar[bool] = False
    per_category: ClassVar[bool] = False
    distributional: ClassVar[tuple[str, ...]] = ()
    weighting: ClassVar[bool] = True
    censoring: ClassVar[bool] = False
    multivariate: ClassVar[bool] = False
    rescor: ClassVar[str | None] = None
    linear_mean: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"<hbstan family {self.name!r} ({self.link} link)>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Family) and (type(self), self.link) == (type(other), other.link)

    def __hash__(self) -> int:
        return hash((type(self), self.link))

    def with_link(self, link: str | None) -> Family:
        """This family with another link of ``links`` (None: the family as it is)."""
        if link is None or link == self.link:
            return self
        offered = self.links or (self.link,)
        if link not in offered:
            raise ValueError(
                f"family={self.name!r} has no {link!r} link; its links: {list(offered)}"
            )
        out = copy.copy(self)
        out.link = link
        return out

    # ------------------------------------------------------------------ data
    def check_response(self, y: np.ndarray, name: str, trials: np.ndarray | None) -> None:
        """Raise :class:`~hbstan.DataError` naming the rows where ``y`` is not valid."""
        if self.integer_response:
            bad = np.flatnonzero((y != np.round(y)) | (y < 0))
            if bad.size:
                raise DataError(
                    f"response {name!r} must hold non-negative whole numbers for family={self.name!r}; "
                    f"rows {bad[:5].tolist()} have {y[bad[:5]].tolist()}"
                )

    def encode_response(self, column: pd.Series, name: str) -> tuple[np.ndarray, list[str]] | None:
        """The response column as numbers and its category labels, or None (formulae reads it).

        A family whose response is not a number (an ordered Categorical) reads it here:
        :class:`~hbstan.design.Design` calls this with the response column, when the
        response is a column of the data.
        """
        return None

    def response_scale(self, y: np.ndarray, offset: np.ndarray, trials: np.ndarray | None) -> tuple[float, float]:
        """(m_y, s_y): location and scale on the link scale that the default priors use."""
        return 0.0, 1.0

    # ------------------------------------------------------------------ NumPy
    def inverse_link(self, eta: np.ndarray) -> np.ndarray:
        """The mean parameter from the linear predictor."""
        raise NotImplementedError

    def mean(self, eta: np.ndarray, aux: Mapping[str, Any], trials: np.ndarray | None) -> np.ndarray:
        """Expected response given the linear predictor (and trials)."""
        return self.inverse_link(eta)

    def category_probs(self, eta: np.ndarray, aux: Mapping[str, Any]) -> np.ndarray:
        """P(y = k) for each category k, on a last axis (families with categories only)."""
        raise TypeError(f"family={self.name!r} has no response categories: predict kind='mean' or 'response'")

    def log_lik(self, y: np.ndarray, eta: np.ndarray, aux: Mapping[str, Any], trials: np.ndarray | None) -> np.ndarray:
        """Pointwise log-likelihood (with every constant), broadcast over draws."""
        raise NotImplementedError

    def log_cdf(self, y: np.ndarray, eta: np.ndarray, aux: Mapping[str, Any], trials: np.ndarray | None) -> np.ndarray:
        """log P(Y <= y), broadcast over draws (families with ``censoring``)."""
        raise NotImplementedError

    def log_ccdf(self, y: np.ndarray, eta: np.ndarray, aux: Mapping[str, Any], trials: np.ndarray | None) -> np.ndarray:
        """log P(Y > y), broadcast over draws (families with ``censoring``)."""
        raise NotImplementedError

    def censor_log_lik(
        self,
        ll: np.ndarray,
        y: np.ndarray,
        y2: np.ndarray,
        cens: np.ndarray,
        eta: np.ndarray,
        aux: Mapping[str, Any],
        trials: np.ndarray | None,
    ) -> None:
        """Overwrite the censored rows (last axis) of the log-likelihood ``ll`` in place.

        ``cens`` holds brms's codes: -1 left censored, log P(Y <= y); 1 right censored,
        log P(Y >= y) (for counts P(Y > y - 1)); 2 interval censored, log P(y < Y <= y2)
        (for counts P(y <= Y <= y2)). Rows coded 0 keep their density.
        """
        below = y - 1.0 if self.integer_response else y  # counts: the bound itself is inside
        n = y.shape[0]

        def rows(cols: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
            sub = {k: (v[..., cols] if np.ndim(v) and np.shape(v)[-1] == n else v) for k, v in aux.items()}
            return eta[..., cols], sub

        for code in (-1, 1, 2):
            cols = np.flatnonzero(cens == code)
            if not cols.size:
                continue
            e, a = rows(cols)
            t = None if trials is None else trials[cols]
            if code == -1:
                ll[..., cols] = self.log_cdf(y[cols], e, a, t)
            elif code == 1:
                ll[..., cols] = self.log_ccdf(below[cols], e, a, t)
            else:
                hi, lo = self.log_cdf(y2[cols], e, a, t), self.log_cdf(below[cols], e, a, t)
                # log(exp(hi) - exp(lo)); in the upper tail, where the CDFs round to 1, the
                # difference of the CCDFs instead
                shi, slo = self.log_ccdf(y2[cols], e, a, t), self.log_ccdf(below[cols], e, a, t)
                with np.errstate(divide="ignore"):
                    ll[..., cols] = np.where(
                        lo > np.log(0.5), slo + np.log(-np.expm1(shi - slo)), hi + np.log(-np.expm1(lo - hi))
                    )

    def draw(
        self, rng: np.random.Generator, eta: np.ndarray, aux: Mapping[str, Any], trials: np.ndarray | None
    ) -> np.ndarray:
        """Replicated responses, one per entry of ``eta``."""
        raise NotImplementedError

    def fill_pointwise(
        self,
        y: np.ndarray,
        eta: np.ndarray,
        aux: Mapping[str, Any],
        trials: np.ndarray | None,
        rng: np.random.Generator,
        ll: np.ndarray,
        rep: np.ndarray,
    ) -> None:
        """Write log_lik into ``ll`` and replicated data into ``rep``; ``eta`` may be ``ll`` itself."""
        rep[...] = self.draw(rng, eta, aux, trials)
        ll[...] = self.log_lik(y, eta, aux, trials)

    def working(self, y: np.ndarray, trials: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GLM working weights (information per row) and residuals on the link scale.

        Used by :mod:`hbstan.centering`; Gaussian families return constant weights.
        """
        raise NotImplementedError

    # whether working() estimates a dispersion from the residuals (see refit_weights)
    dispersion_from_residuals: bool = False

    def refit_weights(
        self, y: np.ndarray, trials: np.ndarray, eta: np.ndarray, fitted: np.ndarray, df: float
    ) -> np.ndarray | None:
        """Return the working weights at ``eta`` with the dispersion re-estimated around ``fitted``, or None.

        For families whose working weights hold a dispersion estimated from the residuals of
        the pooled fit ``eta`` (negative binomial shape, gamma shape, beta precision): those
        residuals still hold the group effects, so the dispersion comes out too large and the
        information too small. :mod:`hbstan.centering` calls this with ``fitted``, the pooled
        linear predictor plus the group effects' shrunken estimates, and ``df``, the degrees of
        freedom that fit used (coefficients plus the sum of the shrinkage factors), by which the
        residual sum of squares is scaled up (a residual about a fitted mean is smaller than one
        about the true mean). None (the default): the weights do not depend on a dispersion.
        """
        return None

    def initial_eta(self, y: np.ndarray, trials: np.ndarray) -> np.ndarray:
        """A starting linear predictor for iteratively reweighted least squares."""
        raise NotImplementedError

    def empirical(
        self, y: np.ndarray, index: np.ndarray, J: int, offset: np.ndarray, trials: np.ndarray | None, response: str
    ) -> tuple[np.ndarray, np.ndarray, str, str]:
        """Each group's estimate from its own data on the link scale, its size, and axis labels."""
        raise NotImplementedError

    # ------------------------------------------------------------------ PyMC
    def pymc_dist(self, eta: Any, aux: Mapping[str, Any], trials: np.ndarray | None) -> Any:
        """The response distribution given the linear predictor, unregistered (``pm.X.dist``)."""
        raise NotImplementedError

    def pymc_likelihood(
        self, name: str, eta: Any, aux: Mapping[str, Any], y: np.ndarray, trials: np.ndarray | None, dims: str
    ) -> Any:
        """The observed variable of the PyMC model (inside a ``pm.Model`` context)."""
        import pymc as pm

        observed = y.astype(int) if self.integer_response else y
        # a tuple: Model.register_rv would read a string's characters as dimension names (nutpie
        # then fails on their lengths)
        return pm.modelcontext(None).register_rv(
            self.pymc_dist(eta, aux, trials), name, observed=observed, dims=(dims,) if isinstance(dims, str) else dims
        )
