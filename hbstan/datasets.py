"""Example data sets: Minnesota and multi-state radon (Gelman & Hill), Bangladesh wells.

``load_data(name)`` looks first in a local directory (``$HBSTAN_DATA_DIR``), then in hbstan's
cache, and otherwise downloads the public copy from posteriordb (MIT licence) once into the
cache and converts it to CSV. hbstan ships no copy of the data.
"""

from __future__ import annotations

import io
import json
import os
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd

from .backend import cache_dir

__all__ = ["load_data", "list_datasets", "load_radon", "load_wells", "POSTERIORDB_URL"]

POSTERIORDB_URL = (
    "https://raw.githubusercontent.com/stan-dev/posteriordb/master/"
    "posterior_database/data/data/{stem}.json.zip"
)

_SOURCES = {
    "radon_mn": ("radon_mn", "Minnesota radon survey: 919 homes in 85 counties"),
    "radon_all": ("radon_all", "radon survey over 386 counties of several states (12,573 homes)"),
    "wells": ("wells_data", "Bangladesh well switching: 3,020 households, binary outcome"),
}


def list_datasets() -> dict[str, str]:
    """Names of the data sets and what they hold."""
    return {k: v[1] for k, v in _SOURCES.items()}


def _convert(name: str, raw: dict) -> pd.DataFrame:
    if name.startswith("radon"):
        df = pd.DataFrame(
            {
                "county": [f"county_{int(i):03d}" for i in raw["county_idx"]],
                "floor": raw["floor_measure"],
                "log_radon": raw["log_radon"],
                "log_uppm": raw["log_uppm"],
            }
        )
        return df
    cols = ["switched", "arsenic", "dist", "assoc", "educ"]
    return pd.DataFrame({c: raw[c] for c in cols})


def _download(name: str, dest: Path) -> None:
    stem = _SOURCES[name][0]
    url = POSTERIORDB_URL.format(stem=stem)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 (fixed https URL)
            payload = resp.read()
    except OSError as err:
        raise OSError(
            f"could not download data set {name!r} from {url} ({err}); set HBSTAN_DATA_DIR to a "
            f"directory holding {name}.csv"
        ) from None
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        raw = json.loads(zf.read(zf.namelist()[0]))
    df = _convert(name, raw)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, dest)


def load_data(name: str) -> pd.DataFrame:
    """Load an example data set as a DataFrame.

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
    cached = cache_dir() / "data" / f"{name}.csv"
    if not cached.is_file():
        _download(name, cached)
    return pd.read_csv(cached)


def load_radon(state: str = "mn") -> pd.DataFrame:
    """Radon data: ``state="mn"`` (Minnesota, 919 rows) or ``"all"`` (12,573 rows)."""
    return load_data(f"radon_{state}")


def load_wells() -> pd.DataFrame:
    """Bangladesh wells data (switched, arsenic, dist, assoc, educ)."""
    return load_data("wells")
