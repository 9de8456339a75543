"""hbstan: Bayesian hierarchical regression from a formula, on Stan.

>>> import hbstan
>>> m = hbstan.Model("log_radon ~ 1 + floor + (1 | county)", data=df)   # doctest: +SKIP
>>> fit = m.sample(seed=1)                                                # doctest: +SKIP
"""

from . import (
    datasets,  # noqa: E402
    families,  # noqa: E402
    plots,  # noqa: E402
)
from ._version import __version__
from .backend import CmdStanNotFoundError, CompileError, find_cmdstan, install_cmdstan  # noqa: E402
from .compare import Comparison, compare_backends, compare_fits  # noqa: E402
from .design import DataError, Formula, FormulaError  # noqa: E402
from .effects import avg_comparisons, avg_slopes, datagrid  # noqa: E402
from .families import Family  # noqa: E402
from .fit import Diagnostics, Fit, SamplingError, SamplingWarning  # noqa: E402
from .io import load, save_fit  # noqa: E402
from .kfold import kfold  # noqa: E402
from .many import Failure, ManyFits, fit_many  # noqa: E402
from .mediation import mediation  # noqa: E402
from .model import Model  # noqa: E402
from .pooling import PoolingComparison, compare_pooling  # noqa: E402
from .priors import (  # noqa: E402
    LKJ,
    Beta,
    Cauchy,
    Exponential,
    Gamma,
    InverseGamma,
    HalfCauchy,
    HalfNormal,
    HalfStudentT,
    Logistic,
    Normal,
    Prior,
    StudentT,
)
from .sbc import SBCResult, sbc  # noqa: E402

__all__ = [
    # models and results
    "Model",
    "Formula",
    "Family",
    "families",
    "Fit",
    "Diagnostics",
    # several responses: path analysis
    "mediation",
    # predictions, conditional effects, average comparisons and slopes
    "datagrid",
    "avg_comparisons",
    "avg_slopes",
    # comparing fits (Stan vs PyMC)
    "Comparison",
    "compare_fits",
    "compare_backends",
    # priors
    "Prior",
    "Normal",
    "StudentT",
    "Cauchy",
    "Logistic",
    "HalfNormal",
    "HalfCauchy",
    "HalfStudentT",
    "Exponential",
    "Beta",
    "Gamma",
    "InverseGamma",
    "LKJ",
    # errors and warnings
    "DataError",
    "FormulaError",
    "CmdStanNotFoundError",
    "CompileError",
    "SamplingError",
    "SamplingWarning",
    # CmdStan and data
    "find_cmdstan",
    "install_cmdstan",
    "datasets",
    # many fits (a local pool or a Dask cluster): a model per segment, K-fold CV, SBC
    "fit_many",
    "ManyFits",
    "Failure",
    "kfold",
    "sbc",
    "SBCResult",
    # pooling comparison and plots
    "compare_pooling",
    "PoolingComparison",
    "plots",
    # run directories
    "load",
    "save_fit",
    "__version__",
]
