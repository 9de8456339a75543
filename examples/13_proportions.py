"""Example 13: proportions - beta regression versus a normal model of the shares.

The share of each plant's leaf area damaged by a fungus, for 12 plants in each of 30 field
plots; half the plants of each plot were sprayed with a fungicide, and the plots differ in
humidity. The data are simulated below from a beta regression (logit link: the log-odds of the
mean damage fall by 0.7 with the fungicide and rise by 0.4 per SD of humidity; plots vary with
SD 0.5; precision phi = 8, so a plant with mean damage mu varies with variance
mu (1 - mu) / 9).

Models, the same formula, two families:

1. ``damage ~ fungicide + humidity + (1 | plot)``, ``family="beta"`` (logit link, precision
   ``phi``, prior InverseGamma(0.4, 0.3))
2. the same with ``family="gaussian"``: shares treated as normal with one residual SD

Shares live in (0, 1) and their spread shrinks towards the ends: a plant with 5% damage cannot
vary by +-20 points. The normal model ignores both. Its replicated data put draws below 0, and
its one SD makes the predictive intervals of lightly damaged plants too wide and those of
heavily damaged plants too narrow. The beta model gets both right, and gives the fungicide's
effect on the mean damage, in percentage points, from its predictions (``avg_comparisons``).

Run:  python examples/13_proportions.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, interval, sampler, save, setup
from scipy.special import expit

import hbstan
from hbstan.plots import new_figure

NAME = "proportions"
J, PLANTS = 30, 12  # plots, plants per plot
B0, FUNGICIDE, HUMIDITY, SD_PLOT, PHI = -1.4, -0.7, 0.4, 0.5, 8.0
FORMULA = "damage ~ fungicide + humidity + (1 | plot)"
LEVEL = 0.9


def simulate(seed: int = 13) -> tuple[pd.DataFrame, float]:
    """Plants: plot, fungicide (0/1, half of each plot), plot humidity (standardized) and the
    damaged share ~ Beta(mean mu, precision PHI); also the true average effect of the fungicide
    on the mean damage over these plants (their plots' true effects included)."""
    rng = np.random.default_rng(seed)
    plot = np.repeat(np.arange(J), PLANTS)
    fungicide = np.tile(np.r_[np.zeros(PLANTS // 2), np.ones(PLANTS // 2)], J).astype(int)
    humidity = rng.normal(0, 1, J)[plot]
    u = rng.normal(0, SD_PLOT, J)[plot]
    base = B0 + HUMIDITY * humidity + u
    mu = expit(base + FUNGICIDE * fungicide)
    damage = rng.beta(mu * PHI, (1 - mu) * PHI)
    truth = float(np.mean(expit(base + FUNGICIDE) - expit(base)))
    df = pd.DataFrame({"plot": [f"plot{j + 1:02d}" for j in plot], "fungicide": fungicide, "humidity": humidity, "damage": damage})
    return df, truth


def predictive(fit: hbstan.Fit) -> np.ndarray:
    """Replicated shares, (draws, rows)."""
    rep = fit.idata.posterior_predictive["damage"].values
    return rep.reshape(-1, rep.shape[-1])


def coverage_by_tercile(rep: np.ndarray, y: np.ndarray, mean: np.ndarray) -> list[float]:
    """Fraction of y inside its row's central LEVEL predictive interval, in the lowest, middle
    and highest third of the rows by predicted mean."""
    lo, hi = np.quantile(rep, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    inside = (y >= lo) & (y <= hi)
    cut = np.quantile(mean, [1 / 3, 2 / 3])
    which = np.digitize(mean, cut)
    return [float(inside[which == k].mean()) for k in range(3)]


def main() -> None:
    setup(NAME, "Example 13: proportions - beta regression vs a normal model")
    df, truth = simulate()
    y = df["damage"].to_numpy()
    print(f"{len(df)} plants in {J} plots; damaged share: mean {y.mean():.3f}, range {y.min():.4f} to {y.max():.3f}")
    models = {family: hbstan.Model(FORMULA, df, family=family) for family in ("beta", "gaussian")}
    print(models["beta"].prior_table().to_string(index=False))
    fits = {family: m.sample(**sampler()) for family, m in models.items()}
    for family, fit in fits.items():
        print(f"-- {family}")
        print(fit.summary(kind="stats").round(3).to_string())

    reps = {family: predictive(fit) for family, fit in fits.items()}
    below = {family: float(np.mean(rep < 0)) for family, rep in reps.items()}
    conclusion(
        f"replicated shares below 0: {below['gaussian']:.1%} of the normal model's draws, {below['beta']:.1%} of "
        "the beta model's"
    )
    mean = reps["beta"].mean(axis=0)  # order the plants by the beta model's predicted mean
    cov = {family: coverage_by_tercile(rep, y, mean) for family, rep in reps.items()}
    conclusion(
        f"{LEVEL:.0%} predictive intervals, lightly / heavily damaged third of the plants: normal model "
        f"{cov['gaussian'][0]:.0%} / {cov['gaussian'][2]:.0%}, beta model {cov['beta'][0]:.0%} / {cov['beta'][2]:.0%} "
        f"(nominal {LEVEL:.0%})"
    )
    phi = flat(fits["beta"], "phi")
    lo, hi = interval(phi)
    conclusion(f"precision phi {phi.mean():.1f} (90% interval {lo:.1f} to {hi:.1f}; true {PHI:g})")
    effect = {
        family: hbstan.avg_comparisons(fit, "fungicide", prob=LEVEL).iloc[0] for family, fit in fits.items()
    }
    e = effect["beta"]
    g = effect["gaussian"]
    conclusion(
        f"fungicide effect on the mean damaged share: beta model {100 * e['estimate']:.1f} points (90% interval "
        f"{100 * e['lower']:.1f} to {100 * e['upper']:.1f}), normal model {100 * g['estimate']:.1f} "
        f"({100 * g['lower']:.1f} to {100 * g['upper']:.1f}); true {100 * truth:.1f}"
    )
    b = flat(fits["beta"], "fungicide")
    lo, hi = interval(b)
    conclusion(
        f"on the log-odds scale the fungicide's coefficient is {b.mean():.2f} (90% interval {lo:.2f} to {hi:.2f}; "
        f"true {FUNGICIDE}): an odds ratio of {np.exp(b.mean()):.2f} for the mean damage"
    )

    # figure: observed shares against each model's replicated ones, and the predictive intervals
    # of the plants sorted by predicted mean
    fig = new_figure((11, 4.2))
    axes = fig.subplots(1, 2)
    bins = np.linspace(-0.3, 0.9, 61)
    axes[0].hist(y, bins=bins, density=True, color="0.6", label="observed")
    for family, color in (("gaussian", "C3"), ("beta", "C0")):
        axes[0].hist(reps[family][::20].ravel(), bins=bins, density=True, histtype="step", lw=1.8, color=color,
                     label=f"replicated ({family})")
    axes[0].axvline(0, color="k", lw=0.8)
    axes[0].set_xlabel("damaged share of the leaf area")
    axes[0].set_ylabel("density")
    axes[0].legend(frameon=False, fontsize="small")
    order = np.argsort(mean)
    xs = np.arange(y.size)
    for family, color in (("gaussian", "C3"), ("beta", "C0")):
        lo_, hi_ = np.quantile(reps[family], [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
        axes[1].fill_between(xs, lo_[order], hi_[order], step="mid", color=color, alpha=0.25,
                             label=f"{LEVEL:.0%} interval ({family})")
    axes[1].scatter(xs, y[order], s=4, color="0.2", label="observed")
    axes[1].set_xlabel("plants, by predicted mean damage")
    axes[1].set_ylabel("damaged share")
    axes[1].legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}.png")

    compare_with_pymc(models["beta"], NAME)
    done()


if __name__ == "__main__":
    main()
