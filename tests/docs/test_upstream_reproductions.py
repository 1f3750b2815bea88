"""The reproductions under docs/upstream/: each one's ``probe(make_executor)`` must tell a
correct executor from the buggy one, so each is run here against the stdlib's pools, where it
must find nothing (the buggy executors are the nox session ``ecosystem``'s business, and an
upstream fix must not break this suite)."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

UPSTREAM = Path(__file__).resolve().parents[2] / "docs" / "upstream"
SCRIPTS = sorted(p for p in UPSTREAM.glob("*.py") if p.name != "__init__.py")


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"upstream_{path.stem}", path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_reproductions() -> None:
    assert SCRIPTS, f"no scripts in {UPSTREAM}"


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_the_probe_finds_nothing_on_the_stdlib(path: Path) -> None:
    module = load(path)
    assert callable(module.probe), path.name
    assert callable(module.main), path.name
    if path.stem.startswith("loky"):
        # The bug is about worker processes: the stdlib's process pool, in a fresh interpreter
        # where the script is importable by name (as any start method's workers need).
        code = (
            f"import sys; sys.path.insert(0, {str(UPSTREAM)!r})\n"
            "import concurrent.futures, loky_unpicklable_exception as m\n"
            "print(m.probe(concurrent.futures.ProcessPoolExecutor))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=True
        )
        assert done.stdout.strip() == "False", f"{path.name}: the probe blames the stdlib"
        return
    found = module.probe(concurrent.futures.ThreadPoolExecutor)
    assert found is False, f"{path.name}: the probe blames the stdlib"
