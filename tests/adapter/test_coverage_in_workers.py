"""``coverage run -m pytest`` counts the lines that run in process-pool workers, configured as
the README's "Coverage of code that runs in worker processes" says.

A throwaway project, ``worker-demo``, whose module holds one function per (backend, start
method) pair, each called only inside a worker process of that backend started that way (the
demo's test checks the pid). pytest-futures (a plain install, not editable), coverage and loky
go into a fresh venv, as in the reuse test; the README's commands run there; ``coverage
report --fail-under=100`` then proves that every one of those functions was measured in its
worker. A run with coverage's defaults instead shows the same lines missed, so the check can
fail.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from tests.adapter.test_reuse_in_a_project import (
    _NOT_INSTALLED,
    CHECKOUT,
    INSTALL_TIMEOUT,
    Demo,
    _check,
    _clean_environment,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

POOLS = {"process": "process", "stdlib-process": "stdlib_process"}
"""The process backends whose factory takes ``mp_context``: backend name -> identifier."""

LOKY = "loky:ProcessPoolExecutor"

METHODS = [
    m for m in ("fork", "forkserver", "spawn") if m in multiprocessing.get_all_start_methods()
]

COVERAGE_CONFIG = """
    [tool.coverage.run]
    branch = true
    source = ["worker_demo"]
    parallel = true
    concurrency = ["thread", "multiprocessing"]
    patch = ["subprocess"]
    sigterm = true
"""
"""The README's configuration, word for word."""


def _module() -> str:
    """worker_demo.py: one function per (backend, start method), each returning its pid."""
    names = [f"{ident}_{method}" for ident in POOLS.values() for method in METHODS] + ["loky"]
    functions = "\n\n".join(f"def {name}():\n    return os.getpid()\n" for name in names)
    return f'"""Functions that only ever run in worker processes."""\n\nimport os\n\n\n{functions}'


DEMO_TESTS = f"""
    import multiprocessing
    import os

    import pytest

    import worker_demo

    POOLS = {POOLS!r}


    @pytest.mark.parametrize("method", {METHODS!r})
    def test_each_start_method(executor_factory, executor_backend, method):
        if executor_backend not in POOLS:
            pytest.skip("its factory takes no mp_context")
        executor = executor_factory(max_workers=1, mp_context=multiprocessing.get_context(method))
        function = getattr(worker_demo, f"{{POOLS[executor_backend]}}_{{method}}")
        assert executor.submit(function).result(timeout=60) != os.getpid()


    def test_loky(executor_factory, executor_backend):
        if executor_backend != {LOKY!r}:
            pytest.skip("loky's own test")
        executor = executor_factory(max_workers=1)
        assert executor.submit(worker_demo.loky).result(timeout=60) != os.getpid()
"""

PYPROJECT = """
    [build-system]
    requires = ["setuptools>=69"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "worker-demo"
    version = "0.1"
    requires-python = ">=3.9"

    [tool.setuptools]
    package-dir = {"" = "src"}
    py-modules = ["worker_demo"]

    [tool.pytest.ini_options]
    testpaths = ["tests"]
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo project in a fresh venv with pytest-futures, coverage and loky installed."""
    work = tmp_path_factory.mktemp("coverage")
    root = work / "worker-demo"
    files = {
        "pyproject.toml": textwrap.dedent(PYPROJECT) + textwrap.dedent(COVERAGE_CONFIG),
        "src/worker_demo.py": _module(),
        "tests/test_workers.py": textwrap.dedent(DEMO_TESTS),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip(), encoding="utf-8")
    checkout = work / "pytest-futures"
    shutil.copytree(CHECKOUT, checkout, ignore=_NOT_INSTALLED)
    venv = work / "venv"
    env = _clean_environment(venv)
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    _check(made, "python -m venv")
    project = Demo(root, venv / "bin", env)
    installed = project.run(
        "python",
        "-m",
        "pip",
        "install",
        str(checkout),
        "coverage[toml]>=7.10",
        "loky",
        timeout=INSTALL_TIMEOUT,
    )
    _check(installed, "pip install")
    # The project's own code is measured from its source tree, as in an editable install.
    env_with_src = {**env, "PYTHONPATH": str(root / "src")}
    return Demo(root, venv / "bin", env_with_src)


def _measure(demo: Demo, *run_args: str, combine: bool = True) -> str:
    """``coverage erase``, ``coverage run [run_args] -m pytest`` on every process backend,
    ``coverage combine``; then the report of worker_demo.py (a failing one included)."""
    _check(demo.run("coverage", "erase"), "coverage erase")
    executors = ",".join([*POOLS, LOKY])
    tests = demo.run("coverage", "run", *run_args, "-m", "pytest", f"--executor={executors}")
    expected = len(METHODS) * len(POOLS) + 1
    assert re.search(rf"\b{expected} passed\b", tests.stdout), tests.stdout
    if combine:
        _check(demo.run("coverage", "combine"), "coverage combine")
    return demo.run("coverage", "report", "--show-missing", "--fail-under=100").stdout


def test_the_readme_configuration_covers_every_worker(demo: Demo) -> None:
    report = _measure(demo)
    assert re.search(r"worker_demo\.py\s+(\d+)\s+0\s+0\s+0\s+100%", report), report


def test_without_it_the_workers_lines_are_missed(demo: Demo, tmp_path: Path) -> None:
    bare = tmp_path / "bare.toml"
    bare.write_text('[tool.coverage.run]\nbranch = true\nsource = ["worker_demo"]\n')
    report = _measure(demo, f"--rcfile={bare}", combine=False)
    match = re.search(r"worker_demo\.py\s+\d+\s+(\d+)\s+\d+\s+\d+\s+(\d+)%", report)
    assert match is not None, report
    missed, percent = int(match.group(1)), int(match.group(2))
    assert missed >= len(METHODS) * len(POOLS) + 1, report  # every function's body
    assert percent < 100, report
