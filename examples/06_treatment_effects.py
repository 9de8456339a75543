"""Example 6: heterogeneous treatment effects, with an LKJ prior on the effects' correlation.

A randomized experiment run in 20 customer segments: each customer gets the treatment or
not, and we measure their spend. Segments differ in baseline spend *and* in how much the
treatment moves it, and the two are correlated (segments that spend more respond more).

Model: ``spend ~ treat + (1 + treat | segment)``: each segment's (intercept, treatment
effect) pair is drawn from a bivariate normal with SDs (sigma_1, sigma_treat) and correlation
matrix R ~ LKJ(2) (hbstan's default; ``priors={"segment_corr": hbstan.LKJ(eta)}`` changes it).
Outputs: the average treatment effect (``treat``), how much it varies across segments
(``treat|segment_sigma``), each segment's own effect (``treat + treat|segment[s]``), and the
correlation (``segment_corr``).

Run:  python examples/06_treatment_effects.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, interval, sampler, save, setup

import hbstan
from hbstan.plots import new_figure

NAME = "treatment_effects"
J = 20  # segments
BASE, EFFECT = 20.0, 2.0  # average baseline spend and average treatment effect
SD_BASE, SD_EFFECT, RHO = 2.0, 1.5, 0.6  # their SDs across segments, and their correlation
SIGMA = 3.0  # spread of spend within a segment and arm


def simulate(seed: int = 6) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cov = np.array([[SD_BASE**2, RHO * SD_BASE * SD_EFFECT], [RHO * SD_BASE * SD_EFFECT, SD_EFFECT**2]])
    ab = rng.multivariate_normal([BASE, EFFECT], cov, J)
    segments = [f"S{j + 1:02d}" for j in range(J)]
    sizes = rng.integers(30, 90, J)
    rows = []
    for s, (a, b), n in zip(segments, ab, sizes):
        treat = rng.integers(0, 2, n)
        rows.append(pd.DataFrame({"segment": s, "treat": treat, "spend": rng.normal(a + b * treat, SIGMA)}))
    truth = pd.DataFrame({"baseline": ab[:, 0], "effect": ab[:, 1], "n": sizes}, index=segments)
    return pd.concat(rows, ignore_index=True), truth


def main() -> None:
    setup(NAME, "Example 6: heterogeneous treatment effects with an LKJ prior")
    df, truth = simulate()
    model = hbstan.Model("spend ~ treat + (1 + treat | segment)", df)
    print(model)
    print(model.prior_table().to_string(index=False))
    fit = model.sample(**sampler(adapt_delta=0.95))
    print(fit.summary(["Intercept", "treat", "sigma", "1|segment_sigma", "treat|segment_sigma", "segment_corr"],
                      kind="stats").round(3).to_string())
    print(fit.diagnose())

    ate = flat(fit, "treat")
    tau = flat(fit, "treat|segment_sigma")
    corr = flat(fit, "segment_corr")[:, 0, 1]
    effects = ate[:, None] + flat(fit, "treat|segment")  # each segment's treatment effect
    # no pooling: each segment's own difference in means
    raw = df.groupby(["segment", "treat"])["spend"].mean().unstack()
    raw_effect = (raw[1] - raw[0]).reindex(truth.index)
    lo_tau, hi_tau = interval(tau)
    conclusion(f"average treatment effect {ate.mean():.2f} (90% interval {interval(ate)[0]:.2f} to {interval(ate)[1]:.2f}; true {EFFECT})")
    conclusion(
        f"the treatment effect varies by segment: SD {tau.mean():.2f} (90% interval {lo_tau:.2f} to {hi_tau:.2f}; "
        f"true {SD_EFFECT})" + ("" if lo_tau > 0.2 else " - but an SD near 0 is NOT ruled out")
    )
    p_pos = float(np.mean(corr > 0))
    conclusion(
        f"correlation of baseline and effect: {corr.mean():.2f} (90% interval {interval(corr)[0]:.2f} to "
        f"{interval(corr)[1]:.2f}; true {RHO}); P(correlation > 0) = {p_pos:.2f}"
    )
    est = effects.mean(0)
    rmse_pp = float(np.sqrt(np.mean((est - truth["effect"].to_numpy()) ** 2)))
    rmse_np = float(np.sqrt(np.mean((raw_effect.to_numpy() - truth["effect"].to_numpy()) ** 2)))
    conclusion(
        f"segment effects: partial pooling error {rmse_pp:.2f} vs {rmse_np:.2f} for each segment's own "
        f"difference in means (RMSE against the truth)"
    )

    # figure: segment effects, and the correlation's posterior
    fig = new_figure((11, 4.8))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    order = np.argsort(est)
    y = np.arange(J)
    lo = np.quantile(effects, 0.05, axis=0)[order]
    hi = np.quantile(effects, 0.95, axis=0)[order]
    ax.hlines(y, lo, hi, color="C3", lw=2)
    ax.plot(est[order], y, "o", color="C3", label="partial pooling (mean, 90% interval)")
    ax.plot(raw_effect.to_numpy()[order], y, "o", mfc="none", color="C0", label="no pooling (difference in means)")
    ax.plot(truth["effect"].to_numpy()[order], y, "kx", label="truth")
    ax.axvline(ate.mean(), color="k", ls="--", lw=1, label="average effect")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{s} (n={truth.n[s]})" for s in truth.index[order]], fontsize="small")
    ax.set_xlabel("treatment effect on spend")
    ax.set_title("Treatment effect by segment")
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    ax2.hist(corr, bins=30, range=(-1, 1), density=True, color="C3", alpha=0.6, label="posterior")
    grid = np.linspace(-1, 1, 200)
    ax2.plot(grid, 0.75 * (1 - grid**2), "k--", label="LKJ(2) prior")  # marginal of LKJ(2) for 2x2: Beta(2, 2) on (-1, 1)
    ax2.axvline(RHO, color="k", lw=1, label="truth")
    ax2.set_xlabel("correlation of baseline and effect")
    ax2.set_title("segment_corr")
    ax2.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}.png")

    pymc_step(model)
    done()


def pymc_step(model: hbstan.Model) -> None:
    """The correlated varying-intercept-and-slope model (LKJ prior) on PyMC."""
    compare_with_pymc(model, NAME, adapt_delta=0.95)


if __name__ == "__main__":
    main()
