"""Simulation-based coverage, one cell of ``validation/interval_coverage.py`` per family: with truths drawn
from the model's own prior, 95% intervals cover them at about the nominal rate; and a
deliberately wrong model (the generator's auxiliary parameter scaled, the reported truth not)
fails the same check, so the check can fail. The whole grid is ``validation/interval_coverage.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cmdstan

ROOT = Path(__file__).resolve().parents[1]


def _load_coverage():  # type: ignore[no-untyped-def]
    # loaded by path: validation/ is not a package
    name = "hbstan_validation_coverage"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "validation" / "interval_coverage.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


cov = _load_coverage()

SETTINGS = cov.Settings(sims=20, n_rows=150, n_groups=10, warmup=300, draws=300)
# 95% coverage below this in 20 simulations has probability < 0.001 for a calibrated posterior
BOUND = 0.75
# family, design, and the wrong generator: its auxiliary parameter scaled (truth reported unscaled)
CELLS = [
    ("student", "hierarchical", {"sigma": 2.0}),
    ("negbinomial", "hierarchical", {"shape": 0.25}),
]


def _below_bound(summary: dict) -> dict[str, float]:
    return {name: p["cover95"] for name, p in summary["params"].items() if p["cover95"] < BOUND}


@pytest.mark.parametrize("family, design, wrong", CELLS, ids=[f"{f}-{d}" for f, d, _ in CELLS])
def test_intervals_cover_truth_and_wrong_model_fails(family: str, design: str, wrong: dict[str, float]) -> None:
    assert cov.registered(family), family
    summary, _ = cov.run_cell(family, design, SETTINGS)
    assert summary["ok"] == SETTINGS.sims, summary["errors"]
    assert set(summary["params"]) >= {"Intercept", "x", "1|g_sigma", "1|g", *cov.SPECS[family].aux}
    assert not _below_bound(summary), f"95% coverage below {BOUND}: {_below_bound(summary)}"
    # coverage alone would pass a program that ignores its likelihood: the data must also speak
    for name in ("Intercept", "x"):
        assert summary["params"][name]["sd_ratio"] < 0.5, (name, summary["params"][name])
    wrong_summary, _ = cov.run_cell(family, design, SETTINGS, misscale=wrong)
    low = _below_bound(wrong_summary)
    assert low, f"the wrong model ({wrong}) passed: {wrong_summary['params']}"
    assert set(wrong) <= set(low), low
