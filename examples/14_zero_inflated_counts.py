"""Example 14: counts with extra zeros - Poisson versus zero-inflated Poisson.

Fish caught by 600 angling parties at 20 lakes, with the hours each party spent at the lake
(the exposure) and whether it used live bait. Some parties never fished at all (they came to
camp or swim): they report zero fish whatever their hours and bait. The data are simulated
below: 35% of the parties are such structural zeros; the others catch fish at a rate of
exp(-0.3 + 0.6 bait + lake effect) per hour (lake SD 0.5), Poisson given the rate.

Models, the same formula and exposure, two families:

1. ``fish ~ bait + (1 | lake)``, ``family="poisson"``, ``exposure="hours"``
2. the same with ``family="zero_inflated_poisson"``: a zero with probability ``zi`` (prior
   Beta(1, 1), brms's default), else the Poisson count (which may be zero too)

The Poisson model cannot produce as many zeros as the data hold, so it lowers its rates to
make room for them and overpredicts the middle counts; its replicated data show far fewer
zeros than observed. The zero-inflated model reproduces the zeros, recovers the share of
non-fishing parties and the fishing rate, and LOO prefers it.

Run:  python examples/14_zero_inflated_counts.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, interval, sampler, save, setup

import hbstan
from hbstan.plots import new_figure

NAME = "zero_inflated_counts"
J, PARTIES = 20, 600  # lakes, parties
B0, BAIT, SD_LAKE, ZI = -0.3, 0.6, 0.5, 0.35  # log fish per hour, log effect of live bait, lake SD, share not fishing
FORMULA = "fish ~ bait + (1 | lake)"
MAX_COUNT = 15  # the figure's counts 0..15


def simulate(seed: int = 14) -> pd.DataFrame:
    """Parties: lake, hours at the lake (1-8), live bait (0/1) and fish caught."""
    rng = np.random.default_rng(seed)
    lake = rng.integers(0, J, PARTIES)
    hours = rng.uniform(1, 8, PARTIES).round(1)
    bait = rng.integers(0, 2, PARTIES)
    rate = np.exp(B0 + BAIT * bait + rng.normal(0, SD_LAKE, J)[lake])
    fished = rng.random(PARTIES) >= ZI
    fish = np.where(fished, rng.poisson(hours * rate), 0)
    return pd.DataFrame({"lake": [f"lake{j + 1:02d}" for j in lake], "hours": hours, "bait": bait, "fish": fish})


def zero_share(fit: hbstan.Fit) -> np.ndarray:
    """Share of zeros in each replicated data set."""
    rep = fit.idata.posterior_predictive["fish"].values
    return (rep == 0).mean(axis=-1).reshape(-1)


def main() -> None:
    import arviz as az

    setup(NAME, "Example 14: zero-inflated counts - Poisson vs zero-inflated Poisson")
    df = simulate()
    y = df["fish"].to_numpy()
    print(f"{len(df)} parties at {J} lakes; fish: mean {y.mean():.2f}, variance {y.var():.1f}, zeros {np.mean(y == 0):.0%}")
    models = {
        family: hbstan.Model(FORMULA, df, family=family, exposure="hours")
        for family in ("poisson", "zero_inflated_poisson")
    }
    print(models["zero_inflated_poisson"].prior_table().to_string(index=False))
    fits = {family: m.sample(**sampler()) for family, m in models.items()}
    for family, fit in fits.items():
        print(f"-- {family}")
        print(fit.summary(kind="stats").round(3).to_string())

    zeros = {family: zero_share(fit) for family, fit in fits.items()}
    (a, b), (c, d) = interval(zeros["poisson"]), interval(zeros["zero_inflated_poisson"])
    conclusion(
        f"observed zeros {np.mean(y == 0):.0%}; replicated (90% interval): Poisson {100 * a:.0f}% to {100 * b:.0f}%, "
        f"zero-inflated Poisson {100 * c:.0f}% to {100 * d:.0f}%"
    )
    zi = flat(fits["zero_inflated_poisson"], "zi")
    lo, hi = interval(zi)
    conclusion(f"share of parties that did not fish: zi {zi.mean():.2f} (90% interval {lo:.2f} to {hi:.2f}; true {ZI})")
    rate = {family: flat(fit, "Intercept") for family, fit in fits.items()}
    (a, b), (c, d) = interval(rate["zero_inflated_poisson"]), interval(rate["poisson"])
    conclusion(
        f"log fish per hour without bait (at the average lake): zero-inflated {rate['zero_inflated_poisson'].mean():.2f} "
        f"(90% interval {a:.2f} to {b:.2f}), Poisson {rate['poisson'].mean():.2f} ({c:.2f} to {d:.2f}); true {B0}: "
        "the Poisson lowers the rate to make room for the zeros"
    )
    bait = flat(fits["zero_inflated_poisson"], "bait")
    lo, hi = interval(bait)
    conclusion(f"live bait multiplies the catch rate by {np.exp(bait.mean()):.2f} (90% interval {np.exp(lo):.2f} to {np.exp(hi):.2f}; true {np.exp(BAIT):.2f})")
    loo = az.compare({family: fit.idata for family, fit in fits.items()}, ic="loo")
    print(loo[["rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse"]].round(1).to_string())
    conclusion(f"LOO prefers {loo.index[0]} by {loo['elpd_diff'].iloc[1]:.0f} (dse {loo['dse'].iloc[1]:.0f})")

    # figure: observed frequency of each count against each model's replicated frequencies
    fig = new_figure((9, 4.2))
    ax = fig.subplots()
    counts = np.arange(MAX_COUNT + 1)
    observed = np.array([np.mean(y == k) for k in counts])
    ax.bar(counts, observed, color="0.75", label="observed")
    for family, color, shift in (("poisson", "C3", -0.15), ("zero_inflated_poisson", "C0", 0.15)):
        rep = fits[family].idata.posterior_predictive["fish"].values.reshape(-1, y.size)
        freq = np.stack([(rep == k).mean(axis=1) for k in counts], axis=1)
        lo_, hi_ = np.quantile(freq, [0.05, 0.95], axis=0)
        ax.errorbar(counts + shift, freq.mean(axis=0), yerr=[freq.mean(axis=0) - lo_, hi_ - freq.mean(axis=0)],
                    fmt="o", ms=4, color=color, label=f"replicated, 90% interval ({family})")
    ax.set_xlabel("fish caught by a party")
    ax.set_ylabel("share of parties")
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}.png")

    compare_with_pymc(models["zero_inflated_poisson"], NAME)
    done()


if __name__ == "__main__":
    main()
