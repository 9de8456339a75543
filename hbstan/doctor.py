"""``hbstan doctor``: what a bug report needs, and whether CmdStan is ready.

Versions of hbstan and the libraries it runs on, the CmdStan that CmdStanPy will use (and
whether its ``stanc`` and TBB are there), the C++ compiler and ``make``, and hbstan's cache
directories with their sizes.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .backend import CmdStanNotFoundError, cache_dir, find_cmdstan

__all__ = ["cmdstan_status", "report"]

LIBRARIES = ("numpy", "pandas", "scipy", "formulae", "jinja2", "cmdstanpy", "arviz", "xarray", "matplotlib", "pymc", "nutpie")


def cmdstan_status() -> tuple[str | None, str]:
    """``(path, description)`` of the CmdStan CmdStanPy will use; path is None when none works.

    A working CmdStan is a directory with a ``makefile`` and an executable ``bin/stanc``.
    """
    try:
        path = find_cmdstan()
    except CmdStanNotFoundError as err:
        return None, f"not found ({str(err).splitlines()[0]})"
    root = Path(path)
    stanc = root / "bin" / "stanc"
    missing = [str(p.relative_to(root)) for p in (root / "makefile", stanc) if not p.is_file()]
    if missing or not os.access(stanc, os.X_OK):
        return None, f"{path} is not a working CmdStan (missing or not executable: {missing or ['bin/stanc']})"
    return path, f"{path} ({root.name})"


def _first_line(cmd: list[str]) -> str:
    exe = shutil.which(cmd[0])
    if exe is None:
        return "not found"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return f"{exe} (cannot run: {err})"
    text = (out.stdout or out.stderr).strip().splitlines()
    return f"{exe}: {text[0] if text else 'no output'}"


def _size(path: Path) -> str:
    if not path.exists():
        return "absent"
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return f"{total / 2**20:.1f} MB"


def report() -> str:
    """The report ``hbstan doctor`` prints."""
    from ._version import __version__

    lines = [f"hbstan {__version__}", f"python {sys.version.split()[0]} ({sys.executable})", f"platform {platform.platform()}"]
    for lib in LIBRARIES:
        try:
            lines.append(f"  {lib} {metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            lines.append(f"  {lib} not installed")
    path, status = cmdstan_status()
    lines.append(f"CmdStan: {status}" + ("  (CMDSTAN is set)" if os.environ.get("CMDSTAN") else ""))
    if path is not None:
        root = Path(path)
        lines.append(f"  stanc: {_first_line([str(root / 'bin' / 'stanc'), '--version'])}")
        tbb = root / "stan" / "lib" / "stan_math" / "lib"
        found = sorted(p.name for p in tbb.glob("tbb*")) if tbb.is_dir() else []
        lines.append(f"  TBB: {', '.join(found) if found else 'not found under stan/lib/stan_math/lib'}")
    cxx = os.environ.get("CXX", "g++" if shutil.which("g++") else "clang++")
    lines.append(f"C++ compiler: {_first_line([cxx, '--version'])}")
    lines.append(f"make: {_first_line(['make', '--version'])}")
    base = cache_dir()
    lines.append(f"cache: {base}")
    for sub in ("programs", "models", "runs"):
        lines.append(f"  {sub}/: {_size(base / sub)}")
    if os.environ.get("HBSTAN_RUNS_DIR"):
        lines.append(f"runs (HBSTAN_RUNS_DIR): {os.environ['HBSTAN_RUNS_DIR']}")
    if os.environ.get("HBSTAN_DATA_DIR"):
        lines.append(f"data override (HBSTAN_DATA_DIR): {os.environ['HBSTAN_DATA_DIR']}")
    return "\n".join(lines)
