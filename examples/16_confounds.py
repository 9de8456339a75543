"""Example 16: confounds and path analysis - the pipe, the fork, the collider, and a joint path model.

Which variables belong in a regression depends on how the data were made, not on how well
the model fits. Four small causal structures (McElreath's "elemental confounds", the end of
the PyMC regression tutorial) show it on simulated data whose generator is below; x is the
treatment, y the outcome, and the question is always "what is x's effect on y?".

* **Pipe** x -> m -> y. x acts on y only through the mediator m. ``y ~ x`` finds x's total
  effect; ``y ~ x + m`` finds none left: controlling for a mediator removes the effect that
  runs through it.
* **Fork** x <- z -> y. z drives both; x has no effect on y. ``y ~ x`` finds a spurious
  effect; ``y ~ x + z`` removes it: controlling for a common cause is right.
* **Collider** x -> c <- y. x and y are independent; both drive c. ``y ~ x`` finds nothing;
  ``y ~ x + c`` creates an effect that is not there: conditioning on a collider is wrong.
* **Both at once**: the pipe x -> m -> y and a collider x -> c <- y in one data set. The
  "control for everything" regression ``y ~ x + m + c`` gets x's effect wrong; ``y ~ x``
  gets the total effect right and ``y ~ x + m`` the direct one (none).
* **The joint path model**: both arrows of the pipe in one model,
  ``hbstan.Model(["m ~ x", "y ~ x + m"], rescor=False)`` (one Stan program, one run), and
  ``hbstan.mediation`` splits x's total effect into the part through m (a b, per posterior
  draw) and the direct part (c'). The residual correlation is off: with m a predictor of y, it
  could not be told apart from m's effect. The same model sampled by PyMC agrees.

Run:  python examples/16_confounds.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import (
    compare_with_pymc,
    conclusion,
    done,
    flat,
    interval,
    markdown_table,
    sampler,
    save,
    setup,
    write_text,
)

import hbstan
from hbstan.plots import new_figure

NAME = "confounds"
N = 500
DATA_SEED = 5  # the simulation's seed (the sampler's is _common.SEED)

# the generator: every coefficient of the simulation, for the CONCLUSION lines and the figure
A, B = 0.8, 1.2  # pipe: m = A x + e, y = B m + e; x's total effect A B, direct effect 0
FORK = 1.0  # fork: x = FORK z + e, y = FORK z + e; x's effect 0
BOTH_C = 1.0  # collider: c = x + y + e


def simulate(seed: int = DATA_SEED) -> dict[str, pd.DataFrame]:
    """The four data sets, each of N rows with unit-variance noise."""
    rng = np.random.default_rng(seed)

    def noise() -> np.ndarray:
        return rng.normal(size=N)

    x = noise()
    m = A * x + noise()
    pipe = pd.DataFrame({"x": x, "m": m, "y": B * m + noise()})
    z = noise()
    fork = pd.DataFrame({"z": z, "x": FORK * z + noise(), "y": FORK * z + noise()})
    x, y = noise(), noise()
    collider = pd.DataFrame({"x": x, "y": y, "c": BOTH_C * (x + y) + noise()})
    x = noise()
    m = A * x + noise()
    y = B * m + noise()
    both = pd.DataFrame({"x": x, "m": m, "y": y, "c": BOTH_C * (x + y) + noise()})
    return {"pipe": pipe, "fork": fork, "collider": collider, "both": both}


# (data set, formula, x's true effect in the sense that formula estimates, what it shows)
REGRESSIONS = [
    ("pipe", "y ~ x", A * B, "total effect"),
    ("pipe", "y ~ x + m", 0.0, "controlling for the mediator"),
    ("fork", "y ~ x", 0.0, "common cause left out"),
    ("fork", "y ~ x + z", 0.0, "controlling for the common cause"),
    ("collider", "y ~ x", 0.0, "collider left out"),
    ("collider", "y ~ x + c", 0.0, "conditioning on the collider"),
    ("both", "y ~ x + m + c", 0.0, "'control for everything'"),
    ("both", "y ~ x", A * B, "total effect"),
    ("both", "y ~ x + m", 0.0, "direct effect"),
]


def summarize(draws: np.ndarray) -> tuple[float, float, float]:
    lo, hi = interval(draws, 0.9)
    return float(np.mean(draws)), lo, hi


def main() -> None:
    setup(NAME, "Example 16: confounds and path analysis")
    data = simulate()
    rows = []
    for scenario, formula, truth, what in REGRESSIONS:
        fit = hbstan.Model(formula, data[scenario]).sample(**sampler())
        mean, lo, hi = summarize(flat(fit, "x"))
        rows.append({"scenario": scenario, "formula": formula, "what": what, "truth": truth,
                     "mean": mean, "lower": lo, "upper": hi, "covers_truth": lo <= truth <= hi,
                     "excludes_zero": not lo <= 0.0 <= hi})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    write_text(f"{NAME}.md", markdown_table(table))

    def line(scenario: str, formula: str) -> str:
        r = table[(table["scenario"] == scenario) & (table["formula"] == formula)].iloc[0]
        return f"`{formula}` x's coefficient {r['mean']:.2f} [{r['lower']:.2f}, {r['upper']:.2f}]"

    conclusion(f"pipe: {line('pipe', 'y ~ x')} (total effect {A * B:.2f}); {line('pipe', 'y ~ x + m')}: "
               "controlling for the mediator removes x's effect")
    conclusion(f"fork: {line('fork', 'y ~ x')}, a spurious effect; {line('fork', 'y ~ x + z')}: "
               "controlling for the common cause removes it")
    conclusion(f"collider: {line('collider', 'y ~ x')}, no effect; {line('collider', 'y ~ x + c')}: "
               "conditioning on the collider creates an effect that is not there")
    conclusion(f"both at once: {line('both', 'y ~ x + m + c')} is wrong (truth 0 given m); "
               f"{line('both', 'y ~ x')} finds the total effect {A * B:.2f}; {line('both', 'y ~ x + m')} the direct one, 0")

    # the joint path model of the pipe: both arrows in one program, and the effect split in two
    joint = hbstan.Model(["m ~ x", "y ~ x + m"], data["pipe"], rescor=False)
    print(joint)
    fit = joint.sample(**sampler())
    print(fit)
    med = hbstan.mediation(fit, treatment="x", mediator="m", outcome="y", prob=0.9).set_index("effect")
    print(med.to_string(float_format=lambda v: f"{v:.3f}"))
    write_text(f"{NAME}_mediation.md", markdown_table(med.reset_index()))
    ind, dire, tot = (med.loc[k] for k in ("indirect", "direct", "total"))
    conclusion(
        f"joint path model: indirect effect a b {ind['estimate']:.2f} [{ind['lower']:.2f}, {ind['upper']:.2f}] "
        f"(truth {A * B:.2f}), direct effect {dire['estimate']:.2f} [{dire['lower']:.2f}, {dire['upper']:.2f}] (truth 0), "
        f"total {tot['estimate']:.2f} [{tot['lower']:.2f}, {tot['upper']:.2f}]; "
        f"a = m_x {flat(fit, 'm_x').mean():.2f} (truth {A}), b = y_m {flat(fit, 'y_m').mean():.2f} (truth {B})"
    )

    # figure: x's coefficient in each regression, 90% intervals, the truth as an open diamond
    fig = new_figure((8, 5))
    ax = fig.subplots()
    ypos = np.arange(len(table))[::-1]
    colors = {"pipe": "C0", "fork": "C1", "collider": "C2", "both": "C3"}
    for yp, (_, r) in zip(ypos, table.iterrows(), strict=True):
        ax.plot([r["lower"], r["upper"]], [yp, yp], color=colors[r["scenario"]], lw=2)
        ax.plot(r["mean"], yp, "o", color=colors[r["scenario"]])
        ax.plot(r["truth"], yp, "D", mfc="none", color="k", ms=7)
    ax.axvline(0, color="0.7", lw=1)
    ax.set_yticks(ypos, [f"{r['scenario']}: {r['formula']}" for _, r in table.iterrows()])
    ax.set_xlabel("x's coefficient (90% interval; diamond: the truth it should estimate)")
    ax.set_title("Which variables to control for depends on the causal structure")
    fig.tight_layout()
    save(fig, f"{NAME}.png")

    compare_with_pymc(joint, NAME)
    done()


if __name__ == "__main__":
    main()
