"""Run directories: saving a fit with everything needed to rebuild it, and loading it back.

A run directory written by :func:`save_fit` (or ``hbstan fit --out RUN_DIR``) holds::

    spec.toml          the model and sampler settings (rebuilds the model with data.csv)
    data.csv           a copy of the data the model was fitted to
    model.stan         the Stan program
    data.json          the data handed to CmdStan
    cmdstan/           CmdStan's output CSV files and console logs
    idata.nc           the ArviZ InferenceData (netCDF)
    summary.csv        ArviZ summary of every parameter
    diagnostics.json   sampler diagnostics, warnings, settings, timings and versions
    trace.png          trace plot of the population-level parameters and hyperparameters
    forest.png         forest plot of the same parameters

:func:`load` returns a :class:`~hbstan.Fit` equal to the one saved (same draws, same model),
on which ``predict`` works. A spec file can also be written by hand (see :func:`read_spec`)
and fitted with ``hbstan fit --spec spec.toml --out RUN_DIR``.

Priors are written as strings such as ``"Normal(mu=0, sigma=10)"`` and read back by a small
parser (:func:`parse_prior`) over hbstan's prior classes; nothing in a spec file is evaluated.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._version import __version__
from .design import DataError, Formula, FormulaError, parse_formula
from .plots import headline_vars
from .priors import Prior, format_prior, parse_prior
from .options import MODEL_OPTIONS, SAMPLER_OPTIONS

if TYPE_CHECKING:
    import arviz as az

    from .fit import Fit
    from .model import Model
    from .spec import ModelSpec

__all__ = [
    "save_fit",
    "load",
    "model_spec",
    "model_from_spec",
    "read_spec",
    "write_spec",
    "dumps_toml",
    "parse_prior",
    "format_prior",
    "write_data_csv",
    "read_data_csv",
    "prepare_run_dir",
    "check_dpars",
    "spec_formula",
    "RunDirError",
    "SPEC_FILE",
    "DATA_CSV",
    "CMDSTAN_DIR",
]

log = logging.getLogger("hbstan")

SPEC_FILE = "spec.toml"
DATA_CSV = "data.csv"
STAN_FILE = "model.stan"
DATA_JSON = "data.json"
CMDSTAN_DIR = "cmdstan"
IDATA_FILE = "idata.nc"
SUMMARY_FILE = "summary.csv"
DIAGNOSTICS_FILE = "diagnostics.json"
FIGURES = ("trace.png", "forest.png")
EXE_FILE = "model"  # written by `hbstan compile`

# every file hbstan writes at the top of a run directory (cleared by overwrite=True)
RUN_FILES = (SPEC_FILE, DATA_CSV, STAN_FILE, DATA_JSON, IDATA_FILE, SUMMARY_FILE, DIAGNOSTICS_FILE, *FIGURES, EXE_FILE)

SAMPLER_KEYS: dict[str, tuple[type, ...]] = {o.name: o.toml for o in SAMPLER_OPTIONS}

# the keys of a spec file: the model options of hbstan.spec.MODEL_OPTIONS, with the formula,
# the data, the sampler settings and what hbstan records of the run; a model of several
# responses has a list of formulas, a family and a link for all or a list of them, and rescor
SPEC_KEYS: dict[str, tuple[type, ...]] = {
    "hbstan_version": (str,),
    "formula": (str, list),
    "dpars": (dict,),  # formulas of distributional parameters: [dpars] sigma = "~ x + (1 | g)"
    "data": (str,),
    **{o.name: o.toml for o in MODEL_OPTIONS},
    "family": (str, list),
    "link": (str, list),
    "rescor": (bool,),
    "sampler": (dict,),
    "columns": (dict,),
}

# the model options a model of several responses takes (hbstan.multivariate.MultivariateModel)
MULTI_OPTIONS = ("family", "link", "rescor", "priors", "pooling", "centered", "dropna")

_TYPE_NAMES = {
    str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a table", list: "a list",
}


class RunDirError(ValueError):
    """A run directory cannot be written (it exists and is not empty) or is not a run directory."""


# ------------------------------------------------------------------------------------------ TOML
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_str(key)


def _toml_str(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    return out.replace("\x7f", "\\u007F")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        items = [f"{_toml_key(str(k))} = {_toml_value(x)}" for k, x in v.items() if x is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"cannot write {v!r} ({type(v).__name__}) to TOML")


def dumps_toml(doc: Mapping[str, Any], *, header: str = "") -> str:
    """Write a dict of scalars, lists and (one level of) tables as a TOML document.

    ``None`` values are left out (TOML has no null); deeper dicts become inline tables.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    tables = []
    for k, v in doc.items():
        if v is None:
            continue
        if isinstance(v, Mapping):
            tables.append((k, v))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, table in tables:
        lines.append("")
        lines.append(f"[{_toml_key(k)}]")
        for kk, vv in table.items():
            if vv is not None:
                lines.append(f"{_toml_key(str(kk))} = {_toml_value(vv)}")
    return "\n".join(lines) + "\n"


def _tomllib() -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ImportError("reading spec files needs Python 3.11+ (tomllib) or `pip install tomli`") from None
    return tomllib


# ------------------------------------------------------------------------------------------ specs
def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def _check_type(value: Any, types: tuple[type, ...], what: str) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise ValueError(f"{what} must be {_type_name(types)}, got {value!r}")


def check_spec(spec: Mapping[str, Any], source: str = "spec") -> dict[str, Any]:
    """Validate a spec dict (keys, types, priors); returns a copy. Errors name key and fix."""
    spec = dict(spec)
    for key, value in spec.items():
        if key not in SPEC_KEYS:
            raise ValueError(f"{source}: unknown key {key!r}; valid keys: {list(SPEC_KEYS)}")
        _check_type(value, SPEC_KEYS[key], f"{source}: {key!r}")
    if "formula" not in spec:
        raise ValueError(f"{source}: no formula; add a line such as formula = \"y ~ x + (1 | g)\"")
    _check_responses(spec, source)
    if "dpars" in spec:
        if isinstance(spec["formula"], list):
            raise ValueError(
                f"{source}: [dpars] gives {sorted(spec['dpars'])} a formula, but a model of several responses has "
                "no formulas for distributional parameters yet; remove [dpars] or fit that response alone"
            )
        check_dpars(spec["dpars"], spec.get("family", "gaussian"), f"{source}: [dpars]", formula=spec["formula"])
    for g, cols in spec.get("group_predictors", {}).items():
        if isinstance(cols, str):
            cols = [cols]
        if not (isinstance(cols, list) and all(isinstance(c, str) for c in cols)):
            raise ValueError(f"{source}: group_predictors.{g} must be a column name or a list of them, got {cols!r}")
    for k, v in spec.get("priors", {}).items():
        if isinstance(v, Prior):
            continue
        parse_prior(v, name=f"{k}")  # raises with the key in the message
    centered = spec.get("centered")
    if isinstance(centered, dict):
        for k, v in centered.items():
            _check_type(v, (bool,), f"{source}: centered.{k}")
    for key, value in spec.get("sampler", {}).items():
        if key not in SAMPLER_KEYS:
            raise ValueError(f"{source}: unknown sampler setting {key!r}; valid settings: {list(SAMPLER_KEYS)}")
        _check_type(value, SAMPLER_KEYS[key], f"{source}: sampler.{key}")
    return spec


def _check_responses(spec: Mapping[str, Any], source: str) -> None:
    """Check a list of formulas (several responses) and the keys that may be lists: entries and lengths."""
    formula = spec["formula"]
    several = isinstance(formula, list)
    if several and (len(formula) < 2 or not all(isinstance(f, str) for f in formula)):
        raise ValueError(
            f"{source}: 'formula' must be a string, or a list of two or more strings (one formula per response), "
            f"got {formula!r}"
        )
    for key in ("family", "link"):
        value = spec.get(key)
        if not isinstance(value, list):
            continue
        if not several:
            raise ValueError(
                f"{source}: {key!r} is a list ({value!r}) but there is one formula; a list gives one {key} per "
                "formula of a model of several responses (formula = [\"y1 ~ x\", \"y2 ~ x\"])"
            )
        if len(value) != len(formula) or not all(isinstance(v, str) for v in value):
            raise ValueError(
                f"{source}: {key!r} must be one string for every response or a list of {len(formula)} strings "
                f"(one per formula), got {value!r}"
            )
    if several:
        other = [k for k in (o.name for o in MODEL_OPTIONS) if k in spec and k not in MULTI_OPTIONS]
        if other:
            raise ValueError(
                f"{source}: {other} cannot be used with several formulas (a model of several responses takes "
                f"{list(MULTI_OPTIONS)}); remove them or fit that response alone"
            )
    elif "rescor" in spec:
        raise ValueError(
            f"{source}: 'rescor' (residual correlation) is an option of a model of several responses: give a list "
            "of formulas, or remove it"
        )


def _dpar_families() -> str:
    from .families import FAMILIES

    return ", ".join(f"{n} ({', '.join(f.distributional)})" for n, f in FAMILIES.items() if f.distributional)


def check_dpars(dpars: Mapping[str, Any], family: Any, where: str, *, formula: str | None = None) -> None:
    """Check formulas of distributional parameters (``{"sigma": "~ x + (1 | g)"}``) against a family.

    Each name must be one of the family's parameters that take a formula
    (``Family.distributional``), each value a right-hand side such as ``"~ x"``, and none may
    be given a formula in ``formula`` too. ``where`` starts each error message (``"spec.toml:
    [dpars]"``, ``"--dpar"``). An unknown family is left to :class:`~hbstan.Model` to report.
    """
    from .families import FAMILIES

    fam = FAMILIES.get(family) if isinstance(family, str) else None
    inline: dict[str, str] = {}
    if isinstance(formula, str):
        try:
            inline = parse_formula(formula).dpars
        except FormulaError:  # reported, located, when the model is built
            pass
    for name, rhs in dpars.items():
        if not isinstance(rhs, str) or not rhs.strip().lstrip("~").strip():
            raise ValueError(
                f"{where} {name!r}: the formula of a distributional parameter is a right-hand side such as "
                f"\"~ x + (1 | g)\", got {rhs!r}"
            )
        if fam is not None and name not in fam.distributional:
            if fam.distributional:
                valid = f"its parameters that take a formula: {list(fam.distributional)}"
            else:
                valid = f"none of its parameters takes a formula (families whose do: {_dpar_families()})"
            if name in [a.name for a in fam.aux]:
                what = f"family={family!r} cannot give {name!r} a formula"
            else:
                what = f"family={family!r} has no parameter {name!r}"
            raise ValueError(f"{where} {name!r}: {what}; {valid}")
        if name in inline:
            raise ValueError(
                f"{where} {name!r}: the formula {formula!r} gives {name!r} a formula already; keep one of them"
            )


def spec_formula(spec: Mapping[str, Any]) -> Any:
    """Join a spec's ``formula`` and the formulas of its ``[dpars]`` (a :class:`~hbstan.Formula`).

    A list of formulas (several responses) is returned as it is.
    """
    formula = spec["formula"]
    if isinstance(formula, list) or not spec.get("dpars"):
        return formula
    return Formula(formula, **spec["dpars"])


def read_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a TOML spec file.

    A spec looks like::

        formula = "log_radon ~ 1 + floor + (1 | county)"
        data = "radon.csv"            # relative to the spec file's directory
        family = "gaussian"
        pooling = "hierarchical"      # optional
        dropna = false

        [group_predictors]
        county = ["log_uppm"]

        [dpars]                       # formulas of distributional parameters (optional)
        sigma = "~ floor + (1 | county)"

        [priors]
        Intercept = "Normal(0, 10)"
        "1|county_sigma" = "HalfNormal(sigma=1)"

        [sampler]
        chains = 4
        draws = 1000
        warmup = 1000
        seed = 1

    ``[dpars]`` gives auxiliary parameters formulas of their own, as
    ``hbstan.Formula("log_radon ~ ...", sigma="~ floor + (1 | county)")`` does (brms's
    ``bf(y ~ ..., sigma ~ ...)``): its keys are the family's distributional parameters
    (``sigma``, ``shape``, ``phi``, ``zi``, ``hu``: ``Family.distributional``). The formula
    may carry them too, as one string (``"y ~ x; sigma ~ x"``), but not both for the same
    parameter.

    Other optional keys: ``sigma`` (known residual SD), ``trials``, ``offset``, ``exposure``
    (column names), ``centered`` (true/false or a table per grouping factor; chosen from the
    data when absent), ``marginalize`` (false: sample the group effects of a Gaussian model
    instead of integrating them out) and, in specs
    hbstan writes, ``columns`` (the data's column types) and ``hbstan_version``.

    A model of several responses has a list of formulas, ``family`` (and ``link``) one for
    all or a list with one per formula, and optionally ``rescor``; it takes the keys
    ``pooling``, ``centered``, ``dropna`` and ``priors`` (named as in the model:
    ``y_x = "Normal(0, 1)"``, ``rescor = "LKJ(2)"``) besides::

        formula = ["m ~ x + (1 | g)", "y ~ x + m"]
        data = "paths.csv"
        family = ["gaussian", "bernoulli"]
        rescor = false

    Returns
    -------
    dict
        The checked spec; ``data`` is made absolute (relative to the spec's directory).
    """
    path = Path(path)
    tomllib = _tomllib()
    try:
        with open(path, "rb") as fh:
            spec = tomllib.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"spec file {str(path)!r} does not exist") from None
    except OSError as err:
        raise OSError(f"cannot read spec file {str(path)!r}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"spec file {str(path)!r} is not valid TOML: {err}") from None
    spec = check_spec(spec, source=str(path))
    if "data" in spec:
        spec["data"] = str((path.parent / spec["data"]).resolve()) if not os.path.isabs(spec["data"]) else spec["data"]
    return spec


def write_spec(spec: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a spec dict as TOML (see :func:`read_spec`)."""
    doc = {k: spec[k] for k in SPEC_KEYS if k in spec}  # canonical order
    doc["priors"] = {k: v if isinstance(v, str) else format_prior(v) for k, v in doc.get("priors", {}).items()}
    if not doc["priors"]:
        del doc["priors"]
    header = (
        f"hbstan {__version__} run specification: rebuild the model with hbstan.io.load(<this directory>)\n"
        "or refit it with `hbstan fit --spec spec.toml --out NEW_RUN_DIR`"
    )
    Path(path).write_text(dumps_toml(doc, header=header), encoding="utf-8")


def model_spec(model: ModelSpec) -> dict[str, Any]:
    """Everything needed, with the data, to rebuild ``model``: a TOML-ready dict.

    The formula (the mean's; those of distributional parameters in ``dpars``, written as the
    ``[dpars]`` table) and every option of :data:`hbstan.spec.MODEL_OPTIONS` that is set, as
    :meth:`~hbstan.spec.ModelSpec.resolved_options` resolves it for this model (priors that
    differ from the defaults, as strings), so the spec rebuilds the very program that ran.

    Raises
    ------
    ValueError
        When trials, offset or exposure were given as arrays rather than column names: such
        a model cannot be rebuilt from its data; pass column names instead.
    """
    if hasattr(model, "responses"):
        return _multi_spec(model)
    formula = Formula(model.formula)
    dpars = formula.dpars
    spec: dict[str, Any] = {"formula": formula.main if dpars else str(model.formula)}
    if dpars:  # a [dpars] table, as hbstan.Formula's keywords: sigma = "~ x + (1 | g)"
        spec["dpars"] = {name: f"~ {rhs}" for name, rhs in dpars.items()}
    for name, value in model.resolved_options().items():
        if value is not None:
            spec[name] = value
    if "priors" in spec:
        spec["priors"] = {k: format_prior(p) for k, p in spec["priors"].items()}
    return spec


def _multi_spec(model: Any) -> dict[str, Any]:
    """Return the spec of a model of several responses: its formulas and the options it was given.

    The family and link are written one per response (names, the links resolved), ``rescor`` as resolved for the
    model; the options that choose a parameterization from the data (``centered="auto"``)
    make the same choice again from the saved data.
    """
    spec: dict[str, Any] = {"formula": list(model.formulas)}
    spec["family"] = [r.family.name for r in model.responses]
    spec["link"] = [r.family.link for r in model.responses]
    spec["rescor"] = bool(model.rescor)
    for key in ("pooling", "centered", "dropna"):
        value = model.options.get(key)
        if value is not None and not (key == "centered" and value == "auto"):
            spec[key] = dict(value) if isinstance(value, Mapping) else value
    priors = model.options.get("priors")
    if priors:
        spec["priors"] = {
            k: format_prior(p if isinstance(p, Prior) else parse_prior(p, name=k)) for k, p in priors.items()
        }
    return spec


def model_from_spec(spec: Mapping[str, Any], data: pd.DataFrame) -> Model:
    """Rebuild a :class:`~hbstan.Model` from a spec (see :func:`model_spec`) and its data.

    A spec with a list of formulas gives a model of several responses
    (:class:`~hbstan.multivariate.MultivariateModel`).
    """
    from .model import Model

    spec = check_spec(spec)
    if isinstance(spec["formula"], list):
        options = {k: spec[k] for k in MULTI_OPTIONS if k in spec}
        if "priors" in options:
            options["priors"] = {
                k: v if isinstance(v, Prior) else parse_prior(v, name=k) for k, v in options["priors"].items()
            } or None
        return Model(list(spec["formula"]), data=data, **options)
    options = {o.name: spec[o.name] for o in MODEL_OPTIONS if o.name in spec}
    if "priors" in options:
        options["priors"] = {
            k: v if isinstance(v, Prior) else parse_prior(v, name=k) for k, v in options["priors"].items()
        } or None
    if "group_predictors" in options:
        options["group_predictors"] = {
            g: [c] if isinstance(c, str) else list(c) for g, c in options["group_predictors"].items()
        } or None
    return Model(spec_formula(spec), data=data, **options)


# ------------------------------------------------------------------------------------------ data
def _column_type(s: pd.Series) -> Any:
    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype):
        cats = [c.item() if isinstance(c, np.generic) else c for c in dt.categories]
        cats = [c if isinstance(c, (str, int, float, bool)) else str(c) for c in cats]
        return {"dtype": "category", "categories": cats, "ordered": bool(dt.ordered)}
    if pd.api.types.is_string_dtype(dt) or pd.api.types.is_object_dtype(dt):
        return "str"
    return str(dt)


def write_data_csv(data: pd.DataFrame, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write ``data`` as CSV; returns the column types :func:`read_data_csv` needs to restore it.

    Floats are written with full precision, so reading back gives identical values.
    """
    data = data.copy()
    data.columns = [str(c) for c in data.columns]
    data.to_csv(path, index=False, na_rep="")
    return {c: _column_type(data[c]) for c in data.columns}


def read_data_csv(path: str | os.PathLike[str], columns: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Read a CSV written by :func:`write_data_csv`, restoring the column types in ``columns``."""
    columns = dict(columns or {})
    dtypes: dict[str, Any] = {}
    cats: dict[str, pd.CategoricalDtype] = {}
    for col, t in columns.items():
        if isinstance(t, Mapping) and t.get("dtype") == "category":
            values = list(t.get("categories", []))
            cats[col] = pd.CategoricalDtype(values, ordered=bool(t.get("ordered", False)))
            if all(isinstance(v, str) for v in values):
                dtypes[col] = str
        elif t == "str":
            dtypes[col] = str
        elif isinstance(t, str) and not t.startswith(("datetime", "timedelta", "period")):
            try:
                dtypes[col] = pd.api.types.pandas_dtype(t)
            except TypeError:
                pass
    kwargs: dict[str, Any] = {"keep_default_na": False}
    if int(pd.__version__.split(".")[0]) < 3:
        kwargs["float_precision"] = "round_trip"
    try:
        head = pd.read_csv(path, nrows=0)
        na = {c: [""] for c in head.columns}
        try:
            df = pd.read_csv(path, dtype={c: t for c, t in dtypes.items() if c in na}, na_values=na, **kwargs)
        except (ValueError, TypeError):
            log.warning("hbstan: could not restore the column types of %s; reading it as plain CSV", path)
            df = pd.read_csv(path, na_values=na, **kwargs)
    except FileNotFoundError:
        raise FileNotFoundError(f"data file {str(path)!r} does not exist") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {str(path)!r} as CSV: {err}") from None
    for col, dt in cats.items():
        if col in df.columns:
            df[col] = df[col].astype(dt)
    return df


def read_csv_arg(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a user's CSV file, with errors naming the file and the problem."""
    p = str(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"data file {p!r} does not exist")
    if os.path.isdir(p):
        raise ValueError(f"data file {p!r} is a directory, not a CSV file")
    try:
        df = pd.read_csv(p)
    except (OSError, ValueError) as err:
        msg = " ".join(str(err).split())
        raise ValueError(f"cannot read {p!r} as CSV: {msg}") from None
    if df.shape[1] < 1 or len(df) == 0:
        raise DataError(f"data file {p!r} has no rows of data")
    return df


# ------------------------------------------------------------------------------------ run dirs
def _cmdstan_outputs(folder: Path) -> list[Path]:
    """CmdStan's output files in ``folder`` (CSV files and console logs)."""
    out = []
    for p in sorted(folder.glob("*")):
        if p.is_file() and (p.name.endswith("-stdout.txt") or (p.suffix == ".csv" and p.name not in RUN_FILES)):
            out.append(p)
    return out


def _leftovers(run_dir: Path, own: set[Path]) -> list[str]:
    """Entries of ``run_dir`` that are not in ``own`` (paths hbstan may write over)."""
    names = []
    for p in sorted(run_dir.iterdir()):
        if p.resolve() in own:
            continue
        if p.is_dir() and p.name == CMDSTAN_DIR and all(q.resolve() in own for q in p.iterdir()):
            continue
        names.append(p.name)
    return names


_CMDSTAN_NAME = re.compile(r"^model-\d+_\d+(?:-stdout\.txt|\.csv)$")


def _clear(run_dir: Path, keep: set[Path] | frozenset[Path] = frozenset()) -> None:
    """Remove the files hbstan writes in a run directory (and nothing else), except ``keep``."""
    doomed = [run_dir / name for name in RUN_FILES]
    doomed += [p for p in run_dir.glob("model-*") if _CMDSTAN_NAME.match(p.name)]  # sample(output_dir=run_dir)
    sub = run_dir / CMDSTAN_DIR
    if sub.is_dir():
        doomed += _cmdstan_outputs(sub) + [sub / STAN_FILE, sub / DATA_JSON]
    for p in doomed:
        if (p.is_file() or p.is_symlink()) and p.resolve() not in keep:
            p.unlink()
    if sub.is_dir() and not any(sub.iterdir()):
        sub.rmdir()


def prepare_run_dir(
    run_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    own: set[Path] | None = None,
    create: bool = True,
) -> Path:
    """Make sure ``run_dir`` can be written: create it, or refuse if it holds other files.

    Parameters
    ----------
    run_dir : path
        The run directory.
    overwrite : bool, default False
        Write into an existing, non-empty directory: hbstan's own files there (a previous
        run's spec, data, CmdStan output, idata, summary, figures) are removed first; other
        files are left alone.
    own : set of Path, optional
        Files already in the directory that belong to the run being written (resolved paths).
    create : bool, default True
        Create the directory (False: only check, and clear it when ``overwrite``).

    Raises
    ------
    RunDirError
        When the directory exists, is not empty and ``overwrite`` is False.
    """
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {str(path)!r} exists and is not a directory; choose another --out")
    if path.is_dir():
        left = _leftovers(path, own or set())
        if left:
            if not overwrite:
                shown = ", ".join(left[:5]) + (", ..." if len(left) > 5 else "")
                raise RunDirError(
                    f"run directory {str(path)!r} already exists and is not empty ({shown}); "
                    "choose a new directory or pass --overwrite (overwrite=True) to replace the run"
                )
            _clear(path, keep=own or set())
            log.info("hbstan: overwriting the run in %s", path)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _fit_own_files(fit: Fit, run_dir: Path) -> set[Path]:
    """CmdStan files of ``fit`` that already sit in ``run_dir`` (or its cmdstan/ folder)."""
    if fit.run_dir is None:
        return set()
    src = Path(fit.run_dir).resolve()
    if src not in (run_dir.resolve(), (run_dir / CMDSTAN_DIR).resolve()):
        return set()
    files = _cmdstan_sources(fit) + [src / STAN_FILE, src / DATA_JSON]
    own = {p.resolve() for p in files if p.exists()}
    if src != run_dir.resolve():
        own.add(src)
    return own


def _cmdstan_sources(fit: Fit) -> list[Path]:
    stan_fit = getattr(fit, "stan_fit", None)
    runset = getattr(stan_fit, "runset", None)
    if runset is not None:
        files = [Path(f) for f in list(runset.csv_files) + list(getattr(runset, "stdout_files", []))]
        return [f for f in files if f.is_file()]
    if fit.run_dir is not None and Path(fit.run_dir).is_dir():
        return _cmdstan_outputs(Path(fit.run_dir))
    return []


# -------------------------------------------------------------------------------- netCDF names
def _escape(name: Any) -> Any:
    return name.replace("%", "%25").replace("/", "%2F") if isinstance(name, str) else name


_ESCAPED = re.compile(r"%(25|2F)")


def _unescape(name: Any) -> Any:
    if not isinstance(name, str):
        return name
    return _ESCAPED.sub(lambda m: "%" if m.group(1) == "25" else "/", name)


def _rename_all(ds: Any, fn: Any) -> Any:
    names = list(ds.variables) + list(ds.dims)
    mapping = {n: fn(n) for n in dict.fromkeys(names) if fn(n) != n}
    return ds.rename(mapping) if mapping else ds


def _to_netcdf(idata: az.InferenceData, path: Path) -> None:
    """Save InferenceData; '/' in variable or dimension names (e.g. ``I(x/2)``) is escaped."""
    import arviz as az

    groups = {}
    for g in idata.groups():
        groups[g] = _rename_all(idata[g], _escape).assign_attrs(hbstan_escaped_names=1)
    out = az.InferenceData(**groups)
    tmp = path.with_name(path.name + ".tmp")
    out.to_netcdf(str(tmp))
    os.replace(tmp, path)


def read_idata(path: Path) -> az.InferenceData:
    import arviz as az

    with az.rc_context({"data.load": "eager"}):
        idata = az.from_netcdf(str(path))
    groups = {}
    for g in idata.groups():
        ds = idata[g]
        if ds.attrs.pop("hbstan_escaped_names", None) is not None:
            ds = _rename_all(ds, _unescape)
        groups[g] = ds
    return az.InferenceData(**groups)


# --------------------------------------------------------------------------------------- figures
def save_figures(fit: Fit, run_dir: str | os.PathLike[str], *, dpi: int = 100) -> list[Path]:
    """Trace and forest plots of the headline parameters, as PNG (matplotlib Agg canvas).

    The figures are drawn on their own Agg canvases, never through pyplot, so saving a run
    neither changes nor depends on the session's matplotlib backend.
    """
    run_dir = Path(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # arviz vs newer matplotlib
        return _draw_figures(fit, run_dir, dpi)


def _draw_figures(fit: Fit, run_dir: Path, dpi: int) -> list[Path]:
    import arviz as az
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = headline_vars(fit)
    post = fit.idata.posterior
    written = []
    fig = Figure(figsize=(10, 2.2 * len(names)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), 2, squeeze=False)
    az.plot_trace(fit.idata, var_names=names, axes=axes)
    fig.tight_layout()
    fig.savefig(run_dir / FIGURES[0], dpi=dpi)
    written.append(run_dir / FIGURES[0])
    lines = sum(int(np.prod([post.sizes[d] for d in post[n].dims[2:]] or [1])) for n in names)
    fig = Figure(figsize=(7, max(2.5, 0.35 * lines + 1.2)))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    az.plot_forest(fit.idata, var_names=names, combined=True, ax=ax)
    fig.tight_layout()
    fig.savefig(run_dir / FIGURES[1], dpi=dpi)
    written.append(run_dir / FIGURES[1])
    return written


# ------------------------------------------------------------------------------- save and load
def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if v is None or isinstance(v, str):
        return v
    return str(v)


def _versions() -> dict[str, str | None]:
    import arviz
    import cmdstanpy

    out: dict[str, str | None] = {
        "hbstan": __version__,
        "cmdstanpy": cmdstanpy.__version__,
        "arviz": arviz.__version__,
        "pandas": pd.__version__,
    }
    try:
        from .backend import find_cmdstan

        out["cmdstan"] = os.path.basename(find_cmdstan().rstrip("/"))
    except Exception:  # noqa: BLE001  (no CmdStan: the version is simply unknown)
        out["cmdstan"] = None
    return out


def save_fit(
    fit: Fit,
    run_dir: str | os.PathLike[str],
    *,
    spec: Mapping[str, Any] | None = None,
    figures: bool = True,
    overwrite: bool = False,
) -> Path:
    """Save a fit as a run directory that :func:`load` (and ``hbstan`` commands) read back.

    Parameters
    ----------
    fit : hbstan.Fit
        The fit to save.
    run_dir : path
        Where to write; created if missing. It must be empty, or hold only this fit's own
        CmdStan output (``Model.sample(output_dir=run_dir)`` or ``run_dir/cmdstan``), unless
        ``overwrite`` is True.
    spec : dict, optional
        Entries recorded in ``spec.toml`` over those read from the model, e.g.
        ``{"dropna": True}`` from a user's spec file.
    figures : bool, default True
        Draw ``trace.png`` and ``forest.png``.
    overwrite : bool, default False
        Replace a previous run in ``run_dir`` (see :func:`prepare_run_dir`).

    Returns
    -------
    pathlib.Path
        The run directory.

    Raises
    ------
    RunDirError
        If ``run_dir`` holds other files and ``overwrite`` is False.
    ValueError
        If the model cannot be rebuilt from its data (trials or offsets given as arrays).

    Notes
    -----
    The fit of a model of several responses is saved the same way: its ``spec.toml`` holds the
    list of formulas, a family and link per response and ``rescor``; ``idata.nc`` keeps each
    response's pointwise log-likelihood (group ``log_likelihood_responses``).
    """
    import cmdstanpy

    model = fit.model
    run_dir = Path(run_dir)
    mspec = model_spec(model)  # before touching the disk: fails for unsaveable models
    own = _fit_own_files(fit, run_dir) if run_dir.is_dir() else set()
    run_dir = prepare_run_dir(run_dir, overwrite=overwrite, own=own)

    # CmdStan's output: copied into run_dir/cmdstan unless it is already in the run directory
    src = Path(fit.run_dir).resolve() if fit.run_dir is not None else None
    if src is not None and src != (run_dir / CMDSTAN_DIR).resolve():
        sources = _cmdstan_sources(fit)
        if sources:
            dest = run_dir / CMDSTAN_DIR
            dest.mkdir(exist_ok=True)
            for f in sources:
                shutil.copy2(f, dest / f.name)
    settings = dict(fit.settings)
    prior_only = bool(settings.get("prior_only", False))
    (run_dir / STAN_FILE).write_text(model.stan_code)
    if hasattr(model, "responses"):  # the data the program ran on (its pointwise switch)
        stan_data = model.stan_data_for(prior_only=prior_only, pointwise=bool(settings.get("pointwise", "stan")))
    else:
        stan_data = model.stan_data_for(prior_only=prior_only)
    cmdstanpy.write_stan_json(str(run_dir / DATA_JSON), stan_data)

    columns = write_data_csv(model.data, run_dir / DATA_CSV)
    _to_netcdf(fit.idata, run_dir / IDATA_FILE)
    fit.summary().to_csv(run_dir / SUMMARY_FILE, index_label="parameter")

    diag = fit.diagnose()
    diag_doc = dataclasses.asdict(diag)
    diag_doc["ok"] = diag.ok
    (run_dir / DIAGNOSTICS_FILE).write_text(
        json.dumps(
            _jsonable(
                {
                    "diagnostics": diag_doc,
                    "warnings": list(getattr(fit, "warnings", [])),
                    "settings": settings,
                    "timings": dict(getattr(fit, "timings", {})),
                    "backend": getattr(fit, "backend", "stan"),
                    "model": repr(model),
                    "versions": _versions(),
                }
            ),
            indent=2,
        )
        + "\n"
    )
    if figures:
        try:
            save_figures(fit, run_dir)
        except Exception as err:  # noqa: BLE001  (a figure must never lose a run)
            log.warning("hbstan: could not draw the figures: %s", err)

    sampler = {k: settings.get(k) for k in SAMPLER_KEYS if settings.get(k) is not None}
    if "seed" not in sampler:  # record the seed CmdStan chose, so the run can be repeated
        try:
            sampler["seed"] = int(fit.stan_fit.metadata.cmdstan_config["seed"])
        except Exception:  # noqa: BLE001
            pass
    if not sampler.get("prior_only"):
        sampler.pop("prior_only", None)
    doc: dict[str, Any] = {"hbstan_version": __version__, **mspec, "data": DATA_CSV}
    doc.update(dict(spec or {}))
    doc["data"] = DATA_CSV
    doc["sampler"] = {**sampler, **dict((spec or {}).get("sampler", {}))}
    doc["columns"] = columns
    check_spec(doc, source="spec")
    write_spec(doc, run_dir / SPEC_FILE)  # last: a run directory with a spec is complete
    log.info("hbstan: run saved in %s", run_dir)
    return run_dir


def run_spec(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {str(run_dir)!r} does not exist")
    if not (run_dir / SPEC_FILE).is_file():
        raise RunDirError(
            f"{str(run_dir)!r} is not an hbstan run directory (it has no {SPEC_FILE}); "
            "make one with `hbstan fit ... --out DIR` or hbstan.io.save_fit(fit, DIR)"
        )
    return read_spec(run_dir / SPEC_FILE)


def load_model(run_dir: str | os.PathLike[str]) -> Model:
    """Rebuild the model of a run directory from its spec.toml and data.csv."""
    run_dir = Path(run_dir)
    spec = run_spec(run_dir)
    data = read_data_csv(spec.get("data") or run_dir / DATA_CSV, spec.get("columns"))
    return model_from_spec(spec, data)


def load(run_dir: str | os.PathLike[str]) -> Fit:
    """Load a fit saved by :func:`save_fit` (or ``hbstan fit --out RUN_DIR``).

    Parameters
    ----------
    run_dir : path
        The run directory.

    Returns
    -------
    hbstan.Fit
        The model rebuilt from ``spec.toml`` and ``data.csv`` and the draws from ``idata.nc``;
        ``settings``, ``warnings`` and ``timings`` as saved. ``stan_fit`` is None: read
        CmdStan's CSV files with ``cmdstanpy.from_csv(run_dir / "cmdstan")`` if needed.
        A run of several responses gives a :class:`~hbstan.mvfit.MultivariateFit`.
    """
    from .backend import normalize_code
    from .fit import Fit
    from .mvfit import MultivariateFit

    run_dir = Path(run_dir)
    spec = run_spec(run_dir)
    data = read_data_csv(spec.get("data") or run_dir / DATA_CSV, spec.get("columns"))
    model = model_from_spec(spec, data)
    stan_file = run_dir / STAN_FILE
    if stan_file.is_file() and normalize_code(stan_file.read_text()) != normalize_code(model.stan_code):
        log.warning(
            "hbstan: the Stan program rebuilt from %s differs from the saved %s (saved by another "
            "hbstan version?); the draws are those of the saved program",
            SPEC_FILE,
            STAN_FILE,
        )
    if not (run_dir / IDATA_FILE).is_file():
        raise RunDirError(f"run directory {str(run_dir)!r} has no {IDATA_FILE}: the run was not saved completely")
    idata = read_idata(run_dir / IDATA_FILE)
    extra: dict[str, Any] = {}
    if (run_dir / DIAGNOSTICS_FILE).is_file():
        extra = json.loads((run_dir / DIAGNOSTICS_FILE).read_text())
    if "settings" in extra:
        settings = dict(extra["settings"])
    else:
        sampler = spec.get("sampler", {})
        settings = {k: sampler.get(k) for k in SAMPLER_KEYS}
        settings["prior_only"] = bool(settings["prior_only"])
    fit_class = MultivariateFit if hasattr(model, "responses") else Fit
    fit = fit_class(model, idata, run_dir=run_dir, settings=settings)
    fit.warnings = list(extra.get("warnings", []))
    fit.timings = dict(extra.get("timings", {}))
    fit.backend = extra.get("backend", "stan")
    return fit


def load_diagnostics(run_dir: str | os.PathLike[str]) -> Any:
    """Read the :class:`~hbstan.Diagnostics` saved in a run directory (recomputed if missing)."""
    from .fit import Diagnostics

    run_dir = Path(run_dir)
    run_spec(run_dir)
    path = run_dir / DIAGNOSTICS_FILE
    if not path.is_file():
        return load(run_dir).diagnose()
    doc = json.loads(path.read_text())["diagnostics"]
    fields = {f.name for f in dataclasses.fields(Diagnostics)}
    def nan(v: Any) -> Any:
        return [nan(x) for x in v] if isinstance(v, list) else math.nan if v is None else v

    vals = {k: v if k in ("messages", "worst_rhat") else nan(v) for k, v in doc.items() if k in fields}
    return Diagnostics(**vals)
