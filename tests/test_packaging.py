"""A wheel carries the templates: installed in a fresh venv, it renders and fits."""

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
    assert "site-packages" in hbstan.__file__, hbstan.__file__
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
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp / "dist").glob("hbstan-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], check=True)
    py = str(tmp / "venv" / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    return py


def _run(py: str, mode: str, tmp_path: Path) -> str:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    res = subprocess.run([py, "-c", SCRIPT, mode], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_wheel_renders(venv_python: str, tmp_path: Path) -> None:
    assert _run(venv_python, "render", tmp_path).strip() == "ok"


@pytest.mark.cmdstan
def test_wheel_fits(venv_python: str, tmp_path: Path) -> None:
    assert _run(venv_python, "fit", tmp_path).strip().endswith("ok")
