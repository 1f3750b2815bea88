"""The synchronisation seam: only executor_impl/_sync.py may touch threads or time.

The deterministic scheduler replaces ``_sync``'s primitives for a run; a module that imports
``threading``, ``time``, ``_thread`` or ``queue`` itself would escape its control. Imports
under ``if TYPE_CHECKING:`` are allowed: they never run.

One exception, by name: ``_process_worker.py`` is the code of a worker *process*, where no
scheduler ever runs, and it may read ``time``'s clock.  Its ``spin``, which the parent uses
too, bounds a busy wait in real CPU time, which must not follow a virtual clock; no timeout
the caller sees is measured there.  Importing ``_sync`` there would also cost every spawned
worker the import of ``queue`` for nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "executor_impl"
SEAM = "_sync.py"
FORBIDDEN = frozenset({"threading", "time", "_thread", "queue"})
MODULES = sorted(path.name for path in PACKAGE.glob("*.py") if path.name != SEAM)
#: What a module may import after all, with the reason in the module docstring.
ALLOWED = {"_process_worker.py": frozenset({"time"})}


def is_type_checking_block(node: ast.AST) -> bool:
    """Whether *node* is ``if TYPE_CHECKING:`` (or ``if typing.TYPE_CHECKING:``)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import that runs, i.e. outside
    ``if TYPE_CHECKING:`` blocks; ``__import__``/``import_module`` calls count too."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node):
            assert isinstance(node, ast.If)
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Name, ast.Attribute))
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in {"__import__", "import_module"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_the_seam_and_the_modules_around_it_exist() -> None:
    assert (PACKAGE / SEAM).is_file()
    assert {"__init__.py", "_future.py", "_waiting.py", "_executor.py", "thread.py"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_no_module_but_the_seam_imports_threading_time_thread_or_queue(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"), filename=module)
    offending = [
        f"{module}:{line} imports {name}"
        for line, name in runtime_imports(tree)
        if name in FORBIDDEN - ALLOWED.get(module, frozenset())
    ]
    assert offending == []


@pytest.mark.parametrize(
    "source",
    [
        "import threading",
        "import time as clock",
        "from queue import SimpleQueue",
        "import _thread, os",
        "def f():\n    from time import monotonic",
        "import importlib\nimportlib.import_module('threading')",
        "__import__('queue')",
        "if TYPE_CHECKING:\n    pass\nelse:\n    import threading",
    ],
)
def test_the_scan_finds_a_forbidden_import_wherever_it_is_written(source: str) -> None:
    names = {name for _, name in runtime_imports(ast.parse(source))}
    assert names & FORBIDDEN


@pytest.mark.parametrize(
    "source",
    [
        "if TYPE_CHECKING:\n    import threading",
        "if typing.TYPE_CHECKING:\n    from queue import SimpleQueue",
        "from . import _sync",
        "from concurrent.futures import _base",
    ],
)
def test_the_scan_allows_type_checking_and_relative_imports(source: str) -> None:
    names = {name for _, name in runtime_imports(ast.parse(source))}
    assert not names & FORBIDDEN


@pytest.mark.parametrize("class_name", ["Future", "Executor", "ThreadPoolExecutor"])
def test_no_public_method_is_inherited_from_the_stdlib(class_name: str) -> None:
    """executor_impl's classes derive from the stdlib's (for isinstance checks in asyncio),
    so a method they forgot to define would run the stdlib's code, which synchronises with
    ``threading`` directly, behind the seam's back."""
    import executor_impl

    cls = getattr(executor_impl, class_name)
    names = {name for name in dir(cls) if not name.startswith("_")}
    names |= {"__init__", "__repr__"}  # __enter__/__exit__ only call shutdown()
    inherited = []
    for name in sorted(names):
        owner = next(klass for klass in cls.__mro__ if name in vars(klass))
        if owner is not object and not owner.__module__.startswith("executor_impl"):
            inherited.append(f"{name} from {owner.__module__}.{owner.__qualname__}")
    assert inherited == []
