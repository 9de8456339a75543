"""The one table of model options, and the one table of sampler settings.

:data:`MODEL_OPTIONS` lists the keywords of :class:`hbstan.Model` (besides the formula and the
data); the keys a spec file may hold, the command line's flags and what a saved run records
(:meth:`hbstan.spec.ModelSpec.resolved_options`) are all read from it. A new option is one
row here and its handling in :mod:`hbstan.spec`.

:data:`SAMPLER_OPTIONS` lists the settings of :meth:`hbstan.Model.sample` that a fit records
(``fit.settings``, via :func:`recorded_settings`) and reuses in :meth:`hbstan.Fit.refit`, that
a spec file's ``[sampler]`` table may hold and a saved run writes, and that the command line
takes as flags. A new setting is one row here, its keyword in ``Model.sample`` and how each
backend passes it to its sampler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Option", "MODEL_OPTIONS", "SAMPLER_OPTIONS", "recorded_settings"]


@dataclass(frozen=True)
class Option:
    """One model option: the keyword of :class:`hbstan.Model`, the spec-file key and the CLI flag.

    ``MODEL_OPTIONS`` is the one list of them: the Model's keywords, the keys a spec file may
    hold (and a run's spec saves, as :meth:`ModelSpec.resolved_options` resolves them), and the
    command line's flags are all read from it.
    """

    name: str
    default: Any
    toml: tuple[type, ...]  # the types a spec file may hold for it
    help: str  # one line, for ``--help`` and the docs
    # how the command line takes it: "value" (--name VALUE), "flag" (--name sets True),
    # "no" (--no-name sets False), "pairs" (repeatable --name KEY=VALUE, parsed by the CLI)
    cli: str = "value"
    cli_type: type = str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        """The command-line flag (``--suff-stats``, ``--no-aggregate``)."""
        stem = self.name.replace("_", "-")
        return {"no": f"--no-{stem}", "pairs": f"--{stem.rstrip('s')}"}.get(self.cli, f"--{stem}")


MODEL_OPTIONS: tuple[Option, ...] = (
    Option("family", "gaussian", (str,), "response family (see hbstan.families.FAMILIES)"),
    Option("pooling", None, (str,), "pooled, unpooled, hierarchical or correlated (default: from the formula)"),
    Option(
        "group_predictors", None, (dict,), "a group-level predictor of GROUP's mean, e.g. county=log_uppm (repeatable)",
        cli="pairs", metavar="GROUP=COLUMN",
    ),
    Option(
        "priors", None, (dict,), "a prior, e.g. 'Intercept=Normal(0, 10)' or 'sd=HalfNormal(1)' (repeatable)",
        cli="pairs", metavar="NAME=PRIOR",
    ),
    Option("sigma", None, (float, int), "known residual SD (gaussian): sigma is data, not estimated", cli_type=float),
    Option("trials", None, (str,), "binomial trials column (or 'y | trials(n) ~ ...')", metavar="COLUMN"),
    Option("offset", None, (str,), "offset column added to the linear predictor", metavar="COLUMN"),
    Option("exposure", None, (str,), "exposure column (log link: its log is added)", metavar="COLUMN"),
    Option(
        "centered", "auto", (bool, dict),
        "centered parameterization of the group effects (default: chosen per term from the data)", cli="flag",
    ),
    Option(
        "suff_stats", "auto", (bool,),
        "evaluate a Gaussian likelihood row by row instead of from sufficient statistics", cli="no",
    ),
    Option(
        "marginalize", "auto", (bool,),
        "sample the group effects of a Gaussian model instead of integrating them out", cli="no",
    ),
    Option(
        "aggregate", "auto", (bool,),
        "keep Bernoulli rows as rows instead of summing identical ones into binomial counts", cli="no",
    ),
    Option("dropna", False, (bool,), "drop rows with missing values in the model's columns", cli="flag"),
    Option(
        "link", None, (str,),
        "link function of the mean (default: the family's first; bernoulli and binomial: logit, probit or cloglog)",
    ),
)


SAMPLER_OPTIONS: tuple[Option, ...] = (
    Option("chains", 4, (int,), "number of chains (default 4)", cli_type=int),
    Option("draws", 1000, (int,), "post-warm-up draws per chain (default 1000)", cli_type=int),
    Option("warmup", 1000, (int,), "warm-up iterations per chain (default 1000)", cli_type=int),
    Option("seed", None, (int,), "random seed (default: a random one, recorded in the run)", cli_type=int),
    Option("adapt_delta", None, (float, int), "target acceptance rate (CmdStan default 0.8)", cli_type=float),
    Option("max_treedepth", None, (int,), "NUTS maximum tree depth (CmdStan default 10)", cli_type=int),
    Option("prior_only", False, (bool,), "sample the prior (ignore the likelihood)", cli="flag"),
)


def recorded_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the sampler settings a fit records, taken by name from a sampling call's arguments.

    Every row of :data:`SAMPLER_OPTIONS`, in its order, with its default where ``values``
    lacks it. Backends add what they resolve themselves (``pointwise``, ``nuts_sampler``).
    """
    return {o.name: values.get(o.name, o.default) for o in SAMPLER_OPTIONS}
