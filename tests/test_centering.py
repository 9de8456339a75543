"""Centered or non-centered group effects, chosen from the data (``hbstan.centering``).

* The between-group variance it estimates equals the closed-form ANOVA estimator on a balanced
  Gaussian one-way design, and recovers the truth of simulated Poisson and Bernoulli data.
* Default fits of the models the old rule (an assumed group SD of 0.5) got wrong have no
  divergences and R-hat <= 1.01, and agree with the other parameterization run long: a
  Poisson model with a tiny group SD, a binomial model with one effect per row, a Gaussian
  model with two crossed factors.
* When a centered term does diverge, the warning names it and ``fit.refit()`` switches it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hbstan
from hbstan.centering import term_evidence
from hbstan.compare import compare_fits
from hbstan.fit import SamplingWarning

cmdstan = pytest.mark.cmdstan


# ------------------------------------------------------------------ generators
def poisson_tiny_sd(seed: int = 1, J: int = 40, years: int = 15, sd: float = 0.035) -> pd.DataFrame:
    """Counts per site and year: a quadratic trend and site effects of SD 0.035 (log scale)."""
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(J), years)
    yr = np.tile(np.arange(years), J)
    t = (yr - yr.mean()) / yr.std()
    a = rng.normal(0, sd, J)
    y = rng.poisson(np.exp(np.log(5) + 0.3 * t - 0.15 * t**2 + a[site]))
    return pd.DataFrame({"y": y, "t": t, "t2": t**2, "site": [f"s{j}" for j in site]})


def binomial_per_row(seed: int = 2, n: int = 120, sd: float = 0.2) -> pd.DataFrame:
    """Successes out of 30-80 trials with one effect per row (overdispersion, SD 0.2)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    trials = rng.integers(30, 80, n)
    e = rng.normal(0, sd, n)
    y = rng.binomial(trials, 1 / (1 + np.exp(-(-0.5 + 0.4 * x + e))))
    return pd.DataFrame({"y": y, "n": trials, "x": x, "obs": [f"o{i}" for i in range(n)]})


def gaussian_crossed(seed: int = 1, S: int = 20, I: int = 10, per: int = 4) -> pd.DataFrame:
    """Each of S subjects answers `per` of I items: crossed, unbalanced, SDs 0.3 and 0.3."""
    rng = np.random.default_rng(seed)
    rows = [(s, it) for s in range(S) for it in rng.choice(I, per, replace=False)]
    s = np.array([r[0] for r in rows])
    it = np.array([r[1] for r in rows])
    y = 1 + rng.normal(0, 0.3, S)[s] + rng.normal(0, 0.3, I)[it] + rng.normal(0, 0.5, len(rows))
    return pd.DataFrame({"y": y, "subj": [f"s{j}" for j in s], "item": [f"i{j}" for j in it]})


CASES = {
    "poisson, tiny group SD": ("y ~ t + t2 + (1 | site)", "poisson", poisson_tiny_sd),
    "binomial, one effect per row": ("y | trials(n) ~ x + (1 | obs)", "binomial", binomial_per_row),
    "gaussian, two crossed factors": ("y ~ 1 + (1 | subj) + (1 | item)", "gaussian", gaussian_crossed),
}


# ------------------------------------------------------------------ no sampling
def test_tau_equals_anova_estimator_on_balanced_gaussian() -> None:
    rng = np.random.default_rng(4)
    J, n = 30, 12
    g = np.repeat(np.arange(J), n)
    y = 2 + rng.normal(0, 0.6, J)[g] + rng.normal(0, 1.5, J * n)
    df = pd.DataFrame({"y": y, "g": g.astype(str)})
    m = hbstan.Model("y ~ 1 + (1 | g)", df, marginalize=False)  # (integrated out: no choice to make)
    assert hbstan.Model("y ~ 1 + (1 | g)", df).term_evidence == []
    # closed form: tau^2 = (MSB - MSW) / n
    means = df.groupby("g")["y"].mean()
    msb = n * means.var(ddof=1)
    msw = df.groupby("g")["y"].var(ddof=1).mean()
    tau2 = (msb - msw) / n
    est = m.term_evidence[0].tau[0] ** 2
    assert est == pytest.approx(tau2, rel=0.05), (est, tau2)


@pytest.mark.parametrize("family", ["poisson", "bernoulli"])
def test_tau_recovers_truth_of_glm_data(family: str) -> None:
    rng = np.random.default_rng(7)
    J, n, tau = 300, 40, 0.4
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    eta = 0.2 + 0.5 * x + rng.normal(0, tau, J)[g]
    y = rng.poisson(np.exp(eta)) if family == "poisson" else (rng.random(J * n) < 1 / (1 + np.exp(-eta))).astype(int)
    m = hbstan.Model("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g}), family=family)
    est = m.term_evidence[0].tau[0]
    assert abs(est - tau) < 0.1 * tau, est  # working-residual estimates shrink a little on logit


def test_choices_follow_the_evidence() -> None:
    for name, (formula, family, make) in CASES.items():
        m = hbstan.Model(formula, make(), family=family)
        ev = {e.factor: e for e in m.term_evidence}
        for blk in m.design.blocks:
            assert blk.centered == ev[blk.factor].centered, name
    # the tiny site SD and the weak per-row effects: non-centered
    assert not hbstan.Model("y ~ t + t2 + (1 | site)", poisson_tiny_sd(), family="poisson").design.blocks[0].centered
    ev = hbstan.Model("y | trials(n) ~ x + (1 | obs)", binomial_per_row(), family="binomial").term_evidence[0]
    assert not ev.centered and ev.kappa_low[0] < 2, ev
    # data-rich groups with a clear spread: centered
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(20), 60)
    df = pd.DataFrame({"g": g, "x": rng.normal(size=1200)})
    df["y"] = rng.poisson(np.exp(1 + rng.normal(0, 0.5, 20)[g] + 0.3 * df["x"]))
    rich = ev = hbstan.Model("y ~ x + (1 | g)", df, family="poisson").term_evidence[0]
    assert ev.centered and "centered" in ev.reason()
    # too few groups: never centered, whatever the data per group
    small = df[df["g"] < 6]
    ev = hbstan.Model("y ~ x + (1 | g)", small, family="poisson").term_evidence[0]
    assert not ev.centered and "groups" in ev.reason()
    # likelihood weights scale each row's information: the same rows at a weight of 1/60 carry
    # a single row's worth per group (a weight of 1 changes nothing), and censored rows count
    # for nothing, so a group whose rows are nearly all censored is as a group with few rows
    for w, centered in ((1.0, True), (1 / 60, False)):
        ev_w = hbstan.Model("y | weights(w) ~ x + (1 | g)", df.assign(w=w), family="poisson").term_evidence[0]
        assert ev_w.centered is centered, (w, ev_w)
    assert hbstan.Model("y | weights(w) ~ x + (1 | g)", df.assign(w=1.0), family="poisson").term_evidence[0] == rich
    cens = np.where(np.arange(1200) % 60 < 58, 1, 0)  # 58 of each group's 60 rows right censored
    ev_c = hbstan.Model("y | cens(c) ~ x + (1 | g)", df.assign(c=cens), family="poisson").term_evidence[0]
    assert not ev_c.centered and ev_c.kappa_low[0] < rich.kappa_low[0] / 10, (ev_c, rich)


def test_crossed_terms_center_at_most_one_set_of_intercepts() -> None:
    """Without the program's split of the means (the rule's default, and the PyMC backend's
    choice) one set of crossed intercepts is centered; with it, each term on its evidence."""
    rng = np.random.default_rng(5)
    s, it = np.repeat(np.arange(30), 20), np.tile(np.arange(20), 30)
    y = rng.normal(0, 1, 30)[s] + rng.normal(0, 1, 20)[it] + rng.normal(0, 0.3, 600)
    m = hbstan.Model("y ~ 1 + (1 | s) + (1 | it)", pd.DataFrame({"y": y, "s": s, "it": it}))
    d = m.design
    ev = term_evidence("gaussian", d.y, d.X, np.zeros(d.N), d.blocks)
    assert [e.centered for e in ev].count(True) == 1
    assert all(min(e.kappa_low) > 2 for e in ev)  # both qualified on their own
    assert "are the centered ones" in next(e for e in ev if not e.centered).reason()
    # the program samples each term's mean apart: both centered, neither on the intercept
    assert m.split_means == (0, 1)
    assert [e.centered for e in m.term_evidence] == [True, True]
    assert m.term_evidence == term_evidence("gaussian", d.y, d.X, np.zeros(d.N), d.blocks, one_centered_intercept=False)
    blocks = m.structure()[0]["blocks"]
    assert [(b["split"], b["on_intercept"]) for b in blocks] == [(True, False), (True, False)]
    assert "real level;" in m.stan_code and "real Intercept = level - group_mean(" in m.stan_code


def test_means_are_split_off_only_for_crossed_hierarchical_intercepts() -> None:
    rng = np.random.default_rng(6)
    n = 600
    g, h, k = rng.integers(0, 30, n), rng.integers(0, 12, n), rng.integers(0, 10, n)
    x = rng.normal(size=n)
    df = pd.DataFrame({"x": x, "g": g, "h": h, "k": k, "u": np.linspace(0, 1, 30)[g]})
    df["y"] = rng.binomial(1, 1 / (1 + np.exp(-(0.3 * x + rng.normal(0, 0.5, 30)[g] + rng.normal(0, 0.5, 12)[h]))))
    split = {
        "y ~ x + (1 | g)": (),  # one term: centered on the intercept as before, or not
        "y ~ x + (1 | g) + (1 | h)": (0, 1),
        "y ~ x + (1 | g) + (1 + x || h) + (1 | k)": (0, 1, 2),
        "y ~ x + (1 | g) + (1 + x | h)": (),  # a correlated term: its intercepts keep their mean
        "y ~ 0 + x + (1 | g) + (1 | h)": (),  # no intercept to trade off against
        "y ~ x + (1 | g) + (0 + x | h)": (),  # one term with a varying intercept
    }
    for formula, want in split.items():
        assert hbstan.Model(formula, df, family="bernoulli").split_means == want, formula
    # group-level predictors: the intercepts' mean is their regression's; that term is left whole
    gp = hbstan.Model("y ~ x + (1 | g) + (1 | h) + (1 | k)", df, family="bernoulli", group_predictors={"g": ["u"]})
    assert gp.split_means == (1, 2)
    # unpooled terms have no mean to split; an explicit centered= keeps the split
    assert hbstan.Model("y ~ x + (1 | g) + (1 | h)", df, family="bernoulli", pooling="unpooled").split_means == ()
    nc = hbstan.Model("y ~ x + (1 | g) + (1 | h)", df, family="bernoulli", centered=False)
    assert nc.split_means == (0, 1) and "matrix[M_1, J_1] z_1;" in nc.stan_code


def test_term_evidence_handles_slopes_and_unpooled_terms() -> None:
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(12), 30)
    x = rng.normal(size=360)
    y = 1 + rng.normal(0, 0.5, 12)[g] + (0.5 + rng.normal(0, 0.3, 12)[g]) * x + rng.normal(0, 0.5, 360)
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    m = hbstan.Model("y ~ x + (1 + x | g)", df, marginalize=False)
    assert len(m.term_evidence[0].tau) == 2
    assert m.term_evidence[0].tau == pytest.approx((0.5, 0.3), abs=0.2)
    unpooled = hbstan.Model("y ~ x + (1 | g)", df, pooling="unpooled")
    assert unpooled.term_evidence == [] and not unpooled.design.blocks[0].centered  # no SD: nothing to choose
    d = m.design
    assert term_evidence("gaussian", d.y, d.X, np.zeros(d.N), unpooled.design.blocks)[0].centered is False
    # the function works on the design alone (family, response, predictors, offset, terms)
    d = m.design
    assert term_evidence("gaussian", d.y, d.X, np.zeros(d.N), d.blocks) == m.term_evidence


@pytest.mark.parametrize("family", ["negbinomial", "gamma", "beta"])
def test_dispersion_is_estimated_about_the_group_effects(family: str) -> None:
    # The information of a group comes from the family's dispersion (NB shape 4, gamma shape 3,
    # beta precision 10). Estimated from the pooled fit's residuals, which still hold the group
    # effects (SD 0.5), it came out 1.5-2.3x too much dispersion; about the group effects'
    # estimates it is within 15% of the truth: the median group's sampling variance tau^2 /
    # kappa against the one the true dispersion gives at the pooled linear predictor
    rng = np.random.default_rng(3)
    J, n = 150, 30
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    eta0 = 0.8 + 0.3 * x
    eta = eta0 + rng.normal(0, 0.5, J)[g]
    if family == "negbinomial":
        y = rng.negative_binomial(4.0, 4.0 / (4.0 + np.exp(eta)))
        w = np.exp(eta0) / (1 + np.exp(eta0) / 4.0)  # IRLS weight mu / (1 + mu / shape)
    elif family == "gamma":
        y = rng.gamma(3.0, np.exp(eta) / 3.0)
        w = np.full(J * n, 3.0)  # the shape
    else:
        m = 1 / (1 + np.exp(-(eta - 0.8)))
        y = np.clip(rng.beta(m * 10, (1 - m) * 10), 1e-6, 1 - 1e-6)
        m0 = 1 / (1 + np.exp(-(eta0 - 0.8)))
        w = m0 * (1 - m0) * 11.0  # mu (1 - mu) (1 + phi)
        eta0 = eta0 - 0.8
    formula = "y ~ x + (1 | g)"
    ev = hbstan.Model(formula, pd.DataFrame({"y": y, "x": x, "g": g}), family=family).term_evidence[0]
    v_true = np.median(1 / np.bincount(g, weights=w))
    v_est = ev.tau[0] ** 2 / ev.kappa[0]
    assert v_est == pytest.approx(v_true, rel=0.15), (v_est, v_true)
    assert ev.centered


def test_a_per_observation_effect_keeps_the_pooled_dispersion() -> None:
    # one effect per row can't be told apart from the negative binomial's own dispersion: the
    # group effects would soak up the residuals and leave no dispersion at all, so the pooled
    # estimate stands and the term stays non-centered (as it samples best)
    rng = np.random.default_rng(5)
    n = 400
    x = rng.normal(size=n)
    mu = np.exp(1.0 + 0.3 * x + rng.normal(0, 0.3, n))
    df = pd.DataFrame({"y": rng.negative_binomial(4.0, 4.0 / (4.0 + mu)), "x": x, "obs": np.arange(n)})
    ev = hbstan.Model("y ~ x + (1 | obs)", df, family="negbinomial").term_evidence[0]
    assert not ev.centered and ev.kappa_low[0] < 2, ev


# ------------------------------------------------------------------ with CmdStan
def _other_parameterization_long(m: hbstan.Model) -> hbstan.Fit:
    flipped = {blk.factor: not blk.centered for blk in m.design.blocks}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        return m.replace(centered=flipped).sample(seed=2, warmup=2000, draws=5000, adapt_delta=0.99)


@cmdstan
@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_default_fits_do_not_diverge_and_agree_with_the_other_parameterization(name: str) -> None:
    formula, family, make = CASES[name]
    m = hbstan.Model(formula, make(), family=family)
    fit = m.sample(seed=1)
    d = fit.diagnose()
    assert sum(d.divergences) == 0, d
    assert d.max_rhat <= 1.01, d
    ref = _other_parameterization_long(m)
    cmp = compare_fits(fit, ref, labels=("default", "other"))
    assert cmp.verdict == "agree", cmp.table.sort_values("z", key=abs).tail()


@cmdstan
def test_split_means_sample_the_posterior_of_the_whole_terms() -> None:
    """The program sampling the crossed terms' means apart (both terms centered) agrees with
    the PyMC model, which samples each term whole (one of them centered on the intercept)."""
    m = hbstan.Model("y ~ 1 + (1 | subj) + (1 | item)", gaussian_crossed())
    assert m.split_means == (0, 1)
    cmp = hbstan.compare_backends(m, chains=4, draws=1000, seed=3)
    assert cmp.verdict == "agree", cmp.to_markdown()


@cmdstan
def test_divergences_name_the_centered_term_and_refit_switches_it() -> None:
    m = hbstan.Model("y ~ t + t2 + (1 | site)", poisson_tiny_sd(), family="poisson", centered=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = m.sample(seed=1)
    assert sum(fit.diagnose().divergences) > 0  # the funnel the old rule walked into
    assert fit.suggestion == {"centered": {"site": False}}
    msg = next(str(w.message) for w in caught if "divergent" in str(w.message))
    assert "(1 | site)" in msg and "fit.refit()" in msg, msg
    refit = fit.refit()
    assert not refit.model.design.blocks[0].centered
    assert refit.settings["seed"] == 1 and refit.settings["draws"] == fit.settings["draws"]
    assert sum(refit.diagnose().divergences) == 0


def test_refit_without_a_suggestion_says_what_to_pass() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.normal(size=20), "x": rng.normal(size=20)})
    m = hbstan.Model("y ~ x", df)
    fit = hbstan.Fit(m, None, run_dir=None, settings={})
    with pytest.raises(ValueError, match="suggest no change"):
        fit.refit()
    with pytest.raises(ValueError, match="unknown model options"):
        m.replace(centred=True)
