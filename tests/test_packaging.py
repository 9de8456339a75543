"""A wheel carries the templates and the data: installed on its own, it renders, loads and fits.

The wheel is installed into a directory of its own, put first on the path of the running
interpreter: its dependencies are those of the environment running the tests (a virtual
environment or not), and no other copy of hbstan is seen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, pandas as pd, hbstan
    assert hbstan.__file__.startswith(sys.argv[2]), hbstan.__file__
    assert len(hbstan.datasets.load_radon()) == 919  # the shipped copy: no HBSTAN_DATA_DIR here
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=80), "g": rng.choice(list("abcd"), 80)})
    df["y"] = 1 + 2 * df["x"] + rng.normal(size=80)
    m = hbstan.Model("y ~ x + (1 | g)", data=df)
    assert "parameters {" in m.stan_code
    if sys.argv[1] == "fit":
        fit = m.sample(chains=1, draws=200, warmup=200, seed=1)
        assert abs(float(fit.idata.posterior["x"].mean()) - 2) < 0.5
    print("ok")
    """
)


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp / "dist").glob("hbstan-*.whl")
    target = tmp / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


def _run(target: Path, mode: str, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HBSTAN_DATA_DIR")}
    env["PYTHONPATH"] = str(target)
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(target)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_wheel_renders(wheel_dir: Path, tmp_path: Path) -> None:
    assert _run(wheel_dir, "render", tmp_path).strip() == "ok"


@pytest.mark.cmdstan
def test_wheel_fits(wheel_dir: Path, tmp_path: Path) -> None:
    assert _run(wheel_dir, "fit", tmp_path).strip().endswith("ok")
