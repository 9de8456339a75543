"""Expert-style Stan programs written for the benchmark, with their data preparation.

Each program reads the radon DataFrame (columns ``county``, ``floor``, ``log_radon``) through
its own ``prep`` function, and ``quantities`` maps the fitted draws onto the user-facing
quantities hbstan reports (``Intercept`` on the original scale, ``floor``, ``sigma``, the
group SDs, the group deviations and the correlation), so that min bulk ESS and R-hat are
taken over the same set of quantities for every engine.

* ``*_loop``: the "hand-written loop" style of tutorials: one sampling statement per
  observation in a for-loop, non-centered group effects, vague priors.
* ``*_brms``: the style of brms's generated code: centered design ``Xc`` with a temporary
  ``Intercept``, non-centered ``r_1_1 = sd_1[1] * z_1[1]`` (``scale_r_cor`` for correlated
  effects), one ``normal_id_glm_lpdf`` call, brms's default student_t(3, ...) priors.
* ``glmm_*_brms``: the GLMM rows of issue 19 in the same brms style (simulated data of
  ``glmm_data.py``), but with hbstan's default priors, so that they sample hbstan's posterior;
  the newer families' rows (negbinomial, zip, cumulative, gamma, beta) write the likelihood
  as brms does for each family (a GLM function, a per-row function, or a vectorized density).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

DIR = Path(__file__).resolve().parent

__all__ = ["PROGRAMS", "Program"]


@dataclass
class Program:
    name: str
    prep: Callable[[pd.DataFrame], dict[str, Any]]
    # canonical name -> (Stan variable, function of its (chain, draw, ...) draws)
    quantities: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]

    @property
    def stan_file(self) -> Path:
        return DIR / f"{self.name}.stan"

    def extract(self, get: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
        cache: dict[str, np.ndarray] = {}
        out = {}
        for canon, (var, fn) in self.quantities.items():
            if var not in cache:
                cache[var] = get(var)
            out[canon] = fn(cache[var])
        return out


def _county_index(df: pd.DataFrame) -> tuple[np.ndarray, int]:
    codes, levels = pd.factorize(df["county"], sort=True)
    return codes + 1, len(levels)


def prep_loop(df: pd.DataFrame) -> dict[str, Any]:
    county, J = _county_index(df)
    return {
        "N": len(df),
        "J": J,
        "county": county,
        "x": df["floor"].to_numpy(float),
        "y": df["log_radon"].to_numpy(float),
    }


def _brms_default_prior(y: np.ndarray) -> tuple[float, float]:
    """brms's default ``student_t(3, round(median(y), 1), max(2.5, round(mad(y), 1)))``."""
    med = float(np.median(y))
    mad = 1.4826 * float(np.median(np.abs(y - med)))
    return round(med, 1), max(2.5, round(mad, 1))


def _prep_brms(df: pd.DataFrame, slopes: bool) -> dict[str, Any]:
    county, J = _county_index(df)
    y = df["log_radon"].to_numpy(float)
    x = df["floor"].to_numpy(float)
    loc, scale = _brms_default_prior(y)
    data: dict[str, Any] = {
        "N": len(df),
        "Y": y,
        "K": 2,
        "X": np.column_stack([np.ones(len(df)), x]),
        "Kc": 1,
        "N_1": J,
        "M_1": 2 if slopes else 1,
        "J_1": county,
        "Z_1_1": np.ones(len(df)),
        "prior_Intercept_loc": loc,
        "prior_scale": scale,
        "prior_only": 0,
    }
    if slopes:
        data["Z_1_2"] = x
        data["NC_1"] = 1
    return data


def prep_brms_vi(df: pd.DataFrame) -> dict[str, Any]:
    return _prep_brms(df, slopes=False)


def prep_brms_vs(df: pd.DataFrame) -> dict[str, Any]:
    return _prep_brms(df, slopes=True)


def _sd0(x: np.ndarray) -> float:
    return float(np.std(x))


def _group_index(df: pd.DataFrame, col: str) -> tuple[np.ndarray, int]:
    codes, levels = pd.factorize(df[col], sort=True)
    return codes + 1, len(levels)


def _prep_glmm(df: pd.DataFrame, y: str, xs: list[str], groups: list[str]) -> dict[str, Any]:
    """brms's data layout; hbstan's default priors on the logit scale (s_y = 1): Normal(0, 2.5)
    on the Intercept, Normal(0, 2.5 / sd(x)) on each coefficient, HalfNormal(1) on each SD."""
    n = len(df)
    X = df[xs].to_numpy(float)
    data: dict[str, Any] = {
        "N": n,
        "Y": df[y].to_numpy(int),
        "K": len(xs) + 1,
        "X": np.column_stack([np.ones(n), X]),
        "Kc": len(xs),
        "prior_Intercept_loc": 0.0,
        "prior_Intercept_scale": 2.5,
        "prior_b_scale": 2.5 / np.std(X, axis=0),
        "prior_sd_scale": 1.0,
        "prior_only": 0,
    }
    for k, g in enumerate(groups, start=1):
        data[f"J_{k}"], data[f"N_{k}"] = _group_index(df, g)
        data[f"M_{k}"] = 1
        data[f"Z_{k}_1"] = np.ones(n)
    return data


def prep_glmm_bernoulli(df: pd.DataFrame) -> dict[str, Any]:
    return _prep_glmm(df, "y", ["x1", "x2"], ["state", "age", "edu"])


def prep_glmm_binomial(df: pd.DataFrame) -> dict[str, Any]:
    data = _prep_glmm(df, "y", ["x"], ["site", "obs"])
    data["trials"] = df["n"].to_numpy(int)
    return data


def prep_glmm_poisson(df: pd.DataFrame) -> dict[str, Any]:
    """hbstan's defaults for a Poisson model with an exposure: Normal(log(mean(y / exposure)),
    2.5) on the Intercept, HalfNormal(1) and HalfNormal(1 / sd(year)) on the SDs, LKJ(2)."""
    n = len(df)
    year = df["year"].to_numpy(float)
    effort = df["effort"].to_numpy(float)
    count = df["count"].to_numpy(int)
    J, N_1 = _group_index(df, "site")
    return {
        "N": n,
        "Y": count,
        "K": 2,
        "X": np.column_stack([np.ones(n), year]),
        "Kc": 1,
        "offsets": np.log(effort),
        "N_1": N_1,
        "M_1": 2,
        "J_1": J,
        "Z_1_1": np.ones(n),
        "Z_1_2": year,
        "NC_1": 1,
        "prior_Intercept_loc": float(np.log(np.mean(count / effort))),
        "prior_Intercept_scale": 2.5,
        "prior_b_scale": [2.5 / _sd0(year)],
        "prior_sd_1_scale": [1.0, 1.0 / _sd0(year)],
        "prior_L_1_eta": 2.0,
        "prior_only": 0,
    }


def _prep_family(df: pd.DataFrame, y: str, group: str, loc: float, **aux: float) -> dict[str, Any]:
    """One predictor ``x`` and a varying intercept by ``group`` (the newer families' rows, issues
    15 and 19), hbstan's default priors: Normal(loc, 2.5) on the Intercept at the mean of x,
    where loc is the family's link of the response's mean; Normal(0, 2.5 / sd(x)) on x;
    HalfNormal(1) on the SD; ``aux``: the family's auxiliary prior's hyperparameters."""
    data = _prep_glmm(df, y, ["x"], [group])
    data["prior_Intercept_loc"] = loc
    return {**data, **aux}


def prep_glmm_negbinomial(df: pd.DataFrame) -> dict[str, Any]:
    """hbstan's defaults for a negative binomial model: Normal(log(mean(y)), 2.5) on the
    Intercept, InverseGamma(0.4, 0.3) on the shape, HalfNormal(1) and HalfNormal(1 / sd(x)) on
    the SDs, LKJ(2)."""
    n = len(df)
    x = df["x"].to_numpy(float)
    count = df["count"].to_numpy(int)
    J, N_1 = _group_index(df, "clinic")
    return {
        "N": n,
        "Y": count,
        "K": 2,
        "X": np.column_stack([np.ones(n), x]),
        "Kc": 1,
        "N_1": N_1,
        "M_1": 2,
        "J_1": J,
        "Z_1_1": np.ones(n),
        "Z_1_2": x,
        "NC_1": 1,
        "prior_Intercept_loc": float(np.log(np.mean(count))),
        "prior_Intercept_scale": 2.5,
        "prior_b_scale": [2.5 / _sd0(x)],
        "prior_shape_alpha": 0.4,
        "prior_shape_beta": 0.3,
        "prior_sd_1_scale": [1.0, 1.0 / _sd0(x)],
        "prior_L_1_eta": 2.0,
        "prior_only": 0,
    }


def prep_glmm_zip(df: pd.DataFrame) -> dict[str, Any]:
    """The Intercept's prior is centred on the log mean of the positive counts (hbstan takes the
    base family's response scale from them); Beta(1, 1) on zi."""
    y = df["count"].to_numpy(int)
    loc = float(np.log(np.mean(y[y > 0])))
    return _prep_family(df, "count", "site", loc, prior_zi_alpha=1.0, prior_zi_beta=1.0)


def prep_glmm_cumulative(df: pd.DataFrame) -> dict[str, Any]:
    """No intercept column: the thresholds get StudentT(3, 0, 2.5) each (hbstan's and brms's
    default); Normal(0, 2.5 / sd(x)) on x; HalfNormal(1) on the SD."""
    n = len(df)
    x = df["x"].to_numpy(float)
    rating = df["rating"].to_numpy(int)
    J, N_1 = _group_index(df, "rater")
    return {
        "N": n,
        "Y": rating,
        "nthres": int(rating.max()) - 1,
        "K": 1,
        "X": x[:, None],
        "N_1": N_1,
        "M_1": 1,
        "J_1": J,
        "Z_1_1": np.ones(n),
        "prior_Intercept_nu": 3.0,
        "prior_Intercept_loc": 0.0,
        "prior_Intercept_scale": 2.5,
        "prior_b_scale": [2.5 / _sd0(x)],
        "prior_sd_scale": 1.0,
        "prior_only": 0,
    }


def prep_glmm_gamma(df: pd.DataFrame) -> dict[str, Any]:
    """Normal(log(mean(y)), 2.5) on the Intercept, InverseGamma(0.4, 0.3) on the shape."""
    y = df["amount"].to_numpy(float)
    data = _prep_family(df, "amount", "region", float(np.log(np.mean(y))), prior_shape_alpha=0.4, prior_shape_beta=0.3)
    data["Y"] = y
    return data


def prep_glmm_beta(df: pd.DataFrame) -> dict[str, Any]:
    """Normal(logit(mean(y)), 2.5) on the Intercept, InverseGamma(0.4, 0.3) on phi."""
    y = df["cover"].to_numpy(float)
    m = float(np.mean(y))
    data = _prep_family(df, "cover", "field", float(np.log(m / (1 - m))), prior_phi_alpha=0.4, prior_phi_beta=0.3)
    data["Y"] = y
    return data


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _col(i: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: a[..., i]


PROGRAMS: dict[str, Program] = {
    "radon_vi_loop": Program(
        "radon_vi_loop",
        prep_loop,
        {
            "Intercept": ("mu_a", _same),
            "floor": ("beta", _same),
            "sigma": ("sigma_y", _same),
            "1|county_sigma": ("sigma_a", _same),
            "1|county": ("a", _same),
        },
    ),
    "radon_vs_loop": Program(
        "radon_vs_loop",
        prep_loop,
        {
            "Intercept": ("mu_a", _same),
            "floor": ("mu_b", _same),
            "sigma": ("sigma_y", _same),
            "1|county_sigma": ("tau", _col(0)),
            "floor|county_sigma": ("tau", _col(1)),
            "1|county": ("ab", _col(0)),
            "floor|county": ("ab", _col(1)),
            "county_corr": ("Omega", lambda a: a[..., 0, 1]),
        },
    ),
    "radon_vi_brms": Program(
        "radon_vi_brms",
        prep_brms_vi,
        {
            "Intercept": ("b_Intercept", _same),
            "floor": ("b", _col(0)),
            "sigma": ("sigma", _same),
            "1|county_sigma": ("sd_1", _col(0)),
            "1|county": ("r_1_1", _same),
        },
    ),
    "radon_vs_brms": Program(
        "radon_vs_brms",
        prep_brms_vs,
        {
            "Intercept": ("b_Intercept", _same),
            "floor": ("b", _col(0)),
            "sigma": ("sigma", _same),
            "1|county_sigma": ("sd_1", _col(0)),
            "floor|county_sigma": ("sd_1", _col(1)),
            "1|county": ("r_1_1", _same),
            "floor|county": ("r_1_2", _same),
            "county_corr": ("cor_1", _col(0)),
        },
    ),
    "glmm_bernoulli_brms": Program(
        "glmm_bernoulli_brms",
        prep_glmm_bernoulli,
        {
            "Intercept": ("b_Intercept", _same),
            "x1": ("b", _col(0)),
            "x2": ("b", _col(1)),
            "1|state_sigma": ("sd_1", _col(0)),
            "1|age_sigma": ("sd_2", _col(0)),
            "1|edu_sigma": ("sd_3", _col(0)),
            "1|state": ("r_1_1", _same),
            "1|age": ("r_2_1", _same),
            "1|edu": ("r_3_1", _same),
        },
    ),
    "glmm_binomial_brms": Program(
        "glmm_binomial_brms",
        prep_glmm_binomial,
        {
            "Intercept": ("b_Intercept", _same),
            "x": ("b", _col(0)),
            "1|site_sigma": ("sd_1", _col(0)),
            "1|obs_sigma": ("sd_2", _col(0)),
            "1|site": ("r_1_1", _same),
            "1|obs": ("r_2_1", _same),
        },
    ),
    "glmm_poisson_brms": Program(
        "glmm_poisson_brms",
        prep_glmm_poisson,
        {
            "Intercept": ("b_Intercept", _same),
            "year": ("b", _col(0)),
            "1|site_sigma": ("sd_1", _col(0)),
            "year|site_sigma": ("sd_1", _col(1)),
            "1|site": ("r_1_1", _same),
            "year|site": ("r_1_2", _same),
            "site_corr": ("cor_1", _col(0)),
        },
    ),
    "glmm_negbinomial_brms": Program(
        "glmm_negbinomial_brms",
        prep_glmm_negbinomial,
        {
            "Intercept": ("b_Intercept", _same),
            "x": ("b", _col(0)),
            "shape": ("shape", _same),
            "1|clinic_sigma": ("sd_1", _col(0)),
            "x|clinic_sigma": ("sd_1", _col(1)),
            "1|clinic": ("r_1_1", _same),
            "x|clinic": ("r_1_2", _same),
            "clinic_corr": ("cor_1", _col(0)),
        },
    ),
    "glmm_zip_brms": Program(
        "glmm_zip_brms",
        prep_glmm_zip,
        {
            "Intercept": ("b_Intercept", _same),
            "x": ("b", _col(0)),
            "zi": ("zi", _same),
            "1|site_sigma": ("sd_1", _col(0)),
            "1|site": ("r_1_1", _same),
        },
    ),
    "glmm_cumulative_brms": Program(
        "glmm_cumulative_brms",
        prep_glmm_cumulative,
        {
            "Intercept": ("b_Intercept", _same),
            "x": ("b", _col(0)),
            "1|rater_sigma": ("sd_1", _col(0)),
            "1|rater": ("r_1_1", _same),
        },
    ),
    "glmm_gamma_brms": Program(
        "glmm_gamma_brms",
        prep_glmm_gamma,
        {
            "Intercept": ("b_Intercept", _same),
            "x": ("b", _col(0)),
            "shape": ("shape", _same),
            "1|region_sigma": ("sd_1", _col(0)),
            "1|region": ("r_1_1", _same),
        },
    ),
    "glmm_beta_brms": Program(
        "glmm_beta_brms",
        prep_glmm_beta,
        {
            "Intercept": ("b_Intercept", _same),
            "x": ("b", _col(0)),
            "phi": ("phi", _same),
            "1|field_sigma": ("sd_1", _col(0)),
            "1|field": ("r_1_1", _same),
        },
    ),
}
