"""The first fit of a new formula with the general programs built (issue 19).

A cold machine that has run `hbstan precompile --general-only`: a fresh hbstan cache holding
only the general program radon's models run on, the Gaussian one (copied from this machine's
cache, compiled there if need be; the other families' general programs, which `hbstan
precompile --general-only` builds too, play no part in these fits), so the specialized program of each radon model below is not cached. Each case runs in a
fresh Python process and times ``Model(...)`` plus ``sample()`` at the defaults (4 chains x
(1000 + 1000)), the way an analyst's first fit of a formula goes; then the same with
``program="specialized"``, which waits for the compile. The background compile started by the
general fit is stopped (its process group) before the next case, so the cases do not share
the two cores with it.

Rows:

- ``auto``: the first fit as a user gets it (on the general program);
- ``auto, ArviZ after sampling``: the same with ArviZ imported after sampling rather than in
  a thread while CmdStan samples (the import as it was before), to show what that overlap saves;
- ``specialized``: waits for the specialized program's compile (once per repeat 1 only:
  it measures the compiler, not hbstan);
- with ``--baseline DIR`` (an export of an earlier commit, ``git archive <commit> | tar -x
  -C DIR``): ``auto`` on that code, its own general programs, in the same run.

Each row is repeated (``--repeat``, default 3, rows interleaved so that they share the
machine's load) and the median reported; the load average is recorded before and after.

    python benchmarks/first_fit.py              # writes benchmarks/results/first_fit.{md,json}
    python benchmarks/first_fit.py --baseline /tmp/hbstan-before --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "radon varying intercept": "log_radon ~ floor + (1 | county)",
    "radon correlated intercept + slope": "log_radon ~ floor + (1 + floor | county)",
}

# the fit, in a fresh process (argv: formula, program, "late" to import ArviZ after sampling)
CHILD = r"""
import json, os, signal, sys, time
t0 = time.perf_counter()
import hbstan
t_import = time.perf_counter() - t0
if sys.argv[3] == "late":  # ArviZ imported after sampling, as before the overlap
    import hbstan.stan_backend
    hbstan.stan_backend.import_arviz_in_background = lambda: None
df = hbstan.datasets.load_radon("mn")
t1 = time.perf_counter()
m = hbstan.Model(sys.argv[1], data=df)
fit = m.sample(seed=1, program=sys.argv[2])
t_fit = time.perf_counter() - t1
proc = getattr(fit, "specialized_compile", None)
if proc is not None:  # stop the background compile (its own session: the process group)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()
d = fit.diagnose()
print(json.dumps({
    "hbstan": hbstan.__file__, "program": fit.program, "fit_s": t_fit, "import_s": t_import, "timings": fit.timings,
    "divergences": int(fit.idata.sample_stats["diverging"].sum()),
    "min_ess_bulk": float(min(fit.summary()["ess_bulk"].min(), 1e9)),
    "leapfrog_per_iteration": float(fit.idata.sample_stats["n_steps"].mean()),
}))
"""

# copy the Gaussian general program of the hbstan at PYTHONPATH from the shared cache
# (compiling it if it is missing there) into the cache argv[1]: the executable and its program
# only, as hbstan.backend.install_program writes them
SETUP = r"""
import shutil, sys
from pathlib import Path
from hbstan.backend import cache_dir, program_hash
from hbstan.general import build, general_program
build(["gaussian"])
for f in ["gaussian"]:
    key = program_hash(general_program(f))
    src, dst = cache_dir() / "models" / key, Path(sys.argv[1]) / "models" / key
    dst.mkdir(parents=True)
    for name in ("model", "model.stan"):
        shutil.copy2(src / name, dst / name)
"""


def _env(code: Path, cache: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    env.pop("HBSTAN_PROGRAM", None)
    env.pop("HBSTAN_CACHE_DIR", None)
    if cache is not None:
        env["HBSTAN_CACHE_DIR"] = cache
    return env


def run_case(code: Path, formula: str, program: str, arviz: str) -> dict:
    """One first fit in a fresh process and a fresh cache holding ``code``'s general programs."""
    with tempfile.TemporaryDirectory(prefix="hbstan-first-fit-") as cache:
        # cwd: not a checkout, whose hbstan `python -c` would import before PYTHONPATH's
        setup = subprocess.run([sys.executable, "-c", SETUP, cache], env=_env(code, None),
                               capture_output=True, text=True, cwd=cache)
        if setup.returncode:
            raise RuntimeError(f"installing the general programs of {code} failed:\n{setup.stderr[-3000:]}")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, formula, program, arviz], env=_env(code, cache),
                             capture_output=True, text=True, cwd=cache)
        wall = time.perf_counter() - t0
    if out.returncode:
        raise RuntimeError(f"{formula}, program={program}: the fit failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_s"] = wall
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each row (median reported)")
    ap.add_argument("--baseline", default=None, help="an export of an earlier commit: its 'auto' rows too")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "first_fit"))
    args = ap.parse_args()
    rows_spec = [("auto", "auto", "early", ROOT), ("auto, ArviZ after sampling", "auto", "late", ROOT)]
    if args.baseline:
        rows_spec.append(("auto, before (baseline)", "auto", "early", Path(args.baseline).resolve()))
    rows_spec.append(("specialized", "specialized", "early", ROOT))
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    runs: list[dict] = []
    for rep in range(args.repeat):
        for label, formula in CASES.items():
            for row, program, arviz, code in rows_spec:
                if program == "specialized" and rep > 0:
                    continue  # the compiler's time, once is enough
                res = run_case(code, formula, program, arviz)
                res.update(case=label, formula=formula, row=row, asked=program, repeat=rep,
                           code=str(code), load=os.getloadavg()[0])
                runs.append(res)
                print(f"{label:36s} {row:28s} ran {res['program']:11s} fit {res['fit_s']:5.1f} s "
                      f"(sample {res['timings']['sample']:.1f}, convert {res['timings']['convert']:.1f}), "
                      f"process {res['process_s']:.1f} s, load {res['load']:.1f}", flush=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_before": load_before,
            "load_after": os.getloadavg(), "repeat": args.repeat, "minutes": (time.perf_counter() - t_start) / 60,
            "baseline": args.baseline}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))

    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    lines = [
        "# First fit of a new formula (general programs built, specialized program not cached)",
        "",
        f"`python benchmarks/first_fit.py{' --baseline DIR' if args.baseline else ''} --repeat {args.repeat}`: "
        f"{meta['machine']}, {meta['cpus']} cores shared with other jobs (load average {load_before[0]:.1f} before "
        f"the run, {meta['load_after'][0]:.1f} after; each run's in the JSON). Defaults: 4 chains x (1000 + 1000). "
        "`fit` is Model() + sample() in seconds, the median of the runs (all runs in brackets); `process` adds "
        "starting Python and importing hbstan. `sample` and `convert` are `fit.timings` (medians); `convert` "
        "includes waiting for ArviZ's import where it was not done by the end of sampling.",
        "",
        "| model | row | ran on | fit (s) | runs | compile | sample | convert | process (s) | leapfrog / iteration | min bulk ESS | divergences |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in CASES:
        for row, *_ in rows_spec:
            rs = [r for r in runs if r["case"] == label and r["row"] == row]
            if not rs:
                continue
            t = {k: med([r["timings"][k] for r in rs]) for k in ("compile", "sample", "convert")}
            all_fits = ", ".join(f"{r['fit_s']:.1f}" for r in rs)
            lines.append(
                f"| {label} | {row} | {rs[0]['program']} | {med([r['fit_s'] for r in rs]):.1f} | "
                f"{all_fits} | {t['compile']:.1f} | {t['sample']:.1f} | "
                f"{t['convert']:.1f} | {med([r['process_s'] for r in rs]):.1f} | "
                f"{med([r['leapfrog_per_iteration'] for r in rs]):.1f} | {min(r['min_ess_bulk'] for r in rs):.0f} | "
                f"{max(r['divergences'] for r in rs)} |"
            )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
