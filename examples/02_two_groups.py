"""Example 2: two groups, pooled, unpooled and hierarchical, and what shrinkage does.

1000 observations around 0 (group A) and 200 around 2 (group B). Three designs of the same
formula ``y ~ 1 + (1 | group)``:

* pooled (complete pooling): one mean for everyone; it lands between the groups, nearer A;
* unpooled (no pooling): a separate mean per group, each from its own data only;
* hierarchical (partial pooling): group means drawn from Normal(mu, tau), with a global
  mean mu and a between-group SD tau estimated from the data.

The hierarchical group means are the unpooled ones pulled ("shrunk") towards mu, each by an
amount that grows with the group's noise, sigma^2 / n, relative to tau^2: the smaller group B
moves more than A. With only two groups tau and mu are poorly determined by the data, which
is why the example gives tau a weakly informative HalfNormal(2) prior and asks for
adapt_delta=0.99 and the non-centered parameterization (``centered=False``).

Run:  python examples/02_two_groups.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import compare_with_pymc, conclusion, done, flat, interval, sampler, save, setup, write_text

import hbstan
from hbstan.pooling import compare_pooling
from hbstan.plots import new_figure

NAME = "two_groups"
SIGMA = 4.0  # noise SD within each group: large enough that pooling visibly matters
SIZES = {"A": (1000, 0.0), "B": (200, 2.0)}  # group: (observations, true mean)
FORMULA = "y ~ 1 + (1 | group)"


def simulate(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = [pd.DataFrame({"group": g, "y": rng.normal(mu, SIGMA, n)}) for g, (n, mu) in SIZES.items()]
    return pd.concat(parts, ignore_index=True)


def group_means(fits: dict[str, hbstan.Fit]) -> dict[str, np.ndarray]:
    """Draws of each group's mean under each design: {design: (draws, 2) array for A, B}."""
    out = {}
    for design, fit in fits.items():
        if design == "pooled":
            mu = flat(fit, "Intercept")
            out[design] = np.stack([mu, mu], axis=1)
        elif design == "unpooled":  # no global intercept: 1|group is each group's mean
            out[design] = flat(fit, "1|group")
        else:  # hierarchical: global mean + the group's deviation
            out[design] = flat(fit, "Intercept")[:, None] + flat(fit, "1|group")
    return out


def main() -> None:
    setup(NAME, "Example 2: two groups - pooled, unpooled and hierarchical")
    df = simulate()
    print(df.groupby("group")["y"].agg(["size", "mean", "std"]).round(3).to_string())
    # Two groups say almost nothing about the between-group SD tau, so its prior matters:
    # HalfNormal(2) says the group means differ by a few units at most (the default,
    # HalfNormal(sd of y) = HalfNormal(4), lets tau and mu wander far, and samplers crawl).
    # centered=False with adapt_delta=0.99: the non-centered parameterization samples the weakly
    # identified global mean more efficiently than the centered one hbstan's "auto" would pick,
    # and the higher acceptance target removes its occasional divergences.
    # compare_pooling applies the tau prior to the hierarchical design only (the others have no tau).
    res = compare_pooling(
        FORMULA, df, priors={"1|group_sigma": hbstan.HalfNormal(2)}, centered=False, **sampler(adapt_delta=0.99)
    )
    print(res.to_markdown())
    write_text(f"{NAME}_pooling.md", res.to_markdown())

    means = group_means(res.fits)
    ybar = df.groupby("group")["y"].mean()
    mu = flat(res.fits["hierarchical"], "Intercept")
    tau = flat(res.fits["hierarchical"], "1|group_sigma")
    rows = []
    for design, d in means.items():
        for k, g in enumerate(["A", "B"]):
            lo, hi = interval(d[:, k])
            rows.append({"design": design, "group": g, "mean": d[:, k].mean(), "5%": lo, "95%": hi})
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))
    print(f"hierarchical: global mean mu {mu.mean():.3f}, between-group SD tau {tau.mean():.3f} "
          f"(90% interval {interval(tau)[0]:.2f} to {interval(tau)[1]:.2f})")

    # shrinkage: how far did the hierarchical mean of each group move towards mu?
    import arviz as az

    chains = res.fits["hierarchical"].idata.posterior.sizes["chain"]

    def mc_err(x: np.ndarray) -> float:  # MCSE of the mean of flattened draws
        return float(np.squeeze(az.mcse(x.reshape(chains, -1))))

    moves = {}
    for k, g in enumerate(["A", "B"]):
        unp, hier = means["unpooled"][:, k], means["hierarchical"][:, k]
        towards = np.sign(mu.mean() - unp.mean())
        shift = towards * (hier.mean() - unp.mean())  # > 0: moved towards the global mean
        err = float(np.hypot(mc_err(unp), mc_err(hier)))
        moves[g] = (shift, err, unp.mean(), hier.mean())
        print(f"group {g}: unpooled {unp.mean():.3f} -> hierarchical {hier.mean():.3f}: moved {shift:+.3f} "
              f"towards mu (MC error {err:.3f}); sample mean {ybar[g]:.3f}")
    # the pooling factor: the fraction of the way from the group's own mean to mu that the
    # hierarchical estimate goes, (sigma^2 / n) / (sigma^2 / n + tau^2), one value per draw
    sigma = flat(res.fits["hierarchical"], "sigma")
    factor = {g: (sigma**2 / n) / (sigma**2 / n + tau**2) for g, (n, _) in SIZES.items()}
    for g, f in factor.items():
        print(f"pooling factor of group {g}: posterior mean {f.mean():.4f} (90% interval {interval(f)[0]:.4f} to {interval(f)[1]:.4f})")
    ratio = factor["B"].mean() / factor["A"].mean()
    conclusion(
        f"pooling factor: group B (n=200) is pulled {factor['B'].mean():.1%} of the way to the global mean, "
        f"group A (n=1000) {factor['A'].mean():.1%}: the smaller group shrinks {ratio:.1f}x more"
    )
    # The shift itself, averaged over the posterior without the noise of the group-mean draws:
    # given mu, tau and sigma, a group's mean has expectation ybar + factor * (mu - ybar)
    # (Rao-Blackwellization), so the expected move towards mu is factor * |mu - ybar|.
    toward = {g: float(np.mean(factor[g] * (mu - ybar[g])) * np.sign(mu.mean() - ybar[g])) for g in SIZES}
    sB, eB, uB, hB = moves["B"]
    conclusion(
        f"shrinkage: group B moves {toward['B']:.3f} toward the global mean, group A {toward['A']:.3f} "
        f"(posterior expectation); the sampled means show B at {uB:.3f} (unpooled) -> {hB:.3f} (hierarchical), "
        f"a shift of {sB:+.3f} +- {eB:.3f} (MC error): with this much data per group, shrinkage is small"
    )
    pooled = means["pooled"][:, 0].mean()
    between = min(ybar) < pooled < max(ybar)
    conclusion(
        f"complete pooling gives one mean {pooled:.3f}, {'between' if between else 'NOT between'} the group "
        f"means {ybar['A']:.3f} and {ybar['B']:.3f}, weighted towards the larger group A"
    )
    conclusion(res.verdict())

    # figure: the group means under each design
    fig = new_figure((7.5, 4))
    ax = fig.subplots()
    colors = {"pooled": "0.4", "unpooled": "C0", "hierarchical": "C3"}
    ticks, labels = [], []
    for k, (g, (n, _)) in enumerate(SIZES.items()):
        for i, design in enumerate(["pooled", "unpooled", "hierarchical"]):
            d = means[design][:, k]
            lo, hi = interval(d, 0.9)
            y = k * 4 + (2 - i)
            ax.plot([lo, hi], [y, y], color=colors[design], lw=2)
            ax.plot(d.mean(), y, "o", color=colors[design])
            ticks.append(y)
            labels.append(f"{g} (n={n}): {design}")
        ax.axvline(ybar[g], color="k", ls=":", lw=1, label="sample means" if k == 0 else None)
    ax.axvline(mu.mean(), color="C3", ls="--", lw=1, label="hierarchical global mean")
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels)
    ax.set_xlabel("group mean: posterior mean and 90% interval")
    ax.set_title("Two groups: complete, no and partial pooling")
    ax.legend(frameon=False, fontsize="small", loc="center right")
    fig.tight_layout()
    save(fig, f"{NAME}_means.png")

    pymc_step(res.fits["hierarchical"].model)
    done()


def pymc_step(model: hbstan.Model) -> None:
    """The hierarchical model on PyMC: do the two backends sample the same posterior?"""
    compare_with_pymc(model, NAME, adapt_delta=0.99)


if __name__ == "__main__":
    main()
