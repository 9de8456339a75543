"""Shared fixtures. Tests that need CmdStan carry the ``cmdstan`` marker and are skipped,
with a loud notice at the end of the run, where no CmdStan installation is found."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Fits sample on the program specialized to their model, as they did before general programs
# existed: with "auto", whether a test ran on the general program (and started a background
# compile) would depend on which tests ran before it. tests/test_general.py asks for each
# program explicitly.
os.environ.setdefault("HBSTAN_PROGRAM", "specialized")


def _cmdstan() -> str | None:
    from hbstan.backend import CmdStanNotFoundError, find_cmdstan

    try:
        return find_cmdstan()
    except CmdStanNotFoundError:
        return None


CMDSTAN = _cmdstan()
_SKIP_REASON = (
    "CmdStan not found: sampler tests SKIPPED. Install it with `hbstan install-cmdstan` "
    "or set CMDSTAN=/path/to/cmdstan"
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"hbstan: CmdStan at {CMDSTAN}" if CMDSTAN else f"hbstan: {_SKIP_REASON}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CMDSTAN:
        return
    skip = pytest.mark.skip(reason=_SKIP_REASON)
    for item in items:
        if "cmdstan" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if not CMDSTAN:
        n = len(terminalreporter.stats.get("skipped", []))
        terminalreporter.write_sep("!", "CMDSTAN MISSING", red=True, bold=True)
        terminalreporter.write_line(f"{_SKIP_REASON} ({n} tests skipped)", red=True, bold=True)


@pytest.fixture(scope="session")
def radon() -> pd.DataFrame:
    from hbstan import datasets

    return datasets.load_radon("mn")


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)
