"""The worked examples in examples/, run as a user runs them, with short chains.

Each example is started as ``python examples/NAME.py`` with HBSTAN_EXAMPLE_DRAWS=200,
HBSTAN_EXAMPLE_CHAINS=2 and its output directory in tmp_path; the test checks the exit code,
the figures it wrote, its ``CONCLUSION:`` lines (the direction of each result, with the
Monte Carlo tolerance the example itself applies) and its ``PYMC:`` line (Stan and PyMC
sample the same posterior).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DRAWS = "200"
CHAINS = "2"
HAVE_PYMC = importlib.util.find_spec("pymc") is not None

pytestmark = pytest.mark.cmdstan

_NUM = r"([-+]?\d+(?:\.\d+)?)"


def _run(name: str, out: Path) -> str:
    env = {
        **os.environ,
        "HBSTAN_EXAMPLE_DRAWS": DRAWS,
        "HBSTAN_EXAMPLE_CHAINS": CHAINS,
        "HBSTAN_EXAMPLES_OUT": str(out),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "MPLBACKEND": "Agg",
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")], capture_output=True, text=True, env=env, timeout=900, cwd=out
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


def _lines(out: str, prefix: str) -> list[str]:
    return [line[len(prefix):].strip() for line in out.splitlines() if line.startswith(prefix)]


def _conclusion(out: str, pattern: str) -> re.Match[str]:
    for line in _lines(out, "CONCLUSION:"):
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no CONCLUSION line matches {pattern!r}; conclusions:\n" + "\n".join(_lines(out, "CONCLUSION:")))


def _check_common(out: str, tmp_path: Path, figures: int) -> None:
    figs = [Path(p) for p in _lines(out, "FIGURE:")]
    assert len(figs) >= figures, out
    for f in figs:
        assert f.parent == tmp_path and f.suffix == ".png", f
        assert f.stat().st_size > 5000, f
    pymc = _lines(out, "PYMC:")
    assert len(pymc) == 1, out
    if HAVE_PYMC:
        assert pymc[0].startswith("agree"), f"Stan and PyMC do not agree: {pymc[0]}"
    else:
        assert pymc[0].startswith("skipped"), pymc[0]


def test_01_normal_mean(tmp_path: Path) -> None:
    out = _run("01_normal_mean", tmp_path)
    _conclusion(out, r"posterior mean \S+ matches closed form \S+ \(within MC error")
    _conclusion(out, r"posterior sd \S+ matches closed form \S+ \(within MC error")
    _check_common(out, tmp_path, 1)


def test_02_two_groups(tmp_path: Path) -> None:
    out = _run("02_two_groups", tmp_path)
    m = _conclusion(out, rf"pulled {_NUM}% of the way to the global mean, group A \(n=1000\) {_NUM}%")
    assert float(m.group(1)) > float(m.group(2)) > 0  # the smaller group shrinks more
    m = _conclusion(out, rf"group B moves {_NUM} toward the global mean, group A {_NUM}")
    assert float(m.group(1)) > abs(float(m.group(2)))
    _conclusion(out, r"complete pooling gives one mean \S+, between the group means")
    assert (tmp_path / "two_groups_pooling.md").read_text().startswith("**Pooling comparison**")
    _check_common(out, tmp_path, 1)


def test_03_points_per_player(tmp_path: Path) -> None:
    out = _run("03_points_per_player", tmp_path)
    m = _conclusion(out, rf"spread is {_NUM} \(varying both\) vs {_NUM} \(no pooling\) - shrinkage")
    assert float(m.group(1)) < float(m.group(2))
    m = _conclusion(out, rf"moves from slope {_NUM} \(no pooling\) to {_NUM} \(partial pooling\), towards the league slope {_NUM}")
    no, partial, league = map(float, m.groups())
    assert abs(partial - league) < abs(no - league)
    _conclusion(out, r"LOO ranks .*; best: ")
    _check_common(out, tmp_path, 1)


def test_04_radon(tmp_path: Path) -> None:
    out = _run("04_radon", tmp_path)
    _conclusion(out, r"partial pooling beats both complete pooling .* and no pooling")
    m = _conclusion(out, rf"gamma\(log_uppm\) = {_NUM} \(90% interval {_NUM} to {_NUM}\); the county SD falls from {_NUM} to {_NUM}")
    assert float(m.group(2)) > 0 and float(m.group(5)) < float(m.group(4))
    m = _conclusion(out, rf"<= 3 homes move a median {_NUM}% .* >= 20 homes {_NUM}% \(small groups shrink more\)")
    assert float(m.group(1)) > float(m.group(2))
    assert (tmp_path / "radon_shrinkage.png").stat().st_size > 20000
    _check_common(out, tmp_path, 3)


def test_05_categorical(tmp_path: Path) -> None:
    out = _run("05_categorical", tmp_path)
    _conclusion(out, r"region\[south\] = \S+ \(true 0\.40\), region\[west\] = \S+ \(true -0\.30\)")
    m = _conclusion(out, rf"spread of brand means {_NUM} \(hierarchical\) vs {_NUM} \(categorical\) - shrinkage")
    assert float(m.group(1)) < float(m.group(2))
    _check_common(out, tmp_path, 1)


def test_06_treatment_effects(tmp_path: Path) -> None:
    out = _run("06_treatment_effects", tmp_path)
    m = _conclusion(out, rf"average treatment effect {_NUM} \(90% interval {_NUM} to {_NUM}; true 2\.0\)")
    assert float(m.group(2)) < 2.0 < float(m.group(3))
    line = _conclusion(out, r"the treatment effect varies by segment: SD").string
    assert "NOT ruled out" not in line
    m = _conclusion(out, rf"P\(correlation > 0\) = {_NUM}")
    assert 0 <= float(m.group(1)) <= 1
    _check_common(out, tmp_path, 1)


def test_07_binary_outcomes(tmp_path: Path) -> None:
    out = _run("07_binary_outcomes", tmp_path)
    _conclusion(out, r"within \S+ posterior sd of the observed proportion")
    _conclusion(out, r"Bernoulli on 10000 rows and binomial on 6 cells give the same posterior.*\(within MC error\)")
    m = _conclusion(out, rf"segment new: treatment - control = \+\S+ .*P\(treatment better\) = {_NUM}")
    assert float(m.group(1)) > 0.95
    _check_common(out, tmp_path, 1)


def test_08_grouped_means(tmp_path: Path) -> None:
    out = _run("08_grouped_means", tmp_path)
    _conclusion(out, r"a new lab's expected value is uncertain by sd \S+, more than any seen lab's")
    m = _conclusion(out, rf"predictive distribution is wider too: sd {_NUM} vs at most {_NUM}")
    assert float(m.group(1)) > float(m.group(2))
    _conclusion(out, r"new lab's expected value \S+ is the population mean \S+ \(difference \S+, within MC error\)")
    _check_common(out, tmp_path, 2)


def test_09_wells(tmp_path: Path) -> None:
    out = _run("09_wells", tmp_path)
    _conclusion(out, r"dist100 coefficient -\S+ .* is negative")
    _conclusion(out, r"arsenic coefficient \+\S+ .* is positive")
    _check_common(out, tmp_path, 1)


def test_10_overdispersed_counts(tmp_path: Path) -> None:
    out = _run("10_overdispersed_counts", tmp_path)
    m = _conclusion(out, rf"intervals cover {_NUM}% of the counts under the Poisson model and {_NUM}% under the negative binomial")
    poisson, negbin = float(m.group(1)), float(m.group(2))
    assert poisson < 75 and 85 <= negbin <= 98  # too narrow vs near the nominal 90%
    m = _conclusion(out, rf"shape {_NUM} \(90% interval {_NUM} to {_NUM}; true 1\.5\)")
    assert float(m.group(2)) < 5  # strong overdispersion found
    m = _conclusion(out, rf"the Poisson interval is {_NUM} times narrower")
    assert float(m.group(1)) > 1.5
    _conclusion(out, r"LOO prefers negbinomial by")
    _check_common(out, tmp_path, 1)


def test_11_eight_schools(tmp_path: Path) -> None:
    out = _run("11_eight_schools", tmp_path)
    m = _conclusion(out, rf"centered program {_NUM} of {_NUM}, hbstan's non-centered choice {_NUM} of")
    centered, total, chosen = (float(m.group(k)) for k in (1, 2, 3))
    assert chosen <= max(centered, 0.01 * total)  # the funnel is the centered program's problem
    m = _conclusion(
        out, rf"mu {_NUM} \(MCSE {_NUM}; grid integration {_NUM}\), of tau {_NUM} \(MCSE {_NUM}; grid integration {_NUM}\)"
    )
    mu, mu_se, mu_ref, tau, tau_se, tau_ref = (float(m.group(k)) for k in range(1, 7))
    assert abs(mu - mu_ref) < 4 * mu_se + 0.05 and abs(tau - tau_ref) < 4 * tau_se + 0.05
    _conclusion(out, r"school A's effect .* shrunk towards mu")
    _check_common(out, tmp_path, 1)


def test_every_example_is_tested() -> None:
    scripts = sorted(p.stem for p in EXAMPLES.glob("[0-9][0-9]_*.py"))
    tested = sorted(name[len("test_"):] for name in globals() if re.match(r"test_\d\d_", name))
    assert scripts == tested


def test_13_proportions(tmp_path: Path) -> None:
    out = _run("13_proportions", tmp_path)
    m = _conclusion(out, rf"replicated shares below 0: {_NUM}% of the normal model's draws, {_NUM}% of the beta model's")
    assert float(m.group(1)) > 5 and float(m.group(2)) == 0  # impossible shares only from the normal model
    m = _conclusion(out, rf"normal model {_NUM}% / {_NUM}%, beta model {_NUM}% / {_NUM}%")
    normal_low, normal_high, beta_low, beta_high = (float(m.group(k)) for k in range(1, 5))
    assert normal_low > normal_high  # one SD: too wide near 0, too narrow where damage is heavy
    assert 82 <= beta_low <= 98 and 82 <= beta_high <= 98
    m = _conclusion(out, rf"precision phi {_NUM} \(90% interval {_NUM} to {_NUM}; true 8\)")
    assert abs(float(m.group(1)) - 8) < 2
    m = _conclusion(out, rf"beta model {_NUM} points \(90% interval {_NUM} to {_NUM}\), normal model .*; true {_NUM}")
    est, lo, hi, truth = (float(m.group(k)) for k in range(1, 5))
    assert lo - 1 < truth < hi + 1 and est < 0
    _check_common(out, tmp_path, 1)


def test_12_ordinal_survey(tmp_path: Path) -> None:
    out = _run("12_ordinal_survey", tmp_path)
    m = _conclusion(out, rf"treatment effect on the latent scale {_NUM} \(90% interval {_NUM} to {_NUM}; true 0\.8\)")
    assert float(m.group(2)) < 0.8 < float(m.group(3))
    m = _conclusion(out, rf"largest error in an answer's probability .*: ordinal {_NUM}, Gaussian of the codes {_NUM}")
    assert float(m.group(1)) < 0.05 and float(m.group(2)) > 2 * float(m.group(1))
    m = _conclusion(out, rf"P\(very satisfied\) rises from {_NUM} to {_NUM}")
    assert float(m.group(2)) > float(m.group(1))
    m = _conclusion(out, rf"the Gaussian model puts {_NUM}% of a treated respondent's answers beyond the scale")
    assert float(m.group(1)) > 5
    _check_common(out, tmp_path, 1)


def test_14_zero_inflated_counts(tmp_path: Path) -> None:
    out = _run("14_zero_inflated_counts", tmp_path)
    m = _conclusion(
        out, rf"observed zeros {_NUM}%; replicated \(90% interval\): Poisson {_NUM}% to {_NUM}%, zero-inflated Poisson {_NUM}% to {_NUM}%"
    )
    observed, p_lo, p_hi, z_lo, z_hi = (float(m.group(k)) for k in range(1, 6))
    assert p_hi < observed - 10  # the Poisson cannot make the zeros
    assert z_lo - 2 <= observed <= z_hi + 2
    m = _conclusion(out, rf"zi {_NUM} \(90% interval {_NUM} to {_NUM}; true 0\.35\)")
    assert float(m.group(2)) - 0.03 < 0.35 < float(m.group(3)) + 0.03
    m = _conclusion(out, rf"zero-inflated {_NUM} \(90% interval {_NUM} to {_NUM}\), Poisson {_NUM} .*; true -0\.3")
    assert float(m.group(2)) - 0.1 < -0.3 < float(m.group(3)) + 0.1 and float(m.group(4)) < float(m.group(1))
    _conclusion(out, r"LOO prefers zero_inflated_poisson by")
    _check_common(out, tmp_path, 1)


def test_15_travel_mode_choice(tmp_path: Path) -> None:
    out = _run("15_travel_mode_choice", tmp_path)
    m = _conclusion(
        out,
        rf"bike {_NUM} \(90% interval {_NUM} to {_NUM}; true 0\.9\), bus {_NUM} \(90% interval {_NUM} to {_NUM}; true 1\.3\)",
    )
    assert float(m.group(2)) - 0.05 < 0.9 < float(m.group(3)) + 0.05
    assert float(m.group(5)) - 0.05 < 1.3 < float(m.group(6)) + 0.05
    m = _conclusion(out, rf"largest error in a mode's probability over .*: {_NUM}")
    assert float(m.group(1)) < 0.06
    m = _conclusion(out, rf"P\(walk\) falls from {_NUM} at {_NUM} km to {_NUM} at")
    assert float(m.group(1)) > float(m.group(3)) + 0.2
    _conclusion(out, r"LOO prefers city effects by")
    _check_common(out, tmp_path, 1)


def test_16_confounds(tmp_path: Path) -> None:
    out = _run("16_confounds", tmp_path)
    iv = rf"{_NUM} \[{_NUM}, {_NUM}\]"

    def coef(pattern: str) -> tuple[float, float, float]:
        m = _conclusion(out, pattern)
        return float(m.group(1)), float(m.group(2)), float(m.group(3))

    def covers(v: tuple[float, float, float], truth: float) -> bool:
        # within the 90% interval's width (3.3 posterior SDs) of the truth: robust to the
        # Monte Carlo error of a short run's interval ends
        return abs(v[0] - truth) <= v[2] - v[1]

    # the generator's effects: x -> m 0.8, m -> y 1.2, so x's total effect on y 0.96
    assert covers(coef(rf"pipe: `y ~ x` x's coefficient {iv}"), 0.96)
    assert covers(coef(rf"`y ~ x \+ m` x's coefficient {iv}: controlling for the mediator"), 0.0)
    fork = coef(rf"fork: `y ~ x` x's coefficient {iv}, a spurious")
    assert fork[1] > 0.2 and covers(fork, 0.5)  # cov(x, y) / var(x) = 1 / 2
    assert covers(coef(rf"`y ~ x \+ z` x's coefficient {iv}: controlling for the common cause"), 0.0)
    assert covers(coef(rf"collider: `y ~ x` x's coefficient {iv}, no effect"), 0.0)
    collider = coef(rf"`y ~ x \+ c` x's coefficient {iv}: conditioning on the collider")
    assert collider[2] < -0.2 and covers(collider, -0.5)  # E[y | x, c] = (c - x) / 2
    wrong = coef(rf"both at once: `y ~ x \+ m \+ c` x's coefficient {iv} is wrong")
    assert wrong[2] < -0.2
    assert covers(coef(rf"`y ~ x` x's coefficient {iv} finds the total effect"), 0.96)
    assert covers(coef(rf"`y ~ x \+ m` x's coefficient {iv} the direct one"), 0.0)
    m = _conclusion(out, rf"indirect effect a b {iv} \(truth 0.96\), direct effect {iv} \(truth 0\)")
    ind, direct = [float(m.group(k)) for k in (1, 2, 3)], [float(m.group(k)) for k in (4, 5, 6)]
    assert covers(tuple(ind), 0.96) and covers(tuple(direct), 0.0)
    _check_common(out, tmp_path, 1)
