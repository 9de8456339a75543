"""Example 8: grouped means with a half-Cauchy group SD, and predictions for new data.

Eight groups (labs, schools, stores...) of very different sizes measure the same kind of
quantity. Model: ``y ~ 1 + (1 | lab)`` with y_i ~ Normal(mu + a_lab, sigma),
a_lab ~ Normal(0, tau) and the heavy-tailed prior tau ~ HalfCauchy(5) (Gelman 2006's
recommendation for a group SD; hbstan's default is a half-normal), set with
``priors={"1|lab_sigma": hbstan.HalfCauchy(5)}``.

``fit.predict(new_rows)`` then draws new observations: for a lab seen in fitting from its own
posterior effect, and for a lab never seen from the population, a_new ~ Normal(0, tau), so
its predictive interval carries the between-lab uncertainty too and is wider.

Run:  python examples/08_grouped_means.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import SEED, compare_with_pymc, conclusion, done, flat, sampler, save, setup

import hbstan
from hbstan.plots import new_figure, plot_shrinkage

NAME = "grouped_means"
SIZES = {"L1": 2, "L2": 3, "L3": 5, "L4": 8, "L5": 12, "L6": 20, "L7": 35, "L8": 60}
MU, TAU, SIGMA = 50.0, 4.0, 6.0


def simulate(seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, TAU, len(SIZES))
    parts = [pd.DataFrame({"lab": lab, "y": rng.normal(MU + a, SIGMA, n)}) for (lab, n), a in zip(SIZES.items(), effect)]
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    setup(NAME, "Example 8: grouped means, half-Cauchy group SD, predictions for a new group")
    df = simulate()
    model = hbstan.Model("y ~ 1 + (1 | lab)", df, priors={"1|lab_sigma": hbstan.HalfCauchy(5)})
    print(model)
    print(model.prior_table().to_string(index=False))
    fit = model.sample(**sampler(adapt_delta=0.95))
    print(fit.summary(["Intercept", "sigma", "1|lab_sigma"], kind="stats").round(2).to_string())

    # predictions: one row per seen lab and one for a new lab
    new = pd.DataFrame({"lab": [*SIZES, "L_new"]})
    draws = fit.predict(new, seed=SEED)  # (chain, draw, row): new observations
    means = fit.predict(new, kind="mean", seed=SEED)  # the labs' expected values
    pred = draws.values.reshape(-1, len(new))
    mean = means.values.reshape(-1, len(new))
    lo, hi = np.quantile(pred, [0.05, 0.95], axis=0)
    table = pd.DataFrame(
        {"n": [*SIZES.values(), 0], "sample_mean": [*df.groupby("lab")["y"].mean().reindex(list(SIZES)), np.nan],
         "expected": mean.mean(0), "expected_sd": mean.std(0), "pred_5%": lo, "pred_95%": hi, "width": hi - lo},
        index=new["lab"],
    )
    print(table.round(2).to_string())
    mu = flat(fit, "Intercept")
    sd_new, sd_seen = table.loc["L_new", "expected_sd"], table["expected_sd"].iloc[:-1].max()
    conclusion(
        f"a new lab's expected value is uncertain by sd {sd_new:.2f}, "
        + ("more than" if sd_new > sd_seen else "NOT more than")
        + f" any seen lab's (at most {sd_seen:.2f}, the smallest lab): it is drawn from the population, "
        f"with the between-lab SD tau = {flat(fit, '1|lab_sigma').mean():.1f}"
    )
    # predictive SD by the law of total variance, E[sigma^2] + Var(expected value): the same
    # quantity as pred.std(0) but without the Monte Carlo noise of the simulated observations
    pred_sd = np.sqrt(np.mean(flat(fit, "sigma") ** 2) + mean.var(0))
    conclusion(
        f"so its predictive distribution is wider too: sd {pred_sd[-1]:.2f} vs at most {pred_sd[:-1].max():.2f} for "
        f"a seen lab (90% interval {table.loc['L_new', 'width']:.1f} wide vs at most {table['width'].iloc[:-1].max():.1f})"
    )
    gap = abs(table.loc["L_new", "expected"] - mu.mean())
    se = mean[:, -1].std() / np.sqrt(len(mu))
    conclusion(
        f"the new lab's expected value {table.loc['L_new', 'expected']:.2f} is the population mean "
        f"{mu.mean():.2f} (difference {gap:.2f}, {'within' if gap < 4 * se + 1e-9 else 'NOT within'} MC error)"
    )
    small = table.loc["L1"]
    conclusion(
        f"the smallest lab (n=2) is shrunk from its sample mean {small['sample_mean']:.1f} to {small['expected']:.1f}, "
        f"towards the population mean {mu.mean():.1f}"
    )

    # figures: predictions per lab, and the shrinkage plot
    fig = new_figure((8, 4.2))
    ax = fig.subplots()
    x = np.arange(len(new))
    for k, lab in enumerate(new["lab"]):
        sub = df.loc[df["lab"] == lab, "y"]
        ax.scatter(np.full(len(sub), k) + np.random.default_rng(k).uniform(-0.15, 0.15, len(sub)), sub, s=8, color="0.6")
    color = ["C0"] * len(SIZES) + ["C3"]
    ax.vlines(x, lo, hi, colors=color, lw=3, alpha=0.5, label="90% predictive interval")
    ax.scatter(x, table["expected"], color=color, zorder=3, label="expected value (posterior mean)")
    ax.axhline(mu.mean(), color="k", ls="--", lw=1, label="population mean")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{lab}\nn={n}" for lab, n in zip(new["lab"], table["n"])])
    ax.set_ylabel("y")
    ax.set_title("Predictions for seen labs and a new lab (red)")
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    fig.tight_layout()
    save(fig, f"{NAME}_predictions.png")
    save(plot_shrinkage(fit), f"{NAME}_shrinkage.png")

    pymc_step(model)
    done()


def pymc_step(model: hbstan.Model) -> None:
    """The grouped-means model with a half-Cauchy group SD on PyMC."""
    compare_with_pymc(model, NAME, adapt_delta=0.95)


if __name__ == "__main__":
    main()
