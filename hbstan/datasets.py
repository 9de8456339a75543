"""Example data sets: Minnesota and multi-state radon (Gelman & Hill), Bangladesh wells.

The data ship inside the package (``hbstan/data/*.csv.gz``, converted from posteriordb, MIT
licence; ``hbstan/data/README.md`` gives the source), so ``load_data(name)`` needs no network.
A directory named by ``$HBSTAN_DATA_DIR`` holding ``<name>.csv`` overrides the shipped copy.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["load_data", "list_datasets", "load_radon", "load_wells"]

_SOURCES = {
    "radon_mn": "Minnesota radon survey: 919 homes in 85 counties",
    "radon_all": "radon survey over 386 counties of several states (12,573 homes)",
    "wells": "Bangladesh well switching: 3,020 households, binary outcome",
}


def list_datasets() -> dict[str, str]:
    """Names of the data sets and what they hold."""
    return dict(_SOURCES)


def load_data(name: str) -> pd.DataFrame:
    """Load an example data set as a DataFrame (no network: the data ship with hbstan).

    Parameters
    ----------
    name : {"radon_mn", "radon_all", "wells"}
        See :func:`list_datasets`.
    """
    if name not in _SOURCES:
        raise ValueError(f"unknown data set {name!r}; available: {sorted(_SOURCES)}")
    local = os.environ.get("HBSTAN_DATA_DIR")
    if local:
        path = Path(local).expanduser() / f"{name}.csv"
        if path.is_file():
            return pd.read_csv(path)
    shipped = resources.files("hbstan") / "data" / f"{name}.csv.gz"
    try:
        with resources.as_file(shipped) as path:
            return pd.read_csv(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"hbstan's copy of data set {name!r} is missing (expected hbstan/data/{name}.csv.gz); "
            f"reinstall hbstan, or set HBSTAN_DATA_DIR to a directory holding {name}.csv"
        ) from None


def load_radon(state: str = "mn") -> pd.DataFrame:
    """Radon data: ``state="mn"`` (Minnesota, 919 rows) or ``"all"`` (12,573 rows)."""
    return load_data(f"radon_{state}")


def load_wells() -> pd.DataFrame:
    """Bangladesh wells data (switched, arsenic, dist, assoc, educ)."""
    return load_data("wells")
