"""Example 11: eight schools - a meta-analysis with known standard errors.

Rubin's (1981) SAT coaching experiments: in each of eight schools, the estimated effect of
coaching on SAT-V scores, ``y``, with its standard error, ``s``, both known from each school's
own analysis (Gelman et al., Bayesian Data Analysis, section 5.5). The model treats the eight
true effects as draws from a population:

    y_j ~ N(theta_j, s_j),  theta_j = mu + u_j,  u_j ~ N(0, tau)

In hbstan that is ``y | se(s) ~ 1 + (1 | school)``: ``se()`` gives each row's known standard
error, and there is no residual SD beyond it (brms's ``se(s, sigma = FALSE)`` default).

With eight small studies the data say little about tau, and the posterior of the school
effects is a funnel: where tau is small they are squeezed together. The centered program
(theta_j sampled directly) diverges in the funnel's neck; hbstan reads from the data that
the groups are weakly informed (tau^2 / s_j^2 is small) and writes the non-centered program,
which samples it cleanly. Because the likelihood of (mu, tau) is known in closed form here
(y_j ~ N(mu, sqrt(s_j^2 + tau^2))), the posterior means of mu and tau are also computed by
numerical integration on a grid, with the same priors: an answer independent of Stan.

Run:  python examples/11_eight_schools.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, mcse_mean, sampler, save, setup

import hbstan
from hbstan.plots import new_figure

NAME = "eight_schools"
FORMULA = "y | se(s) ~ 1 + (1 | school)"
SCHOOLS = pd.DataFrame(
    {
        "school": ["A", "B", "C", "D", "E", "F", "G", "H"],
        "y": [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
        "s": [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
    }
)


def grid_posterior_means(y: np.ndarray, s: np.ndarray, mu_prior: tuple[float, float], tau_scale: float) -> tuple[float, float]:
    """Posterior means of mu and tau by integration over a grid (Normal prior on mu,
    half-normal on tau), from the closed-form likelihood y_j ~ N(mu, sqrt(s_j^2 + tau^2))."""
    m0, s0 = mu_prior
    mu = np.linspace(m0 - 8 * s0, m0 + 8 * s0, 2001)[:, None]
    tau = np.linspace(1e-6, 8 * tau_scale, 2000)[None, :]
    logp = -0.5 * ((mu - m0) / s0) ** 2 - 0.5 * (tau / tau_scale) ** 2
    for yj, sj in zip(y, s, strict=True):
        v = sj**2 + tau**2
        logp = logp - 0.5 * np.log(v) - 0.5 * (yj - mu) ** 2 / v
    p = np.exp(logp - logp.max())
    p /= p.sum()
    return float((p * mu).sum()), float((p * tau).sum())


def divergences(fit: hbstan.Fit) -> int:
    return int(fit.idata.sample_stats["diverging"].values.sum())


def main() -> None:
    setup(NAME, "Example 11: eight schools, a meta-analysis with known standard errors")
    df = SCHOOLS
    auto = hbstan.Model(FORMULA, df)
    centered = hbstan.Model(FORMULA, df, centered=True)
    print(auto)
    print(f"hbstan's choice: {auto.term_evidence[0].reason()}")
    fits = {}
    for name, model in (("centered", centered), ("hbstan", auto)):
        import warnings

        with warnings.catch_warnings():  # the centered run's divergences are the point here
            warnings.simplefilter("ignore", hbstan.SamplingWarning)
            fits[name] = model.sample(**sampler())
    print(fits["hbstan"])
    n_c, n_h = divergences(fits["centered"]), divergences(fits["hbstan"])
    total = fits["hbstan"].idata.sample_stats["diverging"].size
    conclusion(
        f"divergent transitions: centered program {n_c} of {total}, hbstan's non-centered choice {n_h} of {total}"
    )

    pri = auto.priors
    mu_ref, tau_ref = grid_posterior_means(
        df["y"].to_numpy(), df["s"].to_numpy(), (pri["Intercept"].mu, pri["Intercept"].sigma), pri["1|school_sigma"].sigma
    )
    fit = fits["hbstan"]
    mu, tau = flat(fit, "Intercept"), flat(fit, "1|school_sigma")
    conclusion(
        f"posterior mean of mu {mu.mean():.2f} (MCSE {mcse_mean(fit, 'Intercept'):.2f}; grid integration {mu_ref:.2f}), "
        f"of tau {tau.mean():.2f} (MCSE {mcse_mean(fit, '1|school_sigma'):.2f}; grid integration {tau_ref:.2f})"
    )
    theta = flat(fit, "1|school") + mu[:, None]
    conclusion(
        f"school A's effect {theta[:, 0].mean():.1f} (its own estimate 28 +- 15): shrunk towards mu "
        f"{mu.mean():.1f}, as the population's SD tau is small next to the standard errors"
    )

    # figure: the funnel (log tau against school A's effect), divergences in red
    fig = new_figure((10, 4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, name in zip(axes, ("centered", "hbstan"), strict=True):
        f = fits[name]
        t = np.log(flat(f, "1|school_sigma"))
        a = (flat(f, "1|school") + flat(f, "Intercept")[:, None])[:, 0]
        div = f.idata.sample_stats["diverging"].values.reshape(-1)
        ax.scatter(a[~div], t[~div], s=3, alpha=0.4, color="0.4", label="draws")
        ax.scatter(a[div], t[div], s=8, color="C3", label="divergent")
        ax.set_title(f"{name}: {int(div.sum())} divergent")
        ax.set_xlabel("theta_A (school A's effect)")
    axes[0].set_ylabel("log tau")
    axes[0].legend(frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, f"{NAME}.png")

    compare_with_pymc(auto, NAME)
    done()


if __name__ == "__main__":
    main()
