"""Render Stan programs from the Jinja templates in ``stan_templates/``."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .backend import cache_dir

__all__ = ["templates_dir", "render_program", "program"]


def templates_dir() -> Path:
    """Directory of the shipped templates.

    In a wheel they live inside the package (``hbstan/stan_templates``); in a source checkout
    or an editable install, at the repository root (``stan_templates/``).
    """
    here = Path(__file__).resolve().parent
    for cand in (here / "stan_templates", here.parent / "stan_templates"):
        if (cand / "model.stan.j2").is_file():
            return cand
    raise FileNotFoundError(
        "hbstan's Stan templates are missing: expected hbstan/stan_templates/model.stan.j2 "
        "(installed wheel) or stan_templates/model.stan.j2 (source checkout); reinstall hbstan"
    )


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _tidy(code: str) -> str:
    """Re-indent by brace depth, drop the blank lines slot macros leave, space the blocks."""
    out: list[str] = []
    depth = 0
    for raw in code.splitlines():
        line = raw.strip()
        if not line:
            continue
        code_part = line.split("//", 1)[0]
        opens, closes = code_part.count("{"), code_part.count("}")
        if code_part.startswith("}"):
            depth -= 1
            closes -= 1
        if depth == 0 and out and not line.startswith(("//", "}")):
            out.append("")
        out.append("  " * max(depth, 0) + line)
        depth += opens - closes
    return "\n".join(out) + "\n"


def render_program(
    context: dict[str, Any], *, templates: str | Path | None = None, template: str = "model.stan.j2"
) -> str:
    """Render ``template`` (the skeleton ``model.stan.j2``) with a structure-only context (no user strings).

    ``templates`` renders from another template directory (default: the shipped ones);
    ``template="general.stan.j2"`` renders a family's general program (:mod:`hbstan.general`).
    """
    directory = str(templates if templates is not None else templates_dir())
    skeleton = _environment(directory).get_template(template)
    return _tidy(skeleton.render(m=context))


@lru_cache(maxsize=1)
def _inputs_digest() -> str:
    """Digest of every input of :func:`render_program` besides its context.

    Those are the files under the templates directory, this module's own source and Jinja's
    version (read once per process). The context is the rest of the key: a rendered program
    is a function of these and nothing else, whichever module built the context.
    """
    h = hashlib.sha256(f"jinja2 {jinja2.__version__}".encode())
    h.update(Path(__file__).read_bytes())
    tdir = templates_dir()
    for f in sorted(p for p in tdir.rglob("*") if p.is_file()):
        h.update(b"\0" + str(f.relative_to(tdir)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def program(context: dict[str, Any], *, template: str = "model.stan.j2") -> str:
    """The Stan program for a template ``context``, rendered once and then read back.

    Programs are stored in ``cache_dir()/programs``.

    Rendering is cheap once Jinja has compiled the templates, but compiling them is not (tens
    of milliseconds, on the first fit of every process). The key covers every input of the
    rendering by construction: the context, the templates' contents and the rendering code.
    """
    try:
        key = {"context": context, "inputs": _inputs_digest()}
        if template != "model.stan.j2":
            key["template"] = template
        payload = json.dumps(key, sort_keys=True)
    except (TypeError, ValueError, OSError):
        return render_program(context, template=template)
    path = cache_dir() / "programs" / f"{hashlib.sha256(payload.encode()).hexdigest()}.stan"
    try:
        return path.read_text()
    except OSError:
        pass
    code = render_program(context, template=template)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        tmp.write_text(code)
        os.replace(tmp, path)
    except OSError:
        pass
    return code
