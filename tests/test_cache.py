"""Compile once, ever: precompiled structures and refits with new data or priors never recompile."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.backend import normalize_code, program_hash
from hbstan.precompile import common_models, precompile

pytestmark = pytest.mark.cmdstan


def test_precompiled_structure_serves_new_data_and_priors(caplog: pytest.LogCaptureFixture, radon: pd.DataFrame) -> None:
    precompile(["gaussian"], ["intercept"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hbstan"):
        sub = radon.sample(400, random_state=1)
        for data, prior in [(radon, hbstan.Normal(0, 10)), (sub, hbstan.Normal(1, 2))]:
            m = hbstan.Model("log_radon ~ floor + (1 | county)", data=data, priors={"Intercept": prior}, centered=False)
            m.sample(chains=1, draws=50, warmup=50, seed=1)
    assert "cache miss" not in caplog.text
    assert caplog.text.count("found in cache") == 2


def test_hash_ignores_comments_and_layout() -> None:
    (label, m), *_ = common_models(["gaussian"], ["intercept"])
    code = m.stan_code
    noisy = code.replace("  ", "    ").replace("// number of observations", "// N")
    assert normalize_code(noisy) == normalize_code(code)
    assert program_hash(noisy) == program_hash(code)
    assert program_hash(code, {"STAN_THREADS": True}) != program_hash(code)


def test_precompile_cli_rejects_unknown_names() -> None:
    from hbstan.cli import main

    assert main(["precompile", "--family", "gausian"]) == 1
