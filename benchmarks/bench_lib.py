"""Shared helpers of the benchmark scripts: memory polling, ESS/R-hat, CmdStan timings.

Nothing here is part of hbstan; ``run.py`` and ``scale.py`` import it from this directory.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # benchmark the working tree, installed or not
    sys.path.insert(0, str(ROOT))

PAGE = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------------------------ memory
# a compile inside a measured call must not count: stanc, make and the C++ compiler
COMPILER_COMMANDS = {b"stanc", b"make", b"g++", b"c++", b"cc1plus", b"as", b"ld", b"collect2", b"clang++", b"clang"}


def _children_map() -> tuple[dict[int, list[int]], dict[int, bytes]]:
    kids: dict[int, list[int]] = {}
    comm: dict[int, bytes] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: split after the last ')'
        close = stat.rfind(b")")
        rest = stat[close + 2 :].split()
        kids.setdefault(int(rest[1]), []).append(int(name))
        comm[int(name)] = stat[stat.find(b"(") + 1 : close]
    return kids, comm


def tree_rss_bytes(root: int | None = None, *, exclude_compilers: bool = True) -> int:
    """Resident memory of a process and all its descendants (Linux /proc).

    Compiler processes (and their children) are left out, so a compile that happens inside
    a measured call does not count as the fit's memory.
    """
    root = os.getpid() if root is None else root
    kids, comm = _children_map()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        if exclude_compilers and comm.get(pid) in COMPILER_COMMANDS:
            continue
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            pass
        stack.extend(kids.get(pid, []))
    return total


class MemoryPoller:
    """Peak resident memory of this process tree while the ``with`` block runs.

    Polls /proc every ``interval`` seconds (CmdStan chains and PyMC worker processes are
    children, so they count); ``peak_mb`` is the largest sum seen, ``start_mb`` the sum when
    the block was entered.
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0
        self.start = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.available = os.path.isdir("/proc/self")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemoryPoller":
        if self.available:
            self.start = tree_rss_bytes()
            self.peak = self.start
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, tree_rss_bytes())

    @property
    def peak_mb(self) -> float | None:
        return self.peak / 2**20 if self.available else None

    @property
    def start_mb(self) -> float | None:
        return self.start / 2**20 if self.available else None


def maxrss_mb() -> dict[str, float]:
    """getrusage peaks: this process, and the largest waited-for child (e.g. one CmdStan chain)."""
    import resource

    return {
        "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "largest_child": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


# ------------------------------------------------------------------------------ diagnostics
def upper_offdiag(a: np.ndarray) -> np.ndarray:
    """Strictly-upper entries of the trailing (K, K) axes: (chain, draw, K*(K-1)/2)."""
    k = a.shape[-1]
    iu = np.triu_indices(k, 1)
    return a[..., iu[0], iu[1]]


def posterior_arrays(idata: Any) -> dict[str, np.ndarray]:
    """All posterior variables of a fit; correlation matrices reduced to their upper off-diagonal."""
    post = {}
    for v in idata.posterior.data_vars:
        a = idata.posterior[v].values
        if a.ndim == 4 and a.shape[-1] == a.shape[-2] and "_corr" in v:
            a = upper_offdiag(a)
        post[v] = a
    return post


def ess_rhat(post: dict[str, np.ndarray]) -> dict[str, Any]:
    """Min bulk ESS, min tail ESS and max R-hat over every element of every array.

    ``post`` maps names to arrays shaped (chain, draw, ...). Constant elements (NaN ESS)
    are skipped.
    """
    import arviz as az

    ds = az.convert_to_dataset({k: np.asarray(v, dtype=float) for k, v in post.items()})
    one_chain = ds.sizes.get("chain", 1) < 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bulk = az.ess(ds, method="bulk")
        tail = az.ess(ds, method="tail")
        rhat = az.rhat(ds)
    out: dict[str, Any] = {"min_ess_bulk": np.inf, "min_ess_tail": np.inf, "max_rhat": 0.0}
    per_var = {}
    for v in ds.data_vars:
        b = np.asarray(bulk[v].values, dtype=float)
        t = np.asarray(tail[v].values, dtype=float)
        r = np.asarray(rhat[v].values, dtype=float)
        if np.all(np.isnan(b)):
            continue
        vb, vt, vr = float(np.nanmin(b)), float(np.nanmin(t)), float(np.nanmax(r))
        per_var[v] = {"ess_bulk": round(vb, 1), "ess_tail": round(vt, 1), "rhat": round(vr, 4)}
        if vb < out["min_ess_bulk"]:
            out["min_ess_bulk"], out["min_ess_bulk_param"] = vb, v
        if vt < out["min_ess_tail"]:
            out["min_ess_tail"] = vt
        if vr > out["max_rhat"]:
            out["max_rhat"], out["max_rhat_param"] = vr, v
    if one_chain:  # R-hat needs two chains
        out["max_rhat"] = None
        out.pop("max_rhat_param", None)
    out["per_variable"] = per_var
    return out


def cmdstan_times(mcmc: Any) -> dict[str, Any]:
    """Per-chain warm-up/sampling/total seconds from CmdStan's CSV comments.

    The chains run in parallel, so the fit's sampler time is the slowest chain's.
    """
    chains = [dict(t) for t in mcmc.time]
    return {
        "per_chain": chains,
        "warmup_s": max(t["warmup"] for t in chains),
        "sampling_s": max(t["sampling"] for t in chains),
        "sampler_s": max(t["total"] for t in chains),
    }


def us_per_gradient(sampling_s: float | None, n_leapfrog_per_chain: list[float]) -> float | None:
    """Microseconds per log-density gradient in the sampling phase (slowest chain)."""
    if sampling_s is None or not n_leapfrog_per_chain:
        return None
    n = max(n_leapfrog_per_chain)
    return 1e6 * sampling_s / n if n else None


def median(values: list[Any]) -> Any:
    vals = [v for v in values if isinstance(v, (int, float)) and v is not None and np.isfinite(v)]
    return statistics.median(vals) if vals else None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.s``."""

    def __enter__(self) -> "Stopwatch":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.s = time.perf_counter() - self.t0


def gradient_eval_us(mcmc: Any) -> float | None:
    """CmdStan's own "Gradient evaluation took X seconds" at start-up, min over chains (µs).

    One evaluation per chain, so noisy; the minimum is the least disturbed.
    """
    import re

    vals = []
    for f in getattr(mcmc.runset, "stdout_files", []) or []:
        try:
            text = Path(f).read_text(errors="replace")
        except OSError:
            continue
        vals += [float(x) for x in re.findall(r"Gradient evaluation took ([0-9.eE+-]+) seconds", text)]
    return 1e6 * min(vals) if vals else None
