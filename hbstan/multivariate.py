"""A multivariate model: several responses, each with its formula and family, sampled together.

``hbstan.Model(["x2 ~ x1", "y ~ x1 + x2 + (1 | g)"], data=df)`` builds one (a list of
formulas); see :class:`MultivariateModel`.
"""

from __future__ import annotations

from typing import Any

from .backend import interactive
from .mvfit import MultivariateFit
from .mvspec import MultiSpec

__all__ = ["MultivariateModel"]


class MultivariateModel(MultiSpec):
    """Several responses in one Bayesian model (brms's ``bf(y1 ~ ...) + bf(y2 ~ ...)``).

    One Stan program holds every response's likelihood (each written by its family), group
    terms and, for Gaussian or Student-t responses, their residual correlation; one run
    samples them together.

    Parameters
    ----------
    formulas : list of str or hbstan.Formula
        One formula per response, each in hbstan's syntax (population terms, group terms
        ``(1 | g)``, ``(1 + x || g)``, ``(1 + x | g)``, ``trials()`` for a binomial response).
        A response may be a predictor in another formula (a path model: ``["x2 ~ x1",
        "y ~ x1 + x2"]``). Every response uses the same rows of ``data``.
    data : pandas.DataFrame
        One row per observation.
    family : str, Family or list of them, default "gaussian"
        One family for every response, or a list with one per formula: ``"gaussian"``,
        ``"student"``, ``"bernoulli"``, ``"binomial"`` or ``"poisson"``.
    link : str or list, optional
        The link of the mean, one for all or one per formula (None: the family's default).
    rescor : bool, optional
        Residual correlation between the responses (an LKJ prior on their correlation matrix,
        ``rescor``, default ``LKJ(2)``; Cholesky-factored; the rows' responses jointly
        ``multi_normal_cholesky``, or ``multi_student_t_cholesky`` with one shared ``nu`` for
        Student-t responses). Default (None): on when every response is Gaussian, as brms's;
        ``True`` with a response of another family than gaussian or student is an error.
    priors : dict, optional
        Priors by name: ``"<response>_<key>"`` for one response's coefficient, class or
        parameter (``"y_x1"``, ``"y_b"``, ``"y_sigma"``, ``"y_1|g_sigma"``); a key without a
        response (``"b"``, ``"sd"``, ``"Intercept"``, ``"sigma"``) for every response that has
        it; ``"rescor"`` for the residual correlations (an LKJ prior).
    pooling : str, optional
        As :class:`hbstan.Model`'s, for every response's group terms.
    centered : bool, "auto" or dict, default "auto"
        As :class:`hbstan.Model`'s, per response: "auto" chooses per term from that
        response's data.
    dropna : bool, default False
        Drop rows missing in any response's columns (every response keeps the same rows).
    """

    def replace(self, **changes: Any) -> MultivariateModel:
        """Return the same model (formulas, data and options) with some options changed."""
        unknown = set(changes) - set(self.options)
        if unknown:
            raise ValueError(f"unknown model options {sorted(unknown)}; valid options: {sorted(self.options)}")
        return MultivariateModel(self.formulas, self.source_data, **{**self.options, **changes})

    def to_pymc(self, *, prior_only: bool = False) -> Any:
        """Build the same model as a ``pymc.Model`` (see :func:`hbstan.mv_pymc.build_mv_pymc_model`)."""
        from .mv_pymc import build_mv_pymc_model

        return build_mv_pymc_model(self, prior_only=prior_only)

    def sample(
        self,
        chains: int = 4,
        draws: int = 1000,
        warmup: int = 1000,
        seed: int | None = None,
        *,
        backend: str = "stan",
        show_progress: bool | str = "auto",
        **kwargs: Any,
    ) -> MultivariateFit:
        """Sample every response's parameters together; return a :class:`~hbstan.mvfit.MultivariateFit`.

        Parameters
        ----------
        chains, draws, warmup, seed :
            As :meth:`hbstan.Model.sample`.
        backend : {"stan", "pymc"}, default "stan"
            CmdStan (one program) or the same model in PyMC.
        show_progress : bool or "auto", default "auto"
            Progress bars where a person watches.
        **kwargs
            ``adapt_delta``, ``max_treedepth``, ``prior_only``, ``output_dir``,
            ``parallel_chains``, ``inits``, and ``pointwise`` ("auto" or "stan": computed by the
            program; False: not at all); with PyMC, ``nuts_sampler``.
        """
        if show_progress == "auto":
            show_progress = interactive()
        if backend == "pymc":
            from .mv_pymc import sample_mv_pymc

            return sample_mv_pymc(
                self, chains=chains, draws=draws, warmup=warmup, seed=seed, show_progress=show_progress, **kwargs
            )
        if backend != "stan":
            raise ValueError(f"unknown backend {backend!r}; valid backends: 'stan', 'pymc'")
        from .mv_stan import sample_mv_stan

        return sample_mv_stan(
            self, chains=chains, draws=draws, warmup=warmup, seed=seed, show_progress=bool(show_progress), **kwargs
        )
