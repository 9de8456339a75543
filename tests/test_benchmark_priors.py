"""The brms-style programs of the GLMM benchmark rows (``benchmarks/programs/glmm_*_brms.stan``)
must sample hbstan's posterior, or the ESS/s ratios of ``benchmarks/run.py`` compare unlike
models: their data preparation writes hbstan's default priors as data. Checked here against the
prior hyperparameters hbstan's own program receives (``Model.stan_data_for``), for every GLMM
case, so a change of a default prior that the benchmark does not follow fails here. No Stan
program is compiled.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import hbstan

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
glmm_data = pytest.importorskip("glmm_data")
programs = pytest.importorskip("programs")
run = pytest.importorskip("run")

GLMM = [name for name in run.CASES if name.startswith("glmm_")]

# hbstan's name of a prior hyperparameter -> the brms-style program's (InverseGamma's
# shape/scale are its alpha/beta; every group SD of a term with one effect shares one scale)
RENAME = {
    "prior_shape_shape": "prior_shape_alpha",
    "prior_shape_scale": "prior_shape_beta",
    "prior_phi_shape": "prior_phi_alpha",
    "prior_phi_scale": "prior_phi_beta",
}


def _brms_name(key: str, data: dict) -> str:
    if key in RENAME:
        return RENAME[key]
    if key.startswith("prior_sd_") and key not in data:
        return "prior_sd_scale"
    return key


@pytest.mark.parametrize("case", GLMM)
def test_brms_style_program_has_hbstan_default_priors(case):
    spec = run.CASES[case]
    df = glmm_data.simulate(spec["sim"])
    model = hbstan.Model(spec["formula"], data=df, **spec.get("options", {}))
    ours = {
        k: np.ravel(v)
        for k, v in model.stan_data_for().items()
        if k.startswith("prior_") and k != "prior_only"
    }
    theirs = programs.PROGRAMS[spec["programs"]["stan_brms"]].prep(df)
    assert ours, "hbstan's program has no prior hyperparameters"
    for key, value in ours.items():
        if key == "prior_b_loc":  # the brms-style programs centre every coefficient's prior on 0
            np.testing.assert_array_equal(value, 0.0, err_msg=f"{case}: {key}")
            continue
        name = _brms_name(key, theirs)
        assert name in theirs, f"{case}: the brms-style program has no {name} (for hbstan's {key})"
        other = np.broadcast_to(np.ravel(theirs[name]), value.shape)
        np.testing.assert_allclose(other, value, rtol=1e-12, err_msg=f"{case}: {key} vs {name}")
