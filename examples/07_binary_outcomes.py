"""Example 7: binary outcomes - 10,000 Bernoulli trials in 3 segments x 2 arms.

Each of 10,000 visitors belongs to one of three segments, sees the control or the treatment
page, and converts (1) or not (0). Questions: each cell's conversion probability, and per
segment the difference treatment - control.

Model: logistic regression with the segment x arm interaction,
``converted ~ segment * arm`` (family="bernoulli"): six coefficients, one per cell. The
probabilities and differences are functions of the draws; ``fit.predict(cells, kind="mean")``
computes them for the six cells.

The same posterior comes from the six cells' counts, ``conversions | trials(visitors) ~
segment * arm`` (family="binomial"): a binomial likelihood on 6 rows instead of a Bernoulli
one on 10,000, equal up to a constant. The example fits both and checks they agree.

Run:  python examples/07_binary_outcomes.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, sampler, save, setup, write_text

import hbstan
from hbstan.plots import new_figure

NAME = "binary_outcomes"
N = 10_000
SEGMENTS = {"new": 0.5, "returning": 0.3, "loyal": 0.2}  # share of visitors
P_TRUE = {  # (segment, arm): conversion probability
    ("new", "control"): 0.040, ("new", "treatment"): 0.055,
    ("returning", "control"): 0.080, ("returning", "treatment"): 0.085,
    ("loyal", "control"): 0.150, ("loyal", "treatment"): 0.150,
}


def simulate(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segment = rng.choice(list(SEGMENTS), N, p=list(SEGMENTS.values()))
    arm = rng.choice(["control", "treatment"], N)
    p = np.array([P_TRUE[(s, a)] for s, a in zip(segment, arm)])
    return pd.DataFrame({"segment": segment, "arm": arm, "converted": rng.binomial(1, p)})


def cells() -> pd.DataFrame:
    return pd.DataFrame(list(P_TRUE), columns=["segment", "arm"])


def main() -> None:
    setup(NAME, "Example 7: binary outcomes in 3 x 2 cells")
    df = simulate()
    counts = df.groupby(["segment", "arm"])["converted"].agg(conversions="sum", visitors="size").reset_index()
    counts["observed"] = counts["conversions"] / counts["visitors"]
    print(counts.to_string(index=False))

    rows_model = hbstan.Model("converted ~ segment * arm", df, family="bernoulli")
    cell_model = hbstan.Model("conversions | trials(visitors) ~ segment * arm", counts, family="binomial")
    print(rows_model)
    print(cell_model)
    fit_rows = rows_model.sample(**sampler())
    fit_cells = cell_model.sample(**sampler())

    grid = cells()
    p_rows = fit_rows.predict(grid, kind="mean").values.reshape(-1, len(grid))  # (draws, 6)
    grid_n = grid.assign(visitors=1)  # binomial 'mean' is trials x p: one trial gives p
    p_cells = fit_cells.predict(grid_n, kind="mean").values.reshape(-1, len(grid))
    obs = counts.set_index(["segment", "arm"]).loc[list(P_TRUE), "observed"].to_numpy()
    table = grid.assign(
        observed=obs,
        bernoulli_mean=p_rows.mean(0),
        bernoulli_sd=p_rows.std(0),
        binomial_mean=p_cells.mean(0),
        true=list(P_TRUE.values()),
    )
    print(table.round(4).to_string(index=False))
    write_text(f"{NAME}_cells.md", "| segment | arm | observed | posterior mean | posterior sd | true |\n|:---|:---|---:|---:|---:|---:|\n"
               + "".join(f"| {r.segment} | {r.arm} | {r.observed:.4f} | {r.bernoulli_mean:.4f} | {r.bernoulli_sd:.4f} | {r.true:.3f} |\n"
                         for r in table.itertuples()))

    z = np.abs(table["bernoulli_mean"] - table["observed"]) / table["bernoulli_sd"]
    conclusion(
        f"each cell's posterior mean probability is within {z.max():.2f} posterior sd of the observed proportion"
        + (" (the data dominate the prior)" if z.max() < 1 else "")
    )
    # bernoulli on rows vs binomial on cells: the difference against the two Monte Carlo errors
    import arviz as az

    def mcse(draws: np.ndarray, chains: int) -> np.ndarray:
        return np.array([float(np.squeeze(az.mcse(draws[:, k].reshape(chains, -1)))) for k in range(draws.shape[1])])

    C = fit_rows.idata.posterior.sizes["chain"]
    zdiff = np.abs(p_rows.mean(0) - p_cells.mean(0)) / np.hypot(mcse(p_rows, C), mcse(p_cells, C))
    conclusion(
        f"Bernoulli on {N} rows and binomial on 6 cells give the same posterior: max difference of the cell "
        f"means {np.abs(p_rows.mean(0) - p_cells.mean(0)).max():.4f}, max |z| {zdiff.max():.2f} "
        + ("(within MC error)" if zdiff.max() < 4 else "(LARGER than MC error)")
    )

    diffs = {}
    for s in SEGMENTS:
        i_c = grid.index[(grid.segment == s) & (grid.arm == "control")][0]
        i_t = grid.index[(grid.segment == s) & (grid.arm == "treatment")][0]
        d = p_rows[:, i_t] - p_rows[:, i_c]
        diffs[s] = d
        lo, hi = np.quantile(d, [0.05, 0.95])
        conclusion(
            f"segment {s}: treatment - control = {d.mean():+.4f} (90% interval {lo:+.4f} to {hi:+.4f}; true "
            f"{P_TRUE[(s, 'treatment')] - P_TRUE[(s, 'control')]:+.3f}); P(treatment better) = {np.mean(d > 0):.2f}"
        )

    # figure: cell probabilities and the treatment differences
    fig = new_figure((11, 4.2))
    ax, ax2 = fig.subplots(1, 2)
    for k, (s, a) in enumerate(P_TRUE):
        color = "C0" if a == "control" else "C3"
        lo, hi = np.quantile(p_rows[:, k], [0.05, 0.95])
        ax.plot([lo, hi], [k, k], color=color, lw=2)
        ax.plot(p_rows[:, k].mean(), k, "o", color=color)
        ax.plot(obs[k], k, "k|", ms=12)
    ax.set_yticks(range(len(P_TRUE)))
    ax.set_yticklabels([f"{s} / {a}" for s, a in P_TRUE])
    ax.set_xlabel("conversion probability (posterior mean, 90% interval; | observed)")
    ax.set_title("Cell probabilities")
    for k, (s, d) in enumerate(diffs.items()):
        ax2.hist(d, bins=40, density=True, alpha=0.5, color=f"C{k}", label=f"{s} (P>0: {np.mean(d > 0):.2f})")
    ax2.axvline(0, color="k", lw=1)
    ax2.set_xlabel("treatment - control (probability)")
    ax2.set_title("Treatment effect per segment")
    ax2.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}.png")

    pymc_step(cell_model)
    done()


def pymc_step(model: hbstan.Model) -> None:
    """The binomial model of the six cells on PyMC."""
    compare_with_pymc(model, NAME)


if __name__ == "__main__":
    main()
