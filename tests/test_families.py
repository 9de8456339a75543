"""Response families as objects (``hbstan.families``): each is checked against SciPy, and the
rest of hbstan asks the family instead of testing its name."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
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
    raise AssertionError(f"no reference for {name}")


def _aux(fam: Family, value: float) -> dict[str, float]:
    """Auxiliary parameter values inside their support: a probability (upper bound 1) at 0.3."""
    return {a.name: 0.3 if np.isfinite(a.upper) else value + a.lower for a in fam.aux}


def _data(fam: Family, rng: np.random.Generator, n: int = 200):
    eta = rng.normal(0.3, 0.8, n)
    trials = rng.integers(1, 15, n).astype(float) if fam.trials else None
    aux = _aux(fam, 1.3)
    y = fam.draw(rng, eta, aux, trials)
    return y, eta, aux, trials


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_numpy_side_equals_scipy(name: str) -> None:
    fam = get_family(name)
    rng = np.random.default_rng(1)
    y, eta, aux, trials = _data(fam, rng)
    ll_ref, mean_ref = _reference(name, y, eta, aux, trials)
    np.testing.assert_allclose(fam.log_lik(y, eta, aux, trials), ll_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fam.mean(eta, aux, trials), mean_ref, rtol=1e-12)
    # fill_pointwise (in place, eta sharing the log-likelihood's memory) gives the same numbers
    ll = np.array(eta, dtype=float)
    rep = np.empty(y.shape, dtype=np.int64 if fam.integer_response else float)
    fam.fill_pointwise(y, ll, aux, trials, np.random.default_rng(2), ll, rep)
    np.testing.assert_allclose(ll, ll_ref, rtol=1e-10, atol=1e-10)
    fam.check_response(y.astype(float), "y", trials)  # its own draws are valid responses


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_draws_have_the_family_mean(name: str) -> None:
    fam = get_family(name)
    rng = np.random.default_rng(3)
    eta = np.full(200_000, 0.4)
    trials = np.full(eta.shape, 7.0) if fam.trials else None
    aux = _aux(fam, 3.0)  # nu = 4: a finite variance
    draws = fam.draw(rng, eta, aux, trials)
    mean = fam.mean(eta, aux, trials)[0]
    sd = np.std(draws)
    assert abs(draws.mean() - mean) < 5 * sd / np.sqrt(draws.size)


def test_unknown_family_lists_the_valid_ones() -> None:
    valid = re.escape(
        "['bernoulli', 'beta', 'binomial', 'gamma', 'gaussian', 'hurdle_lognormal', 'hurdle_negbinomial', "
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


LINKED = [(name, link) for name in sorted(FAMILIES) for link in FAMILIES[name].links[1:]]


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
