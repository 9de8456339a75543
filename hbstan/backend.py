"""CmdStan: finding it, compiling programs once into a cache, and run directories."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "CmdStanNotFoundError",
    "CompileError",
    "cache_dir",
    "find_cmdstan",
    "normalize_code",
    "program_hash",
    "compiled_model",
    "is_compiled",
    "compile_in_background",
    "export_program",
    "install_program",
    "new_run_dir",
    "install_cmdstan",
]

log = logging.getLogger("hbstan")

INSTALL_HINT = (
    "CmdStan was not found. Install it with `hbstan install-cmdstan` "
    "(or `python -m hbstan install-cmdstan`, which runs cmdstanpy.install_cmdstan()), "
    "or point the CMDSTAN environment variable at an existing CmdStan directory."
)


class CmdStanNotFoundError(RuntimeError):
    """No CmdStan installation could be found."""


class CompileError(RuntimeError):
    """stanc or the C++ compiler rejected a program; the message carries their output."""


def cache_dir() -> Path:
    """hbstan's cache: ``$HBSTAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/hbstan`` or ``~/.cache/hbstan``."""
    env = os.environ.get("HBSTAN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hbstan"


def find_cmdstan() -> str:
    """Path of the CmdStan installation CmdStanPy will use, or CmdStanNotFoundError."""
    import cmdstanpy

    env = os.environ.get("CMDSTAN")
    if env:
        if not os.path.isdir(env):
            raise CmdStanNotFoundError(f"CMDSTAN={env!r} is not a directory. {INSTALL_HINT}")
        try:
            cmdstanpy.set_cmdstan_path(env)
        except ValueError as err:  # CmdStanPy checks for the makefile
            raise CmdStanNotFoundError(f"CMDSTAN={env!r} is not a CmdStan installation ({err}). {INSTALL_HINT}") from None
        return env
    try:
        with quiet_cmdstanpy():
            return str(cmdstanpy.cmdstan_path())
    except (ValueError, RuntimeError):
        raise CmdStanNotFoundError(INSTALL_HINT) from None


def _cmdstanpy_logger() -> logging.Logger:
    """CmdStanPy's logger, set up by CmdStanPy itself.

    Its first ``get_logger()`` call in a process adds a handler and sets the level to DEBUG,
    which would undo a level hbstan set before it: get it through CmdStanPy, then set levels.
    """
    from cmdstanpy.utils import get_logger

    return get_logger()


_QUIET_LOCK = threading.Lock()
_quiet_levels: list[int] = []  # the levels of the blocks open now, in any thread
_quiet_restore: list[int] = []  # the level before the first of them


@contextlib.contextmanager
def quiet_cmdstanpy(level: int = logging.CRITICAL) -> Iterator[None]:
    """CmdStanPy logs only messages at ``level`` or above inside the block.

    Safe in threads (many fits at once, :mod:`hbstan.many`): while blocks of several threads
    overlap, the logger keeps the most permissive of their levels, and the level from before
    the first block is restored when the last one ends.
    """
    logger = _cmdstanpy_logger()
    with _QUIET_LOCK:
        if not _quiet_levels:
            _quiet_restore[:] = [logger.level]
        _quiet_levels.append(level)
        logger.setLevel(min(_quiet_levels))
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_levels.remove(level)
            logger.setLevel(min(_quiet_levels) if _quiet_levels else _quiet_restore[0])


def install_cmdstan(**kwargs: Any) -> bool:
    """Install CmdStan with CmdStanPy's installer (downloads a release)."""
    import cmdstanpy

    return bool(cmdstanpy.install_cmdstan(**kwargs))


_COMMENT = re.compile(r"//[^\n]*")


def normalize_code(code: str) -> str:
    """Program text without comments and with whitespace collapsed: what the compiler sees."""
    code = _COMMENT.sub("", code)
    return "\n".join(" ".join(line.split()) for line in code.splitlines() if line.strip())


def program_hash(code: str, cpp_options: dict[str, Any] | None = None) -> str:
    """Cache key: normalized program text, compiler options and the CmdStan version."""
    try:
        version = os.path.basename(find_cmdstan().rstrip("/"))
    except CmdStanNotFoundError:
        version = "none"
    payload = json.dumps(
        {"code": normalize_code(code), "cpp": cpp_options or {}, "cmdstan": version},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def interactive() -> bool:
    """Whether a person is watching: stderr is a terminal, or this runs in a Jupyter kernel.

    ``show_progress="auto"`` (sampling) and the compile timer show only then.
    """
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


@contextlib.contextmanager
def compile_notice(what: str = "compiling the Stan program") -> Iterator[None]:
    """Say that a compile runs and how long it has taken: a live timer on stderr when
    :func:`interactive`, else a log line at the start and the end."""
    t0 = time.perf_counter()
    done = threading.Event()
    live = interactive()

    def tick() -> None:
        while not done.wait(1.0):
            sys.stderr.write(f"\rhbstan: {what} (the first fit of this model structure) ... {time.perf_counter() - t0:.0f} s")
            sys.stderr.flush()

    timer = threading.Thread(target=tick, daemon=True) if live else None
    log.info("hbstan: %s (the first fit of this model structure; this takes a while)", what)
    if timer is not None:
        sys.stderr.write(f"hbstan: {what} (the first fit of this model structure) ... 0 s")
        sys.stderr.flush()
        timer.start()
    try:
        yield
    finally:
        done.set()
        if timer is not None:
            timer.join()
            sys.stderr.write(f"\rhbstan: {what}: done in {time.perf_counter() - t0:.1f} s" + " " * 30 + "\n")
            sys.stderr.flush()
        log.info("hbstan: compiled in %.1f s", time.perf_counter() - t0)


def compiled_model(code: str, *, cpp_options: dict[str, Any] | None = None) -> Any:
    """A ``cmdstanpy.CmdStanModel`` for ``code``, compiled at most once per cache.

    The executable lives in ``cache_dir()/models/<hash>/``. Processes compiling the same
    program at once wait on a file lock, and all but the first find the executable ready.
    """
    import cmdstanpy

    find_cmdstan()
    key = program_hash(code, cpp_options)
    d = cache_dir() / "models" / key
    exe = d / "model"
    stan_file = d / "model.stan"
    with _file_lock(d / ".lock"):
        if exe.is_file() and stan_file.is_file():
            log.info("hbstan: compiled model found in cache (%s)", d)
            return _load_model(stan_file, exe)
        log.info("hbstan: compiled model not in the cache (cache miss): compiling into %s", d)
        tmp = d / f"build-{secrets.token_hex(4)}"
        tmp.mkdir(parents=True)
        try:
            (tmp / "model.stan").write_text(code)
            try:
                with quiet_cmdstanpy(), compile_notice():
                    model = cmdstanpy.CmdStanModel(
                        stan_file=str(tmp / "model.stan"), cpp_options=cpp_options or {}
                    )
            except (ValueError, RuntimeError) as err:
                raise CompileError(f"compiling the generated Stan program failed:\n{err}") from None
            stan_file.write_text(code)
            shutil.move(str(model.exe_file), str(exe))
            os.utime(exe)  # newer than model.stan, so CmdStanPy will not rebuild
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return _load_model(stan_file, exe)


def is_compiled(code: str, *, cpp_options: dict[str, Any] | None = None) -> bool:
    """Whether the cache holds ``code``'s executable (nothing is compiled)."""
    try:
        d = cache_dir() / "models" / program_hash(code, cpp_options)
    except CmdStanNotFoundError:
        return False
    return (d / "model").is_file() and (d / "model.stan").is_file()


_BACKGROUND: dict[str, Any] = {}  # program hash -> the compile process this process started
BACKGROUND_NICE = 10  # niceness added to a background compile (0: as this process)


def compile_in_background(code: str) -> Any:
    """Compile ``code`` into the cache in a process of its own; returns its ``subprocess.Popen``.

    The process runs :func:`compiled_model` (file-locked: a process compiling the same program
    makes it wait, then it finds the executable ready) in a session of its own, so it finishes
    even when this Python process ends first, and at a lower CPU priority (``nice`` 10, which
    its compiler processes inherit), so that it takes the cores only when the fits that run
    meanwhile leave them idle. Its output goes to ``cache_dir()/background/<hash>.log``. At
    most one such process per program and process.
    """
    import subprocess

    key = program_hash(code)
    running = _BACKGROUND.get(key)
    if running is not None and running.poll() is None:
        return running
    d = cache_dir() / "background"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{key}.stan").write_text(code)
    package_parent = str(Path(__file__).resolve().parent.parent)  # the same hbstan in the child
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    script = (
        f"import os, sys, pathlib; os.nice({BACKGROUND_NICE}); from hbstan.backend import compiled_model; "
        "compiled_model(pathlib.Path(sys.argv[1]).read_text())"
    )
    with open(d / f"{key}.log", "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(d / f"{key}.stan")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    _BACKGROUND[key] = proc
    log.info("hbstan: compiling the specialized program in the background (process %d, log in %s)", proc.pid, d)
    return proc


_INFO_FILE = "info.json"


def export_program(code: str, *, cpp_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export a compiled program as plain data, to install into another machine's cache.

    Compiles ``code`` here if the cache lacks it (:func:`compiled_model`), then reads the
    executable. The result (a dict of the program hash, the Stan code, the compiler options,
    the CmdStan version and the executable's bytes) pickles, so a scheduler can send it to
    workers that do not share this cache; :func:`install_program` puts it in place there.
    """
    compiled_model(code, cpp_options=cpp_options)
    key = program_hash(code, cpp_options)
    d = cache_dir() / "models" / key
    return {
        "hash": key,
        "code": code,
        "cpp_options": dict(cpp_options or {}),
        "cmdstan": os.path.basename(find_cmdstan().rstrip("/")),
        "exe": (d / "model").read_bytes(),
    }


def install_program(program: dict[str, Any]) -> bool:
    """Put an :func:`export_program` result into this machine's cache; True if it was installed.

    Nothing is written when the cache already holds the program (workers sharing a file
    system with the machine that compiled it). The executable is installed under the hash
    this machine computes for the code: where that differs from the sender's (another
    CmdStan version), the bytes are not used and :func:`compiled_model` compiles the program
    here on first use instead (logged). The executable links CmdStan's TBB library by path,
    so a worker needs CmdStan at the same path as the sender (the same image or install).
    """
    key = program_hash(program["code"], program["cpp_options"] or None)
    if key != program["hash"]:
        log.warning(
            "hbstan: this worker's CmdStan differs from the one that compiled the program (%s): "
            "it will compile the program itself",
            program.get("cmdstan"),
        )
        return False
    d = cache_dir() / "models" / key
    exe, stan_file = d / "model", d / "model.stan"
    if exe.is_file() and stan_file.is_file():
        return False
    with _file_lock(d / ".lock"):
        if exe.is_file() and stan_file.is_file():
            return False
        tmp = d / f".model-{secrets.token_hex(4)}"
        tmp.write_bytes(program["exe"])
        tmp.chmod(0o755)
        stan_file.write_text(program["code"])
        os.replace(tmp, exe)
        os.utime(exe)  # newer than model.stan, so CmdStanPy will not rebuild
    log.info("hbstan: installed the shipped executable into %s", d)
    return True


def _load_model(stan_file: Path, exe: Path) -> Any:
    """A CmdStanModel for a cached executable and its program.

    ``CmdStanModel(stan_file=..., exe_file=...)`` runs ``stanc --info`` on every construction
    (with CmdStan < 2.36, to learn whether the program has parameters), a subprocess costing
    about as much as the rest of hbstan's preparation of a run. Its one result, the
    ``fixed_param`` flag, is recorded next to the executable the first time and reused.
    """
    import cmdstanpy

    info_file = stan_file.parent / _INFO_FILE
    with quiet_cmdstanpy():
        try:
            info = json.loads(info_file.read_text())
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and isinstance(info.get("fixed_param"), bool):
            cm = cmdstanpy.CmdStanModel(exe_file=str(exe))
            if hasattr(cm, "_stan_file") and hasattr(cm, "_fixed_param"):
                # what the stan_file= constructor records, without running stanc again
                cm._stan_file = os.path.realpath(stan_file)
                cm._fixed_param = info["fixed_param"]
                return cm
        cm = cmdstanpy.CmdStanModel(stan_file=str(stan_file), exe_file=str(exe))
    fixed = getattr(cm, "_fixed_param", None)
    if isinstance(fixed, bool):
        tmp = info_file.with_name(f".{_INFO_FILE}.{secrets.token_hex(4)}")
        try:
            tmp.write_text(json.dumps({"fixed_param": fixed}))
            os.replace(tmp, info_file)
        except OSError:
            tmp.unlink(missing_ok=True)
    return cm


def new_run_dir(key: str, output_dir: str | os.PathLike[str] | None = None) -> Path:
    """A fresh directory for one run's files (CmdStan CSVs, data, program)."""
    if output_dir is not None:
        path = Path(output_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = Path(os.environ.get("HBSTAN_RUNS_DIR") or (cache_dir() / "runs"))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = base / f"{stamp}-{key[:8]}-{secrets.token_hex(3)}"
    path.mkdir(parents=True)
    return path


