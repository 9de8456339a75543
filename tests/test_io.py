"""Run directories: prior strings, specs, the data copy, and save -> load -> predict round trips."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan import io
from hbstan.priors import LKJ, Cauchy, Exponential, HalfCauchy, HalfNormal, HalfStudentT, Normal, StudentT

tomllib = io._tomllib()  # tomllib (Python 3.11+) or tomli

SAMPLE = {"chains": 2, "draws": 200, "warmup": 200, "seed": 11}


# ------------------------------------------------------------------------------------ priors
@pytest.mark.parametrize(
    "text, expected",
    [
        ("Normal(0, 10)", Normal(0, 10)),
        ("Normal(mu=0, sigma=10)", Normal(0, 10)),
        ("  normal( -1.5 ,2e1 ) ", Normal(-1.5, 20)),
        ("Normal(1, sigma=.5)", Normal(1, 0.5)),
        ("Normal()", Normal()),
        ("StudentT(3, 0, 2.5)", StudentT(3, 0, 2.5)),
        ("HalfNormal(2.5)", HalfNormal(2.5)),
        ("HALFCAUCHY(beta=1)", HalfCauchy(1)),
        ("HalfStudentT(nu=4, sigma=1E-1)", HalfStudentT(4, 0.1)),
        ("Exponential(0.1)", Exponential(0.1)),
        ("Cauchy(0, 5)", Cauchy(0, 5)),
        ("LKJ(eta=2)", LKJ(2)),
    ],
)
def test_parse_prior(text: str, expected: hbstan.Prior) -> None:
    assert io.parse_prior(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os').system('true')", "cannot read"),
        ("Normal(0, 1) + 1", "cannot read"),
        ("Weibull(2, 1)", "unknown prior family 'Weibull'"),
        ("Normal(0, -1)", "positive"),
        ("Normal(0, 1, 2)", "at most 2"),
        ("Normal(mu=0, mu=1)", "given twice"),
        ("Normal(loc=0)", "no argument 'loc'"),
        ("Normal(mu=0, 1)", "positional argument"),
        ("Normal(1+1)", "cannot read argument"),
        ("Normal(inf, 1)", "cannot read argument"),
        ("Normal(0, 1", "cannot read"),
    ],
)
def test_parse_prior_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="prior for 'Intercept'") as info:
        io.parse_prior(text, name="Intercept")
    assert message in str(info.value)


def test_format_prior_round_trips_exactly(rng: np.random.Generator) -> None:
    for _ in range(50):
        a, b, c = rng.normal() * 10.0 ** rng.integers(-5, 5), rng.gamma(2) * 10.0 ** rng.integers(-5, 5), rng.gamma(3)
        for prior in (Normal(a, b), StudentT(c, a, b), Cauchy(a, b), HalfNormal(b), HalfCauchy(b),
                      HalfStudentT(c, b), Exponential(b), LKJ(c)):
            assert io.parse_prior(io.format_prior(prior)) == prior


# -------------------------------------------------------------------------------------- TOML
def test_dumps_toml_round_trips() -> None:
    doc = {
        "formula": 'y | trials(n) ~ x + (1 + x || g) "quoted" \\ back',
        "sigma": 0.1 + 0.2,
        "dropna": True,
        "n": 3,
        "skipped": None,
        "priors": {"1|g_sigma": "HalfNormal(sigma=1.0)", "x[b]": "Normal(mu=0.0, sigma=2.5)", "plain": "LKJ(eta=2.0)"},
        "group_predictors": {"g": ["u", "v"]},
        "columns": {"c": {"dtype": "category", "categories": ["lo", "hi"], "ordered": True}, "é": "str"},
    }
    back = tomllib.loads(io.dumps_toml(doc, header="a header\nline two"))
    doc.pop("skipped")
    assert back == doc


# -------------------------------------------------------------------------------- data copy
def test_data_csv_round_trip_keeps_values_and_types(tmp_path: Path, rng: np.random.Generator) -> None:
    n = 200
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, size=n),
            "i": rng.integers(0, 5, size=n),
            "b": rng.random(n) < 0.5,
            "label": rng.choice(["001", "NA", "null", "a b", "x,y"], size=n),
            "cat": pd.Categorical(rng.choice(["lo", "mid", "hi"], size=n), categories=["mid", "lo", "hi"], ordered=True),
            "icat": pd.Categorical(rng.integers(1, 4, size=n)),
            "gap": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        }
    )
    cols = io.write_data_csv(df, tmp_path / "d.csv")
    back = io.read_data_csv(tmp_path / "d.csv", cols)
    pd.testing.assert_frame_equal(back, df)


# ------------------------------------------------------------------------ model spec round trip
def _toy(rng: np.random.Generator, n: int = 120) -> pd.DataFrame:
    g = rng.integers(0, 6, size=n)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "g": [f"grp{j}" for j in g],
            "h": rng.choice(["p", "q", "r"], size=n),
            "c": pd.Categorical(rng.choice(["lo", "mid", "hi"], size=n), categories=["mid", "hi", "lo"]),
            "u": np.linspace(-1, 1, 6)[g],
            "n": rng.integers(5, 15, size=n),
            "expo": rng.uniform(0.5, 2.0, size=n),
            "off": rng.normal(scale=0.1, size=n),
        }
    )
    df["y"] = 0.3 * x + rng.normal(size=n)
    df["k"] = rng.binomial(df["n"], 0.4)
    df["cnt"] = rng.poisson(2.0 * df["expo"])
    df["bin"] = (rng.random(n) < 0.5).astype(int)
    return df


MODELS = [
    ("y ~ x + c + (1 | g)", {"group_predictors": {"g": ["u"]}, "priors": {"Intercept": Normal(0, 10), "sd": HalfCauchy(1)}}),
    ("y ~ x + (1 + x | g)", {"priors": {"corr": LKJ(4), "b": StudentT(3, 0, 1)}, "centered": True}),
    ("y ~ x + (1 | g) + (1 | h)", {"centered": {"g": True, "h": False}, "sigma": 0.7}),
    ("k | trials(n) ~ x + (1 || g)", {"family": "binomial"}),
    ("k ~ x + (1 | g)", {"family": "binomial", "trials": "n"}),
    ("cnt ~ x + (1 | g)", {"family": "poisson", "exposure": "expo", "offset": "off"}),
    ("bin ~ x + z + (1 + x | g)", {"family": "bernoulli", "pooling": "unpooled"}),
    ("y ~ x + (1 + x | g)", {"pooling": "hierarchical", "priors": {"x|g_sigma": HalfNormal(0.5)}}),
    # options whose "auto" would resolve otherwise: the spec must record them
    ("y ~ x + (1 | g)", {"suff_stats": False}),
    ("bin ~ c + (1 | g)", {"family": "bernoulli", "aggregate": False}),
    ("bin ~ x + (1 | g)", {"family": "bernoulli", "aggregate": True}),
    ("k | trials(n) ~ x + (1 | g)", {"family": "binomial", "link": "cloglog"}),
    ("y ~ x + (1 | g); sigma ~ x", {}),
    ("y ~ x + (1 | g)", {"marginalize": False, "dropna": True}),
    ("cnt ~ x + (1 | g)", {"family": "poisson", "offset": "off"}),
]


def test_every_model_option_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    """The options table drives Model's keywords, the spec file and the CLI: each option is in
    the round trip above with a value other than its default, and is a keyword of Model and
    a flag of `hbstan fit`."""
    import inspect

    from hbstan.cli import build_parser
    from hbstan.options import MODEL_OPTIONS

    names = [o.name for o in MODEL_OPTIONS]
    assert list(inspect.signature(hbstan.Model).parameters)[2:] == names
    assert set(names) <= set(io.SPEC_KEYS)
    set_in_round_trip = {k for _, kw in MODELS for k, v in kw.items() if v != MODEL_OPTIONS[names.index(k)].default}
    assert set_in_round_trip == set(names)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "--help"])
    fit_help = capsys.readouterr().out
    assert all(o.flag in fit_help for o in MODEL_OPTIONS)


def _same_model(a: hbstan.Model, b: hbstan.Model) -> None:
    assert a.stan_code == b.stan_code
    assert a.priors == b.priors
    da, db = a.stan_data, b.stan_data
    assert da.keys() == db.keys()
    for k in da:
        np.testing.assert_array_equal(np.asarray(da[k]), np.asarray(db[k]), err_msg=k)
    assert [blk.levels for blk in a.design.blocks] == [blk.levels for blk in b.design.blocks]
    assert io.model_spec(a) == io.model_spec(b)


@pytest.mark.parametrize("formula, kwargs", MODELS, ids=[m[0] for m in MODELS])
def test_model_spec_rebuilds_the_same_model(tmp_path: Path, rng: np.random.Generator, formula: str, kwargs: dict) -> None:
    df = _toy(rng)
    model = hbstan.Model(formula, data=df, **kwargs)
    spec = io.model_spec(model)
    # through a TOML file and the CSV copy, as in a run directory
    cols = io.write_data_csv(model.data, tmp_path / "data.csv")
    io.write_spec({**spec, "data": "data.csv", "columns": cols}, tmp_path / "spec.toml")
    read = io.read_spec(tmp_path / "spec.toml")
    assert read["data"] == str((tmp_path / "data.csv").resolve())
    rebuilt = io.model_from_spec(read, io.read_data_csv(read["data"], read["columns"]))
    _same_model(model, rebuilt)


def test_model_spec_names_user_priors_only(rng: np.random.Generator) -> None:
    m = hbstan.Model("y ~ x + (1 | g)", data=_toy(rng), priors={"Intercept": Normal(0, 10)})
    assert io.model_spec(m)["priors"] == {"Intercept": "Normal(mu=0.0, sigma=10.0)"}
    assert "priors" not in io.model_spec(hbstan.Model("y ~ x + (1 | g)", data=_toy(rng)))


def test_model_spec_refuses_arrays(rng: np.random.Generator) -> None:
    df = _toy(rng)
    m = hbstan.Model("cnt ~ x", data=df, family="poisson", offset=df["off"].to_numpy())
    with pytest.raises(ValueError, match="offset='column'"):
        io.model_spec(m)
    m = hbstan.Model("k ~ x", data=df, family="binomial", trials=df["n"].to_numpy())
    with pytest.raises(ValueError, match="trials='column'"):
        io.model_spec(m)


# ------------------------------------------------------------------------------ spec files
def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_spec_user_file(tmp_path: Path, rng: np.random.Generator) -> None:
    (tmp_path / "sub").mkdir()
    _toy(rng).to_csv(tmp_path / "sub" / "toy.csv", index=False)
    path = _write(
        tmp_path / "sub" / "spec.toml",
        """
formula = "y ~ x + (1 | g)"
data = "toy.csv"
[group_predictors]
g = "u"
[priors]
Intercept = "Normal(0, 10)"
"1|g_sigma" = "HalfNormal(1)"
[sampler]
chains = 2
adapt_delta = 0.95
""",
    )
    spec = io.read_spec(path)
    assert spec["data"] == str((tmp_path / "sub" / "toy.csv").resolve())
    model = io.model_from_spec(spec, pd.read_csv(spec["data"]))
    assert model.priors["Intercept"] == Normal(0, 10)
    assert model.priors["1|g_sigma"] == HalfNormal(1)
    assert model.design.blocks[0].U_names == ["u"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('formla = "y ~ x"', "unknown key 'formla'"),
        ('data = "d.csv"', "no formula"),
        ("formula = 3", "'formula' must be a string"),
        ('formula = "y ~ x"\ndropna = "yes"', "'dropna' must be true or false"),
        ('formula = "y ~ x"\n[sampler]\nchains = 2.5', "sampler.chains must be an integer"),
        ('formula = "y ~ x"\n[sampler]\niterations = 2', "unknown sampler setting 'iterations'"),
        ('formula = "y ~ x"\n[priors]\nIntercept = "Weibull(1, 1)"', "prior for 'Intercept': unknown prior family"),
        ('formula = "y ~ x\n', "not valid TOML"),
    ],
)
def test_read_spec_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        io.read_spec(_write(tmp_path / "spec.toml", text))
    assert message in str(info.value)


def test_read_spec_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.read_spec(tmp_path / "nope.toml")


def test_netcdf_escapes_slashes(tmp_path: Path) -> None:
    import arviz as az

    idata = az.from_dict(
        posterior={"I(x / 2)": np.ones((2, 3)), "a%2Fb": np.zeros((2, 3)), "1|g": np.ones((2, 3, 2))},
        coords={"g/h": ["p/q", "r"]},
        dims={"1|g": ["g/h"]},
        attrs={"hbstan_formula": "y ~ I(x / 2)"},
    )
    io._to_netcdf(idata, tmp_path / "i.nc")
    back = io.read_idata(tmp_path / "i.nc")
    assert back.posterior.identical(idata.posterior)


def test_load_refuses_non_run_dirs(tmp_path: Path) -> None:
    with pytest.raises(io.RunDirError, match="does not exist"):
        io.load(tmp_path / "missing")
    with pytest.raises(io.RunDirError, match="not an hbstan run directory"):
        io.load(tmp_path)


def test_prepare_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert io.prepare_run_dir(run) == run and run.is_dir()
    io.prepare_run_dir(run)  # empty: fine
    (run / "summary.csv").write_text("old")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(io.RunDirError, match="already exists and is not empty .*--overwrite"):
        io.prepare_run_dir(run)
    io.prepare_run_dir(run, overwrite=True)
    assert not (run / "summary.csv").exists()
    assert (run / "notes.txt").read_text() == "mine"  # not hbstan's: left alone
    (tmp_path / "file").write_text("")
    with pytest.raises(io.RunDirError, match="not a directory"):
        io.prepare_run_dir(tmp_path / "file", overwrite=True)


# --------------------------------------------------------------------------- with CmdStan
@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, radon: pd.DataFrame) -> tuple[hbstan.Fit, Path]:
    """One small fit, sampled into RUN/cmdstan and saved as RUN."""
    run = tmp_path_factory.mktemp("io") / "run"
    df = radon.iloc[:300]
    model = hbstan.Model(
        "log_radon ~ 1 + floor + (1 | county)",
        data=df,
        group_predictors={"county": ["log_uppm"]},
        priors={"Intercept": Normal(0, 10), "sd": HalfNormal(0.5)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: R-hat and ESS warnings expected
        fit = model.sample(**SAMPLE, output_dir=str(run / io.CMDSTAN_DIR))
    io.save_fit(fit, run, spec={"dropna": True})
    return fit, run


@pytest.mark.cmdstan
def test_run_directory_contents(saved: tuple[hbstan.Fit, Path]) -> None:
    fit, run = saved
    for name in ["spec.toml", "data.csv", "model.stan", "data.json", "idata.nc", "summary.csv", "diagnostics.json",
                 "trace.png", "forest.png"]:
        assert (run / name).is_file(), name
    csvs = sorted((run / "cmdstan").glob("*.csv"))
    assert len(csvs) == 2
    assert (run / "model.stan").read_text() == fit.model.stan_code
    assert json.loads((run / "data.json").read_text())["N"] == 300
    for png in ("trace.png", "forest.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = pd.read_csv(run / "summary.csv", index_col=0)
    assert {"Intercept", "floor", "sigma", "log_uppm", "1|county_sigma"} <= set(summary.index)
    diag = json.loads((run / "diagnostics.json").read_text())
    assert diag["settings"]["seed"] == SAMPLE["seed"] and diag["versions"]["hbstan"] == hbstan.__version__
    spec = tomllib.loads((run / "spec.toml").read_text())
    assert spec["sampler"] == SAMPLE and spec["data"] == "data.csv" and spec["dropna"] is True
    assert spec["priors"]["Intercept"] == "Normal(mu=0.0, sigma=10.0)"


@pytest.mark.cmdstan
def test_load_gives_an_equal_fit(saved: tuple[hbstan.Fit, Path]) -> None:
    fit, run = saved
    back = io.load(run)
    assert isinstance(back, hbstan.Fit)
    assert set(back.idata.groups()) == set(fit.idata.groups())
    for group in fit.idata.groups():
        assert back.idata[group].identical(fit.idata[group]), group
    assert io.model_spec(back.model) == io.model_spec(fit.model)
    _same_model(fit.model, back.model)
    assert back.settings == fit.settings
    assert back.warnings == fit.warnings
    assert back.run_dir == run
    d1, d2 = fit.diagnose(), back.diagnose()
    assert (d1.divergences, d1.max_rhat, d1.messages) == (d2.divergences, d2.max_rhat, d2.messages)
    saved_diag = io.load_diagnostics(run)
    assert saved_diag.messages == d1.messages and saved_diag.ebfmi == pytest.approx(d1.ebfmi)


@pytest.mark.cmdstan
def test_predict_after_load_is_identical(saved: tuple[hbstan.Fit, Path], radon: pd.DataFrame) -> None:
    fit, run = saved
    back = io.load(run)
    new = pd.concat([radon.iloc[:5], radon.iloc[600:605]])  # seen and unseen counties
    assert not set(radon.iloc[600:605].county) & set(radon.iloc[:300].county)
    for kind in ("response", "mean"):
        a = fit.predict(new, kind=kind, seed=42)
        b = back.predict(new, kind=kind, seed=42)
        np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.cmdstan
def test_save_elsewhere_copies_cmdstan_output_and_refuses_to_clobber(
    saved: tuple[hbstan.Fit, Path], tmp_path: Path
) -> None:
    import cmdstanpy

    fit, _ = saved
    other = tmp_path / "copy"
    io.save_fit(fit, other, figures=False)
    assert not (other / "trace.png").exists()
    assert len(list((other / "cmdstan").glob("*.csv"))) == 2
    csvs = sorted(str(p) for p in (other / "cmdstan").glob("*.csv"))  # sorted: chain order
    mcmc = cmdstanpy.from_csv(csvs)  # readable by CmdStan's own tools
    lp = np.swapaxes(mcmc.draws(concat_chains=False)[:, :, 0], 0, 1)
    np.testing.assert_array_equal(lp, fit.idata.sample_stats["lp"].values)
    with pytest.raises(io.RunDirError, match="already exists and is not empty"):
        io.save_fit(fit, other, figures=False)
    (other / "notes.txt").write_text("mine")
    io.save_fit(fit, other, figures=False, overwrite=True)
    assert (other / "notes.txt").exists()
    back = io.load(other)
    assert back.idata.posterior.identical(fit.idata.posterior)
    assert math.isfinite(back.diagnose().max_rhat)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("normal(0, 2.5)", Normal(0, 2.5)),
        ("student_t(3, 0, 2.5)", StudentT(3, 0, 2.5)),
        ("exponential(1)", Exponential(1)),
        ("lkj(2)", LKJ(2)),
        ("lkj_corr_cholesky(4)", LKJ(4)),
        ("cauchy(0, 1)", Cauchy(0, 1)),
        ("inv_gamma(0.4, 0.3)", hbstan.InverseGamma(0.4, 0.3)),
    ],
)
def test_brms_spellings_of_priors(text: str, expected) -> None:
    assert io.parse_prior(text) == expected


def test_model_takes_prior_strings_with_located_errors(rng: np.random.Generator) -> None:
    df = _toy(rng)
    by_string = hbstan.Model("y ~ x + (1 + x | g)", df, priors={"x": "normal(0, 2.5)", "corr": "lkj(3)", "sd": "exponential(1)"})
    by_object = hbstan.Model("y ~ x + (1 + x | g)", df, priors={"x": Normal(0, 2.5), "corr": LKJ(3), "sd": Exponential(1)})
    _same_model(by_string, by_object)
    with pytest.raises(ValueError, match=r"prior for 'x': cannot read argument 'two' of 'normal\(0, two\)'"):
        hbstan.Model("y ~ x", df, priors={"x": "normal(0, two)"})
    with pytest.raises(ValueError, match=r"prior for 'x': unknown prior family 'weibull'"):
        hbstan.Model("y ~ x", df, priors={"x": "weibull(1, 2)"})
    with pytest.raises(ValueError, match="__import__"):  # never evaluated: read by the grammar
        hbstan.Model("y ~ x", df, priors={"x": "__import__('os').system('true')"})
