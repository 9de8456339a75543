"""The one-way architecture: layers checked by import-linter, and no module reads another's private members."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hbstan"

# third-party internals hbstan reaches into knowingly (CmdStanPy's model records the Stan file
# and fixed_param without running stanc again): not another hbstan module's members
THIRD_PARTY = {"cm._stan_file", "cm._fixed_param"}


def lint_imports(config: Path, root: Path = ROOT) -> subprocess.CompletedProcess:
    """import-linter's check of the hbstan under ``root``, in a process of its own (it resets logging)."""
    pytest.importorskip("importlinter", reason="import-linter is in the test extras")
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", code, str(config)], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_layers_contract_is_kept():
    """``lint-imports`` with the contract in pyproject.toml: each module imports only from below."""
    run = lint_imports(ROOT / "pyproject.toml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout


def test_the_contract_catches_an_upward_import(tmp_path):
    """The same check fails when Fit is placed below a module it imports (predict)."""
    text = (ROOT / "pyproject.toml").read_text()
    cfg = text[text.index("[tool.importlinter]"):]
    swapped = cfg.replace('    "fit",\n', '    "predict",\n    "fit",\n').replace('    "predict | idata",\n', '    "idata",\n')
    assert swapped != cfg
    (tmp_path / "contract.toml").write_text(swapped)
    run = lint_imports(tmp_path / "contract.toml")
    assert run.returncode != 0
    assert "hbstan.fit is not allowed to import hbstan.predict" in run.stdout


def test_the_contract_counts_type_only_imports(tmp_path):
    """An import made only for annotations (under TYPE_CHECKING) that runs upward fails too:
    a copy of hbstan whose predict names Fit that way breaks the contract."""
    shutil.copytree(PACKAGE, tmp_path / "hbstan", ignore=shutil.ignore_patterns("__pycache__"))
    predict = tmp_path / "hbstan" / "predict.py"
    text = predict.read_text()
    marker = "if TYPE_CHECKING:\n"
    assert marker in text
    predict.write_text(text.replace(marker, marker + "    from .fit import Fit  # noqa: F401\n", 1))
    cfg = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(cfg[cfg.index("[tool.importlinter]"):])
    run = lint_imports(tmp_path / "pyproject.toml", root=tmp_path)
    assert run.returncode != 0
    assert "hbstan.predict is not allowed to import hbstan.fit" in run.stdout


def private_reads(path: Path) -> list[str]:
    """``x._name`` on anything but self/cls, and ``from .module import _name``, in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            found += [
                f"{path.name}:{node.lineno} imports {a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__") and a.name != "_version"
            ]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if ast.unparse(node) not in THIRD_PARTY:
                found.append(f"{path.name}:{node.lineno} reads {ast.unparse(node)}")
    return found


def test_no_module_reads_another_modules_private_members():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in private_reads(path)]
    assert found == []


def test_the_private_member_check_finds_one(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from .model import _helper\n\ndef f(model):\n    return model._params\n")
    assert private_reads(bad) == ["bad.py:1 imports _helper", "bad.py:4 reads model._params"]
