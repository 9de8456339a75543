"""Example 1: the mean of a normal distribution with known sigma, checked against the closed form.

With y_i ~ Normal(mu, sigma), sigma known, and the prior mu ~ Normal(m0, s0), the posterior is
normal again (conjugacy):

    precision = 1 / s0^2 + n / sigma^2
    mean      = (m0 / s0^2 + sum(y) / sigma^2) / precision

So the sampler's answer can be checked exactly: the posterior mean must match up to Monte
Carlo error, and so must the posterior sd.

Run:  python examples/01_normal_mean.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, sampler, save, setup

import hbstan
from hbstan.plots import new_figure

NAME = "normal_mean"
SIGMA = 2.0  # known residual SD
PRIOR_MEAN, PRIOR_SD = 0.0, 10.0  # mu ~ Normal(0, 10)
N, TRUE_MU = 20, 1.5


def simulate(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.normal(TRUE_MU, SIGMA, N)})


def closed_form(y: np.ndarray) -> tuple[float, float]:
    """Posterior mean and sd of mu (normal prior, normal likelihood, known sigma)."""
    precision = 1 / PRIOR_SD**2 + len(y) / SIGMA**2
    mean = (PRIOR_MEAN / PRIOR_SD**2 + y.sum() / SIGMA**2) / precision
    return float(mean), float(precision**-0.5)


def build_model(df: pd.DataFrame) -> hbstan.Model:
    # "y ~ 1": an intercept only; sigma= makes the residual SD data, not a parameter
    return hbstan.Model("y ~ 1", df, sigma=SIGMA, priors={"Intercept": hbstan.Normal(PRIOR_MEAN, PRIOR_SD)})


def main() -> None:
    setup(NAME, "Example 1: normal mean with known sigma vs the closed-form posterior")
    df = simulate()
    model = build_model(df)
    print(model)
    fit = model.sample(**sampler())
    print(fit.summary(["Intercept"]).to_string())

    exact_mean, exact_sd = closed_form(df["y"].to_numpy())
    s = fit.summary(["Intercept"], kind="all", round_to="none").loc["Intercept"]
    z_mean = (s["mean"] - exact_mean) / s["mcse_mean"]
    z_sd = (s["sd"] - exact_sd) / s["mcse_sd"]
    print(f"closed form: mean {exact_mean:.4f}, sd {exact_sd:.4f}")
    print(f"sampled:     mean {s['mean']:.4f} (MCSE {s['mcse_mean']:.4f}), sd {s['sd']:.4f} (MCSE {s['mcse_sd']:.4f})")
    ok_mean, ok_sd = abs(z_mean) < 4, abs(z_sd) < 4
    conclusion(
        f"posterior mean {s['mean']:.3f} {'matches' if ok_mean else 'DOES NOT match'} closed form "
        f"{exact_mean:.3f} (within MC error: |z| = {abs(z_mean):.2f} {'<' if ok_mean else '>='} 4)"
    )
    conclusion(
        f"posterior sd {s['sd']:.3f} {'matches' if ok_sd else 'DOES NOT match'} closed form "
        f"{exact_sd:.3f} (within MC error: |z| = {abs(z_sd):.2f} {'<' if ok_sd else '>='} 4)"
    )
    conclusion(
        f"the prior sd {PRIOR_SD:g} is wide: the posterior sd {exact_sd:.3f} is nearly sigma/sqrt(n) = "
        f"{SIGMA / np.sqrt(N):.3f}, and the mean nearly the sample mean {df['y'].mean():.3f}"
    )

    # figure: histogram of the draws against the closed-form density
    draws = flat(fit, "Intercept")
    fig = new_figure((7, 4))
    ax = fig.subplots()
    ax.hist(draws, bins=40, density=True, color="C0", alpha=0.5, label=f"Stan draws ({draws.size})")
    grid = np.linspace(exact_mean - 4 * exact_sd, exact_mean + 4 * exact_sd, 300)
    dens = np.exp(-0.5 * ((grid - exact_mean) / exact_sd) ** 2) / (exact_sd * np.sqrt(2 * np.pi))
    ax.plot(grid, dens, "k-", lw=2, label=f"closed form N({exact_mean:.2f}, {exact_sd:.2f})")
    ax.axvline(TRUE_MU, color="C3", ls="--", label=f"true mu = {TRUE_MU}")
    ax.set_xlabel("mu")
    ax.set_ylabel("density")
    ax.set_title("Posterior of a normal mean (sigma known, prior N(0, 10))")
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}_posterior.png")

    pymc_step(model)
    done()


def pymc_step(model: hbstan.Model) -> None:
    """The same model on PyMC: do the two backends sample the same posterior?"""
    compare_with_pymc(model, NAME)


if __name__ == "__main__":
    main()
