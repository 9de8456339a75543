"""Shared plumbing of the examples: settings from the environment, output files, report lines.

Environment variables (all optional):

HBSTAN_EXAMPLE_DRAWS    draws and warm-up iterations per chain (default 1000; e.g. 200 for a quick run)
HBSTAN_EXAMPLE_CHAINS   number of chains (default 4)
HBSTAN_EXAMPLES_OUT     directory for figures and reports (default examples/output/)
HBSTAN_EXAMPLE_PYMC     set to 0 to skip the PyMC comparison

Every example prints greppable lines:

    CONCLUSION: <what the example shows, with numbers>
    PYMC: <agree | disagree | not converged | skipped | error> (<details>)
    FIGURE: <path of a PNG written>
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run from a source checkout without installing
    sys.path.insert(0, str(HERE.parent))

SEED = 20240601
DRAWS = int(os.environ.get("HBSTAN_EXAMPLE_DRAWS", "1000"))
CHAINS = int(os.environ.get("HBSTAN_EXAMPLE_CHAINS", "4"))
RUN_PYMC = os.environ.get("HBSTAN_EXAMPLE_PYMC", "1").strip().lower() not in ("0", "no", "false", "off")
SHORT_RUN = DRAWS < 1000
# The agreement test needs every parameter converged (R-hat, bulk ESS), which hierarchical
# scales rarely are after 2 x 200 draws; the PyMC step therefore runs at least this many.
PYMC_MIN_DRAWS = 400
OUT = Path(os.environ.get("HBSTAN_EXAMPLES_OUT") or HERE / "output")

_T0 = time.perf_counter()


def setup(name: str, title: str) -> Path:
    """Quiet the loggers, print the example's header, and return its output directory."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    import cmdstanpy  # noqa: F401  (it installs its own INFO handler on import)

    for noisy in ("cmdstanpy", "pymc", "pytensor"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def _one_line(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        print(f"warning ({category.__name__}): {message}", file=sys.stderr)

    warnings.showwarning = _one_line
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"== {title} ==")
    print(f"settings: {CHAINS} chains x {DRAWS} draws (+ {DRAWS} warm-up), seed {SEED}, output in {OUT}")
    return OUT


def sampler(**overrides: Any) -> dict[str, Any]:
    """Sampler settings for ``Model.sample`` / ``compare_pooling``."""
    return {"chains": CHAINS, "draws": DRAWS, "warmup": DRAWS, "seed": SEED, **overrides}


def conclusion(text: str) -> None:
    """Print a conclusion line (the tests grep these)."""
    print(f"CONCLUSION: {text}")


def save(fig: Any, name: str) -> Path:
    """Write a figure as OUT/name (PNG) and print where."""
    path = OUT / name
    fig.savefig(path, dpi=90)
    print(f"FIGURE: {path}")
    return path


def write_text(name: str, text: str) -> Path:
    """Write a report file into OUT."""
    path = OUT / name
    path.write_text(text)
    print(f"REPORT: {path}")
    return path


def markdown_table(df: Any, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (pandas' to_markdown needs the optional tabulate)."""
    def cell(v: Any) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def interval(draws: np.ndarray, prob: float = 0.9) -> tuple[float, float]:
    """Central posterior interval of flattened draws."""
    lo, hi = np.quantile(np.ravel(draws), [(1 - prob) / 2, 1 - (1 - prob) / 2])
    return float(lo), float(hi)


def flat(fit: Any, name: str) -> np.ndarray:
    """Posterior draws of a variable with chains and draws merged into the first axis."""
    v = fit.idata.posterior[name].values
    return v.reshape(-1, *v.shape[2:])


def mcse_mean(fit: Any, name: str) -> float:
    """Monte Carlo standard error of the posterior mean of a scalar."""
    import arviz as az

    return float(az.mcse(fit.idata, var_names=[name])[name].values)


def compare_with_pymc(model: Any, name: str, **sample_kwargs: Any) -> str:
    """Sample ``model`` with CmdStan and with PyMC, and print whether the posteriors agree.

    Uses :func:`hbstan.compare.compare_backends`: a test of every posterior mean and sd
    against the two Monte Carlo errors (t reference for the error in the MCSEs,
    Bonferroni-corrected); a difference it flags is confirmed, or not, by fresh runs of both
    backends with twice the draws, and a backend that has not converged is run longer (up to
    4 times the draws) before that is the verdict. In a short run (HBSTAN_EXAMPLE_DRAWS <
    1000) the convergence bar is lowered to R-hat <= 1.05 and bulk ESS >= 50, since R-hat <=
    1.01 is not reachable with a few hundred draws, both backends run at least
    PYMC_MIN_DRAWS (400) draws per chain, and further runs at most twice that. Writes the
    full report to OUT/<name>_pymc.md.

    Returns the verdict ("agree", "disagree", "not converged", "skipped" or "error").
    """
    if not RUN_PYMC:
        print("PYMC: skipped (HBSTAN_EXAMPLE_PYMC=0)")
        return "skipped"
    try:
        from hbstan.compare import compare_backends
    except ImportError as err:
        print(f"PYMC: skipped (the PyMC backend is not available: {err})")
        return "skipped"
    thresholds = {"rhat_max": 1.05, "ess_min": 50.0} if SHORT_RUN else {}
    draws = max(DRAWS, PYMC_MIN_DRAWS)
    t0 = time.perf_counter()
    try:
        cmp = compare_backends(
            model,
            chains=CHAINS,
            draws=draws,
            seed=SEED,
            stan_kwargs=sample_kwargs or None,
            pymc_kwargs=sample_kwargs or None,
            max_draws=2 * draws if SHORT_RUN else None,
            **thresholds,
        )
    except ImportError as err:
        print(f"PYMC: skipped (PyMC is not installed: {err})")
        return "skipped"
    except Exception as err:  # noqa: BLE001  (report, and let the example finish)
        traceback.print_exc()
        print(f"PYMC: error ({type(err).__name__}: {err})")
        return "error"
    write_text(f"{name}_pymc.md", cmp.to_markdown())
    z = np.abs(cmp.table["z"].to_numpy(float))
    worst = float(np.nanmax(z)) if np.isfinite(z).any() else float("nan")
    counts = cmp.table["verdict"].value_counts().to_dict()
    rounds = " -> ".join(f"{r.draws[0]} / {r.draws[1]}: {r.verdict}" for r in cmp.rounds)
    detail = (
        f"stan vs pymc on {cmp.n_params} scalars, max |z| {worst:.2f} vs threshold {cmp.threshold:.2f}; "
        f"per scalar {counts}; rounds (stan / pymc draws: that pair's verdict) {rounds}; "
        f"{time.perf_counter() - t0:.0f} s"
    )
    if cmp.note:
        detail += f"; {cmp.note}"
    if SHORT_RUN:
        detail += f"; short run: {CHAINS} chains x {draws} draws, R-hat <= 1.05, ESS >= 50"
    print(f"PYMC: {cmp.verdict} ({detail})")
    return cmp.verdict


def done() -> None:
    """Print the wall time of the example."""
    print(f"done in {time.perf_counter() - _T0:.0f} s")
