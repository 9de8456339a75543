"""Example 5: categorical predictors, and categories whose effects share a population distribution.

Simulated sales (log scale) of products from 12 brands sold in 3 regions. Brands have very
different numbers of observations (3 to 80). Two ways to put a categorical variable in a model:

* as a *categorical predictor*: ``log_sales ~ region + brand``. hbstan (through formulae, as
  R and bambi) uses treatment coding: one coefficient per non-reference level, each the
  difference to the reference level (the first in sorted order), with independent priors.
  The output names them ``region[south]``, ``brand[B02]``, ...
* as *categories that share a population distribution*: ``log_sales ~ region + (1 | brand)``.
  Each brand's effect is drawn from Normal(0, sigma_brand), and sigma_brand is estimated: a
  brand with little data borrows strength from the others and is pulled towards the average.

Region stays a categorical predictor in both (3 levels are too few to estimate a population
SD from). The comparison shows the hierarchical brand effects are less spread out and, for
the small brands, closer to the truth.

Run:  python examples/05_categorical.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, sampler, save, setup, write_text

import hbstan
from hbstan.plots import new_figure

NAME = "categorical"
REGIONS = {"north": 0.0, "south": 0.4, "west": -0.3}  # true region effects (north = reference)
N_PER_BRAND = [3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60, 80]
BRAND_SD, SIGMA, BASE = 0.35, 0.8, 3.0


def simulate(seed: int = 5) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    brands = [f"B{j + 1:02d}" for j in range(len(N_PER_BRAND))]
    effect = pd.Series(rng.normal(0, BRAND_SD, len(brands)), index=brands)
    rows = []
    for b, n in zip(brands, N_PER_BRAND):
        region = rng.choice(list(REGIONS), n)
        mu = BASE + effect[b] + np.array([REGIONS[r] for r in region])
        rows.append(pd.DataFrame({"brand": b, "region": region, "log_sales": rng.normal(mu, SIGMA)}))
    return pd.concat(rows, ignore_index=True), effect


def brand_means(fit: hbstan.Fit, brands: list[str]) -> np.ndarray:
    """Posterior mean of each brand's expected log sales in the reference region (north)."""
    grid = pd.DataFrame({"brand": brands, "region": "north"})
    return fit.predict(grid, kind="mean").mean(("chain", "draw")).values


def main() -> None:
    import arviz as az

    setup(NAME, "Example 5: categorical predictors vs categories sharing a population distribution")
    df, true_effect = simulate()
    brands = list(true_effect.index)
    print(df.groupby("brand").size().rename("rows").to_frame().T.to_string())

    fixed_model = hbstan.Model("log_sales ~ region + brand", df)
    shared_model = hbstan.Model("log_sales ~ region + (1 | brand)", df)
    print(fixed_model)
    print(shared_model)
    fixed = fixed_model.sample(**sampler())
    shared = shared_model.sample(**sampler())

    print("categorical predictor region (treatment coding, reference level 'north'):")
    print(fixed.summary(["Intercept", "region"], kind="stats").round(3).to_string())
    print(shared.summary(["Intercept", "region", "1|brand_sigma"], kind="stats").round(3).to_string())
    reg = fixed.idata.posterior["region"]
    levels = [str(v) for v in reg[reg.dims[-1]].values]
    est = reg.mean(("chain", "draw")).values
    conclusion(
        "categorical predictor region: treatment coding against the reference 'north' gives "
        + ", ".join(f"region[{lv}] = {v:.2f} (true {REGIONS[lv] - REGIONS['north']:.2f})" for lv, v in zip(levels, est))
    )

    # brand means: independent categorical coefficients vs a shared population distribution
    m_fixed = brand_means(fixed, brands)
    m_shared = brand_means(shared, brands)
    truth = BASE + true_effect.to_numpy()
    tab = pd.DataFrame({"rows": N_PER_BRAND, "truth": truth, "categorical": m_fixed, "hierarchical": m_shared}, index=brands)
    print(tab.round(3).to_string())
    write_text(f"{NAME}_brands.md", "| brand | rows | truth | categorical | hierarchical |\n|:---|---:|---:|---:|---:|\n"
               + "".join(f"| {b} | {r.rows} | {r.truth:.3f} | {r.categorical:.3f} | {r.hierarchical:.3f} |\n" for b, r in tab.iterrows()))
    spread_fixed, spread_shared = float(np.std(m_fixed)), float(np.std(m_shared))
    conclusion(
        f"brands sharing a population distribution are shrunk together: spread of brand means "
        f"{spread_shared:.3f} (hierarchical) vs {spread_fixed:.3f} (categorical)"
        + (" - shrinkage" if spread_shared < spread_fixed else " - NO shrinkage")
    )
    small = tab["rows"] <= 6
    rmse = {k: float(np.sqrt(np.mean((tab[k] - tab["truth"])[small] ** 2))) for k in ("categorical", "hierarchical")}
    conclusion(
        f"for the {int(small.sum())} brands with <= 6 rows, the error against the truth is "
        f"{rmse['hierarchical']:.3f} (hierarchical) vs {rmse['categorical']:.3f} (categorical) RMSE"
    )
    loo = az.compare({"categorical": fixed.idata, "hierarchical": shared.idata}, ic="loo")
    print(loo[["rank", "elpd_loo", "p_loo", "elpd_diff", "dse"]].round(2).to_string())
    conclusion(
        f"LOO: {loo.index[0]} first; difference {loo['elpd_diff'].iloc[1]:.1f} (dse {loo['dse'].iloc[1]:.1f}); "
        f"effective parameters p_loo {loo.loc['categorical', 'p_loo']:.1f} (categorical) vs "
        f"{loo.loc['hierarchical', 'p_loo']:.1f} (hierarchical)"
    )

    # figure: brand means, ordered by sample size
    fig = new_figure((10, 4.5))
    ax = fig.subplots()
    x = np.arange(len(brands))
    ax.plot(x, truth, "k_", ms=14, mew=2, label="truth")
    ax.plot(x - 0.12, m_fixed, "o", color="C0", label="categorical predictor (independent)")
    ax.plot(x + 0.12, m_shared, "o", color="C3", label="shared population (hierarchical)")
    ax.axhline(float(shared.idata.posterior["Intercept"].mean()), color="C3", ls="--", lw=1, label="population mean")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{b}\nn={n}" for b, n in zip(brands, N_PER_BRAND)], fontsize="small")
    ax.set_ylabel("expected log sales (north)")
    ax.set_title("Brand effects: independent categories vs a shared distribution")
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    save(fig, f"{NAME}_brands.png")

    pymc_step(shared_model)
    done()


def pymc_step(model: hbstan.Model) -> None:
    """The model with a categorical predictor and a shared brand distribution, on PyMC."""
    compare_with_pymc(model, NAME)


if __name__ == "__main__":
    main()
