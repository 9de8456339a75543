"""``hbstan.Model``: a formula, a DataFrame and options, ready to sample with a backend."""

from __future__ import annotations

import inspect
import os
from typing import Any

from .backend import interactive
from .fit import Fit
from .multivariate import MultivariateModel
from .spec import ModelSpec

__all__ = ["Model", "BACKENDS"]

# the backends: each takes a model specification and sampler options and returns a Fit
BACKENDS = ("stan", "pymc")


class Model(ModelSpec):
    """A Bayesian (multilevel) regression model, rendered to Stan.

    A list of two or more formulas builds a model of several responses instead
    (:class:`hbstan.multivariate.MultivariateModel`: ``family=`` one for all or a list,
    ``rescor=`` for the residual correlation of Gaussian responses).

    Parameters
    ----------
    formula : str or hbstan.Formula
        lme4/brms formula: ``"y ~ x"`` (pooled), ``"y ~ x + (1 | g)"`` (varying intercept),
        ``"y ~ x + (1 + x || g)"`` (independent varying intercept and slope),
        ``"y ~ x + (1 + x | g)"`` (correlated, LKJ prior). Binomial responses:
        ``"successes | trials(n) ~ ..."``. Response additions in brms's syntax: ``se(s)``,
        ``weights(w)``, ``cens(c)`` / ``cens(c, y2)``. Distributional parameters:
        :class:`hbstan.Formula` (``Formula("y ~ x", sigma="~ z")``), or its string
        ``"y ~ x; sigma ~ z"``.
    data : pandas.DataFrame
        One row per observation.
    family : str or Family, default "gaussian"
        Response distribution: a name in ``hbstan.families.FAMILIES`` (the README lists them
        with their links and auxiliary parameters) or a Family object. ``Model.family`` is the
        :class:`~hbstan.families.Family` object.
    link : str, optional
        Link function of the mean, when the family offers more than one (``Family.links``):
        bernoulli and binomial take ``"logit"`` (default), ``"probit"`` or ``"cloglog"``.
    pooling : {None, "pooled", "unpooled", "hierarchical", "correlated"}, default None
        How group effects are tied. None reads it from the formula. "pooled" drops the group
        terms; "unpooled" gives every group independent priors (no hyperprior, no global
        mean for the varying effects); "hierarchical" draws group effects from a population
        (independent across effects); "correlated" adds an LKJ prior on their correlations.
    group_predictors : dict, optional
        ``{"county": ["log_uppm"]}``: predictors of the mean of a factor's varying intercept.
    priors : dict, optional
        Overrides of the default priors (see ``Model.priors`` and the README), keyed by
        coefficient or class: ``"Intercept"``, ``"b"`` (all coefficients), a predictor name,
        ``"sigma"``, ``"1|county_sigma"``, ``"sd"`` (all group SDs), ``"county_corr"`` or
        ``"corr"``, ``"1|county"`` (unpooled effects), a group predictor name or ``"gamma"``.
        Values are priors (``hbstan.Normal(0, 2.5)``) or strings, in hbstan's or brms's
        spelling (``"normal(0, 2.5)"``, ``"student_t(3, 0, 2.5)"``, ``"lkj(2)"``).
    sigma : float, optional
        Known residual SD (gaussian family): then sigma is data, not a parameter.
    trials : str or array, optional
        Binomial trials: a column name or values (or use ``trials()`` in the formula).
    offset, exposure : str or array, optional
        Offset added to the linear predictor, or exposure whose log is added (log-link
        families: poisson, negbinomial).
    centered : bool, "auto" or dict, default "auto"
        Centered parameterization of the group effects (True), non-centered (False), or chosen
        per term from the data ("auto": centered where the groups hold enough data to pin
        their effects down, see :mod:`hbstan.centering`; ``Model.term_evidence`` holds
        the evidence); a dict sets it per grouping factor.
    aggregate : bool or "auto", default "auto"
        Bernoulli models: rows with identical predictors, groups and offsets are summed into
        binomial counts before sampling (the same likelihood, fewer terms). Poisson models:
        rows with identical predictors and groups are summed into one count each, with the
        sum of their exposures. "auto" does it when that at least halves the rows. Pointwise
        ``log_lik`` stays per original row.
    suff_stats : bool or "auto", default "auto"
        Gaussian models with at most one grouping term: evaluate the likelihood from per-group
        sufficient statistics, so a gradient costs O(groups) instead of O(rows). "auto" uses
        them when there are at least two rows per group on average.
    marginalize : bool or "auto", default "auto"
        Gaussian models with sufficient statistics and one hierarchical or correlated grouping
        term: integrate the group effects out of the likelihood analytically (per group, the
        responses are jointly normal), so the sampler explores only the population-level
        parameters and SDs (and correlations); the group effects are then drawn exactly from
        their conditional posterior in generated quantities. Same posterior, far fewer and
        easier dimensions. "auto" does it unless ``centered`` was set for that term.
    dropna : bool, default False
        Drop rows with missing values in the model's columns (reported in the log) instead of
        raising an error.
    """

    def __new__(cls, formula: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Build a univariate model, or from a list of formulas a :class:`~hbstan.multivariate.MultivariateModel`."""
        if isinstance(formula, (list, tuple)):
            return MultivariateModel(formula, *args, **kwargs)
        return super().__new__(cls)

    def to_pymc(self, *, prior_only: bool = False) -> Any:
        """The same model as a ``pymc.Model`` (needs ``pip install 'hbstan[pymc]'``).

        Same likelihood, link, priors and parameterization as the Stan program; the
        user-facing quantities are deterministics with the Stan fit's names, dims and coords
        (see :func:`hbstan.pymc_backend.build_pymc_model`).

        Parameters
        ----------
        prior_only : bool, default False
            Leave the likelihood out.
        """
        from .pymc_backend import build_pymc_model

        return build_pymc_model(self, prior_only=prior_only)
    def replace(self, **changes: Any) -> "Model":
        """The same model (formula, data and options) with some options changed.

        ``m.replace(centered={"g": False})`` is ``Model(m.formula, data, **options)`` with
        ``centered`` changed; ``m.options`` lists the options and their values.
        """
        unknown = set(changes) - set(self.options)
        if unknown:
            raise ValueError(f"unknown model options {sorted(unknown)}; valid options: {sorted(self.options)}")
        return Model(self.formula, self.source_data, **{**self.options, **changes})

    def sample(
        self,
        chains: int = 4,
        draws: int = 1000,
        warmup: int = 1000,
        seed: int | None = None,
        *,
        adapt_delta: float | None = None,
        max_treedepth: int | None = None,
        prior_only: bool = False,
        output_dir: str | None = None,
        parallel_chains: int | None = None,
        show_progress: bool | str = "auto",
        inits: Any = None,
        threads_per_chain: int | None = None,
        grainsize: int = 1,
        pointwise: str | bool = "auto",
        backend: str = "stan",
        program: str | None = None,
        **kwargs: Any,
    ) -> "Fit":
        """Sample the posterior with CmdStan's NUTS (or PyMC) and return a :class:`~hbstan.Fit`.

        Parameters
        ----------
        chains, draws, warmup : int
            Number of chains, post-warm-up draws per chain, and warm-up iterations per chain.
        seed : int, optional
            Random seed: the same seed gives identical draws.
        adapt_delta : float, optional
            Target acceptance rate of step-size adaptation (CmdStan default 0.8); raise it
            (e.g. 0.95) when there are divergences.
        max_treedepth : int, optional
            NUTS maximum tree depth (CmdStan default 10).
        prior_only : bool, default False
            Ignore the likelihood: draws from the prior and the prior predictive.
        output_dir : str, optional
            Run directory for CmdStan's CSV files (default: a new one under hbstan's cache).
        show_progress : bool or "auto", default "auto"
            Per-chain progress bars (CmdStanPy's, or PyMC's). "auto" shows them where a person
            watches (stderr is a terminal, or a Jupyter kernel) and stays quiet otherwise
            (scripts writing to files, CI, tests).
        threads_per_chain : int, optional
            When given, the likelihood is split over rows with ``reduce_sum`` and evaluated by
            that many threads per chain (a separately compiled, threaded program; 1 is the
            single-thread baseline of the same program). Not used with Gaussian sufficient
            statistics, whose cost does not grow with the rows.
        grainsize : int, default 1
            Rows per ``reduce_sum`` task (1 lets the scheduler choose).
        pointwise : {"auto", "python", "stan", False}, default "auto"
            Where the pointwise log-likelihood (``log_lik``, for LOO) and the replicated data
            (posterior predictive) are computed: from the draws in NumPy (``"python"``: fast,
            and CmdStan's CSV files stay small), by the Stan program's generated quantities
            (``"stan"``), or not while fitting (False; :meth:`Fit.add_pointwise` adds them
            later). ``"auto"`` is ``"python"`` unless the arrays would hold more than 20
            million values each (rows x chains x draws, 160 MB), then False with a logged note.
        backend : {"stan", "pymc"}, default "stan"
            ``"pymc"`` samples the same model built in PyMC (see :meth:`to_pymc`; needs
            ``pip install 'hbstan[pymc]'``) and returns a Fit with the same posterior names,
            dims and coords; ``nuts_sampler="nutpie"`` (or "numpyro", "blackjax") then picks
            PyMC's NUTS implementation. See :func:`hbstan.pymc_backend.sample_pymc`.
        program : {"auto", "general", "specialized"}, optional
            Which Stan program samples; default: the environment variable ``HBSTAN_PROGRAM``,
            else ``"auto"``. ``"auto"``: the program specialized to this model when
            it is compiled; else, when the family's general program is built (``hbstan
            precompile``) and supports the model (every family, at any link; hierarchical and
            correlated terms, default prior families; :data:`hbstan.general.GENERAL_FAMILIES`),
            the general program at once, while the specialized one compiles in the background
            for later fits (a logged line says so). ``"general"`` forces the general program
            (an error says why a model is not supported); ``"specialized"`` waits for the
            specialized program's compile. ``fit.program`` says which ran. Both sample the
            same posterior; see :mod:`hbstan.general`.
        """
        if show_progress == "auto":  # bars where a person watches (terminal, notebook), else quiet
            show_progress = interactive()
        opts = dict(
            chains=chains,
            draws=draws,
            warmup=warmup,
            seed=seed,
            adapt_delta=adapt_delta,
            max_treedepth=max_treedepth,
            prior_only=prior_only,
            output_dir=output_dir,
            parallel_chains=parallel_chains,
            show_progress=show_progress,
            inits=inits,
            threads_per_chain=threads_per_chain,
            grainsize=grainsize,
            pointwise=pointwise,
            **kwargs,
        )
        if backend == "pymc":
            from .pymc_backend import sample_pymc

            if program is not None:
                raise ValueError("program= chooses the Stan program: use it with backend='stan'")
            return sample_pymc(self, **opts)
        if backend != "stan":
            raise ValueError(f"unknown backend {backend!r}; valid backends: 'stan', 'pymc'")
        if "nuts_sampler" in kwargs:
            raise ValueError("nuts_sampler= chooses PyMC's NUTS implementation: use it with backend='pymc'")
        from .stan_backend import sample_stan

        if program is None:
            program = os.environ.get("HBSTAN_PROGRAM") or "auto"
        return sample_stan(self, program=program, **opts)


# Model's keywords are ModelSpec's (its __new__ only routes a list of formulas elsewhere)
Model.__signature__ = inspect.signature(ModelSpec.__init__).replace(  # type: ignore[attr-defined]
    parameters=list(inspect.signature(ModelSpec.__init__).parameters.values())[1:]
)
