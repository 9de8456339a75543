"""The centering rule's dispersion estimate: do the terms it now centers sample well centered.

Since issue 19 the centering rule estimates the dispersion of the negative binomial, gamma and
beta families about the group effects' estimates instead of the pooled fit's residuals (see
``hbstan.centering``). That raises the estimated information per group, so some terms that were
non-centered are now centered; a wrong "centered" diverges in the funnel, so this script fits
every such term of a grid of simulated data sets both ways.

Grid: family (negbinomial, gamma, beta) x groups x rows per group ((10, 5), (20, 5), (30, 10),
(40, 20), (15, 40)) x group SD (0.1, 0.3, 0.6) x dispersion (low / high: NB shape 8 / 1, gamma
shape 8 / 1, beta precision 30 / 3) x 3 seeds, model ``y ~ x + (1 | g)``. For each data set,
the rule's choice as of before this change (the pooled dispersion, computed here by hand with
the family's ``working`` at the pooled fit, as the rule did) and now. Each data set whose
choice changed is fitted with the default (now centered) and with ``centered=False``, 4 chains
x 1000 + 1000 draws, and the table gives divergences, the smallest bulk ESS of the
population-level quantities and sampling time.

    python validation/centering_dispersion.py        # writes results/centering_dispersion.md/.json
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import hbstan  # noqa: E402
from hbstan.fit import SamplingWarning  # noqa: E402

FAMILIES = ("negbinomial", "gamma", "beta")
SIZES = ((10, 5), (20, 5), (30, 10), (40, 20), (15, 40))
TAUS = (0.1, 0.3, 0.6)
DISPERSION = {"negbinomial": {"low": 8.0, "high": 1.0}, "gamma": {"low": 8.0, "high": 1.0},
              "beta": {"low": 30.0, "high": 3.0}}


def simulate(family: str, J: int, per: int, tau: float, disp: str, seed: int) -> pd.DataFrame:
    """``y ~ x + (1 | g)`` data with group SD ``tau`` and the family's low or high dispersion."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), per)
    x = rng.normal(size=J * per)
    eta = 0.8 + 0.3 * x + rng.normal(0, tau, J)[g]
    k = DISPERSION[family][disp]
    if family == "negbinomial":
        y = rng.negative_binomial(k, k / (k + np.exp(eta)))
    elif family == "gamma":
        y = rng.gamma(k, np.exp(eta) / k)
    else:
        m = expit(eta - 0.8)
        y = np.clip(rng.beta(m * k, (1 - m) * k), 1e-6, 1 - 1e-6)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j}" for j in g]})


def summarize(fit: hbstan.Fit) -> dict[str, float]:
    """Divergences and the smallest bulk ESS over the population-level quantities and the group SD."""
    import arviz as az

    post = fit.idata.posterior
    names = [v for v in post.data_vars if not v.startswith("1|g") or v.endswith("_sigma")]
    ess = az.ess(post[names], method="bulk")
    return {
        "divergences": int(fit.idata.sample_stats["diverging"].values.sum()),
        "min_ess": float(min(float(ess[v].min()) for v in names)),
    }


def main() -> None:
    """Run the grid, fit the changed choices both ways, write the results."""
    t0 = time.time()
    rows = []
    for family in FAMILIES:
        for J, per in SIZES:
            for tau in TAUS:
                for disp in ("low", "high"):
                    for seed in range(3):
                        df = simulate(family, J, per, tau, disp, seed)
                        m = hbstan.Model("y ~ x + (1 | g)", df, family=family)
                        ev = m.term_evidence[0]
                        rows.append({"family": family, "J": J, "per": per, "tau": tau, "dispersion": disp, "seed": seed,
                                     "kappa_low": ev.kappa_low[0], "centered": ev.centered, "model": m})
    # the choice before this change: the same rule with the pooled fit's dispersion
    from hbstan import centering

    for r in rows:
        r["centered_before"] = _choice_with_pooled_dispersion(centering, r["model"])
    changed = [r for r in rows if r["centered"] != r["centered_before"]]
    print(f"{len(rows)} data sets, {len(changed)} choices changed", flush=True)
    out = []
    for r in changed:
        res = {}
        for label, centered in (("default", "auto"), ("non-centered", False)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SamplingWarning)
                t = time.perf_counter()
                fit = r["model"].replace(centered=centered).sample(seed=1, pointwise=False, show_progress=False)
                res[label] = {**summarize(fit), "wall": time.perf_counter() - t}
        row = {k: v for k, v in r.items() if k != "model"} | {"fits": res}
        out.append(row)
        print(row, flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "platform": platform.platform(), "hbstan": hbstan.__version__,
            "minutes": (time.time() - t0) / 60, "data_sets": len(rows), "changed": len(changed),
            "load_average": list(__import__("os").getloadavg())}
    res_dir = HERE / "results"
    (res_dir / "centering_dispersion.json").write_text(json.dumps({"meta": meta, "rows": out}, indent=1))
    lines = [
        "# The centering rule's dispersion estimate: the terms it now centers, fitted both ways",
        "",
        f"`python validation/centering_dispersion.py` ({meta['date']}, {meta['platform']}, hbstan {meta['hbstan']}, "
        f"{meta['minutes']:.0f} min, load average at the end {meta['load_average'][0]:.1f}). Of {len(rows)} simulated "
        f"`y ~ x + (1 | g)` data sets (see the script's docstring), the rule's choice changed on {len(changed)}, all "
        "from non-centered to centered. Each of those fitted at the default (now centered) and non-centered, "
        "4 chains x 1000 + 1000 draws, seed 1: divergences, the smallest bulk ESS over the population-level "
        "quantities and the group SD, and the fit's wall time.",
        "",
        "| family | groups x rows | group SD | dispersion | seed | kappa_low (now) | centered: div | ESS | s | non-centered: div | ESS | s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in out:
        a, b = r["fits"]["default"], r["fits"]["non-centered"]
        lines.append(
            f"| {r['family']} | {r['J']} x {r['per']} | {r['tau']} | {r['dispersion']} | {r['seed']} | {r['kappa_low']:.2f} | "
            f"{a['divergences']} | {a['min_ess']:.0f} | {a['wall']:.1f} | {b['divergences']} | {b['min_ess']:.0f} | {b['wall']:.1f} |"
        )
    div_c = sum(r["fits"]["default"]["divergences"] > 0 for r in out)
    div_n = sum(r["fits"]["non-centered"]["divergences"] > 0 for r in out)
    better = sum(r["fits"]["default"]["min_ess"] / r["fits"]["default"]["wall"]
                 >= r["fits"]["non-centered"]["min_ess"] / r["fits"]["non-centered"]["wall"] for r in out)
    lines += ["", f"Fits with any divergence: centered {div_c} of {len(out)}, non-centered {div_n} of {len(out)}. "
              f"Min ESS per second at least the non-centered one's: {better} of {len(out)}."]
    (res_dir / "centering_dispersion.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _choice_with_pooled_dispersion(centering, m: hbstan.Model) -> bool:  # type: ignore[no-untyped-def]
    """Return the rule's choice as before issue 19's change: the family's weights at the pooled fit only."""
    fam = m.family

    class Pooled(type(fam)):  # type: ignore[misc]
        dispersion_from_residuals = False

    pooled = Pooled.__new__(Pooled)
    pooled.__dict__.update(fam.__dict__)
    d = m.design
    return centering.term_evidence(pooled, d.y, d.X, np.zeros(d.N), d.blocks)[0].centered


if __name__ == "__main__":
    main()
