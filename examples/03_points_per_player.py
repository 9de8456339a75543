"""Example 3: points per game vs minutes played, with complete, no and partial pooling by position.

Simulated league: players at five positions; points per game = alpha_pos + beta_pos *
minutes + noise, where the intercept and the slope (points per extra minute) differ by
position. Few players play centre (C) or power forward (PF), so their lines are uncertain.

The predictor is ``minutes`` minus 24 (a typical player's minutes), so that each position's
intercept is its points at 24 minutes, inside the data, rather than at 0 minutes, far outside
it, where intercepts and slopes would be nearly collinear and hard to sample.

Models, all of ``points ~ minutes`` (one formula, different pooling):

* complete pooling:    ``points ~ minutes``                                  one line for all
* no pooling:          ``points ~ minutes + (1 + minutes | position)``, pooling="unpooled"
* varying intercept:   ``points ~ minutes + (1 | position)``                 parallel lines
* varying slope:       ``points ~ minutes + (0 + minutes | position)``       common intercept
* varying both:        ``points ~ minutes + (1 + minutes | position)``       correlated (LKJ)

Partial pooling pulls the uncertain positions' lines towards the league-wide line; LOO
(``az.compare``) says which structure predicts held-out players best.

Run:  python examples/03_points_per_player.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, sampler, save, setup, write_text

import hbstan
from hbstan.plots import new_figure

NAME = "points_per_player"
POSITIONS = {  # position: (players, true points at 24 minutes, true points per extra minute)
    "PG": (40, 13.0, 0.55),
    "SG": (35, 12.0, 0.50),
    "SF": (25, 11.0, 0.47),
    "PF": (10, 10.5, 0.40),
    "C": (6, 9.0, 0.36),
}
CENTER = 24.0  # the predictor is minutes - 24: the intercept is the points of a 24-minute player
SIGMA = 2.5
# 5 groups leave the group SDs weakly identified: the non-centered parameterization with a high
# acceptance target samples them without divergences (hbstan's "auto" would center them here,
# since each position has several players, and the varying-slope fits then diverge a little)
SAMPLER = sampler(adapt_delta=0.99)
CENTERED = False

MODELS = {
    "complete pooling": ("points ~ minutes", None),
    "no pooling": ("points ~ minutes + (1 + minutes | position)", "unpooled"),
    "varying intercept": ("points ~ minutes + (1 | position)", None),
    "varying slope": ("points ~ minutes + (0 + minutes | position)", None),
    "varying both": ("points ~ minutes + (1 + minutes | position)", None),
}


def simulate(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for pos, (n, a, b) in POSITIONS.items():
        minutes = rng.uniform(8, 38, n)
        points = a + b * (minutes - CENTER) + rng.normal(0, SIGMA, n)
        rows.append(pd.DataFrame({"position": pos, "minutes": minutes - CENTER, "points": points}))
    df = pd.concat(rows, ignore_index=True)
    df["position"] = pd.Categorical(df["position"], categories=list(POSITIONS))
    return df


def lines(fit: hbstan.Fit) -> pd.DataFrame:
    """Posterior-mean intercept (at 24 minutes) and slope of each position's line, from predictions."""
    grid = pd.DataFrame({"position": np.repeat(list(POSITIONS), 2), "minutes": np.tile([0.0, 1.0], len(POSITIONS))})
    grid["position"] = pd.Categorical(grid["position"], categories=list(POSITIONS))
    mu = fit.predict(grid, kind="mean").mean(("chain", "draw")).values.reshape(-1, 2)
    return pd.DataFrame({"intercept": mu[:, 0], "slope": mu[:, 1] - mu[:, 0]}, index=list(POSITIONS))


def main() -> None:
    import arviz as az

    setup(NAME, "Example 3: points per player - complete, no and partial pooling by position")
    df = simulate()
    print(df.groupby("position", observed=True).agg(players=("points", "size"), minutes=("minutes", "mean"), points=("points", "mean")).round(2).to_string())
    fits: dict[str, hbstan.Fit] = {}
    for label, (formula, pooling) in MODELS.items():
        model = hbstan.Model(formula, df, pooling=pooling, centered=CENTERED)
        print(f"fitting {label}: {model}")
        fits[label] = model.sample(**SAMPLER)
    for label, fit in fits.items():
        d = fit.diagnose()
        print(f"{label}: {sum(d.divergences)} divergences, max R-hat {d.max_rhat:.3f}")

    loo = az.compare({k: f.idata for k, f in fits.items()}, ic="loo")
    print(loo[["rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse", "weight"]].round(2).to_string())
    write_text(f"{NAME}_loo.md", "\n".join(["| model | rank | elpd_loo | p_loo | elpd_diff | dse |", "|:---|---:|---:|---:|---:|---:|"]
               + [f"| {k} | {r['rank']} | {r['elpd_loo']:.1f} | {r['p_loo']:.1f} | {r['elpd_diff']:.1f} | {r['dse']:.1f} |" for k, r in loo.iterrows()]) + "\n")
    top = loo.index[0]
    close = [k for k in loo.index[1:] if loo.loc[k, "elpd_diff"] <= 2 * loo.loc[k, "dse"]]
    conclusion(f"LOO ranks {', '.join(loo.index)}; best: {top}; within 2 dse of it (not clearly worse): "
               f"{', '.join(close) or 'none'}")

    # lines per position under each design
    est = {k: lines(f) for k, f in fits.items()}
    truth = pd.DataFrame({"intercept": [v[1] for v in POSITIONS.values()], "slope": [v[2] for v in POSITIONS.values()]},
                         index=list(POSITIONS))
    table = pd.concat({k: v["slope"] for k, v in est.items()} | {"truth": truth["slope"]}, axis=1)
    print("points per minute by position:")
    print(table.round(3).to_string())
    spread_no = float(est["no pooling"]["slope"].std())
    spread_both = float(est["varying both"]["slope"].std())
    pop_slope = float(flat(fits["varying both"], "minutes").mean())
    c_no, c_both = float(est["no pooling"].loc["C", "slope"]), float(est["varying both"].loc["C", "slope"])
    conclusion(
        f"partial pooling shrinks the position slopes: their spread is {spread_both:.3f} (varying both) "
        f"vs {spread_no:.3f} (no pooling)" + (" - shrinkage" if spread_both < spread_no else " - NO shrinkage")
    )
    conclusion(
        f"the centre position (6 players) moves from slope {c_no:.3f} (no pooling) to {c_both:.3f} "
        f"(partial pooling), towards the league slope {pop_slope:.3f}"
    )
    corr = flat(fits["varying both"], "position_corr")[:, 0, 1]
    conclusion(
        f"varying both: intercept-slope correlation {corr.mean():.2f} (90% interval {np.quantile(corr, 0.05):.2f} "
        f"to {np.quantile(corr, 0.95):.2f}): with 5 positions the LKJ(2) prior still dominates it"
    )

    # figure: one panel per position, data and three lines
    fig = new_figure((13, 3.6))
    axes = fig.subplots(1, len(POSITIONS), sharey=True)
    x = np.linspace(5, 40, 2) - CENTER
    styles = {"complete pooling": ("0.5", "--"), "no pooling": ("C0", "-"), "varying both": ("C3", "-")}
    for ax, pos in zip(axes, POSITIONS):
        sub = df[df["position"] == pos]
        ax.scatter(sub["minutes"] + CENTER, sub["points"], s=12, color="k", alpha=0.6)
        for label, (color, ls) in styles.items():
            a, b = est[label].loc[pos]
            ax.plot(x + CENTER, a + b * x, color=color, ls=ls, lw=1.8, label=label)
        ax.set_title(f"{pos} ({len(sub)} players)")
        ax.set_xlabel("minutes per game")
    axes[0].set_ylabel("points per game")
    axes[0].legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}_lines.png")

    pymc_step(fits["varying intercept"].model)
    done()


def pymc_step(model: hbstan.Model) -> None:
    """The varying-intercept model on PyMC.

    (The varying-both model's slope SD, over only 5 positions, needs more than a few hundred
    draws to converge; example 6 checks an LKJ model on PyMC with 20 groups.)
    """
    compare_with_pymc(model, NAME, adapt_delta=0.99)


if __name__ == "__main__":
    main()
