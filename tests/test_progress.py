"""Progress you can see: a compile timer and sampling bars where a person watches, quiet elsewhere."""

from __future__ import annotations

import time

import pandas as pd
import pytest

import hbstan
from hbstan import backend


def test_compile_notice_shows_a_live_timer_when_interactive(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(backend, "interactive", lambda: True)
    with backend.compile_notice():
        time.sleep(1.3)
    err = capsys.readouterr().err
    assert "hbstan: compiling the Stan program (the first fit of this model structure) ... 1 s" in err
    assert "compiling the Stan program: done in 1." in err


def test_compile_notice_is_quiet_when_not_interactive(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(backend, "interactive", lambda: False)
    with backend.compile_notice():
        time.sleep(0.1)
    assert capsys.readouterr().err == ""


@pytest.mark.cmdstan
def test_sampling_shows_chain_progress_by_choice_or_when_interactive(
    radon: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    m = hbstan.Model("log_radon ~ floor + (1 | county)", radon)
    m.sample(chains=2, draws=200, warmup=200, seed=3)  # "auto" under pytest: not interactive
    assert "chain 1" not in capfd.readouterr().err
    m.sample(chains=2, draws=200, warmup=200, seed=3, show_progress=True)
    assert "chain 1" in capfd.readouterr().err
    monkeypatch.setattr("hbstan.model.interactive", lambda: True)
    m.sample(chains=2, draws=200, warmup=200, seed=3)
    assert "chain 1" in capfd.readouterr().err
