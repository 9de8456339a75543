"""Render Stan programs from the Jinja templates in ``stan_templates/``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["templates_dir", "render_program"]


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


def render_program(context: dict[str, Any], *, templates: str | Path | None = None) -> str:
    """Render ``model.stan.j2`` with a structure-only context (no user strings).

    ``templates`` renders from another template directory (default: the shipped ones).
    """
    directory = str(templates if templates is not None else templates_dir())
    template = _environment(directory).get_template("model.stan.j2")
    return _tidy(template.render(m=context))
