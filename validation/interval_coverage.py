"""Coverage of posterior intervals on simulated data of known truth, for every family x design.

    python validation/interval_coverage.py [--sims 50] [--only student] [--seed 20260501]

For each family of ``FAMILIES`` and each design of ``DESIGNS`` (pooled ``y ~ x``, unpooled
``y ~ x + (1 | g)`` with ``pooling="unpooled"``, hierarchical ``y ~ x + (1 | g)``, correlated
``y ~ x + (1 + x | g)``), ``--sims`` data sets (default 50; 200 rows, 10 groups) are simulated
with every parameter drawn from the prior the model is then given (``SPECS``: the same
distributions handed to hbstan through ``priors=`` and drawn in NumPy). Each data set is fitted with
CmdStan (2 chains x 500 warm-up + 500 draws) and each parameter's central 50% and 95%
posterior intervals are checked against its true value.

Because the truths are draws from the model's own prior, a correct program and sampler cover
them at the nominal rate on average over the simulations, up to the sampler's Monte Carlo
error (simulation-based calibration), however weakly the data identify a parameter; a cell is flagged where the
observed coverage falls outside the 99% binomial interval of the nominal rate. Coverage alone
cannot see a program that ignores its likelihood (the prior covers its own draws), so the
table also gives the posterior SD relative to the spread of the true values: well below 1
where the data speak.

Families that are not registered in ``hbstan.families`` (yet) are listed in the results as
skipped. Failed fits are recorded (error text, divergences, R-hat) and never stop the grid.

Writes ``validation/results/coverage.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hbstan  # noqa: E402
from hbstan.families import get_family  # noqa: E402

FAMILIES = ["gaussian", "poisson", "student", "negbinomial"]
DESIGNS = ["pooled", "unpooled", "hierarchical", "correlated"]
LEVELS = (0.5, 0.95)
FLAG_LEVEL = 0.99  # a coverage outside this binomial interval of the nominal rate is flagged
SEED = 20260501

FORMULAS = {
    "pooled": "y ~ x",
    "unpooled": "y ~ x + (1 | g)",
    "hierarchical": "y ~ x + (1 | g)",
    "correlated": "y ~ x + (1 + x | g)",
}


@dataclass(frozen=True)
class Dist:
    """A prior handed to hbstan, and the same distribution drawn in NumPy."""

    prior: Any
    draw: Callable[[np.random.Generator], float]
    label: str


def normal(mu: float, sigma: float) -> Dist:
    """Normal(mu, sigma)."""
    return Dist(hbstan.Normal(mu, sigma), lambda rng: float(rng.normal(mu, sigma)), f"Normal({mu}, {sigma})")


def half_normal(sigma: float) -> Dist:
    """Half-normal with scale sigma."""
    return Dist(hbstan.HalfNormal(sigma), lambda rng: float(abs(rng.normal(0, sigma))), f"HalfNormal({sigma})")


def gamma(alpha: float, beta: float, lower: float = 0.0) -> Dist:
    """Gamma(shape alpha, rate beta), truncated below at ``lower`` (a parameter's bound)."""

    def draw(rng: np.random.Generator) -> float:
        while True:
            v = float(rng.gamma(alpha, 1 / beta))
            if v > lower:
                return v

    label = f"Gamma({alpha}, {beta})" + (f" truncated at {lower}" if lower else "")
    return Dist(hbstan.Gamma(alpha, beta), draw, label)


def _neg_binomial(rng: np.random.Generator, eta: np.ndarray, aux: dict[str, float]) -> np.ndarray:
    """NB2: mean mu = exp(eta), variance mu + mu^2 / shape (Stan's neg_binomial_2_log)."""
    phi = aux["shape"]
    mu = np.exp(eta)
    return rng.negative_binomial(phi, phi / (phi + mu))


@dataclass(frozen=True)
class FamilySpec:
    """The generator of one family: priors of every parameter and the response given eta."""

    intercept: Dist  # the Intercept, and each group's intercept in the unpooled design
    slope: Dist  # the coefficient of x
    group_sd: Dist  # the SD of the varying intercepts and of the varying slopes
    aux: dict[str, Dist]  # auxiliary parameters by their hbstan names
    respond: Callable[[np.random.Generator, np.ndarray, dict[str, float]], np.ndarray]


SPECS: dict[str, FamilySpec] = {
    "gaussian": FamilySpec(
        normal(0, 1), normal(0, 1), half_normal(0.5), {"sigma": gamma(4, 4)},
        lambda rng, eta, a: rng.normal(eta, a["sigma"]),
    ),
    "student": FamilySpec(
        normal(0, 1), normal(0, 1), half_normal(0.5),
        {"sigma": gamma(4, 4), "nu": gamma(2, 0.1, lower=1.0)},  # nu: hbstan's default prior, nu > 1
        lambda rng, eta, a: eta + a["sigma"] * rng.standard_t(a["nu"], size=eta.shape),
    ),
    "poisson": FamilySpec(
        normal(1, 0.5), normal(0, 0.3), half_normal(0.3), {},
        lambda rng, eta, a: rng.poisson(np.exp(eta)),
    ),
    "negbinomial": FamilySpec(
        normal(1, 0.5), normal(0, 0.3), half_normal(0.3), {"shape": gamma(2, 0.4)}, _neg_binomial,
    ),
}
LKJ_ETA = 2.0


@dataclass(frozen=True)
class Settings:
    """Size of the simulated data and of each fit."""

    sims: int = 50
    n_rows: int = 200
    n_groups: int = 10
    min_per_group: int = 5
    chains: int = 2
    warmup: int = 500
    draws: int = 500
    parallel_chains: int = 2
    seed: int = SEED


def registered(family: str) -> bool:
    """Whether hbstan knows the family (a family being added may not have landed yet)."""
    try:
        get_family(family)
    except ValueError:
        return False
    return True


def sim_seeds(family: str, design: str, sim: int, seed: int = SEED) -> tuple[np.random.Generator, int]:
    """Return the data generator and the sampler seed of one simulation (from its cell and index only)."""
    ss = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(f"{family}/{design}".encode()), sim))
    data_seq, stan_seq = ss.spawn(2)
    return np.random.default_rng(data_seq), int(stan_seq.generate_state(1)[0] % (2**31 - 1))


def simulate(
    family: str, design: str, rng: np.random.Generator, settings: Settings = Settings(),
    *, misscale: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One data set and its true parameter values, by the names of hbstan's posterior.

    ``misscale`` multiplies auxiliary parameters in the generator only (the reported truth is
    unchanged): a deliberately wrong model, for checking that the coverage check can fail.
    """
    spec = SPECS[family]
    n, J = settings.n_rows, settings.n_groups
    g = np.concatenate([np.repeat(np.arange(J), settings.min_per_group), rng.integers(J, size=n - settings.min_per_group * J)])
    x = rng.normal(size=n)
    x -= x.mean()  # the Intercept prior is on the intercept at the predictors' means: make them 0
    a, b = spec.intercept.draw(rng), spec.slope.draw(rng)
    aux = {k: d.draw(rng) for k, d in spec.aux.items()}
    truth: dict[str, Any] = {}
    if design == "pooled":
        truth.update({"Intercept": a, "x": b})
        eta = a + b * x
    elif design == "unpooled":
        a_j = np.array([spec.intercept.draw(rng) for _ in range(J)])
        truth.update({"x": b, "1|g": a_j})
        eta = a_j[g] + b * x
    elif design == "hierarchical":
        tau = spec.group_sd.draw(rng)
        r = rng.normal(0, tau, size=J)
        truth.update({"Intercept": a, "x": b, "1|g_sigma": tau, "1|g": r})
        eta = a + r[g] + b * x
    elif design == "correlated":
        tau = np.array([spec.group_sd.draw(rng), spec.group_sd.draw(rng)])
        rho = 2 * rng.beta(LKJ_ETA, LKJ_ETA) - 1  # LKJ(eta) on a 2 x 2 correlation matrix
        cov = np.outer(tau, tau) * np.array([[1, rho], [rho, 1]])
        r = rng.multivariate_normal(np.zeros(2), cov, size=J)
        truth.update({"Intercept": a, "x": b, "1|g_sigma": tau[0], "x|g_sigma": tau[1], "g_corr": rho,
                      "1|g": r[:, 0], "x|g": r[:, 1]})
        eta = a + r[g, 0] + (b + r[g, 1]) * x
    else:
        raise ValueError(f"unknown design {design!r}; valid designs: {DESIGNS}")
    truth.update(aux)
    gen_aux = {k: v * (misscale or {}).get(k, 1.0) for k, v in aux.items()}
    df = pd.DataFrame({"y": spec.respond(rng, eta, gen_aux), "x": x, "g": [f"g{j:02d}" for j in g]})
    return df, truth


def build_model(family: str, design: str, df: pd.DataFrame) -> hbstan.Model:
    """Build the model of a cell, with the generator's distributions as its priors."""
    spec = SPECS[family]
    priors: dict[str, Any] = {"x": spec.slope.prior, **{k: d.prior for k, d in spec.aux.items()}}
    priors["1|g" if design == "unpooled" else "Intercept"] = spec.intercept.prior
    if design in ("hierarchical", "correlated"):
        priors["1|g_sigma"] = spec.group_sd.prior
    if design == "correlated":
        priors["x|g_sigma"] = spec.group_sd.prior
        priors["g_corr"] = hbstan.LKJ(LKJ_ETA)
    pooling = "unpooled" if design == "unpooled" else None
    return hbstan.Model(FORMULAS[design], df, family=family, pooling=pooling, priors=priors)


def _draws(post: Any, name: str, labels: list[str]) -> np.ndarray:
    """Posterior draws of a parameter, (draws,) or (draws, groups) in the order of ``labels``."""
    if name == "g_corr":
        da = post["g_corr"].sel(g_corr_effect="1", g_corr_effect_bis="x")
    elif "g" in post[name].dims:
        da = post[name].sel(g=labels)
    else:
        da = post[name]
    v = da.values
    return v.reshape((-1,) + v.shape[2:])


def check_fit(post: Any, truth: dict[str, Any], labels: list[str]) -> dict[str, dict[str, float]]:
    """Check every true value against its posterior.

    Returns, per parameter, the share of its true values inside the central 50% and 95%
    intervals, the posterior SD (mean over groups) and the z-score of the truth (scalars).
    """
    out = {}
    for name, true in truth.items():
        d = _draws(post, name, labels)
        true = np.asarray(true, dtype=float)
        row: dict[str, float] = {}
        for level in LEVELS:
            lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2], axis=0)
            row[f"cover{int(level * 100)}"] = round(float(np.mean((lo <= true) & (true <= hi))), 4)
        sd = d.std(axis=0)
        row["post_sd"] = round(float(np.mean(sd)), 5)
        if true.ndim == 0:
            row["z"] = round(float((d.mean(axis=0) - true) / sd), 4)
        out[name] = row
    return out


def run_one(
    family: str, design: str, sim: int, settings: Settings = Settings(), *, misscale: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Simulate, fit and check one data set; a failure is returned as a record, never raised."""
    rng, stan_seed = sim_seeds(family, design, sim, settings.seed)
    df, truth = simulate(family, design, rng, settings, misscale=misscale)
    rec: dict[str, Any] = {"sim": sim, "stan_seed": stan_seed,
                           "truth": {k: np.round(np.asarray(v, dtype=float), 5).tolist() for k, v in truth.items()}}
    t0 = time.perf_counter()
    try:
        m = build_model(family, design, df)
        rec["program"] = hashlib.sha1(m.stan_code.encode()).hexdigest()[:10]
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = m.sample(chains=settings.chains, warmup=settings.warmup, draws=settings.draws, seed=stan_seed,
                           parallel_chains=settings.parallel_chains, pointwise=False, output_dir=tmp)
            diag = fit.diagnose(ess_min=100)
        labels = sorted(df["g"].unique())
        rec.update(ok=True, divergences=int(sum(diag.divergences)), max_rhat=round(diag.max_rhat, 4),
                   min_ess_bulk=round(diag.min_ess_bulk, 1), params=check_fit(fit.posterior, truth, labels))
    except Exception as err:  # noqa: BLE001 - any failure is a result of the grid, not the end of it
        rec.update(ok=False, error=f"{type(err).__name__}: {err}"[:2000])
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    return rec


def binomial_bounds(n: int, p: float, level: float = FLAG_LEVEL) -> tuple[float, float]:
    """Central ``level`` interval of the share of successes in ``n`` Bernoulli(p) trials."""
    a = (1 - level) / 2
    return float(stats.binom.ppf(a, n, p)) / n, float(stats.binom.ppf(1 - a, n, p)) / n


def summarize(family: str, design: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Coverage per parameter over a cell's simulations, with the binomial flag.

    Group-effect vectors: each simulation contributes the share of its groups covered; the
    flag treats the simulations as the trials (conservative: the groups of one simulation are
    not independent, and the mean of J shares varies less than one indicator).
    """
    ok = [r for r in records if r["ok"]]
    params: dict[str, dict[str, Any]] = {}
    if ok:
        for name in ok[0]["params"]:
            rows = [r["params"][name] for r in ok]
            truths = np.concatenate([np.atleast_1d(r["truth"][name]) for r in ok])
            truth_sd = float(np.std(truths))
            p: dict[str, Any] = {"n": len(rows), "vector": np.ndim(ok[0]["truth"][name]) > 0}
            flags = []
            for level in LEVELS:
                key = f"cover{int(level * 100)}"
                cov = float(np.mean([row[key] for row in rows]))
                lo, hi = binomial_bounds(len(rows), level)
                p[key] = cov
                p[f"bounds{int(level * 100)}"] = (lo, hi)
                if not lo <= cov <= hi:
                    flags.append(f"{int(level * 100)}% {'low' if cov < lo else 'high'}")
            p["sd_ratio"] = float(np.mean([row["post_sd"] for row in rows]) / truth_sd) if truth_sd > 0 else float("nan")
            if not p["vector"]:
                p["mean_z"] = float(np.mean([row["z"] for row in rows]))
            p["flag"] = ", ".join(flags)
            params[name] = p
    return {
        "family": family,
        "design": design,
        "formula": FORMULAS[design],
        "sims": len(records),
        "ok": len(ok),
        "errors": [f"sim {r['sim']}: {r['error']}" for r in records if not r["ok"]],
        "sims_with_divergences": sum(r["divergences"] > 0 for r in ok),
        "divergences": sum(r["divergences"] for r in ok),
        "sims_rhat_above_1.05": sum(r["max_rhat"] > 1.05 for r in ok),
        "programs": len({r.get("program") for r in records if r.get("program")}),
        "seconds": round(sum(r["seconds"] for r in records), 1),
        "params": params,
    }


def run_cell(
    family: str, design: str, settings: Settings = Settings(), *, misscale: dict[str, float] | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """All simulations of one family x design: the summary and the per-simulation records."""
    records = []
    for s in range(settings.sims):
        rec = run_one(family, design, s, settings, misscale=misscale)
        records.append(rec)
        if progress and not rec["ok"]:
            print(f"  {family} {design} sim {s}: {rec['error'][:200]}", flush=True)
    return summarize(family, design, records), records


def main() -> int:
    """Run the grid and write the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=Settings.sims, help="simulations per family x design")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--parallel-chains", type=int, default=Settings.parallel_chains)
    ap.add_argument("--only", default=None, help="only cells whose 'family design' contains this")
    ap.add_argument("--out", default=str(ROOT / "validation" / "results" / "coverage"))
    args = ap.parse_args()
    logging.getLogger("cmdstanpy").setLevel(logging.ERROR)
    logging.getLogger("hbstan").setLevel(logging.ERROR)
    settings = Settings(sims=args.sims, seed=args.seed, parallel_chains=args.parallel_chains)
    t0 = time.perf_counter()
    cells, records, skipped = [], {}, {}
    for family in FAMILIES:
        if not registered(family):
            skipped[family] = f"family {family!r} is not registered in hbstan.families (not available yet)"
            print(f"SKIPPED {family}: {skipped[family]}", flush=True)
            continue
        for design in DESIGNS:
            if args.only and args.only not in f"{family} {design}":
                continue
            summary, recs = run_cell(family, design, settings, progress=True)
            cells.append(summary)
            records[f"{family}/{design}"] = recs
            flagged = [f"{n} ({p['flag']})" for n, p in summary["params"].items() if p["flag"]]
            print(f"{family:12s} {design:13s} {summary['ok']}/{summary['sims']} fits, "
                  f"{summary['sims_with_divergences']} with divergences, {summary['seconds']:.0f} s; "
                  f"flagged: {', '.join(flagged) or 'none'}", flush=True)
    elapsed = time.perf_counter() - t0
    meta = {
        "hbstan": hbstan.__version__,
        "cmdstan": _cmdstan_version(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "total_s": round(elapsed, 1),
        "settings": settings.__dict__,
        "priors": {f: {"intercept": s.intercept.label, "x": s.slope.label, "group SDs": s.group_sd.label,
                       **{k: d.label for k, d in s.aux.items()}, "g_corr": f"LKJ({LKJ_ETA})"} for f, s in SPECS.items()},
        "skipped": skipped,
        "flagged": [f"{c['family']} {c['design']} {n}: {p['flag']}" for c in cells for n, p in c["params"].items() if p["flag"]],
        "failed_fits": sum(c["sims"] - c["ok"] for c in cells),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(_json(meta, cells, records))
    out.with_suffix(".md").write_text(_markdown(meta, cells))
    print(f"{len(cells)} cells, {len(meta['flagged'])} flagged, {meta['failed_fits']} failed fits, {elapsed:.0f} s")
    return 0


def _json(meta: dict[str, Any], cells: list[dict[str, Any]], records: dict[str, list[dict[str, Any]]]) -> str:
    """Write the results as JSON, one line per simulation record (readable, and small)."""
    cell_recs = ",\n".join(
        f"  {json.dumps(k)}: [\n" + ",\n".join(f"   {json.dumps(r)}" for r in recs) + "\n  ]" for k, recs in records.items()
    )
    head = json.dumps({"meta": meta, "cells": cells}, indent=1)
    return head[:-2] + ',\n "records": {\n' + cell_recs + "\n }\n}\n"


def _cmdstan_version() -> str:
    import cmdstanpy

    v = cmdstanpy.cmdstan_version()
    return ".".join(map(str, v)) if v else "unknown"


def _markdown(meta: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    s = meta["settings"]
    lines = [
        "# Coverage of posterior intervals on simulated data",
        "",
        "`python validation/interval_coverage.py`: for each family x design, data sets of known truth are simulated with",
        "every parameter drawn from the prior the model is given, fitted with CmdStan, and each parameter's",
        "central 50% and 95% posterior intervals checked against the true value. With truths drawn from the",
        "model's own prior, a correct program covers them at the nominal rate on average (simulation-based",
        "calibration). **flag**: coverage outside the 99% binomial interval of the nominal rate over the",
        "simulations. *post SD / truth SD*: mean posterior SD over the spread of the true values (near 1 where",
        "the data say little beyond the prior; a program that ignored its likelihood would still cover, but",
        "with this ratio near 1 everywhere). *mean z*: mean of (posterior mean - truth) / posterior SD.",
        "Group-effect vectors (`1|g`, `x|g`) pool every group of every simulation; their flag counts",
        "simulations as the trials (conservative).",
        "",
        f"hbstan {meta['hbstan']}, CmdStan {meta['cmdstan']}, Python {meta['python']}, {meta['machine']}, "
        f"{meta['cores']} cores (shared with other jobs), {meta['date']}; total {meta['total_s'] / 60:.1f} min.",
        f"{s['sims']} simulations per cell, {s['n_rows']} rows, {s['n_groups']} groups (at least "
        f"{s['min_per_group']} rows each), predictor x ~ N(0, 1) centered; {s['chains']} chains x "
        f"({s['warmup']} warm-up + {s['draws']} draws); seed {s['seed']}.",
        "",
        f"**{len(meta['flagged'])} flagged** of {sum(len(c['params']) for c in cells)} parameter rows; "
        f"{meta['failed_fits']} failed fits.",
    ]
    lines += [f"- {f}" for f in meta["flagged"]]
    rows = [p for c in cells for p in c["params"].values()]
    if rows:
        lines += ["", f"Over all {len(rows)} rows, mean coverage of the 50% intervals "
                  f"{np.mean([p['cover50'] for p in rows]):.3f} and of the 95% intervals {np.mean([p['cover95'] for p in rows]):.3f}."]
    if meta["skipped"]:
        lines += ["", "Skipped:", ""] + [f"- {f}: {why}" for f, why in meta["skipped"].items()]
    lines += ["", "Priors = generator (per family):", ""]
    for fam, pri in meta["priors"].items():
        lines.append(f"- {fam}: " + "; ".join(f"{k} {v}" for k, v in pri.items()))
    lines += [
        "",
        "| family | design | fits ok | sims with divergences | sims with R-hat > 1.05 | programs | seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(f"| {c['family']} | {c['design']} | {c['ok']}/{c['sims']} | {c['sims_with_divergences']} | "
                     f"{c['sims_rhat_above_1.05']} | {c['programs']} | {c['seconds']:.0f} |")
    errors = [(c, e) for c in cells for e in c["errors"]]
    if errors:
        lines += ["", "Failed fits:", ""] + [f"- {c['family']} {c['design']} {e}" for c, e in errors]
    lines += [
        "",
        "| family | design | parameter | 50% | 95% | sims | post SD / truth SD | mean z | flag |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in cells:
        for name, p in c["params"].items():
            z = f"{p['mean_z']:+.2f}" if "mean_z" in p else ""
            label = "`" + name.replace("|", "\\|") + "`" + (" (groups)" if p["vector"] else "")  # a bare | splits a cell
            lines.append(
                f"| {c['family']} | {c['design']} | {label} | {p['cover50']:.2f} | {p['cover95']:.2f} | {p['n']} | "
                f"{p['sd_ratio']:.2f} | {z} | {'**' + p['flag'] + '**' if p['flag'] else ''} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
