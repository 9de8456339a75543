"""Example 15: an unordered choice - the categorical (multinomial logit) family with city effects.

Commuters in 15 cities say how they travel to work: walk, bike or bus. The data are simulated
below from a multinomial logit: against walking (the reference), the log odds of cycling and of
taking the bus grow with the trip's distance (km), and each city shifts them by its own effects
(its cycling culture, its bus network), with SDs 0.7 (bike) and 0.4 (bus).

Models:

1. ``mode ~ distance + (1 | city)``, ``family="categorical"``: an intercept, a distance slope
   and city intercepts for each of bike and bus against walk (brms's ``mu2``, ``mu3``), each
   with a ``category`` coordinate in the posterior;
2. ``mode ~ distance``, the same without cities (complete pooling).

The answers are categories without an order, so neither a Gaussian of codes nor an ordinal
model fits them. The categorical model recovers each mode's slope and the spread of the cities,
and gives each mode's probability (``fit.predict(new, kind="probs")``); the pooled model misses
how far the cities differ, and LOO prefers the model with city effects.

Run:  python examples/15_travel_mode_choice.py
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, interval, sampler, save, setup
from scipy.special import softmax

import hbstan
from hbstan.plots import new_figure
from hbstan.predict import predict

NAME = "travel_mode_choice"
J, N = 15, 900  # cities, commuters
MODES = ["walk", "bike", "bus"]  # walk is the reference
INTERCEPT = np.array([-1.0, -2.5])  # log odds of bike, bus against walk at 0 km
SLOPE = np.array([0.9, 1.3])  # per km
SD_CITY = np.array([0.7, 0.4])
FORMULA = "mode ~ distance + (1 | city)"


def simulate(seed: int = 15) -> pd.DataFrame:
    """Commuters: city, trip distance (km) and the mode drawn from the multinomial logit."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, J, N)
    distance = rng.gamma(2.0, 1.5, N)  # km, mean 3
    effects = rng.normal(size=(J, 2)) * SD_CITY
    eta = INTERCEPT + distance[:, None] * SLOPE + effects[city]
    p = softmax(np.column_stack([np.zeros(N), eta]), axis=1)
    mode = (rng.random(N)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    df = pd.DataFrame({
        "city": [f"city{j + 1:02d}" for j in city],
        "distance": distance,
        "mode": pd.Categorical.from_codes(mode, MODES),
    })
    df.attrs["city_effects"] = effects  # the simulated cities' own effects (their SD: what 15 cities show)
    return df


def true_probs(distance: np.ndarray) -> np.ndarray:
    """Each mode's probability in a typical city (city effects 0): (n, 3)."""
    eta = INTERCEPT + distance[:, None] * SLOPE
    return softmax(np.column_stack([np.zeros(len(distance)), eta]), axis=1)


def main() -> None:
    setup(NAME, "Example 15: an unordered choice - categorical (multinomial logit) with city effects")
    df = simulate()
    print(f"{N} commuters in {J} cities; modes: " + ", ".join(f"{k} {v}" for k, v in df["mode"].value_counts(sort=False).items()))
    models = {
        "city effects": hbstan.Model(FORMULA, df, family="categorical"),
        "pooled": hbstan.Model("mode ~ distance", df, family="categorical"),
    }
    print(models["city effects"].prior_table().to_string(index=False))
    fits = {name: m.sample(**sampler()) for name, m in models.items()}
    for name, fit in fits.items():
        print(f"-- {name}")
        print(fit.summary(kind="stats").round(3).to_string())

    fit = fits["city effects"]
    slope = flat(fit, "distance")  # (S, 2): bike, bus
    parts = []
    for k, mode in enumerate(MODES[1:]):
        lo, hi = interval(slope[:, k])
        parts.append(f"{mode} {slope[:, k].mean():.2f} (90% interval {lo:.2f} to {hi:.2f}; true {SLOPE[k]})")
    conclusion("distance slope of the log odds against walking: " + ", ".join(parts))
    sd = flat(fit, "1|city_sigma")
    own = df.attrs["city_effects"].std(axis=0, ddof=1)
    parts = []
    for k, mode in enumerate(MODES[1:]):
        lo, hi = interval(sd[:, k])
        parts.append(
            f"{mode} {sd[:, k].mean():.2f} (90% interval {lo:.2f} to {hi:.2f}; true {SD_CITY[k]}, "
            f"the {J} simulated cities' own {own[k]:.2f})"
        )
    conclusion("SD of the cities' log odds: " + ", ".join(parts))

    # each mode's probability in a typical city (include=(): city effects at their mean, 0)
    grid = np.linspace(0.2, 10.0, 50)
    probs = predict(fit, pd.DataFrame({"distance": grid}), kind="probs", include=())
    probs = probs.stack(s=("chain", "draw")).transpose("s", "__obs__", "category").values  # (S, 50, 3)
    truth = true_probs(grid)
    err = np.abs(probs.mean(axis=0) - truth).max()
    conclusion(f"largest error in a mode's probability over 0.2-10 km (typical city): {err:.3f}")
    at = [int(np.argmin(np.abs(grid - km))) for km in (0.5, 3.0)]
    walk = probs[:, at, 0]
    conclusion(
        f"P(walk) falls from {walk[:, 0].mean():.2f} at {grid[at[0]]:.1f} km to {walk[:, 1].mean():.2f} at {grid[at[1]]:.1f} km "
        f"(true {truth[at[0], 0]:.2f} and {truth[at[1], 0]:.2f})"
    )
    loo = az.compare({name: f.idata for name, f in fits.items()}, ic="loo")
    print(loo[["rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse"]].round(1).to_string())
    conclusion(f"LOO prefers {loo.index[0]} by {loo['elpd_diff'].iloc[1]:.0f} (dse {loo['dse'].iloc[1]:.0f})")

    plot(grid, truth, probs)
    compare_with_pymc(models["city effects"], NAME)
    done()


def plot(grid: np.ndarray, truth: np.ndarray, probs: np.ndarray) -> None:
    """Each mode's probability against distance: truth and the fit's mean with its 90% band."""
    fig = new_figure((7.5, 4.5))
    ax = fig.subplots()
    for k, mode in enumerate(MODES):
        lo, hi = np.quantile(probs[:, :, k], [0.05, 0.95], axis=0)
        ax.fill_between(grid, lo, hi, color=f"C{k}", alpha=0.25, lw=0)
        ax.plot(grid, probs[:, :, k].mean(axis=0), color=f"C{k}", label=f"{mode} (categorical fit)")
        ax.plot(grid, truth[:, k], color=f"C{k}", ls="--", lw=1)
    ax.set_xlabel("trip distance (km)")
    ax.set_ylabel("probability (typical city)")
    ax.set_title("Mode choice: fitted (90% band) and true (dashed) probabilities")
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}.png")


if __name__ == "__main__":
    main()
