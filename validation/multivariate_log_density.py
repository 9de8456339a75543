"""Multivariate programs: the log density of each equals an independent one, over family combinations.

For every variant below (pairs of the five families a multivariate model takes, their links,
residual correlation, group terms in each design, group terms correlated across responses),
the program ``stan_templates/mv.stan.j2`` renders is compiled and its log density
(``CmdStanModel.log_prob``, Jacobian included) evaluated at six random points of the parameter
space; the PyMC model of the same spec (:func:`hbstan.mv_pymc.build_mv_pymc_model`, built from
the univariate PyMC builder and PyMC's own distributions) at the same points. A correct program
differs from it by a constant (the normalizing constants Stan drops): the spread of the
differences must stay below 1e-6. The program's pointwise ``log_lik`` at the first point is
also checked against SciPy: the sum over responses of each family's density (NumPy), or with
residual correlation SciPy's multivariate normal (t) of each row.

    python validation/multivariate_log_density.py [--only NAME]

Results: ``validation/results/multivariate_log_density.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hbstan  # noqa: E402
from hbstan.backend import compiled_model, quiet_cmdstanpy  # noqa: E402
from hbstan.mv_pymc import stan_params_from_pymc  # noqa: E402

# response column of each family in the data below
COLUMN = {"gaussian": "yg", "student": "yt", "bernoulli": "yb", "binomial": "yk | trials(nt)", "poisson": "yp"}
SECOND = {"gaussian": "yg2", "student": "yt2", "bernoulli": "yb2", "binomial": "yk2 | trials(nt)", "poisson": "yp2"}

# name: (formulas, families, options)
VARIANTS: dict[str, tuple[list[str], list[str], dict]] = {}
for fa in ("gaussian", "student", "bernoulli", "binomial", "poisson"):
    for fb in ("gaussian", "student", "bernoulli", "binomial", "poisson"):
        if fa <= fb:
            second = SECOND[fb] if fa == fb else COLUMN[fb]
            VARIANTS[f"{fa} + {fb}"] = ([f"{COLUMN[fa]} ~ x + (1 | g)", f"{second} ~ x + z"], [fa, fb], {"rescor": False})
VARIANTS.update({
    "gaussian + gaussian, rescor, correlated terms": (
        ["yg ~ x + (1 + x | g)", "yg2 ~ z + (1 | g)"], ["gaussian", "gaussian"], {}),
    "student + student, rescor (shared nu), unpooled term": (
        ["yt ~ x", "yt2 ~ x + (1 | g)"], ["student", "student"], {"rescor": True, "pooling": "unpooled"}),
    "three gaussian, rescor, no intercept": (
        ["yg ~ 0 + x", "yg2 ~ x", "yg3 ~ z"], ["gaussian"] * 3, {}),
    "gaussian + bernoulli probit + binomial cloglog": (
        ["yg ~ x", "yb ~ x + (1 | g)", "yk | trials(nt) ~ z"], ["gaussian", "bernoulli", "binomial"],
        {"link": [None, "probit", "cloglog"]}),
    "bernoulli cloglog twice (one function)": (
        ["yb ~ x", "yb2 ~ z + (1 | g)"], ["bernoulli", "bernoulli"], {"link": "cloglog"}),
    "ID block: gaussian + poisson, (1 + x |p| g) and (1 |p| g), centered elsewhere": (
        ["yg ~ x + (1 + x |p| g) + (1 | h)", "yp ~ x + (1 |p| g)"], ["gaussian", "poisson"], {"centered": {"h": True}}),
    "two ID blocks and rescor": (
        ["yg ~ x + (1 |p| g) + (1 |q| h)", "yg2 ~ x + (1 |p| g) + (1 |q| h)"], ["gaussian", "gaussian"], {}),
})


def data(n: int = 120, seed: int = 3) -> pd.DataFrame:
    """Simulate every variant's columns (one data set for all)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 6, n)
    h = rng.integers(0, 4, n)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.5, 6)[g]
    nt = rng.integers(1, 8, n)
    p = 1 / (1 + np.exp(-eta))
    return pd.DataFrame({
        "x": x, "z": z, "g": [f"g{j}" for j in g], "h": [f"h{j}" for j in h], "nt": nt,
        "yg": eta + rng.normal(0, 1, n), "yg2": -eta + rng.normal(0, 1, n), "yg3": z + rng.normal(0, 1, n),
        "yt": eta + rng.standard_t(4, n), "yt2": 2 * z + rng.standard_t(4, n),
        "yb": rng.binomial(1, p), "yb2": rng.binomial(1, 1 - p),
        "yk": rng.binomial(nt, p), "yk2": rng.binomial(nt, 1 - p),
        "yp": rng.poisson(np.exp(eta)), "yp2": rng.poisson(np.exp(-eta)),
    })


def log_lik_reference(m, params: dict[str, np.ndarray]) -> np.ndarray:
    """Compute each row's joint log-likelihood from the program's parameters, in NumPy/SciPy."""
    from scipy import stats

    mus = []
    total = np.zeros(m.N)
    for r in m.responses:
        d = r.spec.design
        k = r.k
        mu = np.zeros(m.N)
        if d.has_intercept:
            mu += params[f"Intercept_{k}"]
        if d.K:
            Xc = d.X - d.X.mean(axis=0) if d.centers_X else d.X
            mu += Xc @ np.atleast_1d(params[f"b_{k}"])
        for i, blk in enumerate(d.blocks, start=1):
            g = r.block_number(i)
            rr = params.get(f"r_{g}")
            if rr is None:  # non-centered (or a member of an ID block): from z
                rr = _effects(m, params, r, i)
            mu += np.sum(np.asarray(rr)[blk.index] * blk.Z, axis=1)
        mus.append(mu)
        if not m.rescor:
            aux = {a.name: params["nu" if (a.name == "nu" and m.shared_nu) else f"{a.name}_{k}"] for a in r.family.aux}
            total += r.family.log_lik(d.y, mu, aux, r.spec.trials)
    if not m.rescor:
        return total
    Y = np.column_stack([r.spec.design.y for r in m.responses])
    sd = np.array([params[f"sigma_{r.k}"] for r in m.responses])
    L = params["Lrescor"]
    cov = np.outer(sd, sd) * (L @ L.T)
    Mu = np.column_stack(mus)
    if m.shared_nu:
        return np.array([stats.multivariate_t(Mu[n], cov, df=params["nu"]).logpdf(Y[n]) for n in range(m.N)])
    return np.array([stats.multivariate_normal(Mu[n], cov).logpdf(Y[n]) for n in range(m.N)])


def _effects(m, params, r, i):
    """Compute the group effects (J, M) of response r's term i from the program's standardized ones."""
    joint = m.joint_of(r, i)
    if joint is not None:
        jb, start = joint
        sd, L, z = params[f"sd_{jb.number}"], params[f"L_{jb.number}"], params[f"z_{jb.number}"]
        full = ((np.diag(sd) @ L) @ z).T
        return full[:, start:start + r.spec.design.blocks[i - 1].M]
    g = r.block_number(i)
    sd, z = np.atleast_1d(params[f"sd_{g}"]), params[f"z_{g}"]
    if f"L_{g}" in params:
        return ((np.diag(sd) @ params[f"L_{g}"]) @ z).T
    return (sd[:, None] * z).T


def check(name: str, df: pd.DataFrame) -> dict:
    """Compare one variant's program with PyMC (log density) and SciPy (log_lik)."""
    import pytensor

    formulas, families, opts = VARIANTS[name]
    t0 = time.perf_counter()
    m = hbstan.Model(formulas, data=df, family=families, **opts)
    cm = compiled_model(m.stan_code)
    t_compile = time.perf_counter() - t0
    pmodel = m.to_pymc()
    logp = pmodel.compile_logp(jacobian=True)
    constrained = pytensor.function(
        pmodel.value_vars, pmodel.replace_rvs_by_values(pmodel.free_RVs), on_unused_input="ignore"
    )
    rng = np.random.default_rng(11)
    ip = pmodel.initial_point()
    diffs, ll_err = [], float("nan")
    for k in range(6):
        point = {key: rng.normal(scale=0.7, size=np.shape(v)) for key, v in ip.items()}
        vals = constrained(*[point[v.name] for v in pmodel.value_vars])
        params = stan_params_from_pymc(m, {rv.name: val for rv, val in zip(pmodel.free_RVs, vals, strict=True)})
        lp = cm.log_prob(params=params, data=m.stan_data_for(pointwise=False), jacobian=True, sig_figs=14)
        diffs.append(float(logp(point)) - float(lp["lp__"].iloc[0]))
        if k == 0:  # the program's pointwise log_lik at this point, against NumPy/SciPy
            ll = _program_log_lik(cm, m, params)
            ll_err = float(np.max(np.abs(ll - log_lik_reference(m, params))))
    spread = max(diffs) - min(diffs)
    return {
        "variant": name, "formulas": formulas, "families": families, "rescor": m.rescor,
        "joint_blocks": len(m.joint_blocks), "spread": spread, "log_lik_max_error": ll_err,
        "ok": bool(spread < 1e-6 and ll_err < 1e-6), "compile_s": round(t_compile, 1),
    }


def _program_log_lik(cm, m, params) -> np.ndarray:
    """Return the program's log_lik at one parameter point (one transition of a negligible step from there)."""
    import logging
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, quiet_cmdstanpy(logging.ERROR):
        # one draw of every parameter at these values: a fit with one iteration, inits = params
        fit = cm.sample(
            data=m.stan_data_for(pointwise=True), chains=1, iter_warmup=0, iter_sampling=1, adapt_engaged=False,
            inits=params, fixed_param=False, output_dir=tmp, show_progress=False, seed=1, step_size=1e-12,
            sig_figs=14,
        )
        return np.asarray(fit.stan_variable("log_lik"))[0]


def main() -> int:
    """Check the variants and write the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", default=None, help="variants whose name contains this")
    ap.add_argument("--out", default=str(ROOT / "validation" / "results" / "multivariate_log_density"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    df = data()
    rows = []
    t0 = time.perf_counter()
    for name in VARIANTS:
        if args.only and not any(o in name for o in args.only):
            continue
        row = check(name, df)
        rows.append(row)
        print(f"{'ok  ' if row['ok'] else 'FAIL'} {name}: spread {row['spread']:.2g}, log_lik error "
              f"{row['log_lik_max_error']:.2g} (compile {row['compile_s']} s)", flush=True)
    total = time.perf_counter() - t0
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "seconds": round(total)}, indent=1) + "\n")
    lines = [
        "# Multivariate programs: log density against PyMC, log_lik against SciPy",
        "",
        "`python validation/multivariate_log_density.py`: each variant's program (`stan_templates/mv.stan.j2`) "
        "at six random points: the spread of (PyMC log density - program log density) over the points (0 up to "
        "rounding when the two are the same density up to its normalizing constants; threshold 1e-6), and the "
        "largest difference between the program's pointwise `log_lik` and NumPy/SciPy's at the first point "
        "(threshold 1e-6).",
        "",
        "| variant | families | rescor | ID blocks | spread | log_lik error | ok |",
        "|---|---|:---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant'].replace('|', chr(92) + '|')} | {', '.join(r['families'])} | {'yes' if r['rescor'] else 'no'} | {r['joint_blocks']} "
            f"| {r['spread']:.1e} | {r['log_lik_max_error']:.1e} | {'yes' if r['ok'] else '**no**'} |"
        )
    lines += ["", f"{sum(r['ok'] for r in rows)} of {len(rows)} variants pass; {total / 60:.0f} minutes on 2 shared cores "
              "(compiling included)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
