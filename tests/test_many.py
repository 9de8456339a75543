"""Many fits (issue 17): the execution layer, fit_many, kfold and sbc, on a local thread pool
and on a 2-worker Dask LocalCluster whose workers start with an empty compile cache of their
own (so every Dask test also checks that the executable is shipped, not recompiled).

One Stan program for the whole file: the Gaussian varying-intercept model y ~ x + (1 | g)
(group effects integrated out), the structure of the radon tests; structure is data.
"""

from __future__ import annotations

import logging
import time

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hbstan
from hbstan.backend import cache_dir, compiled_model, export_program, install_program, program_hash
from hbstan.many import Failure, pinned_options, run_tasks, task_seeds

cmdstan = pytest.mark.cmdstan

FORMULA = "y ~ x + (1 | g)"
TRUTH = {"Intercept": 1.0, "x": 0.5, "sigma": 1.0, "1|g_sigma": 0.7}


def simulate(seed: int, J: int = 8, n: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    a = rng.normal(0, TRUTH["1|g_sigma"], J)
    y = TRUTH["Intercept"] + TRUTH["x"] * x + a[g] + rng.normal(0, TRUTH["sigma"], J * n)
    return pd.DataFrame({"x": x, "g": [f"g{j}" for j in g], "y": y})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate(5)


@pytest.fixture(scope="module")
def model(data: pd.DataFrame) -> hbstan.Model:
    m = hbstan.Model(FORMULA, data)
    assert m.marginalized
    return m


@pytest.fixture(scope="module")
def fit(model: hbstan.Model) -> hbstan.Fit:
    return model.sample(chains=2, draws=500, warmup=300, seed=1)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A 2-worker LocalCluster on loopback whose workers have an empty cache of their own."""
    distributed = pytest.importorskip("distributed")
    worker_cache = tmp_path_factory.mktemp("worker-cache")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
        env={"HBSTAN_CACHE_DIR": str(worker_cache)},
    ) as cluster, distributed.Client(cluster) as c:
        c.worker_cache = worker_cache  # type: ignore[attr-defined]
        yield c


# ------------------------------------------------------------------ seeds and the execution layer


def test_task_seeds_depend_on_the_seed_and_the_position_only() -> None:
    a, b = task_seeds(7, 5), task_seeds(7, 8)
    assert a == b[:5]  # a task's seed does not depend on how many tasks there are
    assert len(set(b)) == 8 and all(0 <= s < 2**31 for s in b)
    assert task_seeds(8, 5) != a


def test_run_tasks_local_pool_reports_failures_and_keeps_order() -> None:
    out = run_tasks(_sqrt_or_fail, [(4.0,), (-1.0,), (9.0,)], seed=1, workers=2, progress=False)
    assert out[0] == 2.0 and out[2] == 3.0
    assert isinstance(out[1], Failure)
    assert out[1].key == 1 and out[1].error == "ValueError" and "negative value -1.0" in out[1].message


def _sqrt_or_fail(v: float, *, seed: int) -> float:
    if v < 0:
        raise ValueError(f"negative value {v}")
    return float(np.sqrt(v))


@cmdstan
def test_exported_program_installs_into_an_empty_cache(model: hbstan.Model, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code = model.program()
    payload = export_program(code)
    assert payload["hash"] == program_hash(code)
    monkeypatch.setenv("HBSTAN_CACHE_DIR", str(tmp_path))
    assert install_program(payload) is True
    assert install_program(payload) is False  # already there
    exe = cache_dir() / "models" / payload["hash"] / "model"
    assert exe.read_bytes() == payload["exe"]
    t0 = time.perf_counter()
    compiled_model(code)  # found, not compiled (a compile takes 40 s or more)
    assert time.perf_counter() - t0 < 10
    # a sender with another CmdStan (another hash) is not installed: the worker compiles instead
    assert install_program({**payload, "hash": "0" * 64}) is False


# ------------------------------------------------------------------ fit_many


@cmdstan
def test_fit_many_on_dask_reports_one_failure_and_matches_one_local_worker(model, data, client) -> None:  # type: ignore[no-untyped-def]
    sets = {f"s{i}": simulate(100 + i) for i in range(3)}
    bad = simulate(200)
    bad.loc[3, "y"] = np.nan
    sets["bad"] = bad
    kw = dict(seed=4, chains=2, draws=200, warmup=200)
    many = hbstan.fit_many(model, sets, client=client, **kw)
    assert list(many) == ["s0", "s1", "s2", "bad"]
    assert set(many.fits) == {"s0", "s1", "s2"}
    failure = many.failures["bad"]
    assert failure.error == "DataError" and "'y'" in failure.message and "[3]" in failure.message
    for f in many.fits.values():
        assert f.timings["compile"] < 10  # the shipped executable, not a compile on the worker
        post = f.idata.posterior
        for name in ("Intercept", "x", "sigma"):
            v = post[name].values
            assert abs(v.mean() - TRUTH[name]) < 4 * v.std(), name
    assert list((client.worker_cache / "models").iterdir())  # installed into the workers' own cache
    # the same seed on one local thread gives the same draws
    local = hbstan.fit_many(model, sets, workers=1, **kw)
    for k in many.fits:
        for name in ("Intercept", "x", "sigma", "1|g"):
            np.testing.assert_array_equal(local[k].idata.posterior[name].values, many[k].idata.posterior[name].values)
    table = many.summary()
    assert set(table["segment"]) == {"s0", "s1", "s2", "bad"}
    assert (table["segment"] == "s0").sum() == 4  # Intercept, x, sigma, 1|g_sigma
    assert table.loc[table["segment"] == "bad", "error"].str.contains("DataError").all()
    # one DataFrame split by a column, on the local pool
    stacked = pd.concat([d.assign(store=k) for k, d in sets.items() if k != "bad"])
    by = hbstan.fit_many(model, stacked, by="store", seed=4, chains=2, draws=200, warmup=200, workers=2)
    assert set(by.fits) == {"s0", "s1", "s2"} and not by.failures


@cmdstan
def test_a_task_failing_on_a_dask_worker_is_a_result(model, data, client) -> None:  # type: ignore[no-untyped-def]
    from hbstan.many import _sample_parts

    bad = data.assign(x=data["x"].astype(object))
    bad.loc[5, "x"] = "five"
    run = dict(chains=1, draws=100, warmup=100, show_progress=False)
    opts = pinned_options(model)
    seen: list[tuple[int, int, int]] = []
    out = run_tasks(
        _sample_parts, [(FORMULA, data, opts, run), (FORMULA, bad, opts, run)], seed=2, client=client,
        programs=[(model.program(), None)], keys=["good", "bad"], progress=lambda *a: seen.append(a),
    )
    assert isinstance(out[0], dict) and "idata" in out[0]
    assert isinstance(out[1], Failure) and out[1].key == "bad" and "'x'" in out[1].message
    assert sorted(seen)[-1] == (2, 2, 1)  # the progress count: 2 of 2 finished, 1 failed


def test_fit_many_bad_arguments(model, data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="needs by="):
        hbstan.fit_many(model, data)
    with pytest.raises(ValueError, match="segment column 'store' is not in the data"):
        hbstan.fit_many(model, data, by="store")


# ------------------------------------------------------------------ held-out log-likelihood and kfold


@cmdstan
def test_log_lik_of_new_rows_is_the_normal_density(fit, data) -> None:  # type: ignore[no-untyped-def]
    from hbstan.predict import log_lik

    new = data.iloc[[0, 15, 33]].reset_index(drop=True)
    ll = log_lik(fit, new)
    post = fit.idata.posterior
    for i, row in new.iterrows():
        mu = post["Intercept"].values + post["x"].values * row["x"] + post["1|g"].sel(g=row["g"]).values
        ref = stats.norm.logpdf(row["y"], mu, post["sigma"].values)
        np.testing.assert_allclose(ll[:, :, i], ref, rtol=1e-10)
    # the fitted rows' log_lik is the same quantity
    np.testing.assert_allclose(log_lik(fit, data), fit.idata.log_likelihood["log_lik"].values, rtol=1e-10)
    with pytest.raises(hbstan.DataError, match="column 'y' is missing"):
        log_lik(fit, new.drop(columns="y"))


@cmdstan
def test_kfold_is_close_to_psis_loo_and_az_compare_takes_both(fit) -> None:  # type: ignore[no-untyped-def]
    kf = hbstan.kfold(fit, K=10, seed=3, workers=2, progress=False)
    loo = az.loo(fit.idata, pointwise=True)
    assert np.all(loo.pareto_k.values < 0.7)  # PSIS-LOO is reliable here, so the two should agree
    assert kf["n_data_points"] == 80 and kf["method"] == "10-fold"
    assert np.bincount(kf["folds"]).tolist() == [8] * 10
    assert abs(kf["elpd_loo"] - loo["elpd_loo"]) < 3.0  # of about -112, SE 6
    assert 0 < kf["p_loo"] < 15
    cmp = az.compare({"kfold": kf, "psis-loo": loo})
    assert set(cmp.index) == {"kfold", "psis-loo"}
    assert cmp.loc[cmp.index[1], "elpd_diff"] < 3.0
    # the same folds and seed give the same estimate
    again = hbstan.kfold(fit, K=10, seed=3, workers=1, progress=False)
    assert again["elpd_loo"] == kf["elpd_loo"]


@cmdstan
def test_leave_group_out_on_dask(fit, data, client) -> None:  # type: ignore[no-untyped-def]
    logo = hbstan.kfold(fit, K=None, group="g", seed=3, client=client, progress=False)
    folds = logo["folds"]
    assert len(np.unique(folds)) == 8
    assert all(len(np.unique(folds[data["g"].to_numpy() == g])) == 1 for g in data["g"].unique())
    # predicting a new group is harder than predicting a row of a known group
    kf = hbstan.kfold(fit, K=10, seed=3, workers=2, progress=False)
    assert logo["elpd_loo"] < kf["elpd_loo"]
    assert "leave-one-group-out" in logo["method"]


def test_kfold_bad_arguments(data) -> None:  # type: ignore[no-untyped-def]
    from hbstan.kfold import make_folds

    with pytest.raises(ValueError, match="K must be a whole number from 2"):
        make_folds(data, K=1)
    with pytest.raises(ValueError, match="number of groups of 'g' \\(8\\)"):
        make_folds(data, K=9, group="g")
    with pytest.raises(hbstan.DataError, match="group column 'county' is not in the model's data"):
        make_folds(data, K=3, group="county")


# ------------------------------------------------------------------ simulation-based calibration


def test_sbc_ranks_a_correlation_once() -> None:
    from hbstan.sbc import distinct_entries

    rng = np.random.default_rng(0)
    rho, sd = rng.uniform(-1, 1, 50), rng.uniform(0, 1, 50)
    entries = {"g_corr[1, x]": rho, "g_corr[x, 1]": rho.copy(), "1|g_sigma": sd, "x|g_sigma": sd + 1e-12}
    assert list(distinct_entries(entries)) == ["g_corr[1, x]", "1|g_sigma", "x|g_sigma"]


@cmdstan
def test_sbc_passes_with_the_right_prior_and_fails_with_a_wrong_one(model, client) -> None:  # type: ignore[no-untyped-def]
    kw = dict(n_sims=60, seed=11, client=client, chains=2, draws=200, warmup=200, thin=4, progress=False)
    right = hbstan.sbc(model, **kw)
    u = right.uniformity()
    assert right.ranks.shape == (60, 4) and right.max_rank == 100
    assert not right.failures
    assert right.ok, right.to_markdown()
    assert u["in_band"].all(), right.to_markdown()
    # fitting with a group-SD prior ten times too narrow: the posterior sits below the truth
    wrong_sd = model.priors["1|g_sigma"].sigma / 10
    wrong = hbstan.sbc(model, fit_priors={"1|g_sigma": hbstan.HalfNormal(wrong_sd)}, **kw)
    w = wrong.uniformity()
    assert not wrong.ok
    assert not w.loc["1|g_sigma", "uniform"] and not w.loc["1|g_sigma", "in_band"]
    assert wrong.ranks["1|g_sigma"].mean() > 0.7 * wrong.max_rank  # the truth ranks high
    text = wrong.to_markdown()
    assert "`1\\|g_sigma` |" in text and "**no**" in text
    axes = wrong.plot()
    assert axes.size >= 4
    import matplotlib.pyplot as plt

    plt.close("all")


@cmdstan
def test_sbc_ranks_do_not_depend_on_the_number_of_workers(model, client, caplog) -> None:  # type: ignore[no-untyped-def]
    kw = dict(n_sims=6, seed=5, chains=1, draws=100, warmup=100, thin=2, progress=False)
    with caplog.at_level(logging.WARNING, logger="hbstan"):
        one = hbstan.sbc(model, workers=1, **kw)
        two = hbstan.sbc(model, client=client, **kw)
    pd.testing.assert_frame_equal(one.ranks, two.ranks)
    pd.testing.assert_frame_equal(one.truth, two.truth)
    # the simulated responses are kept, the same on any number of workers, and a subset chosen
    # by them is an SBC of its own
    assert one.simulated.shape == (6, model.design.N)
    np.testing.assert_array_equal(one.simulated, two.simulated)
    mask = one.simulated.mean(axis=1) > np.median(one.simulated.mean(axis=1))
    sub = one.subset(mask)
    pd.testing.assert_frame_equal(sub.ranks, one.ranks[mask].reset_index(drop=True))
    np.testing.assert_array_equal(sub.simulated, one.simulated[mask])
    assert len(sub.ranks) == 3 and sub.max_rank == one.max_rank
    # each refit's sampler warnings, one list per simulation, kept by a subset; a model that
    # is not centered draws its prior from its own program, with nothing dropped
    assert len(one.fit_warnings) == 6 and all(isinstance(w, list) for w in one.fit_warnings)
    assert sub.fit_warnings == [w for w, m in zip(one.fit_warnings, mask, strict=True) if m]
    assert one.settings["prior_program"] == "the model's" and one.settings["dropped"] == 0
    with pytest.raises(ValueError, match="one bool per simulation"):
        one.subset([True])
