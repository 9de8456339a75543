"""Log density of every program of the option grid against an independent NumPy/SciPy one.

    python validation/log_density.py [--jobs 2] [--only SUBSTRING ...]

For every variant of ``validation/grid.py`` (family x design x intercept x group predictors x
threads) and four data sets each (with / without population-level predictors, with / without
an offset), CmdStan's log density at four random parameter values must equal the reference
density of ``tests/reference_density.py`` up to a constant, with and without the likelihood,
and the likelihood must move with the parameters. Two deliberately broken templates must
fail: the binomial GLM without its no-predictor branch (issue 13's bug) and the skeleton with
its row-by-row likelihood statement dropped.

Writes ``validation/results/log_density.md`` and ``.json``. With ``--only``, only the matching
variants are compiled and checked, and their rows replace theirs in the existing results (the
other rows are kept from the run that wrote them; the counts are over the whole grid). Compiling the ~160 programs takes
about an hour on 2 cores with an empty cache (each is compiled once, into hbstan's cache).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "validation"))

import hbstan  # noqa: E402
from grid import Variant, broken_templates, variants  # noqa: E402
from hbstan.backend import compiled_model  # noqa: E402
from hbstan.render import render_program  # noqa: E402
from tests.reference_density import check_program, grid_data  # noqa: E402

DATA_SETS = [(p, o) for p in (False, True) for o in (False, True)]


def _cpp(v: Variant) -> dict | None:
    return {"STAN_THREADS": True} if v.threads else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="programs compiled at once")
    ap.add_argument(
        "--only", action="append", default=None,
        help="only variants whose name contains this (repeatable); their rows replace theirs in --out",
    )
    ap.add_argument("--out", default=str(ROOT / "validation" / "results" / "log_density"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    df = grid_data()
    every = variants()
    grid = [v for v in every if not args.only or any(o in v.name for o in args.only)]
    t0 = time.perf_counter()
    # every (variant, data set): its model and program; each distinct program compiled once
    # (with --only, every program of the grid is rendered, for the counts, and the selected compiled)
    jobs, refused, programs_of = [], [], {}  # programs_of: each variant's programs
    for v in every:
        for predictors, offset in DATA_SETS:
            try:  # a combination hbstan refuses (e.g. sufficient statistics of no column) is listed
                m, off, trials, extra = v.model(df, predictors=predictors, offset=offset)
                m.stan_data_for(threads=v.threads, pointwise=False)
            except ValueError as err:
                if v in grid:
                    refused.append({"variant": v.name, "predictors": predictors, "offset": offset, "error": str(err)})
                continue
            code = m.program(threads=v.threads)
            programs_of.setdefault(v.name, set()).add((code, v.threads))
            if v in grid:
                jobs.append((v, predictors, offset, m, off, trials, extra, code))
    programs = sorted({(j[-1], j[0].threads) for j in jobs})
    print(f"{len(grid)} variants, {len(jobs)} checks ({len(refused)} refused), {len(programs)} distinct programs", flush=True)

    def compile_one(item: tuple[str, bool]) -> None:
        code, threads = item
        compiled_model(code, cpp_options={"STAN_THREADS": True} if threads else None)

    with ThreadPoolExecutor(args.jobs) as pool:
        for k, _ in enumerate(pool.map(compile_one, programs), start=1):
            if k % 10 == 0:
                print(f"  compiled {k}/{len(programs)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    t_compile = time.perf_counter() - t0
    rows = []
    for v, predictors, offset, m, off, trials, extra, code in jobs:
        cm = compiled_model(code, cpp_options=_cpp(v))
        try:
            res = check_program(m, cm, threads=v.threads, offset=off, trials=trials, **extra)
        except RuntimeError as err:  # CmdStan could not evaluate it: a failure, reported
            rows.append({"variant": v.name, "formula": m.formula, "predictors": predictors, "offset": offset,
                         "ok": False, "spread": float("nan"), "prior_spread": float("nan"),
                         "likelihood_range": float("nan"), "error": str(err)})
            print(f"FAIL {v.name} predictors={predictors} offset={offset}: {err}", flush=True)
            continue
        rows.append(
            {
                "variant": v.name,
                "formula": m.formula,
                "predictors": predictors,
                "offset": offset,
                "ok": res.ok(),
                "spread": res.spread,
                "prior_spread": res.prior_spread,
                "likelihood_range": res.lik_range,
            }
        )
        if not res.ok():
            print(f"FAIL {v.name} predictors={predictors} offset={offset}: {res.describe()}", flush=True)
    broken_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for what, (folder, v) in broken_templates(Path(tmp)).items():
            for predictors, offset in DATA_SETS:
                m, off, trials, _ = v.model(df, predictors=predictors, offset=offset)
                code = render_program(m.structure(v.threads)[0], templates=folder)
                cm = compiled_model(code, cpp_options=_cpp(v))
                res = check_program(m, cm, threads=v.threads, offset=off, trials=trials)
                broken_rows.append(
                    {"broken": what, "variant": v.name, "predictors": predictors, "offset": offset,
                     "ok": res.ok(), "spread": res.spread, "likelihood_range": res.lik_range}
                )
    out = Path(args.out)
    merged = None
    if args.only and out.with_suffix(".json").exists():  # keep the other variants' rows
        old = json.loads(out.with_suffix(".json").read_text())
        names = {v.name for v in grid}
        rows = [r for r in old["checks"] if r["variant"] not in names] + rows
        refused = [r for r in old["refused"] if r["variant"] not in names] + refused
        merged = f"variants matching {args.only} checked {time.strftime('%Y-%m-%d')}; the others on {old['meta']['date']}"
    n_fail = sum(not r["ok"] for r in rows)
    checked = {r["variant"] for r in rows} | {r["variant"] for r in refused}
    caught = {w: any(not r["ok"] for r in broken_rows if r["broken"] == w) for w in {r["broken"] for r in broken_rows}}
    elapsed = time.perf_counter() - t0
    meta = {
        "hbstan": hbstan.__version__,
        "cmdstan": _cmdstan_version(),
        "python": platform.python_version(),
        # counted over the variants the results hold (a merged run: those of every run merged)
        "variants": len(checked),
        "checks": len(rows),
        "refused": len(refused),
        "programs": len(set().union(*(programs_of.get(name, set()) for name in checked))),
        "failures": n_fail,
        "broken_templates_caught": caught,
        "compile_s": round(t_compile, 1),
        "total_s": round(elapsed, 1),
        "date": time.strftime("%Y-%m-%d"),
        **({"merged": merged} if merged else {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "checks": rows, "refused": refused, "broken": broken_rows}, indent=1))
    out.with_suffix(".md").write_text(_markdown(meta, rows, refused, broken_rows))
    print(f"{len(rows) - n_fail}/{len(rows)} checks pass; broken templates caught: {caught}; {elapsed:.0f} s")
    return 0 if n_fail == 0 and all(caught.values()) else 1


def _cmdstan_version() -> str:
    import cmdstanpy

    v = cmdstanpy.cmdstan_version()
    return ".".join(map(str, v)) if v else "unknown"


def _markdown(meta: dict, rows: list[dict], refused: list[dict], broken: list[dict]) -> str:
    lines = [
        "# Log density of every program against an independent reference",
        "",
        "`python validation/log_density.py`: CmdStan's `log_prob` (constrained scale, no Jacobian) at four random",
        "parameter values against the NumPy/SciPy density of `tests/reference_density.py`, with and without the",
        "likelihood. *spread*: how much Stan minus the reference moves across the points (0 up to rounding when",
        "they are the same density up to a constant); *likelihood range*: how much the reference likelihood",
        "moves (the data speak).",
        "",
        f"hbstan {meta['hbstan']}, CmdStan {meta['cmdstan']}, {meta['date']}: **{meta['checks'] - meta['failures']} of "
        f"{meta['checks']} checks pass** ({meta['variants']} variants x 4 data sets less {meta['refused']} refused, {meta['programs']} distinct "
        f"programs; {meta['total_s']:.0f} s, of which compiling {meta['compile_s']:.0f} s).",
        *([f"Merged run: {meta['merged']} (the times are of the last run)."] if meta.get("merged") else []),
        "",
        "Deliberately broken templates (each must fail somewhere):",
        "",
    ]
    for what, ok in meta["broken_templates_caught"].items():
        lines.append(f"- {what}: {'caught' if ok else 'NOT caught'}")
        for r in broken:
            if r["broken"] == what:
                lines.append(
                    f"  - {r['variant']}, predictors {r['predictors']}, offset {r['offset']}: "
                    f"{'passes' if r['ok'] else 'fails'} (spread {r['spread']:.3g})"
                )
    if refused:
        lines += ["", "Combinations hbstan refuses before any Stan code runs (not checked):", ""]
        lines += [f"- {r['variant']}, predictors {r['predictors']}, offset {r['offset']}: {r['error']}" for r in refused]
    lines += ["", "| variant | predictors | offset | result | spread | prior-only spread | likelihood range |", "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {'yes' if r['predictors'] else 'no'} | {'yes' if r['offset'] else 'no'} | "
            f"{'ok' if r['ok'] else '**FAIL**'} | {r['spread']:.1e} | {r['prior_spread']:.1e} | {r['likelihood_range']:.3g} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
