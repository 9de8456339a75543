"""Example 9: logistic regression on the Bangladesh wells data (Gelman & Hill 2007, ch. 5).

3,020 households whose well was unsafe (arsenic above 0.5): did they switch to a neighbour's
safe well? Predictors: distance to the nearest safe well (in 100 m, ``dist100``), arsenic
level of their own well, and schooling of the head of household (in 4-year units, ``educ4``).

Models (family="bernoulli", logit link):

1. ``switched ~ dist100 + arsenic``                           (G&H: -0.90 and +0.46)
2. ``switched ~ dist100 + arsenic + dist100:arsenic + educ4``

Coefficients are on the log-odds scale; divided by 4 they give the largest change in the
probability of switching per unit of the predictor (the "divide by 4 rule"). LOO compares the
two models, and the classic figure draws P(switch) against distance for several arsenic levels.

Run:  python examples/09_wells.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, interval, sampler, save, setup

import hbstan
from hbstan.plots import new_figure, plot_ppc

NAME = "wells"
GH = {"dist100": -0.90, "arsenic": 0.46}  # Gelman & Hill's estimates for model 1


def main() -> None:
    import arviz as az

    setup(NAME, "Example 9: wells - logistic regression")
    df = hbstan.datasets.load_wells()
    df = df.assign(dist100=df["dist"] / 100, educ4=df["educ"] / 4)
    print(f"{len(df)} households; {df['switched'].mean():.1%} switched")
    m1 = hbstan.Model("switched ~ dist100 + arsenic", df, family="bernoulli")
    m2 = hbstan.Model("switched ~ dist100 + arsenic + dist100:arsenic + educ4", df, family="bernoulli")
    fit1 = m1.sample(**sampler())
    fit2 = m2.sample(**sampler())
    print(fit1.summary(kind="stats").round(3).to_string())
    print(fit2.summary(kind="stats").round(3).to_string())

    for name, gh in GH.items():
        d = flat(fit1, name)
        lo, hi = interval(d, 0.95)
        sign = "negative" if hi < 0 else "positive" if lo > 0 else "NOT clearly signed"
        meaning = {"dist100": "a safe well farther away lowers switching", "arsenic": "more arsenic raises switching"}[name]
        conclusion(
            f"{name} coefficient {d.mean():+.2f} (95% interval {lo:+.2f} to {hi:+.2f}; Gelman & Hill {gh:+.2f}) is "
            f"{sign}: {meaning}; at most {abs(d.mean()) / 4:.1%} per unit on the probability scale"
        )
    loo = az.compare({"dist100 + arsenic": fit1.idata, "+ interaction + educ4": fit2.idata}, ic="loo")
    print(loo[["rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse"]].round(2).to_string())
    conclusion(
        f"LOO: '{loo.index[0]}' predicts better by {loo['elpd_diff'].iloc[1]:.1f} (dse {loo['dse'].iloc[1]:.1f})"
    )

    # figure: P(switch) vs distance for a few arsenic levels (model 1), and a PPC of model 2
    fig = new_figure((11, 4.2))
    ax, ax2 = fig.subplots(1, 2)
    jitter = np.random.default_rng(0).uniform(-0.03, 0.03, len(df))
    ax.scatter(df["dist"], df["switched"] + jitter, s=2, color="0.7")
    grid = np.linspace(0, df["dist100"].max(), 60)
    for k, arsenic in enumerate([0.5, 1.0, 2.0, 4.0]):
        new = pd.DataFrame({"dist100": grid, "arsenic": arsenic})
        p = fit1.predict(new, kind="mean").values.reshape(-1, len(grid))
        lo, hi = np.quantile(p, [0.05, 0.95], axis=0)
        ax.fill_between(grid * 100, lo, hi, color=f"C{k}", alpha=0.2)
        ax.plot(grid * 100, p.mean(0), color=f"C{k}", label=f"arsenic {arsenic}")
    ax.set_xlim(0, df["dist"].max())
    ax.set_xlabel("distance to the nearest safe well (m)")
    ax.set_ylabel("P(switch)")
    ax.set_title("Model 1: probability of switching")
    ax.legend(frameon=False, fontsize="small")
    plot_ppc(fit2, ax=ax2)
    ax2.set_title("Model 2: posterior predictive check")
    fig.tight_layout()
    save(fig, f"{NAME}.png")

    pymc_step(m1)
    done()


def pymc_step(model: hbstan.Model) -> None:
    """Model 1 (logistic regression on 3,020 rows) on PyMC."""
    compare_with_pymc(model, NAME)


if __name__ == "__main__":
    main()
