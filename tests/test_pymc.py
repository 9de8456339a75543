"""The PyMC backend and backend comparison.

* The PyMC model's log density equals the Stan program's (``log_prob``) up to a constant, on
  the unconstrained scale, for every design: the two are the same model, term by term.
* Fits of the same model on both backends agree; a fit with a deliberately wrong prior is
  flagged "disagree"; the known-sigma normal mean matches its conjugate posterior on both.
* The PyMC fit's InferenceData lines up with the Stan fit's (names, dims, coords, dtypes).
* The comparison rule is calibrated: i.i.d. draws of one distribution rarely "disagree".
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")

import hbstan  # noqa: E402
from hbstan.compare import compare_fits  # noqa: E402
from hbstan.pymc_backend import (  # noqa: E402
    PREFIX,
    CholeskyCorrTransform,
    build_pymc_model,
    sample_pymc,
)

cmdstan = pytest.mark.cmdstan


def _z(alpha: float, n_tests: int) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / (2 * n_tests)))


def simulate(n: int = 300, J: int = 12, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    a = rng.normal(0, 0.7, J)
    b = rng.normal(0, 0.3, J)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "x2": rng.normal(size=n),
            "g": [f"g{j:02d}" for j in g],
            "h": rng.choice(["a", "b", "c"], n),
            "u": (np.arange(J) * 0.1)[g],
        }
    )
    df["y"] = 1 + a[g] + (0.5 + b[g]) * x + 0.3 * df["u"] + rng.normal(0, 1, n)
    df["yb"] = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + a[g] + x)))).astype(int)
    df["nt"] = rng.integers(3, 9, n)
    df["yk"] = rng.binomial(df["nt"], 0.4)
    df["t"] = rng.uniform(0.5, 2, n)
    df["yp"] = rng.poisson(df["t"] * 2)
    return df


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return simulate()


# models sampled below (their Stan programs are compiled anyway) and further designs
SAMPLED = {
    "hierarchical gaussian": lambda d, **kw: hbstan.Model("y ~ x + (1 | g)", d, **kw),
    "pooled bernoulli": lambda d: hbstan.Model("yb ~ x + x2", d, family="bernoulli"),
    "known sigma": lambda d: hbstan.Model("y ~ 1", d, sigma=1.3, priors={"Intercept": hbstan.Normal(0, 10)}),
    "correlated with group predictor": lambda d, **kw: hbstan.Model(
        "y ~ x + (1 + x | g)", d, group_predictors={"g": "u"}, **kw
    ),
}
MORE = {
    "pooled gaussian, categorical": lambda d: hbstan.Model("y ~ x + h", d),
    "centered, truncated priors": lambda d: hbstan.Model(
        "y ~ x + (1 | g)", d, centered=True,
        priors={"sigma": hbstan.Normal(1, 0.5), "1|g_sigma": hbstan.StudentT(3, 0.5, 1), "x": hbstan.HalfNormal(2)},
    ),
    "unpooled bernoulli": lambda d: hbstan.Model("yb ~ x + (1 | g)", d, family="bernoulli", pooling="unpooled"),
    "correlated binomial": lambda d: hbstan.Model("yk | trials(nt) ~ x + (1 + x | g)", d, family="binomial"),
    "correlated centered, 3 effects": lambda d: hbstan.Model(
        "y ~ x + (1 + x + x2 | g)", d, centered=True, group_predictors={"g": "u"},
        priors={"g_corr": hbstan.LKJ(1.5), "sd": hbstan.HalfCauchy(1)},
    ),
    # (a group predictor on g: with two crossed terms with varying intercepts and none, the
    # program samples their means apart, which the PyMC model does not; see test_centering)
    "poisson exposure, crossed": lambda d: hbstan.Model(
        "yp ~ x + (1 | g) + (1 + x || h)", d, family="poisson", exposure="t", centered={"h": True},
        group_predictors={"g": "u"},
    ),
    "no intercept, group predictor": lambda d, **kw: hbstan.Model(
        "y ~ 0 + x + (1 | g)", d, group_predictors={"g": ["u"]}, **kw
    ),
}


# ------------------------------------------------------------------------------ no sampling
@pytest.mark.parametrize("K", [2, 3, 4])
def test_corr_transform_jacobian_matches_autodiff(K: int) -> None:
    import pytensor
    import pytensor.tensor as pt
    from pytensor.gradient import jacobian

    tr = CholeskyCorrTransform(K)
    y = pt.vector("y")
    c = tr.backward(y)
    f = pytensor.function(
        [y], [c, pt.log(pt.abs(pt.linalg.det(jacobian(c, y)))), tr.log_jac_det(y), tr.forward(c)]
    )
    rng = np.random.default_rng(K)
    for _ in range(3):
        yv = rng.normal(size=K * (K - 1) // 2)
        cv, lj_autodiff, lj, y_back = f(yv)
        assert float(lj) == pytest.approx(float(lj_autodiff), abs=1e-9)
        np.testing.assert_allclose(y_back, yv, atol=1e-9)
        tri = np.zeros((K, K))
        tri[np.triu_indices(K, 1)] = cv
        assert np.linalg.eigvalsh(tri + tri.T + np.eye(K)).min() > 0


@pytest.mark.parametrize("name", list(SAMPLED) + list(MORE))
def test_to_pymc_exposes_the_user_facing_variables(df: pd.DataFrame, name: str) -> None:
    m = {**SAMPLED, **MORE}[name](df)
    pmodel = build_pymc_model(m)
    dets = {v.name: v for v in pmodel.deterministics}
    assert list(dets) == [p.name for p in m.params]
    for p in m.params:
        assert tuple(pmodel.named_vars_to_dims.get(p.name, ())) == tuple(p.dims)
        for dim, labels in (p.coords or {}).items():
            assert list(pmodel.coords[dim]) == list(labels)
    assert all(v.name.startswith(PREFIX) for v in pmodel.free_RVs)
    (obs,) = pmodel.observed_RVs
    assert obs.name == m.design.response
    assert not build_pymc_model(m, prior_only=True).observed_RVs


def test_sample_pymc_rejects_bad_options(df: pd.DataFrame) -> None:
    m = SAMPLED["known sigma"](df)
    with pytest.raises(ValueError, match="valid values.*nutpie"):
        sample_pymc(m, nuts_sampler="bogus")
    with pytest.raises(ValueError, match="chains must be a positive integer"):
        sample_pymc(m, chains=0)
    with pytest.raises(ValueError, match="pointwise must be 'auto', 'python' or False"):
        sample_pymc(m, pointwise="stan")
    with pytest.raises(ValueError, match="threads_per_chain"):
        sample_pymc(m, threads_per_chain=2)
    with pytest.raises(ValueError, match="inits as a dict"):
        sample_pymc(m, inits=0.5)
    import importlib.util

    if importlib.util.find_spec("nutpie") is None:
        with pytest.raises(ImportError, match="pip install nutpie"):
            sample_pymc(m, nuts_sampler="nutpie")


def _fake_idata(rng: np.random.Generator, shift: float = 0.0, chains: int = 4, draws: int = 500):
    import arviz as az

    P = 25
    a = rng.normal(size=(chains, draws, P))
    a[..., 0] += shift
    return az.from_dict(
        posterior={"b": a, "s": np.exp(rng.normal(size=(chains, draws)))},
        coords={"k": [f"k{i}" for i in range(P)]},
        dims={"b": ["k"]},
    )


def test_comparison_rule_is_calibrated_and_sensitive() -> None:
    rng = np.random.default_rng(5)
    alarms = 0
    for _ in range(20):  # i.i.d. draws of one distribution: P(false "disagree") <= 1% each
        c = compare_fits(_fake_idata(rng), _fake_idata(rng))
        assert c.n_params == 26 and c.n_tests == 52
        assert c.threshold == pytest.approx(_z(0.01, 52))
        alarms += c.verdict != "agree"
    assert alarms <= 2  # P(>= 3 of 20 | rate 1%) ~ 0.1%
    # a shift of 0.5 sd in one of 26 parameters is caught
    c = compare_fits(_fake_idata(rng), _fake_idata(rng, shift=0.5))
    assert c.verdict == "disagree"
    assert c.table.loc["b[k0]", "verdict"] == "disagree"
    assert (c.table.drop(index="b[k0]")["verdict"] == "agree").sum() >= 24
    # chains stuck in different places: "not converged", whatever z says
    stuck = _fake_idata(rng)
    stuck.posterior["b"][0] += 3.0
    assert compare_fits(stuck, _fake_idata(rng)).verdict == "not converged"
    md = c.to_markdown()
    assert md.startswith("**a vs b: disagree**") and "| b[k0] |" in md and "| fit |" in md


def test_compare_fits_rejects_bad_input() -> None:
    rng = np.random.default_rng(1)
    import arviz as az

    other = az.from_dict(posterior={"zzz": rng.normal(size=(2, 50))})
    with pytest.raises(ValueError, match="share no posterior variable"):
        compare_fits(_fake_idata(rng), other)
    with pytest.raises(ValueError, match="alpha must be in"):
        compare_fits(_fake_idata(rng), _fake_idata(rng), alpha=2)
    with pytest.raises(ValueError, match="needs hbstan Fit objects"):
        compare_fits(1, 2)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ with CmdStan
def _stan_params(m: hbstan.Model, point: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stan parameter values from a PyMC point (constrained values of the free variables)."""
    out = {}
    for key, v in point.items():
        name = key[len(PREFIX):]
        v = np.asarray(v)
        if name.startswith("L_"):
            K = m.design.all_blocks[int(name[2:]) - 1].M
            tri = np.zeros((K, K))
            tri[np.triu_indices(K, 1)] = v
            v = np.linalg.cholesky(tri + tri.T + np.eye(K))
        elif name.startswith("z_") and m.design.all_blocks[int(name[2:]) - 1].pooling == "hierarchical":
            v = v.T  # PyMC holds z as (J, M), Stan as (M, J)
        out[name] = v
    # a term centered on the intercept holds a = r + Intercept (first column) in both programs;
    # the program also centers its slopes on their coefficients (a shift by b: unit Jacobian)
    for blk in m.structure()[0]["blocks"]:
        if blk["centered"] and blk["on_intercept"]:
            assert f"a_{blk['i']}" in out and f"r_{blk['i']}" not in out
        if blk["center_slopes"]:
            a = out[f"a_{blk['i']}"] = out[f"a_{blk['i']}"].copy()
            for col, k in enumerate(m.slope_coefficients(blk["i"])):
                if k:
                    a[:, col] += out["b"][k - 1]
    return out


def _with_group_effects(make, df: pd.DataFrame) -> hbstan.Model:
    """The model with its group effects as sampled parameters, as in the PyMC model (a Stan
    program that integrates them out has a different parameter space)."""
    m = make(df)
    return make(df, marginalize=False) if m.marginalized else m


def _check_logp_matches_stan(m: hbstan.Model, tol: float = 1e-8) -> None:
    import pytensor

    from hbstan.backend import compiled_model

    cm = compiled_model(m.stan_code)
    pmodel = build_pymc_model(m)
    logp = pmodel.compile_logp(jacobian=True)
    constrained = pytensor.function(
        pmodel.value_vars, pmodel.replace_rvs_by_values(pmodel.free_RVs), on_unused_input="ignore"
    )
    rng = np.random.default_rng(1)
    ip = pmodel.initial_point()
    diffs = []
    for _ in range(4):
        point = {k: rng.normal(scale=0.7, size=np.shape(v)) for k, v in ip.items()}
        vals = constrained(*[point[v.name] for v in pmodel.value_vars])
        params = _stan_params(m, {rv.name: val for rv, val in zip(pmodel.free_RVs, vals)})
        lp_stan = float(cm.log_prob(params=params, data=m.stan_data, jacobian=True, sig_figs=14)["lp__"].iloc[0])
        diffs.append(float(logp(point)) - lp_stan)
    # the same density up to normalizing constants: the difference does not move
    assert max(diffs) - min(diffs) < tol, diffs


@cmdstan
@pytest.mark.parametrize("name", list(SAMPLED))
def test_pymc_log_density_equals_stan(df: pd.DataFrame, name: str) -> None:
    _check_logp_matches_stan(_with_group_effects(SAMPLED[name], df))


@cmdstan
@pytest.mark.slow
@pytest.mark.parametrize("name", list(MORE))
def test_pymc_log_density_equals_stan_more_designs(df: pd.DataFrame, name: str) -> None:
    _check_logp_matches_stan(_with_group_effects(MORE[name], df))


@pytest.fixture(scope="module")
def hier_fits(df: pd.DataFrame) -> tuple:
    m = SAMPLED["hierarchical gaussian"](df)
    stan = m.sample(chains=4, draws=1000, warmup=1000, seed=11)
    pymc = sample_pymc(m, chains=4, draws=1000, warmup=1000, seed=11)
    return m, stan, pymc


@cmdstan
def test_backends_agree_hierarchical_gaussian(hier_fits: tuple) -> None:
    _, stan, pymc = hier_fits
    c = compare_fits(stan, pymc)
    assert c.labels == ("stan", "pymc")
    assert c.verdict == "agree", c.to_markdown()
    assert c.n_params == 2 + 1 + 12 + 1  # Intercept, x, sigma, 12 groups, group sd
    assert set(c.timings.columns) >= {"compile", "sample", "convert", "min_ess_bulk_per_s"}
    assert set(pymc.timings) == {"compile", "sample", "convert"}
    assert (c.timings[["compile", "sample", "min_ess_bulk_per_s"]].to_numpy() > 0).all()
    # a fit compared with itself agrees exactly
    same = compare_fits(stan, stan)
    assert same.labels == ("stan_a", "stan_b") and same.verdict == "agree"
    assert np.nanmax(np.abs(same.table["z"])) == 0


@cmdstan
def test_wrong_prior_is_flagged(df: pd.DataFrame, hier_fits: tuple) -> None:
    _, stan, _ = hier_fits
    wrong = hbstan.Model("y ~ x + (1 | g)", df, priors={"x": hbstan.Normal(3, 0.1)})
    fit = sample_pymc(wrong, chains=4, draws=1000, warmup=1000, seed=11)
    c = compare_fits(stan, fit)
    assert c.verdict == "disagree", c.to_markdown()
    assert c.table.loc["x", "verdict"] == "disagree"
    assert abs(c.table.loc["x", "z"]) > 10 * c.threshold


@cmdstan
def test_bernoulli_backends_agree(df: pd.DataFrame) -> None:
    m = SAMPLED["pooled bernoulli"](df)
    stan = m.sample(chains=4, draws=500, warmup=500, seed=5)
    pymc = sample_pymc(m, chains=4, draws=500, warmup=500, seed=5)
    c = compare_fits(stan, pymc)
    assert c.verdict == "agree", c.to_markdown()
    np.testing.assert_allclose(
        pymc.idata.log_likelihood["log_lik"].mean(("chain", "draw")),
        stan.idata.log_likelihood["log_lik"].mean(("chain", "draw")),
        atol=0.02,
    )


@cmdstan
def test_known_sigma_normal_mean_matches_conjugate_posterior(df: pd.DataFrame) -> None:
    m = SAMPLED["known sigma"](df)
    y, s, tau = m.design.y, 1.3, 10.0
    prec = 1 / tau**2 + len(y) / s**2
    mean, sd = (y.sum() / s**2) / prec, 1 / math.sqrt(prec)
    fits = {
        "stan": m.sample(chains=2, draws=1000, warmup=500, seed=3),
        "pymc": sample_pymc(m, chains=2, draws=1000, warmup=500, seed=3),
    }
    crit = _z(0.01, 2 * len(fits))  # mean and sd on each backend
    for label, fit in fits.items():
        assert list(fit.posterior.data_vars) == ["Intercept"]
        row = fit.summary(round_to="none").loc["Intercept"]
        assert row["r_hat"] < 1.01, label
        assert abs(row["mean"] - mean) < crit * row["mcse_mean"], (label, row["mean"], mean)
        assert abs(row["sd"] - sd) < crit * row["mcse_sd"], (label, row["sd"], sd)


@cmdstan
def test_idata_lines_up_for_correlated_model(df: pd.DataFrame, tmp_path) -> None:
    m = SAMPLED["correlated with group predictor"](df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hbstan.SamplingWarning)  # short runs: low ESS
        stan = m.sample(chains=2, draws=150, warmup=150, seed=2, pointwise="stan")
        pymc = sample_pymc(m, chains=2, draws=150, warmup=150, seed=2)
    assert pymc.backend == "pymc" and pymc.idata.attrs["inference_library"] == "pymc"
    for group in ("posterior", "posterior_predictive", "log_likelihood", "observed_data", "sample_stats"):
        a, b = getattr(stan.idata, group), getattr(pymc.idata, group)
        assert list(a.data_vars) == list(b.data_vars), group
        assert dict(a.sizes) == dict(b.sizes), group
        for v in a.data_vars:
            assert a[v].dims == b[v].dims, (group, v)
            assert a[v].dtype == b[v].dtype, (group, v)
        for c in a.coords:
            np.testing.assert_array_equal(a[c].values, b[c].values)
    # the NumPy log-likelihood of the PyMC backend is the Stan program's, draw by draw
    from hbstan.pymc_backend import pointwise_draws

    spost = {v: stan.posterior[v].values for v in stan.posterior.data_vars}
    ll, _ = pointwise_draws(m, spost, np.random.default_rng(0))
    np.testing.assert_allclose(ll, stan.idata.log_likelihood["log_lik"].values, rtol=1e-4, atol=1e-4)
    post = pymc.posterior
    assert {"Intercept", "x", "sigma", "1|g", "x|g", "1|g_sigma", "x|g_sigma", "g_corr", "u"} == set(post.data_vars)
    np.testing.assert_allclose(post["g_corr"].sel(g_corr_effect="1", g_corr_effect_bis="1"), 1.0)
    # same interface as the Stan fit
    assert "Intercept" in pymc.summary().index
    assert pymc.diagnose().max_treedepth == 10
    new = df.head(4).assign(g=["g00", "g01", "new", "g02"])
    pred = pymc.predict(new, seed=1)
    assert pred.dims == ("chain", "draw", "__obs__") and pred.shape == (2, 150, 4)
    import matplotlib

    matplotlib.use("Agg")
    c = compare_fits(stan, pymc, confirm=False)  # one round: these short runs are for the layout only
    fig = c.plot(var_names=["Intercept", "x", "g_corr"])
    fig.savefig(tmp_path / "forest.png")
    assert (tmp_path / "forest.png").stat().st_size > 1000
    assert "| parameter |" in c.to_markdown()


@cmdstan
def test_compare_backends_runs_both(df: pd.DataFrame) -> None:
    from hbstan.compare import compare_backends

    m = SAMPLED["known sigma"](df)
    c = compare_backends(m, chains=2, draws=500, seed=1)
    assert c.labels == ("stan", "pymc")
    assert c.verdict == "agree", c.to_markdown()
    assert list(c.table.index) == ["Intercept"]


@pytest.mark.skipif(not hasattr(hbstan.Model, "to_pymc"), reason="Model.to_pymc / sample(backend=) not wired up yet")
def test_model_methods_and_exports(df: pd.DataFrame) -> None:
    import pymc as pm

    m = SAMPLED["known sigma"](df)
    assert isinstance(m.to_pymc(), pm.Model)
    assert hbstan.compare_fits is compare_fits
    with pytest.raises(ValueError, match="backend"):
        m.sample(backend="bogus")
    fit = m.sample(backend="pymc", chains=2, draws=200, warmup=200, seed=1)
    assert fit.backend == "pymc" and list(fit.posterior.data_vars) == ["Intercept"]
