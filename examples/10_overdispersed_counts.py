"""Example 10: overdispersed counts - Poisson versus negative binomial.

Support tickets logged per store and week in 25 stores, with the number of days each store
was open that week (the exposure) and whether a promotion ran. Counts like these vary more
than a Poisson allows: beyond the store and the promotion, busy and quiet weeks come and go.
The data are simulated below from a negative binomial with shape 1.5, so a count with mean
mu has variance mu + mu^2 / 1.5, eight times the Poisson's at the average count of 12.

Models, the same formula and exposure, two families:

1. ``tickets ~ promo + (1 | store)``, ``family="poisson"``, ``exposure="days"``
2. the same with ``family="negbinomial"`` (log link, one more parameter: the ``shape``, prior
   InverseGamma(0.4, 0.3), brms's default)

The check that tells them apart is posterior predictive coverage: the fraction of observed
counts inside their row's 90% posterior predictive interval. A model whose predictive
distribution is right covers about 90% (a little more: the interval of a count includes its
end points); the Poisson's intervals are far too narrow, and so is its interval for the
promotion effect (it takes the extra noise for information). LOO agrees.

Run:  python examples/10_overdispersed_counts.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, interval, sampler, save, setup

import hbstan
from hbstan.plots import new_figure

NAME = "overdispersed_counts"
J, WEEKS = 25, 16  # stores, weeks per store
RATE, PROMO, SD_STORE = 2.0, 0.4, 0.4  # tickets per open day, log effect of a promotion, SD of log store rates
SHAPE = 1.5  # negative binomial shape: variance mu + mu^2 / SHAPE
FORMULA = "tickets ~ promo + (1 | store)"
LEVEL = 0.9


def simulate(seed: int = 10) -> pd.DataFrame:
    """Store-weeks: days open (4-7), promotion (0/1) and tickets ~ NB(days * rate, SHAPE)."""
    rng = np.random.default_rng(seed)
    store = np.repeat(np.arange(J), WEEKS)
    days = rng.integers(4, 8, J * WEEKS)
    promo = rng.integers(0, 2, J * WEEKS)
    log_rate = np.log(RATE) + PROMO * promo + rng.normal(0, SD_STORE, J)[store]
    mu = days * np.exp(log_rate)
    tickets = rng.negative_binomial(SHAPE, SHAPE / (SHAPE + mu))  # a gamma-Poisson mixture
    return pd.DataFrame({"store": [f"store{j + 1:02d}" for j in store], "days": days, "promo": promo, "tickets": tickets})


def coverage(fit: hbstan.Fit, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Fraction of y inside each row's central LEVEL posterior predictive interval, and the bounds."""
    rep = fit.idata.posterior_predictive["tickets"].values.reshape(-1, y.size)
    lo, hi = np.quantile(rep, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    return float(np.mean((y >= lo) & (y <= hi))), lo, hi


def main() -> None:
    import arviz as az

    setup(NAME, "Example 10: overdispersed counts - Poisson vs negative binomial")
    df = simulate()
    y = df["tickets"].to_numpy()
    print(f"{len(df)} store-weeks in {J} stores; tickets: mean {y.mean():.1f}, variance {y.var():.1f}")
    models = {
        family: hbstan.Model(FORMULA, df, family=family, exposure="days") for family in ("poisson", "negbinomial")
    }
    print(models["negbinomial"].prior_table().to_string(index=False))
    fits = {family: m.sample(**sampler()) for family, m in models.items()}
    for family, fit in fits.items():
        print(f"-- {family}")
        print(fit.summary(kind="stats").round(3).to_string())

    cov = {family: coverage(fit, y) for family, fit in fits.items()}
    conclusion(
        f"{LEVEL:.0%} posterior predictive intervals cover {cov['poisson'][0]:.0%} of the counts under the Poisson "
        f"model and {cov['negbinomial'][0]:.0%} under the negative binomial (nominal {LEVEL:.0%})"
    )
    shape = flat(fits["negbinomial"], "shape")
    lo, hi = interval(shape)
    m_y = float(y.mean())
    conclusion(
        f"shape {shape.mean():.2f} (90% interval {lo:.2f} to {hi:.2f}; true {SHAPE}): at the mean count {m_y:.0f} the "
        f"variance is {m_y + m_y**2 / shape.mean():.0f}, {1 + m_y / shape.mean():.1f} times the Poisson's"
    )
    p_nb, p_po = flat(fits["negbinomial"], "promo"), flat(fits["poisson"], "promo")
    (a, b), (c, d) = interval(p_nb), interval(p_po)
    conclusion(
        f"promotion effect (log rate): negative binomial {p_nb.mean():.2f} (90% interval {a:.2f} to {b:.2f}), "
        f"Poisson {p_po.mean():.2f} ({c:.2f} to {d:.2f}), true {PROMO}; the Poisson interval is "
        f"{(b - a) / (d - c):.1f} times narrower: overconfident"
    )
    loo = az.compare({family: fit.idata for family, fit in fits.items()}, ic="loo")
    print(loo[["rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse"]].round(1).to_string())
    conclusion(f"LOO prefers {loo.index[0]} by {loo['elpd_diff'].iloc[1]:.0f} (dse {loo['dse'].iloc[1]:.0f})")

    # figure: each row's 90% predictive interval (sorted by the predicted mean) with the
    # observed counts, per model; misses in red
    fig = new_figure((11, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, family in zip(axes, fits, strict=True):
        rate, lo_, hi_ = cov[family]
        mean = fits[family].idata.posterior_predictive["tickets"].mean(("chain", "draw")).values
        order = np.argsort(mean)
        xs = np.arange(y.size)
        ax.fill_between(xs, lo_[order], hi_[order], step="mid", color="C0", alpha=0.3, label=f"{LEVEL:.0%} interval")
        miss = (y < lo_) | (y > hi_)
        ax.scatter(xs[~miss[order]], y[order][~miss[order]], s=4, color="0.3", label="inside")
        ax.scatter(xs[miss[order]], y[order][miss[order]], s=6, color="C3", label="outside")
        ax.set_title(f"{family}: {rate:.0%} of counts inside")
        ax.set_xlabel("store-weeks, by predicted mean")
    axes[0].set_ylabel("tickets")
    axes[0].legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}.png")

    pymc_step(models["negbinomial"])
    done()


def pymc_step(model: hbstan.Model) -> None:
    """The negative binomial model (400 rows, 25 stores) on PyMC."""
    compare_with_pymc(model, NAME)


if __name__ == "__main__":
    main()
