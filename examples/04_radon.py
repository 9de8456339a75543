"""Example 4: Minnesota radon, the multilevel model of Gelman & Hill (2007, ch. 12).

919 homes in 85 counties; log radon depends on the floor the measurement was taken on
(0 = basement, 1 = first floor) and on the county. Four designs:

1. complete pooling:  ``log_radon ~ floor``                  (county ignored)
2. no pooling:        ``log_radon ~ floor + (1 | county)``, pooling="unpooled"
3. partial pooling:   ``log_radon ~ floor + (1 | county)``    (county intercepts ~ N(mu, tau))
4. partial pooling with a county-level predictor: as 3 with ``group_predictors={"county":
   ["log_uppm"]}``, so that the county intercepts' mean depends on the county's soil
   uranium: alpha_j ~ N(gamma_0 + gamma_1 log_uppm_j, tau)

1-3 come from one call of ``hbstan.pooling.compare_pooling``; LOO compares all four. The
classic figure puts each county's no-pooling and partial-pooling estimate against its number
of homes: counties with a handful of homes are pulled strongly to the state mean, the big
ones hardly at all.

Run:  python examples/04_radon.py
"""

from __future__ import annotations

import numpy as np
from _common import compare_with_pymc, conclusion, done, flat, sampler, save, setup, write_text

import hbstan
from hbstan.plots import new_figure, plot_forest, plot_shrinkage
from hbstan.pooling import compare_pooling

NAME = "radon"
FORMULA = "log_radon ~ floor + (1 | county)"


def main() -> None:
    import arviz as az

    setup(NAME, "Example 4: Minnesota radon - four designs, county uranium, LOO, shrinkage")
    df = hbstan.datasets.load_radon("mn")
    n = df.groupby("county").size()
    print(f"{len(df)} homes in {df.county.nunique()} counties; homes per county: min {n.min()}, "
          f"median {n.median():.0f}, max {n.max()}")

    res = compare_pooling(FORMULA, df, **sampler())
    uranium_model = hbstan.Model(FORMULA, df, group_predictors={"county": ["log_uppm"]})
    print(f"fitting {uranium_model}")
    uranium = uranium_model.sample(**sampler())
    fits = {**res.fits, "hierarchical + log_uppm": uranium}

    loo = az.compare({k: az.loo(f.idata, pointwise=True) for k, f in fits.items()}, ic="loo")
    print(loo[["rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse", "weight"]].round(1).to_string())
    write_text(f"{NAME}_pooling.md", res.to_markdown())
    e = loo["elpd_loo"]
    conclusion(
        f"LOO order: {' > '.join(loo.index)}; partial pooling "
        f"{'beats' if e['hierarchical'] > max(e['pooled'], e['unpooled']) else 'DOES NOT beat'} both complete "
        f"pooling (by {e['hierarchical'] - e['pooled']:.1f}) and no pooling (by {e['hierarchical'] - e['unpooled']:.1f})"
    )

    # the county-level predictor explains part of the between-county variation
    tau0 = flat(res.fits["hierarchical"], "1|county_sigma")
    tau1 = flat(uranium, "1|county_sigma")
    g = flat(uranium, "log_uppm")
    conclusion(
        f"county uranium: gamma(log_uppm) = {g.mean():.2f} (90% interval {np.quantile(g, 0.05):.2f} to "
        f"{np.quantile(g, 0.95):.2f}); the county SD falls from {tau0.mean():.2f} to {tau1.mean():.2f}, "
        f"so uranium explains about {1 - (tau1.mean() / tau0.mean()) ** 2:.0%} of the between-county variance"
    )
    fl = {k: float(flat(f, "floor").mean()) for k, f in fits.items()}
    conclusion("floor effect (first floor vs basement): " + ", ".join(f"{k} {v:.2f}" for k, v in fl.items()))

    # shrinkage against sample size
    table = hbstan.plots.shrinkage_table(res.fits["hierarchical"], no_pooling=res.fits["unpooled"])
    small = table[table["n"] <= 3]["shrinkage"].median()
    large = table[table["n"] >= 20]["shrinkage"].median()
    conclusion(
        f"shrinkage: counties with <= 3 homes move a median {small:.0%} of the way to the population mean, "
        f"counties with >= 20 homes {large:.0%}" + (" (small groups shrink more)" if small > large else " (UNEXPECTED)")
    )
    fig = plot_shrinkage(
        res.fits["hierarchical"],
        no_pooling=res.fits["unpooled"],
        pooled=res.fits["pooled"],
        title="Radon: county intercepts (basement level), no pooling vs partial pooling",
    )
    save(fig, f"{NAME}_shrinkage.png")
    save(res.plot(), f"{NAME}_pooling.png")

    # the uranium model's county intercepts against log_uppm (Gelman & Hill fig. 12.6)
    u = uranium.model.design.blocks[0].U[:, 0]
    a = flat(uranium, "Intercept")[:, None] + flat(uranium, "1|county") + g[:, None] * u[None, :]
    fig = new_figure((7, 4.5))
    ax = fig.subplots()
    ax.errorbar(u, a.mean(0), yerr=a.std(0), fmt="o", ms=3, color="C3", ecolor="0.6", lw=0.8,
                label="county intercept (mean +- 1 sd)")
    grid = np.linspace(u.min(), u.max(), 50)
    ax.plot(grid, flat(uranium, "Intercept").mean() + g.mean() * grid, "k-", label="gamma_0 + gamma_1 log_uppm")
    ax.set_xlabel("county log uranium (log_uppm)")
    ax.set_ylabel("county intercept (log radon, basement)")
    ax.set_title("Radon: county intercepts vs county uranium")
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}_uranium.png")
    save(plot_forest(fits, var_names=["floor", "sigma"]), f"{NAME}_forest.png")

    pymc_step(uranium_model)
    done()


def pymc_step(model: hbstan.Model) -> None:
    """The partial-pooling model with county uranium (85 counties) on PyMC."""
    compare_with_pymc(model, NAME)


if __name__ == "__main__":
    main()
