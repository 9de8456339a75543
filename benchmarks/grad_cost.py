"""Cost per gradient of hbstan's GLMM programs: these templates against a baseline's.

    python benchmarks/grad_cost.py --baseline REF [--cases glmm_gamma,...] [--repeats 5]

For each case of ``run.py`` (data from ``glmm_data.py``), the program rendered from this
tree's ``stan_templates/`` and the one rendered from the templates of git revision ``REF``
(the same model context) are compiled into hbstan's cache, checked to have the same log
density and gradient at a few parameter values, and then run with a fixed step size and no
adaptation (step size 1e-4, tree depth 6: 200 draws x 63 leapfrog steps, one gradient each)
on the same data file, interleaved (A B A B ...). Reported: the median CPU time (user + system
of the CmdStan process) per gradient, its wall time, and the ratio. CPU time is less
sensitive than wall time to other jobs on the machine, but both move with the load: compare
the two programs within a run only.

Writes ``benchmarks/results/<name>.md`` and ``.json`` (``--name``, default ``grad_cost``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import cmdstanpy  # noqa: E402
from glmm_data import simulate  # noqa: E402
from run import CASES  # noqa: E402

import hbstan  # noqa: E402
from hbstan.backend import compiled_model, program_hash, quiet_cmdstanpy  # noqa: E402
from hbstan.render import render_program  # noqa: E402

DRAWS, DEPTH = 200, 6
GRADIENTS = DRAWS * (2**DEPTH - 1)


def _templates_at(ref: str, into: Path) -> Path:
    """The stan_templates/ directory of git revision ``ref``, extracted under ``into``."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "stan_templates"], capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(tar.stdout)) as t:
        t.extractall(into, filter="data")
    return into / "stan_templates"


def _run(exe: str, data: str) -> tuple[float, float]:
    """Wall and CPU seconds of one fixed-step run."""
    cmd = [exe, "sample", "num_warmup=0", f"num_samples={DRAWS}", "adapt", "engaged=0", "algorithm=hmc",
           "engine=nuts", f"max_depth={DEPTH}", "stepsize=1e-4", "init=0", "random", "seed=1",
           "data", f"file={data}", "output", "file=/dev/null"]
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError(f"{exe} failed (status {status})")
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime


def _same_density(models: list, data: str) -> float:
    """Largest difference of log density (less its value at the first point) and of gradient
    between the two programs, at 4 draws of a short run of the first one."""
    fit = models[0].sample(data=data, chains=1, iter_warmup=150, iter_sampling=4, seed=3, show_progress=False)
    draws = fit.stan_variables()
    rows = []
    for i in range(4):
        params = {k: (v[i].tolist() if np.ndim(v[i]) else float(v[i])) for k, v in draws.items() if np.size(v[i])}
        rows.append([m.log_prob(params=params, data=data, sig_figs=15).iloc[0].to_numpy() for m in models])
    a = np.array(rows)  # point x program x (lp, gradient...)
    lp = a[:, 1, 0] - a[:, 0, 0]
    return float(max(np.ptp(lp), np.max(np.abs(a[:, 1, 1:] - a[:, 0, 1:]))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, help="git revision whose templates are the baseline")
    ap.add_argument("--cases", default="glmm_gamma,glmm_beta,glmm_zip,glmm_cumulative,glmm_binomial")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--name", default="grad_cost")
    args = ap.parse_args()
    cases = args.cases.split(",")
    work = Path(tempfile.mkdtemp(prefix="hbstan-grad-"))
    old_templates = _templates_at(args.baseline, work)
    progs = {}
    with quiet_cmdstanpy():
        for case in cases:
            c = CASES[case]
            m = hbstan.Model(c["formula"], simulate(c["sim"]), **c["options"])
            data = str(work / f"{case}.json")
            cmdstanpy.write_stan_json(data, m.stan_data_for(prior_only=False, threads=False, grainsize=1, pointwise=False, draw_effects=False))
            old = render_program(m.structure(False)[0], templates=old_templates)
            new = m.stan_code
            models = [compiled_model(old), compiled_model(new)]
            progs[case] = {
                "data": data, "exes": [str(x.exe_file) for x in models], "changed": program_hash(old) != program_hash(new),
                "max_diff": _same_density(models, data),
            }
            print(f"{case}: program {'changed' if progs[case]['changed'] else 'unchanged'}, "
                  f"largest log-density / gradient difference {progs[case]['max_diff']:.1e}", flush=True)
    load0 = os.getloadavg()
    times = {case: {"wall": [[], []], "cpu": [[], []]} for case in cases}
    for _ in range(args.repeats):
        for case in cases:
            for k, exe in enumerate(progs[case]["exes"]):
                w, c = _run(exe, progs[case]["data"])
                times[case]["wall"][k].append(w / GRADIENTS * 1e6)
                times[case]["cpu"][k].append(c / GRADIENTS * 1e6)
    load1 = os.getloadavg()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Cost per gradient of hbstan's GLMM programs",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')} (benchmarks/grad_cost.py): templates at {rev} (working tree) against "
        f"{args.baseline}; fixed-step CmdStan runs ({DRAWS} draws x {2**DEPTH - 1} leapfrog steps, no adaptation, "
        f"init 0), the two programs interleaved, median of {args.repeats}. Load average {load0[0]:.1f} at the start, "
        f"{load1[0]:.1f} at the end (2 CPUs; other jobs running move both columns: compare within a row).",
        "",
        "| case | program | µs per gradient, baseline (CPU / wall) | µs per gradient, now (CPU / wall) | now / baseline (CPU) | largest log-density or gradient difference |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for case in cases:
        t = times[case]
        cpu = [statistics.median(x) for x in t["cpu"]]
        wall = [statistics.median(x) for x in t["wall"]]
        progs[case].update(cpu_us=cpu, wall_us=wall, runs=t)
        lines.append(
            f"| {case} | {'changed' if progs[case]['changed'] else 'unchanged'} | {cpu[0]:.0f} / {wall[0]:.0f} | "
            f"{cpu[1]:.0f} / {wall[1]:.0f} | {cpu[1] / cpu[0]:.2f} | {progs[case]['max_diff']:.1e} |"
        )
    out = HERE / "results" / args.name
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"baseline": args.baseline, "head": rev, "load": [load0, load1], "cases": progs}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
