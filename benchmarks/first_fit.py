"""The first fit of a new formula with the general programs built (issue 19).

A cold machine that has run `hbstan precompile --general-only`: a fresh hbstan cache holding
only the four general programs (installed from this machine's cache, compiled there if need
be), so the specialized program of each radon model below is not cached. Each case runs in a
fresh Python process and times ``Model(...)`` plus ``sample()`` at the defaults (4 chains x
(1000 + 1000)), the way an analyst's first fit of a formula goes; then the same with
``program="specialized"``, which waits for the compile. The background compile started by the
general fit is stopped (its process group) before the next case, so the cases do not share
the two cores with it.

    python benchmarks/first_fit.py              # writes benchmarks/results/first_fit.{md,json}
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {
    "radon varying intercept": "log_radon ~ floor + (1 | county)",
    "radon correlated intercept + slope": "log_radon ~ floor + (1 + floor | county)",
}

CHILD = r"""
import json, os, signal, sys, time
t0 = time.perf_counter()
import hbstan
t_import = time.perf_counter() - t0
df = hbstan.datasets.load_radon("mn")
t1 = time.perf_counter()
m = hbstan.Model(sys.argv[1], data=df)
fit = m.sample(seed=1, program=sys.argv[2])
t_fit = time.perf_counter() - t1
proc = fit.specialized_compile
if proc is not None:  # stop the background compile (its own session: the process group)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()
d = fit.diagnose()
print(json.dumps({
    "program": fit.program, "fit_s": t_fit, "import_s": t_import, "timings": fit.timings,
    "divergences": int(fit.idata.sample_stats["diverging"].sum()),
    "min_ess_bulk": float(min(fit.summary()["ess_bulk"].min(), 1e9)),
}))
"""


def main() -> int:
    from hbstan.backend import export_program, install_program
    from hbstan.general import GENERAL_FAMILIES, general_program

    programs = [export_program(general_program(f)) for f in GENERAL_FAMILIES]
    rows = []
    for label, formula in CASES.items():
        for program in ("auto", "specialized"):
            with tempfile.TemporaryDirectory(prefix="hbstan-first-fit-") as cache:
                env = {**os.environ, "HBSTAN_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
                env.pop("HBSTAN_PROGRAM", None)
                os.environ["HBSTAN_CACHE_DIR"] = cache
                for p in programs:
                    install_program(p)
                del os.environ["HBSTAN_CACHE_DIR"]
                t0 = time.perf_counter()
                out = subprocess.run([sys.executable, "-c", CHILD, formula, program], env=env,
                                     capture_output=True, text=True)
                wall = time.perf_counter() - t0
            if out.returncode:
                raise RuntimeError(f"{label}, program={program}: the fit failed:\n{out.stderr[-3000:]}")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res.update(case=label, formula=formula, asked=program, process_s=wall)
            rows.append(res)
            print(f"{label:38s} program={program:11s} ran {res['program']:11s} fit {res['fit_s']:6.1f} s "
                  f"(sample {res['timings']['sample']:.1f} s), process {wall:.1f} s", flush=True)
    out_dir = ROOT / "benchmarks" / "results"
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    (out_dir / "first_fit.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# First fit of a new formula (general programs built, specialized program not cached)",
        "",
        f"{meta['machine']}, {meta['cpus']} cores (shared; load average before the run "
        f"{meta['load_before'][0]:.2f}). Defaults: 4 chains x (1000 + 1000). `fit` is Model() + sample() "
        "in seconds; `process` adds starting Python and importing hbstan.",
        "",
        "| model | program= | ran on | fit (s) | of which compile | sample | convert | process (s) | min bulk ESS | divergences |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t = r["timings"]
        lines.append(
            f"| {r['case']} | {r['asked']} | {r['program']} | {r['fit_s']:.1f} | {t['compile']:.1f} | "
            f"{t['sample']:.1f} | {t['convert']:.1f} | {r['process_s']:.1f} | {r['min_ess_bulk']:.0f} | {r['divergences']} |"
        )
    (out_dir / "first_fit.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
