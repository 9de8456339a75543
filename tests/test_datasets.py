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


def test_shipped_copies_load_without_network_or_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package's copies, byte for byte the shared data sets where those exist."""
    import socket
    from pathlib import Path

    monkeypatch.delenv("HBSTAN_DATA_DIR", raising=False)

    def no_network(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    sizes = {"radon_mn": (919, 85), "radon_all": (12573, 386)}
    for name, (rows, counties) in sizes.items():
        df = datasets.load_data(name)
        assert len(df) == rows and df["county"].nunique() == counties
    wells = datasets.load_wells()
    assert len(wells) == 3020 and list(wells.columns) == ["switched", "arsenic", "dist", "assoc", "educ"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    for name in datasets.list_datasets():
        if (shared / f"{name}.csv").is_file():
            pd.testing.assert_frame_equal(datasets.load_data(name), pd.read_csv(shared / f"{name}.csv"))


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="available: \\['radon_all', 'radon_mn', 'wells'\\]"):
        datasets.load_data("radon_xx")
