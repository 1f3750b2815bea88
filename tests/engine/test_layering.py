"""The layering of pytest_futures_plugin: only ``plugin.py`` adapts the engine to pytest.

Every other module of the package (the *engine*: backends, controls, guards, scheduler, clock,
linearizability, report, tasks, faults, ...) must import neither pytest, ``_pytest`` nor
hypothesis, nor the adapter itself: not at the top, not inside a function, not under
``if TYPE_CHECKING:``, not through ``importlib.import_module``/``__import__``. That keeps the
engine usable from plain unittest or Hypothesis code, and the plugin cheap to load. The specs
(``pytest_futures_plugin.specs``, shipped from the repository's ``specs/``) are tests and may
use both; they do not live in the package's folder, so the scan does not see them.

Two checks: an AST scan of the sources (names the line), and importing every engine module in
a fresh interpreter (catches what a scan cannot see, e.g. an indirect import).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_futures_plugin"
ADAPTER = "plugin.py"
FORBIDDEN = frozenset({"pytest", "_pytest", "hypothesis"})


def module_name(path: Path) -> str:
    """``pytest_futures_plugin.guards._hang`` for ``pytest_futures_plugin/guards/_hang.py``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


ENGINE = sorted(
    str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if path.name != ADAPTER
)


def imports(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in *tree*, wherever it is (functions and
    ``if TYPE_CHECKING:`` blocks included), with relative imports resolved against *package*;
    ``__import__("x")`` and ``import_module("x")`` calls with a literal name count too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Name, ast.Attribute))
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in {"__import__", "import_module"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def violations(relative: str) -> list[str]:
    """What the module at *relative* (to the package) imports that an engine module must not."""
    path = PACKAGE / relative
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    adapter = f"{PACKAGE.name}.{ADAPTER[:-3]}"
    return [
        f"{relative}:{line} imports {module}"
        for line, module in imports(tree, package)
        if module.split(".")[0] in FORBIDDEN or module == adapter
    ]


def test_the_scan_sees_the_adapter_import_pytest() -> None:
    """The scan is not blind: the adapter's own imports are found (it is the one allowed)."""
    assert any(found.endswith(" imports pytest") for found in violations(ADAPTER))
    assert len(ENGINE) >= 15, ENGINE
    assert {"backends.py", "controls/__init__.py", "guards/_hang.py"} <= set(ENGINE)


def test_the_scan_resolves_relative_imports_and_imports_inside_functions() -> None:
    source = (
        "def later():\n    import hypothesis.strategies\n"
        "from ..plugin import pytest_configure\n"
        "import importlib\nimportlib.import_module('_pytest.fixtures')\n"
    )
    found = imports(ast.parse(source), "pytest_futures_plugin.guards")
    assert (2, "hypothesis.strategies") in found
    assert (3, "pytest_futures_plugin.plugin") in found
    assert (5, "_pytest.fixtures") in found


@pytest.mark.parametrize("module", ENGINE)
def test_no_engine_module_imports_pytest_hypothesis_or_the_adapter(module: str) -> None:
    assert violations(module) == []


def test_importing_every_engine_module_imports_neither_pytest_nor_hypothesis() -> None:
    names = [module_name(PACKAGE / relative) for relative in ENGINE]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(set({sorted(FORBIDDEN)!r}) & set(sys.modules))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_subpackage_is_listed_for_the_distribution() -> None:
    """pyproject lists the packages to ship one by one (so tests/ never ships): a subpackage
    missing there works in a checkout and fails after ``pip install``."""
    listed = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    subpackages = sorted(
        module_name(path) for path in PACKAGE.rglob("__init__.py") if path.parent != PACKAGE
    )
    assert subpackages, "no subpackages found: the scan looks in the wrong place"
    missing = [name for name in subpackages if f'"{name}"' not in listed]
    assert missing == [], f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
