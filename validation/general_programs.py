"""General programs against specialized ones: every family x design (issue 19).

For each family with a general program (``hbstan.general.GENERAL_FAMILIES``: every family
with one linear predictor, the ordinal one included) and each design it supports (pooled; varying
intercept; independent intercept and slope; correlated intercept and slope; two crossed
varying intercepts; a correlated term beside a crossed intercept, with an offset), simulated
data from a known truth are fitted on the family's general program and on the model's
specialized program, and ``hbstan.compare_fits`` tests every posterior mean and SD
(confirmed by longer runs before a disagreement is reported). Where the Gaussian programs
integrate a single term's group effects out (intercept, independent slopes, correlated), both
do; the Gaussian "sampled" designs (``marginalize=False``) have both sample them instead.
The non-default links of bernoulli, binomial (probit, cloglog) and cumulative (probit; a
general program each) run two designs: the varying intercept and the correlated + crossed one
with an offset. The ordinal family (``cumulative``: 4 categories from a latent logistic or
normal variable cut at known thresholds) also runs its varying intercept, its correlated
term and its crossed intercepts forced centered (``centered=True``): both programs sample the
group intercepts of the first term relative to the thresholds' mean. The categorical family
(3 categories, a linear predictor each for the two non-reference ones) runs the designs it
has: pooled, varying intercept, independent slopes and crossed intercepts (no correlated
terms or offsets: refused by the family), and the varying intercept and crossed intercepts
forced centered (its default is non-centered).

    python validation/general_programs.py            # ~80 specialized programs to compile
    python validation/general_programs.py --only poisson

Writes validation/results/general_programs.{md,json}; with ``--only``, the rows of the cases
not run are kept from the previous results (each row records its date).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hbstan  # noqa: E402
from hbstan.general import GENERAL_FAMILIES, centered_terms, general_links  # noqa: E402

DESIGNS = {
    "pooled": "x",
    "intercept": "x + (1 | g)",
    "independent slopes": "x + (1 + x || g)",
    "correlated": "x + (1 + x | g)",
    "crossed intercepts": "x + (1 | g) + (1 | h)",
    "correlated + crossed, offset": "x + (1 + x | g) + (1 | h)",
    # Gaussian only: the group effects sampled (marginalize=False) rather than integrated out
    "intercept, sampled": "x + (1 | g)",
    "correlated, sampled": "x + (1 + x | g)",
    # cumulative and categorical only: the terms centered (centered=True); cumulative samples the
    # first one's group intercepts relative to the thresholds' mean
    "intercept, centered": "x + (1 | g)",
    "correlated, centered": "x + (1 + x | g)",
    "crossed intercepts, centered": "x + (1 | g) + (1 | h)",  # only g's relative to the thresholds' mean
}

# the designs a non-default link runs
LINK_DESIGNS = ("intercept", "correlated + crossed, offset")

# the true auxiliary parameters of the simulations
SHAPE, GAMMA_SHAPE, SIGMA_LOG, NU, PHI, ZERO = 3.0, 4.0, 0.5, 5.0, 10.0, 0.3
CUTS = np.array([-1.0, 0.0, 1.2])  # cumulative: the latent variable's thresholds (4 categories)


def _positive(draw, size: int) -> np.ndarray:
    """Draws of ``draw(size)`` conditioned on > 0, by redrawing the zeros."""
    out = draw(size)
    while np.any(out == 0):
        zero = out == 0
        out[zero] = draw(size)[zero]
    return out


def simulate(family: str, seed: int, link: str | None = None, n: int = 400, jg: int = 12, jh: int = 6) -> pd.DataFrame:
    """Rows from a known truth: y depends on x, a correlated (g) and an intercept (h) term."""
    rng = np.random.default_rng(seed)
    g, h = rng.integers(0, jg, n), rng.integers(0, jh, n)
    x = rng.normal(size=n)
    cov = np.array([[0.5**2, -0.3 * 0.5 * 0.3], [-0.3 * 0.5 * 0.3, 0.3**2]])
    u = rng.multivariate_normal([0, 0], cov, jg)
    off = rng.normal(0, 0.2, n)
    eta = 0.2 + 0.6 * x + u[g, 0] + u[g, 1] * x + rng.normal(0, 0.4, jh)[h] + off
    df = pd.DataFrame({"x": x, "g": [f"g{i:02d}" for i in g], "h": [f"h{i}" for i in h], "off": off,
                       "n": rng.integers(1, 12, n)})
    mu = np.exp(eta)

    def nb(size: int = n) -> np.ndarray:
        return rng.negative_binomial(SHAPE, SHAPE / (SHAPE + mu[:size]))

    if family == "gaussian":
        df["y"] = eta + rng.normal(0, 0.8, n)
    elif family in ("bernoulli", "binomial"):
        from scipy import stats

        p = {"probit": stats.norm.cdf(eta), "cloglog": -np.expm1(-np.exp(eta))}.get(link or "logit",
                                                                                    1 / (1 + np.exp(-eta)))
        df["y"] = rng.binomial(1, p) if family == "bernoulli" else rng.binomial(df["n"], p)
    elif family == "poisson":
        df["y"] = rng.poisson(mu)
    elif family == "negbinomial":
        df["y"] = nb()
    elif family == "gamma":
        df["y"] = rng.gamma(GAMMA_SHAPE, mu / GAMMA_SHAPE)
    elif family == "lognormal":
        df["y"] = np.exp(eta + rng.normal(0, SIGMA_LOG, n))
    elif family == "student":
        df["y"] = eta + 0.8 * rng.standard_t(NU, n)
    elif family == "beta":
        m = 1 / (1 + np.exp(-eta))
        df["y"] = np.clip(rng.beta(m * PHI, (1 - m) * PHI), 1e-6, 1 - 1e-6)
    elif family.startswith("zero_inflated_"):
        base = rng.poisson(mu) if family.endswith("poisson") else nb()
        df["y"] = np.where(rng.random(n) < ZERO, 0, base)
    elif family in ("hurdle_poisson", "hurdle_negbinomial"):
        pos = _positive((lambda k: rng.poisson(mu)) if family == "hurdle_poisson" else (lambda k: nb()), n)
        df["y"] = np.where(rng.random(n) < ZERO, 0, pos)
    elif family == "hurdle_lognormal":
        df["y"] = np.where(rng.random(n) < ZERO, 0.0, np.exp(eta + rng.normal(0, SIGMA_LOG, n)))
    elif family == "cumulative":  # P(y <= k) = F(c_k - eta): the latent eta + e cut at CUTS
        e = rng.normal(size=n) if link == "probit" else rng.logistic(size=n)
        df["y"] = 1 + np.sum((eta + e)[:, None] > CUTS, axis=1)
    elif family == "categorical":  # log odds against category 1: eta for 2, a second one for 3
        eta3 = -0.3 - 0.5 * x + rng.normal(0, 0.5, jg)[g] + rng.normal(0, 0.3, jh)[h]
        logits = np.column_stack([np.zeros(n), eta - off, eta3])  # (no offset: refused by the family)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        df["y"] = 1 + (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    else:
        raise ValueError(f"no simulation for family {family!r}")
    return df


def cases() -> list[tuple[str, str, str, str]]:
    """(label, family, link, design) of every case: each family x design, each other link x two designs."""
    out = []
    for family in GENERAL_FAMILIES:
        for link in general_links(family):
            default = link == general_links(family)[0]
            for design in DESIGNS:
                if "sampled" in design and family != "gaussian":
                    continue
                if "centered" in design and family not in ("cumulative", "categorical"):
                    continue
                if family == "categorical" and ("correlated" in design or "offset" in design):
                    continue  # refused by the family
                if not default and design not in LINK_DESIGNS:
                    continue
                name = family if default else f"{family} ({link})"
                out.append((f"{name} / {design}", family, link, design))
    return out


def write(out: Path, rows: list[dict], kept: list[dict], minutes: float) -> bool:
    """Write the results (the rows run now and ``kept`` from before) to ``out``.{md,json}; whether all agree."""
    order = [c[0] for c in cases()]
    ran = {r["case"] for r in rows}
    rows = sorted(rows + [r for r in kept if r["case"] not in ran], key=lambda r: order.index(r["case"]))
    meta = {"machine": platform.platform(), "hbstan": hbstan.__version__, "minutes": minutes}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines: list[str] = [
        "# General programs against specialized programs",
        "",
        f"`python validation/general_programs.py` ({meta['machine']}, hbstan {meta['hbstan']}, "
        f"{meta['minutes']:.0f} min for the cases run last; each row's date and load average are in the JSON). "
        "Each case: simulated data (400 rows, 12 groups g, 6 groups h), "
        "one fit on each program at the defaults (4 chains x (1000 + 1000)), `hbstan.compare_fits` over every "
        "posterior scalar (family-wise alpha 0.01, a flagged difference confirmed by longer runs). "
        "Times include the compile where the specialized program was not cached.",
        "",
        "| case | verdict | rounds | scalars | max abs z | general: fit (s) | sample (s) | specialized: fit (s) | sample (s) | divergences (general / specialized) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['verdict']} | {r['rounds']} | {r['scalars']} | {r['max_abs_z']:.2f} | "
            f"{r['general_s']} | {r['general_sample_s']} | {r['specialized_s']} | {r['specialized_sample_s']} | "
            f"{r['divergences_general']} / {r['divergences_specialized']} |"
        )
    n_agree = sum(r["verdict"] == "agree" for r in rows)
    lines += ["", f"{n_agree} of {len(rows)} cases agree."]
    missing = [c for c in order if c not in {r["case"] for r in rows}]
    if missing:
        lines += ["", f"Not run yet ({len(missing)} of {len(order)} cases): " + "; ".join(missing) + "."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return n_agree == len(rows)


def main() -> int:
    """Fit every case on both programs, compare, write the results (after each case)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", default=None, help="only cases whose label contains this")
    ap.add_argument("--out", default=str(ROOT / "validation" / "results" / "general_programs"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    out = Path(args.out)
    previous = out.with_suffix(".json")
    # with --only, the rows of the cases not run this time are kept
    kept = json.loads(previous.read_text())["rows"] if args.only and previous.is_file() else []
    rows: list[dict] = []
    t_start = time.perf_counter()
    for label, family, link, design in cases():
        if args.only and not any(o in label for o in args.only):
            continue
        rhs = DESIGNS[design]
        df = simulate(family, seed=100 + GENERAL_FAMILIES.index(family), link=link)
        lhs = "y | trials(n)" if family == "binomial" else "y"
        kw: dict = {"offset": "off"} if "offset" in design else {}
        if "sampled" in design:
            kw["marginalize"] = False
        if "centered" in design:
            kw["centered"] = True
        m = hbstan.Model(f"{lhs} ~ {rhs}", df, family=family, link=link, **kw)
        t0 = time.perf_counter()
        fs = m.sample(seed=1, program="specialized")
        t1 = time.perf_counter()
        fg = m.sample(seed=1, program="general")
        t2 = time.perf_counter()
        c = hbstan.compare_fits(fg, fs, labels=["general", "specialized"])
        rows.append({
            "case": label, "formula": m.formula, "verdict": c.verdict, "rounds": len(c.rounds),
            "scalars": int(len(c.table)), "max_abs_z": float(c.table["z"].abs().max()),
            "worst": str(c.table["z"].abs().idxmax()),
            "specialized_s": round(t1 - t0, 1), "general_s": round(t2 - t1, 1),
            "general_sample_s": round(fg.timings["sample"], 1), "specialized_sample_s": round(fs.timings["sample"], 1),
            "divergences_general": int(fg.idata.sample_stats["diverging"].sum()),
            "divergences_specialized": int(fs.idata.sample_stats["diverging"].sum()),
            "date": time.strftime("%Y-%m-%d %H:%M"), "load_average": round(os.getloadavg()[0], 2),
            "centered": centered_terms(m),  # each term's parameterization on the general program
        })
        print(f"{label:55s} {c.verdict:14s} max|z| {rows[-1]['max_abs_z']:.2f} "
              f"(general {rows[-1]['general_s']} s, specialized {rows[-1]['specialized_s']} s)", flush=True)
        write(out, rows, kept, (time.perf_counter() - t_start) / 60)
    all_agree = write(out, rows, kept, (time.perf_counter() - t_start) / 60)
    print(out.with_suffix(".md").read_text())
    return 0 if all_agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
