"""The ``hbstan`` command line, driven as a user would: ``python -m hbstan ...`` in a subprocess."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hbstan import cli, io
from hbstan import compare as hbstan_compare
from hbstan import pooling as hbstan_pooling
from hbstan import priors as hbstan_priors

ROOT = Path(__file__).resolve().parents[1]
FORMULA = "log_radon ~ 1 + floor + (1 | county)"
SAMPLER = ["--chains", "2", "--draws", "200", "--warmup", "200", "--seed", "7"]
COMMANDS = ["render", "compile", "fit", "summary", "diagnose", "predict", "compare-pymc", "compare-pooling",
            "install-cmdstan", "doctor", "demo"]


def hbstan(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hbstan ARGS``; stdout and stderr captured as text."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "hbstan", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def assert_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit code 1, one line ``hbstan: error: ...`` naming the problem, no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("hbstan: error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory, radon: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("data") / "radon.csv"
    radon.iloc[:300].to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------ usage, help
def test_help_and_usage_errors() -> None:
    proc = hbstan("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout
    assert hbstan().returncode == 2  # no command
    proc = hbstan("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: hbstan {command}" in capsys.readouterr().out


def test_usage_errors_exit_2(csv: Path, tmp_path: Path) -> None:
    proc = hbstan("fit", FORMULA, "--data", csv)  # no --out
    assert proc.returncode == 2 and "--out" in proc.stderr
    proc = hbstan("render", "--data", csv)  # no formula
    assert proc.returncode == 2 and "FORMULA" in proc.stderr
    proc = hbstan("render", FORMULA)  # no data
    assert proc.returncode == 2 and "--data" in proc.stderr
    proc = hbstan("fit", FORMULA, "--data", csv, "--out", tmp_path, "--chains", "two")
    assert proc.returncode == 2 and "invalid int value" in proc.stderr


# ------------------------------------------------------------------------------------ render
def test_render_needs_no_cmdstan(csv: Path) -> None:
    proc = hbstan("render", FORMULA, "--data", csv, "--group-predictor", "county=log_uppm",
                  env={"CMDSTAN": "/nonexistent/cmdstan"})
    assert proc.returncode == 0, proc.stderr
    assert "data {" in proc.stdout and "model {" in proc.stdout
    assert "county" not in proc.stdout.split("*/")[-1].split("data {", 1)[1]  # no user strings in code


def test_render_from_a_spec_file(csv: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    rel = os.path.relpath(csv, tmp_path)
    spec.write_text(
        f'formula = "{FORMULA}"\ndata = "{rel}"\npooling = "hierarchical"\n'
        '[group_predictors]\ncounty = ["log_uppm"]\n'
        '[priors]\nIntercept = "Normal(0, 10)"\nsd = "HalfCauchy(1)"\n'
    )
    from_spec = hbstan("render", "--spec", spec, cwd=ROOT)  # data path relative to the spec file
    direct = hbstan("render", FORMULA, "--data", csv, "--pooling", "hierarchical", "--group-predictor",
                    "county=log_uppm", "--prior", "Intercept=Normal(0, 10)", "--prior", "sd=HalfCauchy(1)")
    assert from_spec.returncode == 0, from_spec.stderr
    assert from_spec.stdout == direct.stdout
    assert "cauchy" in from_spec.stdout


# --------------------------------------------------------------------------------- bad input
def test_missing_column(csv: Path) -> None:
    assert_error(hbstan("render", "log_radon ~ floor + (1 | cnty)", "--data", csv), "'cnty'", "county")
    assert_error(hbstan("render", "log_radon ~ flor", "--data", csv), "'flor'")


def test_unreadable_csv(tmp_path: Path) -> None:
    assert_error(hbstan("render", FORMULA, "--data", tmp_path / "nope.csv"), "nope.csv", "does not exist")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    assert_error(hbstan("render", FORMULA, "--data", binary), "cannot read", "binary.csv")
    assert_error(hbstan("render", FORMULA, "--data", tmp_path), "is a directory")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_error(hbstan("render", FORMULA, "--data", empty), "empty.csv")


def test_bad_options(csv: Path, tmp_path: Path) -> None:
    assert_error(hbstan("render", FORMULA, "--data", csv, "--family", "gausian"), "unknown family 'gausian'", "poisson")
    assert_error(hbstan("render", FORMULA, "--data", csv, "--pooling", "partial"), "unknown pooling 'partial'")
    assert_error(hbstan("render", FORMULA, "--data", csv, "--prior", "Intercept=Normal(0, -1)"), "Intercept", "positive")
    assert_error(hbstan("render", FORMULA, "--data", csv, "--prior", "Intercept=eval('1')"), "unknown prior family 'eval'")
    assert_error(hbstan("render", FORMULA, "--data", csv, "--prior", "Intercep=Normal(0, 1)"), "unknown prior name 'Intercep'")
    assert_error(hbstan("render", FORMULA, "--data", csv, "--group-predictor", "log_uppm"), "GROUP", "log_uppm")
    spec = tmp_path / "bad.toml"
    spec.write_text(f'formula = "{FORMULA}"\ndata = "{csv}"\nfamly = "gaussian"\n')
    assert_error(hbstan("render", "--spec", spec), "unknown key 'famly'")
    assert_error(hbstan("render", "--spec", tmp_path / "missing.toml"), "missing.toml", "does not exist")
    assert_error(hbstan("fit", FORMULA, "--data", csv, "--out", tmp_path / "r", "--chains", "0"), "--chains", "at least 1")


def test_existing_run_dir_is_refused(csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "idata.nc").write_text("an old run")
    proc = hbstan("fit", FORMULA, "--data", csv, "--out", run, *SAMPLER)  # refused before sampling
    assert_error(proc, str(run), "already exists", "--overwrite")
    assert (run / "idata.nc").read_text() == "an old run"
    assert_error(hbstan("compile", FORMULA, "--data", csv, "--out", run), "--overwrite")


def test_not_a_run_dir(tmp_path: Path) -> None:
    assert_error(hbstan("summary", tmp_path), "not an hbstan run directory")
    assert_error(hbstan("diagnose", tmp_path / "missing"), "does not exist")
    assert_error(hbstan("predict", tmp_path, "--data", tmp_path / "x.csv"), "not an hbstan run directory")


# --------------------------------------------------------------------- comparison commands
class _Table:
    def __init__(self, text: str) -> None:
        self.text = text

    def to_markdown(self) -> str:
        return self.text


def test_compare_commands_call_the_compare_modules(
    csv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: dict[str, tuple] = {}

    def compare_backends(model, *, chains, draws, seed):  # type: ignore[no-untyped-def]
        calls["backends"] = (model, chains, draws, seed)
        return _Table("| backend table |")

    def compare_pooling(formula, data, family="gaussian", **kwargs):  # type: ignore[no-untyped-def]
        calls["pooling"] = (formula, data, family)
        calls["pooling_options"] = kwargs
        return _Table("| design | elpd_loo |\n| hierarchical | -1.0 |")

    monkeypatch.setattr(hbstan_compare, "compare_backends", compare_backends)
    monkeypatch.setattr(hbstan_pooling, "compare_pooling", compare_pooling)
    assert cli.main(["compare-pymc", FORMULA, "--data", str(csv), "--chains", "2", "--draws", "50", "--seed", "3"]) == 0
    model, chains, draws, seed = calls["backends"]
    assert model.formula == FORMULA and (chains, draws, seed) == (2, 50, 3)
    assert "| backend table |" in capsys.readouterr().out
    assert cli.main(["compare-pooling", FORMULA, "--data", str(csv), "--family", "gaussian"]) == 0
    formula, data, family = calls["pooling"]
    assert formula == FORMULA and family == "gaussian" and len(data) == 300
    assert "hierarchical" in capsys.readouterr().out
    # the model options of the command line (or a spec) reach every design
    assert cli.main(["compare-pooling", FORMULA, "--data", str(csv), "--group-predictor", "county=log_uppm",
                     "--prior", "sd=HalfNormal(0.5)", "--no-marginalize"]) == 0
    opts = calls["pooling_options"]
    assert opts["group_predictors"] == {"county": ["log_uppm"]} and opts["marginalize"] is False
    assert opts["priors"]["sd"] == hbstan_priors.HalfNormal(0.5)


# ------------------------------------------------------------------------ with CmdStan
@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, csv: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("cli") / "run"
    proc = hbstan("fit", FORMULA, "--data", csv, "--group-predictor", "county=log_uppm", "--prior",
                  "Intercept=Normal(0, 10)", *SAMPLER, "--out", out)
    return out, proc


@pytest.mark.cmdstan
def test_fit_writes_a_run_directory(run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, proc = run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "compiled model" in proc.stderr  # cache hit or miss is reported
    assert "log_uppm" in proc.stdout and "run saved in" in proc.stdout
    for name in ["spec.toml", "data.csv", "model.stan", "data.json", "idata.nc", "summary.csv",
                 "diagnostics.json", "trace.png", "forest.png"]:
        assert (out / name).is_file(), name
    assert len(list((out / "cmdstan").glob("*.csv"))) == 2
    fit = io.load(out)
    assert fit.settings["seed"] == 7 and fit.settings["chains"] == 2
    assert fit.model.priors["Intercept"] == io.parse_prior("Normal(0, 10)")
    assert fit.idata.posterior.sizes["draw"] == 200


@pytest.mark.cmdstan
def test_diagnose_exit_status_flags_a_short_run(tmp_path: Path, csv: Path) -> None:
    out = tmp_path / "short"
    proc = hbstan("fit", FORMULA, "--data", csv, "--group-predictor", "county=log_uppm", "--prior",
                  "Intercept=Normal(0, 10)", "--chains", "2", "--warmup", "30", "--draws", "20", "--seed", "3",
                  "--out", out)
    assert proc.returncode == 0, proc.stderr
    proc = hbstan("diagnose", out)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # 40 draws cannot reach a bulk ESS of 400
    assert "WARNING:" in proc.stdout and "ESS" in proc.stdout


@pytest.mark.cmdstan
def test_summary_and_diagnose(run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = run
    proc = hbstan("summary", out)
    assert proc.returncode == 0, proc.stderr
    assert "1|county[county_001]" in proc.stdout and "r_hat" in proc.stdout
    proc = hbstan("summary", out, "--var", "sigma", "--var", "log_uppm")
    assert proc.returncode == 0 and len(proc.stdout.strip().splitlines()) == 3
    assert_error(hbstan("summary", out, "--var", "sigmaa"), "'sigmaa'")
    proc = hbstan("diagnose", out)
    ok = io.load_diagnostics(out).ok
    assert proc.returncode == (0 if ok else 3), proc.stderr
    assert "divergent transitions per chain" in proc.stdout and "R-hat" in proc.stdout
    assert ("WARNING:" in proc.stdout) == (not ok)


@pytest.mark.cmdstan
def test_predict_matches_the_python_api(run: tuple[Path, subprocess.CompletedProcess[str]], radon: pd.DataFrame,
                                        tmp_path: Path) -> None:
    out, _ = run
    new = pd.concat([radon.iloc[:4], radon.iloc[700:703]]).drop(columns="log_radon")
    new_csv = tmp_path / "new.csv"
    new.to_csv(new_csv, index=False)
    preds, draws_csv = tmp_path / "preds.csv", tmp_path / "draws.csv"
    proc = hbstan("predict", out, "--data", new_csv, "--seed", "5", "--out", preds, "--draws-out", draws_csv)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(preds)
    assert list(table.columns) == [*new.columns, "mean", "sd", "q5", "q95"]
    expected = io.load(out).predict(new, seed=5)  # same seed: identical draws
    flat = expected.values.reshape(-1, len(new))
    np.testing.assert_allclose(table["mean"], flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["q95"], np.quantile(flat, 0.95, axis=0), rtol=1e-12)
    assert (table["q5"] < table["mean"]).all() and (table["mean"] < table["q95"]).all()
    draws = pd.read_csv(draws_csv)
    assert draws.shape == (400, 2 + len(new))
    np.testing.assert_array_equal(draws[[str(i) for i in range(len(new))]].to_numpy(), flat)
    # stdout, kind=mean, and refusing to overwrite
    proc = hbstan("predict", out, "--data", new_csv, "--kind", "mean", "--seed", "5")
    assert proc.returncode == 0 and proc.stdout.startswith("county,floor,log_uppm,mean,sd,q5,q95")
    assert_error(hbstan("predict", out, "--data", new_csv, "--out", preds), "already exists", "--overwrite")
    new.drop(columns="floor").to_csv(new_csv, index=False)
    assert_error(hbstan("predict", out, "--data", new_csv), "'floor'")


@pytest.mark.cmdstan
def test_spec_of_a_run_reproduces_it(run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    out, _ = run
    again = tmp_path / "again"
    again.mkdir()
    (again / "summary.csv").write_text("stale")
    (again / "notes.txt").write_text("mine")
    proc = hbstan("fit", "--spec", out / "spec.toml", "--out", again, "--quiet")
    assert_error(proc, "already exists")
    proc = hbstan("fit", "--spec", out / "spec.toml", "--out", again, "--overwrite", "--quiet", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # --quiet
    assert (again / "notes.txt").read_text() == "mine"
    assert (again / "summary.csv").read_text() != "stale"
    a, b = io.load(out), io.load(again)
    assert a.idata.posterior.equals(b.idata.posterior)  # same spec, data and seed (only created_at differs)
    assert io.model_spec(a.model) == io.model_spec(b.model)
    assert (out / "spec.toml").read_text() == (again / "spec.toml").read_text()


@pytest.mark.cmdstan
def test_compile_then_run_cmdstan_directly(csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "compiled"
    proc = hbstan("compile", FORMULA, "--data", csv, "--out", out, "--chains", "1", "--draws", "50",
                  "--warmup", "50", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    for name in ("model.stan", "model", "data.json", "spec.toml", "data.csv"):
        assert (out / name).is_file(), name
    assert os.access(out / "model", os.X_OK)
    command = proc.stdout.strip().splitlines()[-1]
    argv = shlex.split(command)
    assert argv[0] == str((out / "model").resolve()) and "sample" in argv
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    draws = pd.read_csv(out / "output.csv", comment="#")
    assert len(draws) == 50 and "b_Intercept" in draws.columns
    assert json.loads((out / "data.json").read_text())["N"] == 300


# ------------------------------------------------------------------ install-cmdstan and doctor
@pytest.mark.cmdstan
def test_install_cmdstan_with_one_installed_does_nothing_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    from hbstan.backend import find_cmdstan

    assert cli.main(["install-cmdstan"]) == 0
    out = capsys.readouterr().out
    assert "nothing to do" in out and find_cmdstan() in out


def test_install_cmdstan_failure_says_what_to_do_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No working CmdStan (CMDSTAN names an empty directory) and an installer that cannot reach
    GitHub (as on a machine without network): exit 1 with the two ways out."""
    import hbstan.backend

    asked: dict = {}

    def offline_installer(**kwargs):
        asked.update(kwargs)
        return False  # what cmdstanpy.install_cmdstan returns when the download fails

    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "empty"))
    monkeypatch.setattr(hbstan.backend, "install_cmdstan", offline_installer)
    assert cli.main(["install-cmdstan", "--version", "2.35.0", "--dir", str(tmp_path / "to")]) == 1
    err = capsys.readouterr().err
    assert "export CMDSTAN=" in err and "conda-forge" in err and "hbstan doctor" in err
    assert asked == {"version": "2.35.0", "dir": str(tmp_path / "to")}
    assert cli.main(["install-cmdstan", "--force"]) == 1
    assert asked["overwrite"] is True


def test_doctor_reports_versions_cmdstan_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import cmdstanpy

    from hbstan.doctor import cmdstan_status

    monkeypatch.setenv("HBSTAN_CACHE_DIR", str(tmp_path))
    (tmp_path / "programs").mkdir()
    (tmp_path / "programs" / "p.stan").write_bytes(b"x" * 2**20)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"cmdstanpy {cmdstanpy.__version__}" in out
    assert f"cache: {tmp_path}" in out and "programs/: 1.0 MB" in out and "runs/: absent" in out
    path, status = cmdstan_status()
    assert f"CmdStan: {status}" in out
    if path is not None:
        assert "stanc3" in out  # stanc --version ran


# ------------------------------------------------------------------ several responses
def _two_responses(n: int = 150, seed: int = 2) -> pd.DataFrame:
    """y1 = 1 + 0.5 x + e1, y2 = -1 + x + e2, correlated errors; yb a 0/1 response of x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    e = rng.multivariate_normal([0, 0], [[0.64, 0.576], [0.576, 1.44]], size=n)
    yb = rng.binomial(1, 1 / (1 + np.exp(-x)))
    return pd.DataFrame({"x": x, "y1": 1 + 0.5 * x + e[:, 0], "y2": -1 + x + e[:, 1], "yb": yb,
                         "g": [f"g{j}" for j in rng.integers(0, 5, n)]})


@pytest.fixture(scope="module")
def mv_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mv") / "two.csv"
    _two_responses().to_csv(path, index=False)
    return path


def test_several_formulas_render_the_model_of_several_responses(
    mv_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hbstan as hb

    def render(*args: str | Path) -> tuple[int, str, str]:  # in-process: `hbstan render ...`
        code = cli.main(["render", *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err

    def error(args: tuple, *needles: str) -> None:
        code, _, err = render(*args)
        assert code == 1 and "Traceback" not in err, err
        line = next(x for x in err.splitlines() if x.startswith("hbstan: error:"))
        assert all(n in line for n in needles), (needles, line)

    df = pd.read_csv(mv_csv)
    code, text, err = render("y1 ~ x + (1 | g)", "yb ~ x + y1", "--data", mv_csv, "--family", "gaussian,bernoulli",
                             "--link", "identity,probit", "--prior", "yb_y1=normal(0, 1)")
    assert code == 0, err
    model = hb.Model(["y1 ~ x + (1 | g)", "yb ~ x + y1"], df, family=["gaussian", "bernoulli"], link=[None, "probit"],
                     priors={"yb_y1": "normal(0, 1)"})
    assert text == model.stan_code
    # one family for all; rescor on by default for Gaussian responses, --no-rescor turns it off
    on = render("y1 ~ x", "y2 ~ x", "--data", mv_csv)[1]
    off = render("y1 ~ x", "y2 ~ x", "--data", mv_csv, "--no-rescor")[1]
    assert on == hb.Model(["y1 ~ x", "y2 ~ x"], df).stan_code and "multi_normal_cholesky" in on
    assert off == hb.Model(["y1 ~ x", "y2 ~ x"], df, rescor=False).stan_code != on
    # the same model from a spec file, as a user runs it
    spec = tmp_path / "spec.toml"
    spec.write_text(f'formula = ["y1 ~ x + (1 | g)", "yb ~ x + y1"]\ndata = "{mv_csv}"\nfamily = ["gaussian", "bernoulli"]\n'
                    'link = ["identity", "probit"]\n[priors]\nyb_y1 = "normal(0, 1)"\n')
    assert hbstan("render", "--spec", spec).stdout == text
    error(("y1 ~ x", "y2 ~ x", "--data", mv_csv, "--family", "gaussian,gaussian,poisson"),
          "'family' must be one string for every response or a list of 2 strings")
    error(("y1 ~ x", "y2 ~ x", "--data", mv_csv, "--sigma", "1"), "['sigma'] cannot be used with several formulas")
    error(("y1 ~ x", "--data", mv_csv, "--rescor"), "'rescor'", "several responses")
    error(("y1 ~ x", "yb ~ x", "--data", mv_csv, "--family", "gaussian,bernoulli", "--rescor"),
          "rescor=True", "'yb' has family='bernoulli'")
    assert_error(hbstan("compare-pymc", "y1 ~ x", "y2 ~ x", "--data", mv_csv), "takes one formula")


@pytest.fixture(scope="module")
def mv_run(tmp_path_factory: pytest.TempPathFactory, mv_csv: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    # the program of tests/test_multivariate.py's gaussian_fit (two Gaussian responses, rescor): no new compile
    out = tmp_path_factory.mktemp("mvcli") / "run"
    proc = hbstan("fit", "y1 ~ x", "y2 ~ x", "--data", mv_csv, "--prior", "y1_x=normal(0, 2)", *SAMPLER, "--out", out)
    return out, proc


@pytest.mark.cmdstan
def test_fit_summary_and_predict_of_several_responses(
    mv_run: tuple[Path, subprocess.CompletedProcess[str]], mv_csv: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hbstan.mvfit import MultivariateFit

    out, proc = mv_run
    assert proc.returncode == 0, proc.stderr
    assert "rescor" in proc.stdout and "y2_sigma" in proc.stdout and "run saved in" in proc.stdout
    for name in ["spec.toml", "data.csv", "model.stan", "data.json", "idata.nc", "summary.csv", "diagnostics.json",
                 "trace.png", "forest.png"]:
        assert (out / name).is_file(), name
    fit = io.load(out)
    assert isinstance(fit, MultivariateFit) and fit.model.rescor and fit.settings["seed"] == 7
    assert fit.model.priors["y1_x"] == io.parse_prior("normal(0, 2)")
    # the truth of the simulation (y1 = 1 + 0.5 x, y2 = -1 + x, residual correlation 0.6)
    table = fit.summary()
    for name, truth in {"y1_x": 0.5, "y2_x": 1.0, "rescor[y1, y2]": 0.6}.items():
        assert abs(table.loc[name, "mean"] - truth) < 4 * table.loc[name, "sd"], (name, table.loc[name])
    # the commands that read the run, in-process (`hbstan summary ...`, `hbstan predict ...`)
    assert cli.main(["summary", str(out), "--var", "rescor"]) == 0
    assert "rescor[y1, y2]" in capsys.readouterr().out
    new = pd.read_csv(mv_csv).head(5)[["x"]]
    new_csv, preds, joint = tmp_path / "new.csv", tmp_path / "preds.csv", tmp_path / "joint.csv"
    new.to_csv(new_csv, index=False)
    assert cli.main(["predict", str(out), "--data", str(new_csv), "--response", "y2", "--seed", "5", "--out", str(preds)]) == 0
    flat = fit.predict(new, response="y2", seed=5).values.reshape(-1, len(new))
    np.testing.assert_allclose(pd.read_csv(preds)["mean"], flat.mean(axis=0), rtol=1e-12)
    assert cli.main(["predict", str(out), "--data", str(new_csv), "--response", "y2", "--joint", "--seed", "5",
                     "--out", str(joint)]) == 0
    flat = fit.predict(new, response="y2", joint=True, seed=5).values.reshape(-1, len(new))
    np.testing.assert_allclose(pd.read_csv(joint)["mean"], flat.mean(axis=0), rtol=1e-12)
    capsys.readouterr()
    assert cli.main(["predict", str(out), "--data", str(new_csv)]) == 1
    err = capsys.readouterr().err
    assert "hbstan: error: this run has several responses: pass --response, one of ['y1', 'y2']" in err
    # the run's spec reproduces it
    again = tmp_path / "again"
    proc = hbstan("fit", "--spec", out / "spec.toml", "--out", again, "--quiet", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    assert io.load(again).idata.posterior.equals(fit.idata.posterior)
    assert (out / "spec.toml").read_text() == (again / "spec.toml").read_text()


# ---------------------------------------------------- every family, and distributional parameters
def _render(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``hbstan render ARGS`` in-process: exit code, stdout, stderr."""
    code = cli.main(["render", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    code, _, err = _render(capsys, *args)
    assert code == 1 and "Traceback" not in err, err
    return next(x for x in err.splitlines() if x.startswith("hbstan: error:"))


@pytest.fixture(scope="module")
def grid_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A response for every family (tests/reference_density.grid_data), as a CSV file."""
    from tests.reference_density import grid_data

    df = grid_data()
    path = tmp_path_factory.mktemp("grid") / "grid.csv"
    df.to_csv(path, index=False)
    return path, pd.read_csv(path)  # the frame as the command line reads it


# each family's response column of grid_data (a new family needs one here: the test below says so)
FAMILY_RESPONSE = {
    "gaussian": "y", "student": "y", "bernoulli": "yb", "binomial": "yk | trials(nt)", "poisson": "yp",
    "negbinomial": "yp", "gamma": "yg", "lognormal": "yl", "beta": "yq", "zero_inflated_poisson": "yz",
    "zero_inflated_negbinomial": "yz", "hurdle_poisson": "yz", "hurdle_negbinomial": "yz", "hurdle_lognormal": "yh",
    "cumulative": "yo", "categorical": "ycat",
}


def test_every_registered_family_and_link_is_accepted_and_listed_in_the_help(
    grid_csv: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    import hbstan as hb
    from hbstan.families import FAMILIES

    assert set(FAMILY_RESPONSE) == set(FAMILIES), "give the new family a response column in FAMILY_RESPONSE"
    path, df = grid_csv
    for name, fam in FAMILIES.items():
        for link in fam.links:
            formula = f"{FAMILY_RESPONSE[name]} ~ x + (1 | g)"
            code, text, err = _render(capsys, formula, "--data", path, "--family", name, "--link", link)
            assert code == 0, (name, link, err)
            assert text == hb.Model(formula, df, family=name, link=link).stan_code, (name, link)
    # --help lists them from the registry: every family, the links of each family that has several,
    # and the parameters that take a formula
    with pytest.raises(SystemExit):
        cli.main(["render", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, fam in FAMILIES.items():
        assert name in text
        if len(fam.links) > 1:
            assert ", ".join(fam.links) in text, name
        if fam.distributional:
            assert f"{name}: {', '.join(fam.distributional)}" in text, name
    assert "--dpar 'NAME ~ FORMULA'" in text and "bf(y ~ x, sigma ~ z)" in text


@pytest.mark.parametrize(
    ("family", "dpars"),
    [
        ("gaussian", {"sigma": "~ x + (1 | g)"}),
        ("zero_inflated_poisson", {"zi": "~ x"}),
        ("beta", {"phi": "~ x + (1 | h)"}),
        ("hurdle_lognormal", {"sigma": "~ x", "hu": "~ x + (1 | g)"}),
    ],
)
def test_dpar_renders_the_model_of_hbstan_formula(
    family: str, dpars: dict[str, str], grid_csv: tuple[Path, pd.DataFrame], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import hbstan as hb

    path, df = grid_csv
    formula = f"{FAMILY_RESPONSE[family]} ~ x + (1 | g)"
    expected = hb.Model(hb.Formula(formula, **dpars), df, family=family).stan_code
    # brms's spelling ('sigma ~ x') and the keyword's (sigma='~ x')
    for spell in (lambda k, v: f"{k} {v}", lambda k, v: f"{k}={v}"):
        flags = [a for k, v in dpars.items() for a in ("--dpar", spell(k, v))]
        code, text, err = _render(capsys, formula, "--data", path, "--family", family, *flags)
        assert code == 0, err
        assert text == expected
    # the same from a spec file's [dpars] table
    spec = tmp_path / "spec.toml"
    table = "\n".join(f'{k} = "{v}"' for k, v in dpars.items())
    spec.write_text(f'formula = "{formula}"\ndata = "{path}"\nfamily = "{family}"\n[dpars]\n{table}\n')
    code, text, err = _render(capsys, "--spec", spec)
    assert code == 0, err
    assert text == expected


def test_dpar_errors_name_the_parameter_and_the_valid_ones(
    grid_csv: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = grid_csv
    line = _error_line(capsys, "y ~ x", "--data", path, "--dpar", "sgima ~ x")
    assert "--dpar 'sgima': family='gaussian' has no parameter 'sgima'; its parameters that take a formula: ['sigma']" in line
    line = _error_line(capsys, "y ~ x", "--data", path, "--family", "student", "--dpar", "nu ~ x")
    assert "--dpar 'nu': family='student' cannot give 'nu' a formula; its parameters that take a formula: ['sigma']" in line
    line = _error_line(capsys, "yp ~ x", "--data", path, "--family", "poisson", "--dpar", "zi ~ x")
    assert "family='poisson' has no parameter 'zi'; none of its parameters takes a formula" in line
    assert "zero_inflated_poisson (zi)" in line  # ... and the families whose do
    line = _error_line(capsys, "y ~ x", "--data", path, "--dpar", "sigma")
    assert "--dpar takes a parameter and its formula, 'NAME ~ FORMULA'" in line and "got 'sigma'" in line
    line = _error_line(capsys, "y ~ x", "--data", path, "--dpar", "sigma ~ x", "--dpar", "sigma ~ x2")
    assert "--dpar gives 'sigma' two formulas" in line
    line = _error_line(capsys, "y ~ x; sigma ~ x", "--data", path, "--dpar", "sigma ~ x2")
    assert "--dpar 'sigma': the formula 'y ~ x; sigma ~ x' gives 'sigma' a formula already" in line
    line = _error_line(capsys, "y ~ x", "--data", path, "--dpar", "sigma ~ nope")
    assert "nope" in line  # a missing column in the parameter's formula, named by the model
    line = _error_line(capsys, "y ~ x", "y2 ~ x", "--data", path, "--dpar", "sigma ~ x")
    assert "a model of several responses does not support yet" in line
    # a spec file: the error names the file, the table and the key
    spec = tmp_path / "spec.toml"
    spec.write_text(f'formula = "y ~ x"\ndata = "{path}"\n[dpars]\nsgima = "~ x"\n')
    line = _error_line(capsys, "--spec", spec)
    assert f"{spec}: [dpars] 'sgima': family='gaussian' has no parameter 'sgima'" in line
    spec.write_text(f'formula = "y ~ x"\ndata = "{path}"\n[dpars]\nsigma = 1\n')
    assert f"{spec}: [dpars] 'sigma': the formula of a distributional parameter is a right-hand side" in _error_line(
        capsys, "--spec", spec)
    spec.write_text(f'formula = ["y ~ x", "yb ~ x"]\ndata = "{path}"\n[dpars]\nsigma = "~ x"\n')
    assert "[dpars] gives ['sigma'] a formula, but a model of several responses" in _error_line(capsys, "--spec", spec)


# a fit of the structure tests/test_distributional.py compiles (hbstan.Formula("y ~ x + (1 | g)",
# sigma="~ z"), non-centered): no new Stan program
@pytest.fixture(scope="module")
def dpar_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, pd.DataFrame]:
    import hbstan as hb
    from tests.test_distributional import FORMULA, OPTIONS

    rng = np.random.default_rng(12)
    n, J = 240, 8
    g, x, z = rng.integers(0, J, n), rng.normal(size=n), rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.4, J)[g] + rng.normal(0, np.exp(-0.5 + 0.8 * z))
    df = pd.DataFrame({"y": y, "x": x, "z": z, "g": [f"g{j}" for j in g]})
    with warnings.catch_warnings():  # short chains: what is checked is the round trip, not convergence
        warnings.simplefilter("ignore", hb.SamplingWarning)
        fit = hb.Model(FORMULA, df, **OPTIONS).sample(chains=2, draws=300, warmup=300, seed=8)
    run = tmp_path_factory.mktemp("dpar") / "run"
    io.save_fit(fit, run, figures=False)
    return fit, run, df


@pytest.mark.cmdstan
def test_save_and_load_a_distributional_fit(dpar_run: tuple[Any, Path, pd.DataFrame], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import hbstan as hb

    fit, run, df = dpar_run
    # spec.toml: the mean's formula, and the parameter's in a [dpars] table
    spec = io.read_spec(run / "spec.toml")
    assert spec["formula"] == "y ~ x + (1 | g)" and spec["dpars"] == {"sigma": "~ z"}
    assert '[dpars]\nsigma = "~ z"' in (run / "spec.toml").read_text()
    loaded = hb.load(run)
    assert loaded.model.formula == fit.model.formula and loaded.model.stan_code == fit.model.stan_code
    assert loaded.idata.posterior.equals(fit.idata.posterior)
    assert {"sigma_Intercept", "sigma_z"} <= set(loaded.idata.posterior.data_vars)
    # predictions of sigma: the loaded fit's equal the fit's and exp(sigma_Intercept + z sigma_z) of its draws
    new = df.iloc[:5]
    s_fit, s_loaded = fit.predict(new, kind="sigma"), loaded.predict(new, kind="sigma")
    np.testing.assert_allclose(s_loaded.values, s_fit.values)
    post = loaded.idata.posterior
    by_hand = np.exp(post["sigma_Intercept"].values[..., None] + post["sigma_z"].values[..., None] * new["z"].values)
    np.testing.assert_allclose(s_loaded.values, by_hand, rtol=1e-10)
    # saved again, loaded again: the same spec and draws
    io.save_fit(loaded, tmp_path / "again", figures=False)
    assert (tmp_path / "again" / "spec.toml").read_text() == (run / "spec.toml").read_text()
    assert hb.load(tmp_path / "again").idata.posterior.equals(fit.idata.posterior)
    # `hbstan render --spec` of the run gives the program that ran
    code, text, err = _render(capsys, "--spec", run / "spec.toml")
    assert code == 0, err
    assert text == fit.model.stan_code


@pytest.mark.cmdstan
def test_fit_from_a_dpars_spec_reproduces_the_python_fit(dpar_run: tuple[Any, Path, pd.DataFrame], tmp_path: Path) -> None:
    fit, run, _ = dpar_run
    proc = hbstan("fit", "--spec", run / "spec.toml", "--out", tmp_path / "cli", "--quiet", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    again = io.load(tmp_path / "cli")
    assert again.idata.posterior.equals(fit.idata.posterior)  # same program, data, settings and seed
    assert (tmp_path / "cli" / "spec.toml").read_text() == (run / "spec.toml").read_text()


def test_spec_dpars_and_the_one_string_formula_are_the_same_model(grid_csv: tuple[Path, pd.DataFrame]) -> None:
    import hbstan as hb

    _, df = grid_csv
    table = io.model_from_spec({"formula": "yz ~ x + (1 | g)", "family": "hurdle_negbinomial",
                                "dpars": {"shape": "~ x", "hu": "x + (1 | h)"}}, df)  # '~' optional
    one_string = io.model_from_spec({"formula": "yz ~ x + (1 | g); shape ~ x; hu ~ x + (1 | h)",
                                     "family": "hurdle_negbinomial"}, df)  # a spec written before [dpars]
    assert table.stan_code == one_string.stan_code
    assert table.formula == hb.Formula("yz ~ x + (1 | g)", shape="~ x", hu="~ x + (1 | h)")
    # either way the model's spec has the mean's formula and a [dpars] table
    for m in (table, one_string):
        spec = io.model_spec(m)
        assert spec["formula"] == "yz ~ x + (1 | g)" and spec["dpars"] == {"shape": "~ x", "hu": "~ x + (1 | h)"}
    assert "dpars" not in io.model_spec(hb.Model("y ~ x", df))
