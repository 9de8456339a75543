"""The ``hbstan`` command line.

Exit codes: 0 ok, 1 bad input (one-line reason, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

__all__ = ["main"]

log = logging.getLogger("hbstan")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("formula", help="lme4/brms formula, e.g. 'y ~ x + (1 | g)'")
    p.add_argument("--data", required=True, help="CSV file with one row per observation")
    p.add_argument("--family", default="gaussian", help="gaussian, bernoulli, binomial or poisson")
    p.add_argument("--pooling", default=None, help="pooled, unpooled, hierarchical or correlated")
    p.add_argument(
        "--group-predictor",
        action="append",
        default=[],
        metavar="GROUP=COLUMN",
        help="a group-level predictor of GROUP's mean (repeatable)",
    )


def _build_model(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import pandas as pd

    from .model import Model

    try:
        data = pd.read_csv(args.data)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {args.data!r} as CSV: {err}") from None
    gp: dict[str, list[str]] = {}
    for item in args.group_predictor:
        if "=" not in item:
            raise ValueError(f"--group-predictor takes GROUP=COLUMN, got {item!r}")
        g, c = item.split("=", 1)
        gp.setdefault(g, []).append(c)
    return Model(args.formula, data=data, family=args.family, pooling=args.pooling, group_predictors=gp or None)


def _cmd_render(args: argparse.Namespace) -> int:
    sys.stdout.write(_build_model(args).stan_code)
    return 0


def _cmd_install(args: argparse.Namespace) -> int:
    from .backend import install_cmdstan

    ok = install_cmdstan(version=args.version) if args.version else install_cmdstan()
    return 0 if ok else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import datasets
    from .model import Model

    df = datasets.load_radon("mn")
    print(f"Minnesota radon: {len(df)} homes in {df.county.nunique()} counties")
    m = Model(
        "log_radon ~ 1 + floor + (1 + floor | county)",
        data=df,
        group_predictors={"county": ["log_uppm"]},
    )
    print(m)
    fit = m.sample(chains=args.chains, draws=args.draws, warmup=args.draws, seed=args.seed)
    print(
        fit.summary(
            var_names=["Intercept", "floor", "log_uppm", "sigma", "1|county_sigma", "floor|county_sigma", "county_corr"]
        ).to_string()
    )
    print()
    print(fit.diagnose())
    print(f"\nCmdStan output, data and program: {fit.run_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="hbstan", description="Bayesian hierarchical regression on Stan")
    parser.add_argument("--quiet", action="store_true", help="only errors")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("render", help="print the Stan program of a model (no CmdStan needed)")
    _model_args(p)
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("install-cmdstan", help="install CmdStan with CmdStanPy's installer")
    p.add_argument("--version", default=None, help="CmdStan version (default: latest)")
    p.set_defaults(func=_cmd_install)

    p = sub.add_parser("demo", help="fit the radon model end to end and print its summary")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_cmd_demo)

    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    from .backend import CmdStanNotFoundError

    try:
        return int(args.func(args))
    except (ValueError, CmdStanNotFoundError, OSError) as err:
        print(f"hbstan: error: {err}", file=sys.stderr)
        return 1
