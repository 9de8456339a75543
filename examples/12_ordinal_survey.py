"""Example 12: an ordinal survey outcome - cumulative logit versus a Gaussian fit of the codes.

A satisfaction survey: 900 respondents in 20 regions answer "How satisfied are you with the
service?" on a 5-point scale (very dissatisfied ... very satisfied); half of them used a new
service (``treated``). The data are simulated below from a cumulative logit model: a latent
satisfaction, treated respondents 0.8 higher on the logistic scale, region effects with SD 0.5,
cut into 5 answers by thresholds that leave most answers at the top of the scale (a ceiling).

Models, the same formula:

1. ``rating ~ treated + (1 | region)``, ``family="cumulative"`` (logit link): the thresholds
   replace the intercept (prior student_t(3, 0, 2.5) each, brms's default), the rating is an
   ordered pandas Categorical whose labels become the thresholds' coordinates;
2. ``code ~ treated + (1 | region)``, ``family="gaussian"``, the answers coded 1..5.

The Gaussian model treats the distance between "satisfied" and "very satisfied" like any other
and gives the same spread to every respondent: with most answers at the ceiling it spills
predictions beyond 5 and misplaces the answer probabilities (its implied probability of each
answer, P(k - 0.5 < code <= k + 0.5), and of the impossible ones beyond the scale). The ordinal
model gives each answer's probability directly: ``fit.predict(new, kind="probs")``.

Run:  python examples/12_ordinal_survey.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, interval, sampler, save, setup
from scipy import stats

import hbstan
from hbstan.plots import new_figure
from hbstan.predict import predict

NAME = "ordinal_survey"
J, N = 20, 900  # regions, respondents
LABELS = ["very dissatisfied", "dissatisfied", "neutral", "satisfied", "very satisfied"]
CUTS = np.array([-2.6, -1.5, -0.4, 1.0])  # thresholds on the latent scale: a ceiling of answers
EFFECT, SD_REGION = 0.8, 0.5  # treatment effect (latent, logit scale), SD of the regions
FORMULA = "rating ~ treated + (1 | region)"


def simulate(seed: int = 12) -> pd.DataFrame:
    """Respondents: region, treated (0/1) and a rating from the cumulative logit model."""
    rng = np.random.default_rng(seed)
    region = rng.integers(0, J, N)
    treated = rng.integers(0, 2, N)
    latent = EFFECT * treated + rng.normal(0, SD_REGION, J)[region] + rng.logistic(size=N)
    code = 1 + np.sum(latent[:, None] > CUTS, axis=1)
    return pd.DataFrame({
        "region": [f"region{j + 1:02d}" for j in region],
        "treated": treated,
        "rating": pd.Categorical.from_codes(code - 1, LABELS, ordered=True),
        "code": code,
    })


def true_probs(treated: int) -> np.ndarray:
    """Each answer's probability for a respondent of a typical region (effect 0)."""
    cum = np.concatenate([[0.0], stats.logistic.cdf(CUTS - EFFECT * treated), [1.0]])
    return np.diff(cum)


def main() -> None:
    setup(NAME, "Example 12: an ordinal survey outcome - cumulative logit vs a Gaussian fit of the codes")
    df = simulate()
    counts = df["rating"].value_counts(sort=False)
    print(f"{N} respondents in {J} regions; answers: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    ordinal = hbstan.Model(FORMULA, df, family="cumulative", centered=False)
    gaussian = hbstan.Model("code ~ treated + (1 | region)", df)
    print(ordinal.prior_table().to_string(index=False))
    fits = {"ordinal": ordinal.sample(**sampler()), "gaussian": gaussian.sample(**sampler())}
    for name, fit in fits.items():
        print(f"-- {name}")
        print(fit.summary(kind="stats").round(3).to_string())

    cuts = flat(fits["ordinal"], "Intercept")
    eff = flat(fits["ordinal"], "treated")
    lo, hi = interval(eff)
    conclusion(
        f"treatment effect on the latent scale {eff.mean():.2f} (90% interval {lo:.2f} to {hi:.2f}; true {EFFECT}); "
        "thresholds " + ", ".join(f"{c:.2f}" for c in cuts.mean(axis=0)) + " (true " + ", ".join(f"{c:g}" for c in CUTS) + ")"
    )

    # each answer's probability for a typical region (region effects at their mean, 0), control and treated
    # (fit.predict(new, kind="probs") would give a new region's, its effect drawn from the
    # population; include=() leaves the region effects out: the typical region)
    new = pd.DataFrame({"treated": [0, 1]})
    ord_p = predict(fits["ordinal"], new, kind="probs", include=())
    ord_p = ord_p.stack(s=("chain", "draw")).transpose("s", "__obs__", "category").values  # (S, 2, 5)
    # the Gaussian's implied probabilities of each code: N(mu, sigma) mass in (k - 0.5, k + 0.5]
    # (the outer codes' intervals open, and the mass beyond 0.5 or 5.5 reported apart)
    g = fits["gaussian"]
    mu = np.stack([flat(g, "Intercept") + flat(g, "treated") * t for t in (0, 1)], axis=1)  # (S, 2)
    sigma = flat(g, "sigma")[:, None]
    edges = np.array([-np.inf, 1.5, 2.5, 3.5, 4.5, np.inf])
    gauss_p = np.diff(stats.norm.cdf((edges[None, None, :] - mu[..., None]) / sigma[..., None]), axis=-1)
    beyond = stats.norm.sf((5.5 - mu) / sigma) + stats.norm.cdf((0.5 - mu) / sigma)
    truth = np.stack([true_probs(0), true_probs(1)])
    err_ord = np.abs(ord_p.mean(axis=0) - truth).max()
    err_gauss = np.abs(gauss_p.mean(axis=0) - truth).max()
    conclusion(
        f"largest error in an answer's probability (typical region, control or treated): ordinal {err_ord:.3f}, "
        f"Gaussian of the codes {err_gauss:.3f}"
    )
    top = ord_p[:, :, -1]
    t_lo, t_hi = interval(top[:, 1] - top[:, 0])
    conclusion(
        f"P(very satisfied) rises from {top[:, 0].mean():.2f} to {top[:, 1].mean():.2f} with the treatment "
        f"(difference 90% interval {t_lo:.2f} to {t_hi:.2f}; true {true_probs(0)[-1]:.2f} to {true_probs(1)[-1]:.2f})"
    )
    rep = fits["gaussian"].idata.posterior_predictive["code"].values
    conclusion(
        f"the Gaussian model puts {beyond[:, 1].mean():.0%} of a treated respondent's answers beyond the scale "
        f"(above 5.5 or below 0.5), and {np.mean((rep > 5.5) | (rep < 0.5)):.0%} of its replicated codes"
    )

    plot(truth, ord_p, gauss_p)
    compare_with_pymc(ordinal, NAME)
    done()


def plot(truth: np.ndarray, ord_p: np.ndarray, gauss_p: np.ndarray) -> None:
    """Each answer's probability, control and treated: truth, ordinal (90% interval), Gaussian."""
    fig = new_figure((11, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    xs = np.arange(5)
    for t, ax in enumerate(axes):
        lo_, hi_ = np.quantile(ord_p[:, t, :], [0.05, 0.95], axis=0)
        ax.bar(xs - 0.25, truth[t], width=0.25, color="0.6", label="truth")
        ax.bar(xs, ord_p[:, t, :].mean(axis=0), width=0.25, color="C0", label="cumulative logit")
        ax.errorbar(xs, ord_p[:, t, :].mean(axis=0), yerr=[ord_p[:, t, :].mean(axis=0) - lo_, hi_ - ord_p[:, t, :].mean(axis=0)],
                    fmt="none", ecolor="k", lw=1)
        ax.bar(xs + 0.25, gauss_p[:, t, :].mean(axis=0), width=0.25, color="C1", label="Gaussian of the codes")
        ax.set_xticks(xs, [lab.replace(" ", "\n") for lab in LABELS], fontsize="small")
        ax.set_title(f"{'treated' if t else 'control'}: answer probabilities, typical region")
    axes[0].set_ylabel("probability")
    axes[0].legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}.png")


if __name__ == "__main__":
    main()
