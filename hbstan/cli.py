"""The ``hbstan`` command line (also ``python -m hbstan``).

Subcommands::

    hbstan render FORMULA --data data.csv          print the Stan program (no CmdStan needed)
    hbstan render "y ~ x + (1 | g)" --dpar "sigma ~ x + (1 | g)" --data data.csv   (a distributional model)
    hbstan render "m ~ x" "y ~ x + m" --data data.csv --family gaussian,bernoulli   (several responses)
    hbstan compile FORMULA --data data.csv --out DIR
    hbstan fit FORMULA --data data.csv --out RUN_DIR   (or: hbstan fit --spec spec.toml --out RUN_DIR)
    hbstan summary RUN_DIR
    hbstan diagnose RUN_DIR
    hbstan predict RUN_DIR --data new.csv [--out preds.csv] [--response NAME [--joint]]
    hbstan compare-pymc FORMULA --data data.csv
    hbstan compare-pooling FORMULA --data data.csv
    hbstan install-cmdstan
    hbstan demo

Exit codes: 0 ok, 1 bad input or a failed run (one line ``hbstan: error: <reason>`` on
stderr, no traceback), 2 usage error (argparse), 3 ``diagnose`` found a problem (divergences,
tree depth, E-BFMI, R-hat or ESS).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import os
import re
import secrets
import shlex
import shutil
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .options import MODEL_OPTIONS, SAMPLER_OPTIONS

__all__ = ["main", "build_parser"]

log = logging.getLogger("hbstan")

DEFAULT_SAMPLER = {o.name: o.default for o in SAMPLER_OPTIONS}
MAX_ERROR_CHARS = 400
EXIT_PROBLEMS = 3  # `hbstan diagnose`: a sampler check failed


class UsageError(Exception):
    """Wrong combination of arguments (exit code 2)."""


# ------------------------------------------------------------------------------------ arguments
# model options that the command line, a spec file and compare-pooling pass through by name
# (all but group_predictors and priors, which the command line takes as KEY=VALUE pairs)
MODEL_OPTION_KEYS = tuple(o.name for o in MODEL_OPTIONS if o.cli != "pairs")

def _common(p: argparse.ArgumentParser) -> None:
    # accepted after the subcommand too; SUPPRESS keeps the top-level value when absent
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="only print errors")
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")


def _dpar_help() -> str:
    """Each family's parameters that take a formula, from the registry: ``gaussian: sigma; ...``."""
    from .families import FAMILIES

    return "; ".join(f"{n}: {', '.join(f.distributional)}" for n, f in FAMILIES.items() if f.distributional)


def _link_help() -> str:
    """List the families with more than one link and their links, from the registry."""
    from .families import FAMILIES

    by_links: dict[tuple[str, ...], list[str]] = {}
    for name, fam in FAMILIES.items():
        if len(fam.links) > 1:
            by_links.setdefault(fam.links, []).append(name)
    return "; ".join(f"{' and '.join(names)}: {', '.join(links)}" for links, names in by_links.items())


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "formula", nargs="*",
        help="lme4/brms formula, e.g. 'y ~ x + (1 | g)' (or give --spec); several formulas, one per response, "
        "make a model of several responses: 'm ~ x' 'y ~ x + m'",
    )
    p.add_argument("--data", help="CSV file with one row per observation")
    p.add_argument(
        "--spec",
        metavar="SPEC.toml",
        help="TOML model spec (formula, data, family, pooling, group_predictors, priors, sampler); "
        "command-line options override it",
    )
    from .families import FAMILIES

    p.add_argument(
        "--dpar", dest="dpars", action="append", default=[], metavar="'NAME ~ FORMULA'",
        help="a formula for a distributional (auxiliary) parameter, as brms's bf(y ~ x, sigma ~ z) and bambi's "
        "Formula('y ~ x', 'sigma ~ z'): --dpar 'sigma ~ z + (1 | g)' (also sigma='~ z'; repeatable: one per "
        f"parameter). Parameters that take one: {_dpar_help()}",
    )
    for o in MODEL_OPTIONS:  # one table: hbstan.spec.MODEL_OPTIONS
        help_ = f"{o.help}: {', '.join(FAMILIES)} (default: {o.default})" if o.name == "family" else o.help
        if o.name == "link":  # the registry's links (where a family has more than one)
            help_ = f"link function of the mean (default: the family's first; {_link_help()})"
        if o.name in ("family", "link"):
            help_ += f"; with several formulas one for all, or one per formula separated by commas ({o.name} a,b)"
        if o.cli == "value":
            p.add_argument(o.flag, dest=o.name, type=o.cli_type, metavar=o.metavar, help=help_)
        elif o.cli == "flag":
            p.add_argument(o.flag, dest=o.name, action="store_true", default=None, help=help_)
        elif o.cli == "no":
            p.add_argument(o.flag, dest=o.name, action="store_false", default=None, help=help_)
        else:  # KEY=VALUE pairs
            p.add_argument(o.flag, dest=o.name, action="append", default=[], metavar=o.metavar, help=help_)
    p.add_argument(
        "--rescor", action=argparse.BooleanOptionalAction, default=None,
        help="several Gaussian (or Student-t) responses: model their residual correlation (default: on when "
        "every response is Gaussian)",
    )


def _sampler_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampler")
    for o in SAMPLER_OPTIONS:  # one table: hbstan.options.SAMPLER_OPTIONS
        if o.cli == "flag":
            g.add_argument(o.flag, dest=o.name, action="store_true", default=None, help=o.help)
        else:
            g.add_argument(o.flag, dest=o.name, type=o.cli_type, metavar=o.metavar, help=o.help)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``hbstan`` command."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="hbstan",
        description="Bayesian hierarchical regression from a formula, on Stan (CmdStan).",
        epilog="Run `hbstan COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"hbstan {__version__}")
    parser.add_argument("--quiet", action="store_true", default=False, help="only print errors")
    parser.add_argument("--verbose", action="store_true", default=False, help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("render", help="print the Stan program of a model (no CmdStan needed)")
    _model_args(p)
    _common(p)
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser(
        "compile",
        help="write the Stan program, its compiled CmdStan executable and the data JSON to a directory",
        description="Write model.stan, the compiled executable (model), data.json and spec.toml to "
        "DIR and print the CmdStan command line that samples the model.",
    )
    _model_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write (must be new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace hbstan's files in an existing DIR")
    _sampler_args(p)
    _common(p)
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser(
        "fit",
        help="sample a model and save the run directory",
        description="Sample the model with CmdStan and save a run directory: spec.toml, data.csv, "
        "model.stan, data.json, cmdstan/ (CmdStan's CSVs), idata.nc, summary.csv, diagnostics.json, "
        "trace.png and forest.png.",
    )
    _model_args(p)
    _sampler_args(p)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (must be new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run in RUN_DIR")
    p.add_argument("--no-figures", action="store_true", help="do not draw trace.png and forest.png")
    _common(p)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("summary", help="print the posterior summary of a saved run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--var", action="append", default=[], metavar="NAME", help="only these variables (repeatable)")
    _common(p)
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser(
        "diagnose",
        help="print the sampler diagnostics of a saved run, with advice (exit status 3 when a check failed)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    _common(p)
    p.set_defaults(func=_cmd_diagnose)

    p = sub.add_parser(
        "predict",
        help="posterior predictions for new rows from a saved run",
        description="Write one row per new observation: its columns and the posterior predictive "
        "mean, sd, 5%% and 95%% quantiles (columns mean, sd, q5, q95).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", required=True, help="CSV file of new rows")
    p.add_argument("--out", metavar="PREDS.csv", help="write here (default: print to stdout)")
    p.add_argument("--kind", choices=["response", "mean"], default="response", help="new observations (response) or their expected value (mean)")
    p.add_argument("--seed", type=int, help="seed of the predictive draws")
    p.add_argument("--draws-out", metavar="DRAWS.csv", help="also write every draw: columns chain, draw, then one per row")
    p.add_argument("--response", metavar="NAME", help="a run of several responses: the response to predict")
    p.add_argument(
        "--joint", action="store_true",
        help="a run of several responses: draw the responses that --response reads (its mediators) from their own "
        "posterior predictive first, instead of reading them from --data",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _common(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("compare-pymc", help="fit a model with CmdStan and with PyMC and compare the posteriors")
    _model_args(p)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    _common(p)
    p.set_defaults(func=_cmd_compare_pymc)

    p = sub.add_parser("compare-pooling", help="fit pooled, unpooled and hierarchical designs and compare them by LOO")
    _model_args(p)
    _common(p)
    p.set_defaults(func=_cmd_compare_pooling)

    p = sub.add_parser(
        "install-cmdstan",
        help="install CmdStan with CmdStanPy's installer (nothing to do when a working one is found)",
    )
    p.add_argument("--version", default=None, help="CmdStan version (default: latest)")
    p.add_argument("--dir", default=None, help="install under this directory (default: CmdStanPy's, ~/.cmdstan)")
    p.add_argument("--force", action="store_true", help="install even when a working CmdStan is found")
    _common(p)
    p.set_defaults(func=_cmd_install)

    p = sub.add_parser("doctor", help="versions, the CmdStan found, compiler, make, TBB and caches (for bug reports)")
    _common(p)
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("precompile", help="compile the common model structures ahead of time")
    p.add_argument("--family", action="append", dest="families", metavar="FAMILY",
                   help="only this family (repeatable; default: all)")
    p.add_argument("--design", action="append", dest="designs", metavar="DESIGN",
                   help="only this design (repeatable): pooled, intercept, intercept+gp, slopes, "
                        "correlated, correlated+gp, unpooled")
    p.add_argument("--general-only", action="store_true",
                   help="only the general programs (one per family and link, structure as data): the first fit of "
                        "a supported formula then samples at once")
    _common(p)
    p.set_defaults(func=_cmd_precompile)

    p = sub.add_parser("demo", help="fit the radon model end to end and print its summary")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", metavar="RUN_DIR", help="also save the run here")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run in RUN_DIR")
    _common(p)
    p.set_defaults(func=_cmd_demo)
    for sp in sub.choices.values():
        sp.set_defaults(subparser=sp)
    return parser


# ------------------------------------------------------------------------------- model building
def _pairs(items: list[str], option: str, form: str, example: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{option} takes {form} (e.g. {example}), got {item!r}")
        out.append((name.strip(), value.strip()))
    return out


_DPAR = re.compile(r"^\s*(?P<name>[A-Za-z][A-Za-z0-9_]*)\s*(?:~|=\s*~?)\s*(?P<rhs>.*?)\s*$", re.S)


def _dpar_formulas(items: list[str]) -> dict[str, str]:
    """``--dpar 'sigma ~ x'`` (or ``sigma='~ x'``, ``sigma=x``) -> ``{"sigma": "~ x"}``."""
    out: dict[str, str] = {}
    for item in items:
        m = _DPAR.match(item)
        if not m or not m.group("rhs"):
            raise ValueError(
                f"--dpar takes a parameter and its formula, 'NAME ~ FORMULA' (e.g. --dpar 'sigma ~ x + (1 | g)'), "
                f"got {item!r}"
            )
        if m.group("name") in out:
            raise ValueError(f"--dpar gives {m.group('name')!r} two formulas ({out[m.group('name')]!r} and "
                             f"{'~ ' + m.group('rhs')!r}); keep one")
        out[m.group("name")] = f"~ {m.group('rhs')}"
    return out


def _resolve_spec(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the spec of --spec (if any) with the command-line options, which win."""
    from .io import read_spec

    spec: dict[str, Any] = read_spec(args.spec) if args.spec else {}
    if args.formula:
        spec["formula"] = args.formula[0] if len(args.formula) == 1 else list(args.formula)
    if args.data:
        spec["data"] = args.data
    for key in MODEL_OPTION_KEYS:
        value = getattr(args, key)
        if value is not None:
            spec[key] = value
    if args.rescor is not None:
        spec["rescor"] = args.rescor
    if args.dpars:
        from .io import check_dpars

        if isinstance(spec.get("formula"), list):
            raise ValueError(
                "--dpar gives a distributional parameter a formula, which a model of several responses does not "
                "support yet; fit that response alone"
            )
        dpars = _dpar_formulas(args.dpars)
        # checked here, so that the error names --dpar; the spec's own [dpars] are replaced per parameter
        check_dpars(dpars, spec.get("family", "gaussian"), "--dpar", formula=spec.get("formula"))
        spec["dpars"] = {**spec.get("dpars", {}), **dpars}
    if isinstance(spec.get("formula"), list):  # several responses: --family a,b gives one per formula
        for key in ("family", "link"):
            if isinstance(spec.get(key), str) and "," in spec[key]:
                spec[key] = [v.strip() for v in spec[key].split(",")]
    if args.group_predictors:
        gp: dict[str, list[str]] = {}
        for g, cols in _pairs(args.group_predictors, "--group-predictor", "GROUP=COLUMN", "county=log_uppm"):
            gp.setdefault(g, []).extend(c.strip() for c in cols.split(",") if c.strip())
        spec["group_predictors"] = gp
    if args.priors:
        spec["priors"] = {**spec.get("priors", {}), **dict(_pairs(args.priors, "--prior", "NAME=PRIOR", "'Intercept=Normal(0, 10)'"))}
    sampler = dict(spec.get("sampler", {}))
    for key in (o.name for o in SAMPLER_OPTIONS):
        value = getattr(args, key, None)
        if value is not None:
            sampler[key] = value
    spec["sampler"] = sampler
    if not spec.get("formula"):
        raise UsageError("a FORMULA (or --spec SPEC.toml with a formula) is required")
    if not spec.get("data"):
        raise UsageError("--data CSV (or --spec SPEC.toml with data = \"file.csv\") is required")
    from .io import check_spec

    return check_spec(spec, source="options")


def _build_model(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Build the Model the arguments describe; returns it and its spec."""
    from .io import model_from_spec, read_csv_arg

    spec = _resolve_spec(args)
    data = read_csv_arg(spec["data"])
    return model_from_spec({k: v for k, v in spec.items() if k != "data"}, data), spec


def _sampler_settings(spec: dict[str, Any]) -> dict[str, Any]:
    s = {**DEFAULT_SAMPLER, **spec.get("sampler", {})}
    for key in ("chains", "draws"):
        if s[key] < 1:
            raise ValueError(f"--{key} must be at least 1, got {s[key]}")
    if s["warmup"] < 0:
        raise ValueError(f"--warmup must be 0 or more, got {s['warmup']}")
    if s.get("adapt_delta") is not None and not 0 < s["adapt_delta"] < 1:
        raise ValueError(f"--adapt-delta must be between 0 and 1 (e.g. 0.95), got {s['adapt_delta']}")
    if s.get("max_treedepth") is not None and s["max_treedepth"] < 1:
        raise ValueError(f"--max-treedepth must be at least 1, got {s['max_treedepth']}")
    return s


def _show_progress(args: argparse.Namespace) -> bool:
    from .backend import interactive

    return not args.quiet and interactive()


# -------------------------------------------------------------------------------------- commands
def _cmd_render(args: argparse.Namespace) -> int:
    model, _ = _build_model(args)
    sys.stdout.write(model.stan_code)
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    import cmdstanpy

    from .backend import compiled_model
    from .io import DATA_CSV, DATA_JSON, EXE_FILE, STAN_FILE, prepare_run_dir, write_data_csv, write_spec
    from .io import model_spec as _model_spec

    model, spec = _build_model(args)
    s = _sampler_settings(spec)
    if not args.overwrite:
        prepare_run_dir(args.out, create=False)  # refuse early, before compiling
    cm = compiled_model(model.stan_code)
    out = prepare_run_dir(args.out, overwrite=args.overwrite)
    (out / STAN_FILE).write_text(model.stan_code)
    exe = out / EXE_FILE
    shutil.copy2(cm.exe_file, exe)
    os.utime(exe)  # newer than model.stan: CmdStanPy will use it as is, without recompiling
    cmdstanpy.write_stan_json(str(out / DATA_JSON), model.stan_data_for(prior_only=bool(s.get("prior_only"))))
    doc = {**_model_spec(model), "dropna": bool(spec.get("dropna", False)), "data": DATA_CSV}
    doc["sampler"] = {k: v for k, v in s.items() if v is not None}
    doc["columns"] = write_data_csv(model.data, out / DATA_CSV)
    write_spec(doc, out / "spec.toml")
    base = out.resolve()
    cmd = [str(base / EXE_FILE), "sample", f"num_samples={s['draws']}", f"num_warmup={s['warmup']}"]
    if s.get("adapt_delta") is not None:
        cmd += ["adapt", f"delta={s['adapt_delta']}"]
    if s.get("max_treedepth") is not None:
        cmd += ["algorithm=hmc", "engine=nuts", f"max_depth={s['max_treedepth']}"]
    cmd += [f"num_chains={s['chains']}", "data", f"file={base / DATA_JSON}"]
    if s.get("seed") is not None:
        cmd += ["random", f"seed={s['seed']}"]
    cmd += ["output", f"file={base / 'output.csv'}"]
    log.info("hbstan: wrote %s, %s, %s and spec.toml to %s", STAN_FILE, EXE_FILE, DATA_JSON, out)
    print("# sample with CmdStan directly:")
    print(shlex.join(cmd))
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from .backend import find_cmdstan
    from .io import CMDSTAN_DIR, prepare_run_dir, save_fit
    from .plots import headline_vars

    model, spec = _build_model(args)
    s = _sampler_settings(spec)
    if s.get("seed") is None:
        s["seed"] = secrets.randbelow(2**31 - 1)
        log.info("hbstan: seed %d (pass --seed to choose it)", s["seed"])
    if not args.overwrite:
        prepare_run_dir(args.out, create=False)  # refuse early
    find_cmdstan()  # before anything is written or cleared
    out = prepare_run_dir(args.out, overwrite=args.overwrite, create=False)
    log.info("hbstan: %r", model)
    fit = model.sample(
        **{o.name: s[o.name] for o in SAMPLER_OPTIONS},
        output_dir=str(out / CMDSTAN_DIR),
        show_progress=_show_progress(args),
    )
    save_fit(fit, out, spec={"dropna": bool(spec.get("dropna", False))}, figures=not args.no_figures, overwrite=args.overwrite)
    if not args.quiet:
        print(fit.summary(var_names=headline_vars(fit)).to_string())
        print()
        print(fit.diagnose())
        print(f"\nrun saved in {out}")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    import pandas as pd

    from .io import IDATA_FILE, SUMMARY_FILE, read_idata, run_spec

    run = Path(args.run_dir)
    run_spec(run)
    if args.var or not (run / SUMMARY_FILE).is_file():
        import arviz as az

        idata = read_idata(run / IDATA_FILE)
        missing = [v for v in args.var if v not in idata.posterior]
        if missing:
            raise ValueError(
                f"no variable {missing[0]!r} in the run; variables: {[str(v) for v in idata.posterior.data_vars]}"
            )
        table = az.summary(idata, var_names=args.var or None)
    else:
        table = pd.read_csv(run / SUMMARY_FILE, index_col=0)
        table.index.name = None
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string())
    return 0


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from .io import load_diagnostics

    diag = load_diagnostics(args.run_dir)
    print(diag)
    return 0 if diag.ok else EXIT_PROBLEMS


def _check_new_file(path: str | None, overwrite: bool) -> None:
    if path and os.path.exists(path) and not overwrite:
        raise ValueError(f"output file {path!r} already exists; choose another name or pass --overwrite")


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from .io import load, read_csv_arg

    _check_new_file(args.out, args.overwrite)
    _check_new_file(args.draws_out, args.overwrite)
    fit = load(args.run_dir)
    new = read_csv_arg(args.data)
    responses = getattr(fit.model, "response_names", None)
    if responses is None:
        if args.response is not None and args.response != fit.model.design.response:
            raise ValueError(
                f"--response {args.response!r}: this run has one response, {fit.model.design.response!r}; leave "
                "--response out"
            )
        if args.joint:
            raise ValueError("--joint predicts the responses of a run of several responses; this run has one")
        draws = fit.predict(new, kind=args.kind, seed=args.seed)
    else:
        if args.response is None:
            raise ValueError(f"this run has several responses: pass --response, one of {responses}")
        draws = fit.predict(new, response=args.response, kind=args.kind, seed=args.seed, joint=args.joint)
    flat = draws.values.reshape(-1, draws.shape[-1])  # (chain*draw, row)
    stats = pd.DataFrame(
        {
            "mean": flat.mean(axis=0),
            "sd": flat.std(axis=0, ddof=1) if flat.shape[0] > 1 else np.zeros(flat.shape[1]),
            "q5": np.quantile(flat, 0.05, axis=0),
            "q95": np.quantile(flat, 0.95, axis=0),
        }
    )
    taken = set(map(str, new.columns))
    stats.columns = [c if c not in taken else f"{c}_pred" for c in stats.columns]
    table = pd.concat([new.reset_index(drop=True), stats], axis=1)
    if args.out:
        table.to_csv(args.out, index=False)
        log.info("hbstan: wrote predictions for %d rows to %s", len(table), args.out)
    else:
        table.to_csv(sys.stdout, index=False)
    if args.draws_out:
        C, D = draws.shape[0], draws.shape[1]
        wide = pd.DataFrame(flat, columns=[str(i) for i in range(flat.shape[1])])
        wide.insert(0, "draw", np.tile(np.arange(D), C))
        wide.insert(0, "chain", np.repeat(np.arange(C), D))
        wide.to_csv(args.draws_out, index=False)
        log.info("hbstan: wrote %d draws x %d rows to %s", C * D, flat.shape[1], args.draws_out)
    return 0


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _one_formula(args: argparse.Namespace, command: str) -> None:
    if len(args.formula or []) > 1:
        raise ValueError(f"`hbstan {command}` takes one formula, got {len(args.formula)}: {args.formula}")


def _cmd_compare_pymc(args: argparse.Namespace) -> int:
    from . import compare

    _one_formula(args, "compare-pymc")
    model, _ = _build_model(args)
    result = compare.compare_backends(model, chains=args.chains, draws=args.draws, seed=args.seed)
    print(result.to_markdown())
    return 0


def _cmd_compare_pooling(args: argparse.Namespace) -> int:
    from . import pooling
    from .io import parse_prior
    from .priors import Prior

    _one_formula(args, "compare-pooling")
    model, spec = _build_model(args)
    kwargs: dict[str, Any] = {"family": model.family.name}
    # the model options the user gave (not the ones resolved for this design): every design
    # of the comparison gets them
    for key in ("group_predictors", *MODEL_OPTION_KEYS):
        if key in ("family", "pooling"):  # the family is set above; the designs are compared
            continue
        if spec.get(key) is not None:
            kwargs[key] = spec[key]
    if spec.get("priors"):
        kwargs["priors"] = {k: v if isinstance(v, Prior) else parse_prior(v, name=k) for k, v in spec["priors"].items()}
    for key, value in spec.get("sampler", {}).items():  # only what the function takes
        if _accepts(pooling.compare_pooling, key):
            kwargs[key] = value
    result = pooling.compare_pooling(model.formula, model.data, **kwargs)
    print(result.to_markdown())
    return 0


def _cmd_install(args: argparse.Namespace) -> int:
    from .backend import install_cmdstan
    from .doctor import cmdstan_status

    if not args.force:
        path, status = cmdstan_status()
        if path is not None:
            print(f"CmdStan is installed: {status}; nothing to do (--force installs another)")
            return 0
    kwargs = {k: v for k, v in {"version": args.version, "dir": args.dir}.items() if v is not None}
    if args.force:
        kwargs["overwrite"] = True
    try:
        ok = install_cmdstan(**kwargs)
    except Exception as err:  # CmdStanPy's installer raises on some failures, returns False on others
        print(f"hbstan: {err}", file=sys.stderr)
        ok = False
    if not ok:
        print(
            "hbstan: CmdStan could not be installed (CmdStanPy downloads a release from GitHub). "
            "Without a network: point CMDSTAN at an existing CmdStan (export CMDSTAN=/path/to/cmdstan-2.35.0), "
            "or install conda-forge's package (conda install -c conda-forge cmdstan); "
            "`hbstan doctor` then shows what hbstan finds.",
            file=sys.stderr,
        )
        return 1
    print(f"CmdStan installed: {cmdstan_status()[1]}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report

    print(report())
    return 0


def _cmd_precompile(args: argparse.Namespace) -> int:
    from .families import FAMILIES
    from .precompile import DESIGNS, precompile

    for name, what, valid in (("families", "family", FAMILIES), ("designs", "design", DESIGNS)):
        bad = [v for v in getattr(args, name) or [] if v not in valid]
        if bad:
            raise ValueError(f"unknown {what} {bad[0]!r}; valid: {sorted(valid)}")
    n = precompile(args.families, args.designs, general_only=args.general_only)
    print(f"{n} programs compiled or found in the cache")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import datasets
    from .model import Model

    out = None
    if args.out:
        from .io import CMDSTAN_DIR, prepare_run_dir

        out = prepare_run_dir(args.out, overwrite=args.overwrite)
    df = datasets.load_radon("mn")
    print(f"Minnesota radon: {len(df)} homes in {df.county.nunique()} counties")
    m = Model(
        "log_radon ~ 1 + floor + (1 + floor | county)",
        data=df,
        group_predictors={"county": ["log_uppm"]},
    )
    print(m)
    fit = m.sample(
        chains=args.chains,
        draws=args.draws,
        warmup=args.draws,
        seed=args.seed,
        output_dir=str(out / CMDSTAN_DIR) if out is not None else None,
        show_progress=_show_progress(args),
    )
    print(
        fit.summary(
            var_names=["Intercept", "floor", "log_uppm", "sigma", "1|county_sigma", "floor|county_sigma", "county_corr"]
        ).to_string()
    )
    print()
    print(fit.diagnose())
    if out is not None:
        from .io import save_fit

        save_fit(fit, out, overwrite=args.overwrite)
        print(f"\nrun saved in {out} (read it back with hbstan.io.load)")
    else:
        print(f"\nCmdStan output, data and program: {fit.run_dir}")
    return 0


# ------------------------------------------------------------------------------------------ main
@contextlib.contextmanager
def _cli_logging(quiet: bool, verbose: bool) -> Iterator[None]:
    """Log hbstan's (and cmdstanpy's) messages to stderr; warnings become log lines.

    Everything is restored on exit, so ``main()`` can be called from Python too.
    """
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    loggers = {
        "hbstan": ("%(message)s", level),
        # a handler of our own keeps cmdstanpy from installing its timestamped one at DEBUG
        "cmdstanpy": ("cmdstanpy: %(message)s", logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING),
        "arviz": ("arviz: %(message)s", logging.DEBUG if verbose else logging.WARNING),
    }
    saved = {}
    for name, (fmt, lvl) in loggers.items():
        lg = logging.getLogger(name)
        saved[name] = (lg.handlers[:], lg.level, lg.propagate)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(fmt))
        lg.handlers[:] = [handler]
        lg.setLevel(lvl)
        lg.propagate = False

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        from .fit import SamplingWarning

        if issubclass(category, SamplingWarning):
            log.warning("hbstan: warning: %s", message)
        elif verbose:
            log.debug("hbstan: %s: %s (%s:%d)", category.__name__, message, filename, lineno)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*", category=FutureWarning)
            yield
    finally:
        for name, (handlers, lvl, propagate) in saved.items():
            lg = logging.getLogger(name)
            lg.handlers[:] = handlers
            lg.setLevel(lvl)
            lg.propagate = propagate


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = " ".join(lines) or type(err).__name__
    if len(text) > MAX_ERROR_CHARS:
        text = (lines[0] if len(lines[0]) <= MAX_ERROR_CHARS else lines[0][:MAX_ERROR_CHARS] + "...") + " (run with --verbose for the full message)"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hbstan`` command line; returns the exit code (0 ok, 1 error, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.quiet = bool(getattr(args, "quiet", False))
    args.verbose = bool(getattr(args, "verbose", False))
    with _cli_logging(args.quiet, args.verbose):
        return _run(parser, args)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .backend import CmdStanNotFoundError, CompileError
    from .fit import SamplingError

    expected = (ValueError, OSError, ImportError, CmdStanNotFoundError, CompileError, SamplingError)
    try:
        return int(args.func(args))
    except UsageError as err:
        args.subparser.print_usage(sys.stderr)
        print(f"hbstan {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hbstan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `hbstan summary RUN | head`: stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except expected as err:
        if args.verbose:
            log.debug("hbstan: full error:", exc_info=True)
        print(f"hbstan: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001  (a bug: still one line, traceback with --verbose)
        if args.verbose:
            log.error("hbstan: unexpected error", exc_info=True)
        print(
            f"hbstan: error: unexpected {type(err).__name__}: {_one_line(err)} (this is a bug in hbstan; "
            "rerun with --verbose for the traceback and report it)",
            file=sys.stderr,
        )
        return 1
