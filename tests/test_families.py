"""Response families as objects (``hbstan.families``): each is checked against SciPy, and the
rest of hbstan asks the family instead of testing its name."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

import hbstan
from hbstan.families import FAMILIES, Family, get_family

ROOT = Path(__file__).resolve().parents[1]


def _reference(name: str, y, eta, aux, trials):
    """(log-likelihood, mean) of each family from scipy.stats."""
    if name == "gaussian":
        return stats.norm.logpdf(y, eta, aux["sigma"]), eta
    if name == "student":
        return stats.t.logpdf(y, aux["nu"], eta, aux["sigma"]), eta
    if name == "bernoulli":
        return stats.bernoulli.logpmf(y, expit(eta)), expit(eta)
    if name == "binomial":
        return stats.binom.logpmf(y, trials, expit(eta)), trials * expit(eta)
    if name == "poisson":
        return stats.poisson.logpmf(y, np.exp(eta)), np.exp(eta)
    if name == "negbinomial":
        mu, phi = np.exp(eta), aux["shape"]
        return stats.nbinom.logpmf(y, phi, phi / (phi + mu)), mu
    if name == "gamma":
        mu, a = np.exp(eta), aux["shape"]
        return stats.gamma.logpdf(y, a, scale=mu / a), mu
    if name == "lognormal":
        sigma = aux["sigma"]
        return stats.lognorm.logpdf(y, sigma, scale=np.exp(eta)), np.exp(eta + sigma**2 / 2)
    if name == "beta":
        mu, phi = expit(eta), aux["phi"]
        return stats.beta.logpdf(y, mu * phi, (1 - mu) * phi), mu
    # zero-inflated and hurdle families: a probability of zero (zi, hu) and a base distribution
    if name.startswith(("zero_inflated_", "hurdle_")):
        base = {
            "poisson": stats.poisson(np.exp(eta)),
            "negbinomial": stats.nbinom(aux.get("shape"), aux.get("shape", 1) / (aux.get("shape", 1) + np.exp(eta))),
            "lognormal": stats.lognorm(aux.get("sigma"), scale=np.exp(eta)),
        }[name.split("_")[-1]]
        discrete = hasattr(base.dist, "pmf")
        with np.errstate(divide="ignore"):
            logp = base.logpmf(y) if discrete else base.logpdf(np.where(y > 0, y, 1.0))
        mean = base.mean()
        if name.startswith("zero_inflated_"):
            zi = aux["zi"]
            ll = np.where(y == 0, np.log(zi + (1 - zi) * base.pmf(0)), np.log1p(-zi) + logp)
            return ll, (1 - zi) * mean
        hu = aux["hu"]
        p_pos = base.sf(0) if discrete else 1.0
        return np.where(y == 0, np.log(hu), np.log1p(-hu) + logp - np.log(p_pos)), (1 - hu) * mean / p_pos
    if name == "cumulative":
        return _ordinal_reference(stats.logistic, y, eta, aux["thresholds"])
    if name == "categorical":  # eta (n, K - 1): the multinomial of one trial, reference logit 0
        e = np.exp(np.column_stack([np.zeros(len(y)), eta]))
        p = e / e.sum(axis=1, keepdims=True)
        onehot = np.eye(p.shape[1])[np.asarray(y).astype(int) - 1]
        return np.array([stats.multinomial.logpmf(o, 1, q) for o, q in zip(onehot, p, strict=True)]), None
    raise AssertionError(f"no reference for {name}")


def _aux(fam: Family, value: float) -> dict[str, float]:
    """Auxiliary parameter values inside their support: a probability (upper bound 1) at 0.3."""
    return {a.name: 0.3 if np.isfinite(a.upper) else value + a.lower for a in fam.aux}


THRESHOLDS = np.array([-1.7, -0.4, 0.3, 1.9])  # 5 categories


def _ordinal_reference(dist, y, eta, c):
    """(log-likelihood, expected category) of a cumulative model: P(y <= k) = F(c_k - eta),
    written with scipy's CDF category by category."""
    c = np.asarray(c).reshape(-1)
    y = np.asarray(y).astype(int)
    edges = np.concatenate([[-np.inf], c, [np.inf]])
    p = dist.cdf(edges[y] - eta) - dist.cdf(edges[y - 1] - eta)
    probs = np.stack([dist.cdf(edges[k] - eta) - dist.cdf(edges[k - 1] - eta) for k in range(1, c.size + 2)], -1)
    return np.log(p), probs @ np.arange(1, c.size + 2)


def _data(fam: Family, rng: np.random.Generator, n: int = 200):
    # a family with a linear predictor per non-reference category: 3 categories
    eta = rng.normal(0.3, 0.8, (n, 2) if fam.per_category else n)
    trials = rng.integers(1, 15, n).astype(float) if fam.trials else None
    aux = _aux(fam, 1.3)
    if fam.thresholds:
        aux["thresholds"] = THRESHOLDS[None, :]  # one draw: (1, ncat - 1) against eta (n,)
    y = fam.draw(rng, eta, aux, trials)
    return y, eta, aux, trials


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_numpy_side_equals_scipy(name: str) -> None:
    fam = get_family(name)
    rng = np.random.default_rng(1)
    y, eta, aux, trials = _data(fam, rng)
    ll_ref, mean_ref = _reference(name, y, eta, aux, trials)
    np.testing.assert_allclose(fam.log_lik(y, eta, aux, trials), ll_ref, rtol=1e-10, atol=1e-10)
    if mean_ref is not None:
        np.testing.assert_allclose(fam.mean(eta, aux, trials), mean_ref, rtol=1e-12)
    # fill_pointwise (in place, eta sharing the log-likelihood's memory) gives the same numbers
    ll = np.empty(y.shape) if fam.per_category else np.array(eta, dtype=float)
    rep = np.empty(y.shape, dtype=np.int64 if fam.integer_response else float)
    fam.fill_pointwise(y, eta if fam.per_category else ll, aux, trials, np.random.default_rng(2), ll, rep)
    np.testing.assert_allclose(ll, ll_ref, rtol=1e-10, atol=1e-10)
    fam.check_response(y.astype(float), "y", trials)  # its own draws are valid responses


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_draws_have_the_family_mean(name: str) -> None:
    fam = get_family(name)
    rng = np.random.default_rng(3)
    if fam.per_category:  # no mean: each category's frequency is its probability
        eta = np.tile([0.4, -0.7], (200_000, 1))
        draws = fam.draw(rng, eta, {}, None)
        freq = np.bincount(draws, minlength=4)[1:] / draws.size
        p = np.exp([0.0, 0.4, -0.7]) / np.exp([0.0, 0.4, -0.7]).sum()
        np.testing.assert_allclose(freq, p, atol=0.004)
        with pytest.raises(TypeError, match="no mean: predict kind='probs'"):
            fam.mean(eta, {}, None)
        return
    eta = np.full(200_000, 0.4)
    trials = np.full(eta.shape, 7.0) if fam.trials else None
    aux = _aux(fam, 3.0)  # nu = 4: a finite variance
    if fam.thresholds:
        aux["thresholds"] = THRESHOLDS[None, :]
    draws = fam.draw(rng, eta, aux, trials)
    mean = fam.mean(eta, aux, trials)[0]
    sd = np.std(draws)
    assert abs(draws.mean() - mean) < 5 * sd / np.sqrt(draws.size)


def test_unknown_family_lists_the_valid_ones() -> None:
    valid = re.escape(
        "['bernoulli', 'beta', 'binomial', 'categorical', 'cumulative', 'gamma', 'gaussian', 'hurdle_lognormal', 'hurdle_negbinomial', "
        "'hurdle_poisson', 'lognormal', 'negbinomial', 'poisson', 'student', 'zero_inflated_negbinomial', "
        "'zero_inflated_poisson']"
    )
    with pytest.raises(ValueError, match=f"valid families: {valid}"):
        get_family("gausian")
    assert get_family(FAMILIES["poisson"]) is FAMILIES["poisson"]
    assert hbstan.Family is Family


def test_no_module_outside_families_tests_a_family_name() -> None:
    """The seam: code asks the family (capabilities, aux parameters, methods); only
    ``hbstan/families/`` knows which family is which."""
    pattern = re.compile(r"family(\.name)?\s*(==|!=|in)\s*[\(\"']")
    hits = []
    for path in (ROOT / "hbstan").rglob("*.py"):
        if "families" in path.parts:
            continue
        for k, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    assert not hits, "\n".join(hits)
    for path in (ROOT / "stan_templates").rglob("*.j2"):
        assert 'family ==' not in path.read_text(), path


LINKED = [
    (name, link) for name in sorted(FAMILIES) for link in FAMILIES[name].links[1:] if not FAMILIES[name].thresholds
]


def _p_reference(link: str, eta: np.ndarray) -> np.ndarray:
    return stats.norm.cdf(eta) if link == "probit" else 1.0 - np.exp(-np.exp(eta))


@pytest.mark.parametrize("name, link", LINKED, ids=lambda v: str(v))
def test_other_links_equal_scipy(name: str, link: str) -> None:
    """probit and cloglog: the NumPy side against scipy.stats with p = Phi(eta) or 1 - exp(-exp(eta))."""
    fam = get_family(name).with_link(link)
    assert fam.link == link and get_family(name).link == "logit"  # the registry's family is unchanged
    rng = np.random.default_rng(4)
    y, eta, aux, trials = _data(fam, rng)
    p = _p_reference(link, eta)
    if fam.trials:
        ll_ref, mean_ref = stats.binom.logpmf(y, trials, p), trials * p
    else:
        ll_ref, mean_ref = stats.bernoulli.logpmf(y, p), p
    np.testing.assert_allclose(fam.log_lik(y, eta, aux, trials), ll_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fam.mean(eta, aux, trials), mean_ref, rtol=1e-12)
    draws = fam.draw(rng, np.full(100_000, 0.4), aux, None if trials is None else np.full(100_000, 7.0))
    mean = fam.mean(np.array([0.4]), aux, None if trials is None else np.array([7.0]))[0]
    assert abs(draws.mean() - mean) < 5 * draws.std() / np.sqrt(draws.size)


def test_cloglog_failure_stays_possible_where_p_rounds_to_one() -> None:
    """At eta = 5, 1 - exp(-exp(5)) is 1.0 in double precision; a failure's log-likelihood is
    still -exp(5), not -inf."""
    fam = get_family("bernoulli").with_link("cloglog")
    assert 1.0 - np.exp(-np.exp(5.0)) == 1.0
    assert fam.log_lik(np.array([0.0]), np.array([5.0]), {}, None)[0] == pytest.approx(-np.exp(5.0), rel=1e-14)


def test_unknown_link_lists_the_family_links() -> None:
    with pytest.raises(ValueError, match=r"family='bernoulli' has no 'log' link; its links: \['logit', 'probit', 'cloglog'\]"):
        get_family("bernoulli").with_link("log")
    with pytest.raises(ValueError, match=r"family='poisson' has no 'identity' link; its links: \['log'\]"):
        get_family("poisson").with_link("identity")


def test_readme_families_table_lists_every_family() -> None:
    """The README's families table: one row per registered family, with its links (default
    first) and its auxiliary parameters."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| family | response | links"):]
    table = table[: table.index("\n\n")]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0].strip("`")] = cells
    assert set(rows) == set(FAMILIES)
    for name, fam in FAMILIES.items():
        links = [x.strip() for x in rows[name][2].split(",")]
        assert links == list(fam.links or (fam.link,)), name
        aux = re.findall(r"`(\w+)`", rows[name][4])
        assert [a for a in aux if a not in ("sigma=", "se")] == [a.name for a in fam.aux], name


def test_cumulative_probit_equals_scipy() -> None:
    """The probit link: P(y <= k) = Phi(c_k - eta), against scipy.stats.norm; the category
    probabilities sum to 1 and their expected category is the mean."""
    fam = get_family("cumulative").with_link("probit")
    rng = np.random.default_rng(5)
    y, eta, aux, _ = _data(fam, rng)
    ll_ref, mean_ref = _ordinal_reference(stats.norm, y, eta, aux["thresholds"])
    np.testing.assert_allclose(fam.log_lik(y, eta, aux, None), ll_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fam.mean(eta, aux, None), mean_ref, rtol=1e-12)
    probs = fam.category_probs(eta, aux)
    assert probs.shape == (eta.size, 5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-12)
    draws = fam.draw(rng, np.full(200_000, 0.4), aux, None)
    freq = np.bincount(draws, minlength=6)[1:] / draws.size
    np.testing.assert_allclose(freq, fam.category_probs(np.array([0.4]), aux)[0], atol=0.004)


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_cumulative_log_lik_is_accurate_in_the_tails(link: str) -> None:
    """Far from a category its log-probability is still finite and right (scipy's log CDF and
    log survival function), where the difference of two CDFs rounds to 0."""
    fam = get_family("cumulative").with_link(link)
    dist = stats.logistic if link == "logit" else stats.norm
    c = THRESHOLDS[None, :]
    eta = np.array([40.0, -40.0, 25.0, -25.0])
    y = np.array([1, 5, 2, 4])
    ref = np.array([
        dist.logcdf(c[0, 0] - 40.0),  # the lowest category far above it
        dist.logsf(c[0, -1] + 40.0),  # the highest far below it
        # a middle category: log(F(c_2 - eta) - F(c_1 - eta)), both in the lower tail
        dist.logcdf(c[0, 1] - 25.0) + np.log1p(-np.exp(dist.logcdf(c[0, 0] - 25.0) - dist.logcdf(c[0, 1] - 25.0))),
        dist.logsf(c[0, 2] + 25.0) + np.log1p(-np.exp(dist.logsf(c[0, 3] + 25.0) - dist.logsf(c[0, 2] + 25.0))),
    ])
    got = fam.log_lik(y, eta, {"thresholds": c}, None)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_cumulative_response_is_read_from_an_ordered_categorical_or_numbers() -> None:
    import pandas as pd

    levels = ["poor", "fair", "good", "excellent"]  # "excellent" never observed: still a category
    df = pd.DataFrame({"y": pd.Categorical(["fair", "poor", "good", "good", "fair", "poor"], levels, ordered=True),
                       "x": [0.1, -0.3, 0.8, 1.2, 0.0, -1.0]})
    m = hbstan.Model("y ~ x", df, family="cumulative")
    np.testing.assert_array_equal(m.design.y, [2, 1, 3, 3, 2, 1])
    assert m.stan_data["ncat"] == 4
    assert m.threshold_labels == ["poor|fair", "fair|good", "good|excellent"]
    assert "poor" not in m.program() and "ordered[ncat - 1] Intercept" in m.program()
    df["y"] = [2, 1, 3, 3, 2, 1]
    assert hbstan.Model("y ~ x", df, family="cumulative").threshold_labels == ["1|2", "2|3"]
    df["y"] = [2, 1, 3.5, 3, 0, 1]
    with pytest.raises(hbstan.DataError, match=r"response 'y' must hold category numbers 1, 2, \.\.\., K .*rows \[2, 4\] have \[3\.5, 0\.0\]\. Recode"):
        hbstan.Model("y ~ x", df, family="cumulative")
    df["y"] = pd.Categorical(["b", "a", "c", "c", "b", "a"])  # unordered: no order to use
    with pytest.raises(hbstan.DataError, match="unordered pandas Categorical.*ordered=True"):
        hbstan.Model("y ~ x", df, family="cumulative")


def _counts_with_repeats(seed: int = 4, n: int = 800) -> pd.DataFrame:
    """Counts of 20 sites x 2 treatments, several rows each with their own exposure."""
    rng = np.random.default_rng(seed)
    site, treat = rng.integers(0, 20, n), rng.integers(0, 2, n)
    t = rng.uniform(0.5, 3.0, n)
    eta = 0.3 + 0.5 * treat + rng.normal(0, 0.4, 20)[site] + np.log(t)
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "treat": treat, "t": t, "site": [f"s{j}" for j in site]})


def test_poisson_rows_are_summed_with_their_exposures() -> None:
    """Rows with identical predictors and groups become one count whose exposure is their sum:
    the log-likelihood of the summed data differs from the rows' by a constant only."""
    df = _counts_with_repeats()
    m = hbstan.Model("y ~ treat + (1 | site)", df, family="poisson", exposure="t")
    rows = hbstan.Model("y ~ treat + (1 | site)", df, family="poisson", exposure="t", aggregate=False)
    assert m.aggregated and not rows.aggregated and "exposures summed" in str(m)
    assert m.program() == rows.program()  # the same program: only the data differ
    agg, full = m.stan_data, rows.stan_data
    cells = df.groupby(["site", "treat"])
    assert agg["N"] == cells.ngroups and full["N"] == len(df) and agg["y"].sum() == df["y"].sum()
    assert np.allclose(np.sort(np.exp(agg["offsets"])), np.sort(cells["t"].sum().to_numpy()))
    rng = np.random.default_rng(0)

    def loglik(data: dict, b0: float, b1: float, r: np.ndarray) -> float:
        eta = data["offsets"] + b0 + b1 * data["X"][:, 0] + r[data["g_1"] - 1]
        return float(stats.poisson.logpmf(data["y"], np.exp(eta)).sum())

    diffs = []
    for _ in range(4):
        b0, b1, r = rng.normal(), rng.normal(), rng.normal(0, 0.5, 20)
        diffs.append(loglik(agg, b0, b1, r) - loglik(full, b0, b1, r))
    assert np.ptp(diffs) < 1e-8, diffs
    # the families whose sums are not of their own kind keep their rows
    for fam in ("negbinomial", "zero_inflated_poisson", "hurdle_poisson"):
        assert not hbstan.Model("y ~ treat + (1 | site)", df, family=fam, exposure="t").aggregated, fam
    with pytest.raises(ValueError, match="pointwise='stan' computes log_lik per row"):
        m.sample(chains=1, draws=10, warmup=10, pointwise="stan")
