"""Many fits of one model: a local thread pool or a Dask cluster, one compile, one seed.

The workflows around a fit are many fits: a model per segment (:func:`fit_many`), K-fold
cross-validation (:func:`hbstan.kfold`), simulation-based calibration (:func:`hbstan.sbc`).
:func:`run_tasks` runs a list of such tasks:

- ``client=None``: a local pool of threads sized to the cores (``concurrent.futures``; Dask is
  not needed; each thread runs one fit, whose sampling is a CmdStan process of its own); a
  ``dask.distributed.Client``: the tasks run on its workers.
- The Stan program is compiled once, here, before anything is sent. Each task carries its
  hash; on Dask the executable itself (:func:`hbstan.backend.export_program`) is scattered to
  the workers once and installed into each worker's cache by that hash where it is missing
  (workers on this machine share the cache and find it there), so no worker compiles.
- Each fit writes its own run directory (:func:`hbstan.backend.new_run_dir`).
- A task that raises becomes a :class:`Failure` in the results: never fatal to the batch.
- Task ``i`` gets the ``i``-th child of ``numpy.random.SeedSequence(seed).spawn(n)``, so
  results depend on the seed and the task's position, not on the number of workers or the
  order in which they finish.
- A progress count of finished fits (on stderr where a person watches, else the log).

Tasks are module-level functions ``fn(*args, seed=int)``: they are pickled to the workers,
which need hbstan (and CmdStan at the same path) installed.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .backend import compiled_model, export_program, install_program, interactive, program_hash
from .fit import Fit, SamplingWarning
from .model import Model

__all__ = ["Failure", "ManyFits", "fit_many", "pinned_options", "run_tasks", "task_seeds"]

log = logging.getLogger("hbstan")

# sampler settings a batch passes to every fit unless told otherwise: the batch, not the
# chains of one fit, is what runs in parallel, and nobody watches per-chain bars on workers
BATCH_SAMPLER_DEFAULTS: dict[str, Any] = {"parallel_chains": 1, "show_progress": False}


@dataclass
class Failure:
    """A task that raised: its key, the exception's type and message, and the traceback."""

    key: Any
    error: str
    message: str
    traceback: str = field(default="", repr=False)

    def __str__(self) -> str:
        return f"{self.key!r} failed: {self.error}: {self.message}"


def task_seeds(seed: int | None, n: int) -> list[int]:
    """One CmdStan seed (0 <= s < 2**31) per task, from ``SeedSequence(seed).spawn(n)``.

    Task i's seed depends only on ``seed`` and i. With ``seed=None`` fresh entropy is drawn
    (then logged, so the batch can be repeated).
    """
    ss = np.random.SeedSequence(seed)
    if seed is None:
        log.info("hbstan: batch seed entropy %d (pass it as seed= to repeat the batch)", ss.entropy)
    return [int(c.generate_state(1, dtype=np.uint32)[0] >> 1) for c in ss.spawn(n)]


def _execute(
    fn: Callable[..., Any], args: tuple[Any, ...], seed: int, key: Any, programs: Sequence[Any], remote: bool = False
) -> Any:
    """Run one task on a worker: install the shipped programs it lacks, then ``fn(*args, seed=seed)``.

    Any exception becomes a :class:`Failure`; the outcome is ``(ok, value_or_failure, seconds)``.
    On a Dask worker (``remote``), sampler warnings are not printed to the worker's log: each
    fit carries them (``Fit.warnings``) back to the caller.
    """
    t0 = time.perf_counter()
    if remote:
        warnings.filterwarnings("ignore", category=SamplingWarning)
    try:
        for program in programs:
            if isinstance(program, Mapping):
                install_program(dict(program))
        value = fn(*args, seed=seed)
        return True, value, time.perf_counter() - t0
    except Exception as err:  # a failed fit is a result, not the end of the batch
        return False, Failure(key, type(err).__name__, str(err), traceback.format_exc()), time.perf_counter() - t0


class _Progress:
    """A count of finished tasks: a line on stderr where a person watches, else log lines."""

    def __init__(self, total: int, what: str, show: bool | str | Callable[[int, int, int], None]) -> None:
        self.total, self.what, self.done, self.failed = total, what, 0, 0
        self.callback = show if callable(show) else None
        self.live = (interactive() if show == "auto" else bool(show)) and self.callback is None
        self.t0 = time.perf_counter()
        self._logged = 0.0

    def update(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        text = f"hbstan: {self.done}/{self.total} {self.what} finished" + (
            f" ({self.failed} failed)" if self.failed else ""
        ) + f", {time.perf_counter() - self.t0:.0f} s"
        if self.callback is not None:
            self.callback(self.done, self.total, self.failed)
        elif self.live:
            sys.stderr.write("\r" + text + ("\n" if self.done == self.total else ""))
            sys.stderr.flush()
        elif self.done == self.total or time.perf_counter() - self._logged > 10:
            self._logged = time.perf_counter()
            log.info(text)


def run_tasks(
    fn: Callable[..., Any],
    args: Sequence[tuple[Any, ...]],
    *,
    seed: int | None = None,
    client: Any = None,
    workers: int | None = None,
    programs: Iterable[tuple[str, dict[str, Any] | None]] = (),
    keys: Sequence[Any] | None = None,
    progress: bool | str | Callable[[int, int, int], None] = "auto",
    what: str = "fits",
) -> list[Any]:
    """Run ``fn(*args[i], seed=seeds[i])`` for every i; results in the order of ``args``.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled to the workers) taking the task's arguments
        and a keyword ``seed`` (an int for CmdStan).
    args : sequence of tuple
        Each task's positional arguments (picklable).
    seed : int, optional
        The batch's seed; task i's seed is :func:`task_seeds`'s i-th.
    client : dask.distributed.Client, optional
        Run on its workers. None: a local pool of ``workers`` threads.
    workers : int, optional
        Size of the local pool (default: the number of cores, at most the number of tasks).
        Ignored with a client.
    programs : iterable of (code, cpp_options)
        Stan programs the tasks sample: compiled here once before anything runs; with a
        client, shipped to the workers (by hash) that lack them.
    keys : sequence, optional
        A label per task, for failures and the progress line (default: the positions).
    progress : bool, "auto" or callable, default "auto"
        A count of finished tasks on stderr (True), in the log (False), where a person
        watches ("auto"), or ``progress(done, total, failed)`` called after each task.
    what : str
        What the tasks are, for the progress line.

    Returns
    -------
    list
        Per task, ``fn``'s return value or a :class:`Failure`.
    """
    n = len(args)
    keys = list(range(n)) if keys is None else list(keys)
    seeds = task_seeds(seed, n)
    programs = list(programs)
    if n == 0:
        return []
    bar = _Progress(n, what, progress)
    out: list[Any] = [None] * n
    if client is None:
        # compiled here (a no-op when cached); the pool's threads share this machine's cache
        for code, cpp in programs:
            compiled_model(code, cpp_options=cpp)
        _run_local(fn, args, seeds, keys, workers, out, bar)
    else:
        payloads = [export_program(code, cpp_options=cpp) for code, cpp in programs]
        _run_dask(client, fn, args, seeds, keys, payloads, out, bar)
    return out


def _run_local(
    fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], seeds: list[int], keys: list[Any],
    workers: int | None, out: list[Any], bar: _Progress,
) -> None:
    from concurrent.futures import ThreadPoolExecutor, as_completed

    n = len(args)
    size = max(1, min(n, workers or os.cpu_count() or 1))
    # threads, not processes: each fit's work is CmdStan's own process (and NumPy, which
    # releases the GIL), and threads need no `if __name__ == "__main__":` guard in scripts,
    # no pickling of data and results, and no import of hbstan per worker
    with ThreadPoolExecutor(size, thread_name_prefix="hbstan-fit") as pool:
        futures = {pool.submit(_execute, fn, args[i], seeds[i], keys[i], ()): i for i in range(n)}
        for fut in as_completed(futures):
            i = futures[fut]
            out[i] = _outcome(fut, keys[i])
            bar.update(not isinstance(out[i], Failure))


def _run_dask(
    client: Any, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], seeds: list[int], keys: list[Any],
    payloads: list[dict[str, Any]], out: list[Any], bar: _Progress,
) -> None:
    from distributed import as_completed

    # each executable travels once to every worker, then tasks refer to it
    shipped = [client.scatter(p, broadcast=True, hash=False) for p in payloads]
    index = {}
    for i in range(len(args)):
        fut = client.submit(_execute, fn, args[i], seeds[i], keys[i], shipped, True, pure=False)
        index[fut.key] = (i, fut)
    for fut in as_completed([f for _, f in index.values()]):
        i = index[fut.key][0]
        out[i] = _outcome(fut, keys[i])
        bar.update(not isinstance(out[i], Failure))
        fut.release()


def _outcome(fut: Any, key: Any) -> Any:
    """Return a task's value or Failure; an error of the pool itself (a killed worker) is a Failure too."""
    try:
        ok, value, _ = fut.result()
    except Exception as err:
        return Failure(key, type(err).__name__, f"the worker running it failed: {err}", traceback.format_exc())
    return value


# ---------------------------------------------------------------------------- fits of a model


def pinned_options(model: Model, **changes: Any) -> dict[str, Any]:
    """Fix the model's data-driven choices in its options: the same program on other data.

    ``"auto"`` choices (centering per term, sufficient statistics, integrated-out effects,
    Bernoulli aggregation) are replaced by what this model chose
    (:meth:`~hbstan.spec.ModelSpec.resolved_options`), so a subset or a simulated data set
    of the same columns gets the very same Stan program; priors given by the user are kept,
    default priors are recomputed from each data set. ``changes`` override options.
    """
    opts = {k: v for k, v in model.resolved_options().items() if v is not None}
    opts["dropna"] = model.options["dropna"]
    opts.update(changes)
    return opts


def _sample_parts(formula: str, data: pd.DataFrame, options: dict[str, Any], sampler: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """Worker side of :func:`fit_many`: build the model, sample it, return what a Fit holds."""
    fit = Model(formula, data, **options).sample(seed=seed, **sampler)
    return {
        "idata": fit.idata, "run_dir": str(fit.run_dir) if fit.run_dir else None, "settings": fit.settings,
        "timings": fit.timings, "warnings": fit.warnings, "suggestion": fit.suggestion,
    }


class ManyFits(Mapping):
    """The fits of :func:`fit_many`: a mapping of segment to :class:`~hbstan.Fit` or :class:`Failure`.

    Attributes
    ----------
    fits : dict
        Segment -> Fit, the fits that succeeded.
    failures : dict
        Segment -> Failure: the data sets that could not be modelled or sampled.
    seconds : float
        Wall time of the batch.
    """

    def __init__(self, results: dict[Any, Any], seconds: float) -> None:
        self._results = results
        self.seconds = seconds

    def __getitem__(self, key: Any) -> Any:
        return self._results[key]

    def __iter__(self) -> Any:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def __repr__(self) -> str:
        return f"<hbstan.ManyFits: {len(self.fits)} fits, {len(self.failures)} failed, {self.seconds:.1f} s>"

    @property
    def fits(self) -> dict[Any, Fit]:
        """The segments whose fit succeeded."""
        return {k: v for k, v in self._results.items() if isinstance(v, Fit)}

    @property
    def failures(self) -> dict[Any, Failure]:
        """The segments whose fit failed, with the reason."""
        return {k: v for k, v in self._results.items() if isinstance(v, Failure)}

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """Tabulate the fits: a row per segment and parameter entry, then a row per failed segment.

        Columns ``segment``, ``parameter``, ``estimate`` (posterior mean), ``std_error``
        (posterior SD), ``lower`` and ``upper`` (equal-tailed ``prob`` interval), ``rhat``,
        ``ess_bulk``, ``warnings`` (the number of sampler warnings of the fit) and ``error``
        (the failure, else empty). Group effects are left out (they differ between segments).
        """
        import arviz as az

        from .fit import arviz_without_numba, posterior_entries

        rows = []
        for key, res in self._results.items():
            if isinstance(res, Failure):
                rows.append({"segment": key, "error": f"{res.error}: {res.message}"})
                continue
            names = [p.name for p in res.model.params if p.kind != "matrix_cols"]
            post = res.idata.posterior[names]
            with arviz_without_numba():
                rhat, ess = az.rhat(post), az.ess(post, method="bulk")
            for name, _, pick, label, x in posterior_entries(post, names):
                lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
                rows.append({
                    "segment": key, "parameter": label, "estimate": float(x.mean()),
                    "std_error": float(x.std(ddof=1)), "lower": float(lo), "upper": float(hi),
                    "rhat": float(rhat[name].sel(pick).values), "ess_bulk": float(ess[name].sel(pick).values),
                    "warnings": len(res.warnings), "error": "",
                })
        cols = ["segment", "parameter", "estimate", "std_error", "lower", "upper", "rhat", "ess_bulk", "warnings", "error"]
        return pd.DataFrame(rows, columns=cols)


def fit_many(
    model: Model,
    data: pd.DataFrame | Sequence[pd.DataFrame] | Mapping[Any, pd.DataFrame],
    *,
    by: str | None = None,
    client: Any = None,
    workers: int | None = None,
    seed: int | None = None,
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    progress: bool | str | Callable[[int, int, int], None] = "auto",
    **sampler: Any,
) -> ManyFits:
    """Fit one model to many data sets (a model per segment), with one compiled program.

    Parameters
    ----------
    model : hbstan.Model
        The model: its formula and options. Its data-driven choices (centering,
        sufficient statistics, integrated-out effects) are fixed for every data set
        (:func:`pinned_options`), so every fit runs the same executable; default priors are
        recomputed from each data set, priors you gave are kept.
    data : DataFrame, list of DataFrames or dict of DataFrames
        The data sets: a dict keyed by segment; a list (keys 0, 1, ...); or one DataFrame
        split by the column ``by``.
    by : str, optional
        The segment column of a single DataFrame.
    client : dask.distributed.Client, optional
        Run the fits on its workers; None: a local pool of threads (``workers``, default
        the number of cores).
    workers : int, optional
        Size of the local pool.
    seed : int, optional
        One seed for the batch: each fit gets its own, derived from it and the fit's position
        (:func:`task_seeds`), the same whatever the number of workers.
    chains, draws, warmup : int
        As :meth:`hbstan.Model.sample`; further keywords (``adapt_delta``, ``pointwise``,
        ...) go there too. Each fit runs its chains one after another (``parallel_chains=1``)
        unless you say otherwise: the fits run in parallel.
    progress : bool, "auto" or callable
        The count of finished fits (see :func:`run_tasks`).

    Returns
    -------
    ManyFits
        A mapping segment -> Fit, or Failure for a data set that could not be modelled or
        sampled (the batch always finishes); ``.summary()`` is the tidy table.
    """
    if isinstance(data, pd.DataFrame):
        if by is None:
            raise ValueError("fit_many with one DataFrame needs by= (the column naming the segments)")
        if by not in data.columns:
            raise ValueError(f"segment column {by!r} is not in the data; its columns: {list(data.columns)}")
        sets = {k: g.reset_index(drop=True) for k, g in data.groupby(by, sort=True, observed=True)}
    elif isinstance(data, Mapping):
        sets = dict(data)
    else:
        sets = dict(enumerate(data))
    if not sets:
        raise ValueError("fit_many needs at least one data set")
    t0 = time.perf_counter()
    options = pinned_options(model)
    results: dict[Any, Any] = {}
    models: dict[Any, Model] = {}
    programs: dict[str, str] = {}
    for key, df in sets.items():
        try:  # a data set the model refuses is a failure of that segment, found before sampling
            m = Model(model.formula, df, **options)
        except Exception as err:
            results[key] = Failure(key, type(err).__name__, str(err), traceback.format_exc())
            continue
        models[key] = m
        code = m.program()
        programs.setdefault(program_hash(code), code)
    run = dict(BATCH_SAMPLER_DEFAULTS, chains=chains, draws=draws, warmup=warmup, **sampler)
    keys = list(models)
    outcomes = run_tasks(
        _sample_parts, [(model.formula, sets[k], options, run) for k in keys], seed=seed, client=client,
        workers=workers, programs=[(code, None) for code in programs.values()], keys=keys, progress=progress,
    )
    for key, res in zip(keys, outcomes, strict=True):
        if isinstance(res, Failure):
            results[key] = res
            continue
        fit = Fit(models[key], res["idata"], run_dir=res["run_dir"], settings=res["settings"])
        fit.timings, fit.warnings, fit.suggestion = res["timings"], res["warnings"], res["suggestion"]
        results[key] = fit
    ordered = {k: results[k] for k in sets}  # the data sets' order
    return ManyFits(ordered, time.perf_counter() - t0)
