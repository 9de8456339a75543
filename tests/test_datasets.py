from __future__ import annotations

import pandas as pd
import pytest

from hbstan import datasets


def test_local_directory_first(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    pd.DataFrame({"switched": [1, 0], "arsenic": [1.0, 2.0], "dist": [3.0, 4.0], "assoc": [0, 1], "educ": [0, 5]}).to_csv(
        tmp_path / "wells.csv", index=False
    )
    monkeypatch.setenv("HBSTAN_DATA_DIR", str(tmp_path))
    assert len(datasets.load_wells()) == 2


def test_shared_radon_loads(radon: pd.DataFrame) -> None:
    assert len(radon) == 919 and radon["county"].nunique() == 85
    assert {"county", "floor", "log_radon", "log_uppm"} <= set(radon.columns)


def test_posteriordb_json_converts() -> None:
    raw = {"county_idx": [1, 2], "floor_measure": [0, 1], "log_radon": [0.1, 0.2], "log_uppm": [-0.5, 0.3]}
    df = datasets._convert("radon_mn", raw)
    assert list(df["county"]) == ["county_001", "county_002"]


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="available: \\['radon_all', 'radon_mn', 'wells'\\]"):
        datasets.load_data("radon_xx")


def test_download_failure_says_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("HBSTAN_DATA_DIR", raising=False)
    monkeypatch.setenv("HBSTAN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(datasets, "POSTERIORDB_URL", "http://127.0.0.1:9/{stem}.zip")
    with pytest.raises(OSError, match="HBSTAN_DATA_DIR"):
        datasets.load_data("wells")
