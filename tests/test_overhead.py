"""The shortcuts that keep hbstan's own work per fit small give exactly what the long ways give.

(No timings here: each test checks that a fast path and the path it replaces agree.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.render import render_program


def test_rendered_program_cache_gives_the_rendered_program(
    radon: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HBSTAN_CACHE_DIR", str(tmp_path))
    for formula in ("log_radon ~ floor + (1 | county)", "log_radon ~ floor + (1 + floor | county)"):
        for threads in (False, True):
            m = hbstan.Model(formula, radon)
            first = m.program(threads=threads)  # renders and stores
            again = hbstan.Model(formula, radon).program(threads=threads)  # read back
            fresh = render_program(m.structure(threads)[0])  # straight from the templates
            assert first == again == fresh
    assert len(list((tmp_path / "programs").glob("*.stan"))) == 4


def test_rendered_program_cache_key_covers_the_templates(
    radon: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edited template (any file under the templates directory) is never served a stale program."""
    import shutil

    from hbstan import render

    monkeypatch.setenv("HBSTAN_CACHE_DIR", str(tmp_path / "cache"))
    templates = tmp_path / "templates"
    shutil.copytree(render.templates_dir(), templates)
    monkeypatch.setattr(render, "templates_dir", lambda: templates)
    render._inputs_digest.cache_clear()
    monkeypatch.setattr(render, "_inputs_digest", render._inputs_digest)  # cleared again on exit
    m = hbstan.Model("log_radon ~ floor + (1 | county)", radon)
    ctx = m.structure()[0]
    before = render.program(ctx)
    assert render.program(ctx) == before  # read back
    family = templates / "families" / "gaussian.stan.j2"
    family.write_text(family.read_text() + "{#- edited -#}\n{% macro y_rep(m) %}normal_rng(mu, 2 * sigma){% endmacro %}\n")
    render._inputs_digest.cache_clear()
    after = render.program(ctx)
    assert after != before and "normal_rng(mu, 2 * sigma)" in after
    assert after == render.render_program(ctx, templates=templates)
    render._inputs_digest.cache_clear()


def test_diagnostics_without_numba_equal_arviz_defaults(rng: np.random.Generator) -> None:
    import arviz as az
    from arviz.utils import Numba

    from hbstan.fit import arviz_without_numba

    draws = {
        "iid": rng.normal(size=(4, 300, 3)),
        "autocorrelated": np.cumsum(rng.normal(size=(4, 300, 2)), axis=1) * 0.1 + rng.normal(size=(4, 300, 2)),
        "shifted": rng.normal(size=(4, 300)) + np.array([0.0, 0.0, 0.0, 1.0])[:, None],
    }
    idata = az.from_dict(posterior=draws, sample_stats={"energy": rng.normal(size=(4, 300))})
    before = Numba.numba_flag
    ref = (az.rhat(idata), az.ess(idata, method="bulk"), az.ess(idata, method="tail"), az.bfmi(idata))
    with arviz_without_numba():
        assert Numba.numba_flag is False
        ours = (az.rhat(idata), az.ess(idata, method="bulk"), az.ess(idata, method="tail"), az.bfmi(idata))
    assert Numba.numba_flag == before  # the user's setting is restored
    for a, b in zip(ref[:3], ours[:3]):
        for v in draws:
            np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-10)
    np.testing.assert_allclose(ref[3], ours[3], rtol=1e-10)
    assert float(ours[0]["shifted"]) > 1.1  # the check still sees chains that disagree


def test_replicated_gaussian_draws_are_rng_normal_draws(radon: pd.DataFrame) -> None:
    from hbstan.pointwise import linear_predictor_draws, log_lik_and_y_rep

    m = hbstan.Model("log_radon ~ floor + (1 | county)", radon)
    g = np.random.default_rng(3)
    C, D, J = 2, 7, m.design.blocks[0].J
    post = {
        "Intercept": g.normal(size=(C, D)),
        "floor": g.normal(size=(C, D)),
        "sigma": g.uniform(0.5, 1, size=(C, D)),
        "1|county": g.normal(size=(C, D, J)),
        "1|county_sigma": g.uniform(0.1, 1, size=(C, D)),
    }
    ll, rep = log_lik_and_y_rep(m, post, np.random.default_rng(11))
    rngs = np.random.default_rng(11).spawn(C)  # one generator per chain
    for c, rng in enumerate(rngs):
        eta = linear_predictor_draws(m, post, c)
        sigma = post["sigma"][c][:, None]
        assert np.array_equal(rep[c], rng.normal(eta, sigma))
        np.testing.assert_allclose(ll[c], -0.5 * ((m.design.y - eta) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi))


@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_pointwise_arrays_do_not_depend_on_the_number_of_cores(
    radon: pd.DataFrame, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hbstan.pointwise as pw

    df = radon.assign(count=np.round(np.exp(radon["log_radon"])).astype(int))
    formula = "log_radon ~ floor + (1 | county)" if family == "gaussian" else "count ~ floor + (1 | county)"
    m = hbstan.Model(formula, df, family=family)
    g = np.random.default_rng(4)
    C, D, J = 3, 5, m.design.blocks[0].J
    post = {
        "Intercept": g.normal(size=(C, D)),
        "floor": g.normal(size=(C, D)) * 0.3,
        "sigma": g.uniform(0.5, 1, size=(C, D)),
        "1|county": g.normal(size=(C, D, J)) * 0.3,
        "1|county_sigma": g.uniform(0.1, 1, size=(C, D)),
    }
    threaded = pw.log_lik_and_y_rep(m, post, np.random.default_rng(5))  # one thread per chain
    monkeypatch.setattr(pw.os, "cpu_count", lambda: 1)
    serial = pw.log_lik_and_y_rep(m, post, np.random.default_rng(5))
    for a, b in zip(threaded, serial):
        assert a.shape == (C, D, len(df))
        assert np.array_equal(a, b)
    assert not np.array_equal(threaded[1][0], threaded[1][1])  # chains draw different numbers


def test_arviz_is_imported_in_the_background_once() -> None:
    """A process's first fit imports ArviZ in a thread while CmdStan samples: in a fresh
    process the helper starts that import (and ArviZ is then usable), and once ArviZ is
    imported it starts nothing."""
    import subprocess
    import sys

    code = (
        "import sys; from hbstan.idata import import_arviz_in_background as f; "
        "assert 'arviz' not in sys.modules, 'imported before'; t = f(); assert t is not None; t.join(); "
        "import arviz; assert callable(arviz.from_dict); assert f() is None; print('ok')"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
