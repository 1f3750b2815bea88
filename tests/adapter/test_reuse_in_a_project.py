"""pytest-futures reused by another project, as its README's "Use it in your project" says.

A throwaway project, ``fanout-demo``, with one module that fans work out to whatever executor
it is given and tests that take the ``executor`` fixture and a gate from ``futures_controls``,
gets a fresh venv with pytest-futures installed as a plain package (not editable), loky from
the package index, and the project itself. Then the README's commands run there:
``pytest --executor=all``, ``pytest --executor=loky:ProcessPoolExecutor`` and
``pytest --futures-specs --executor=stdlib-thread``.

pip needs the package index (pytest, hypothesis, loky, and setuptools for the isolated
builds). Everything is written under pytest's temporary directory: pip builds a project in
its source tree, so the checkout is installed from a copy, and pip's cache is off.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

CHECKOUT = Path(__file__).resolve().parents[2]
"""The root of this checkout: tests/adapter/this_file -> the directory holding pyproject.toml."""

INSTALL_TIMEOUT = 900.0
"""Seconds pip may take to create, download and install (a slow index is not a failure)."""

PYTEST_TIMEOUT = 600.0
"""Seconds one pytest run in the demo project may take."""

BUILTINS = "thread, process, stdlib-thread, stdlib-process"

DEMO_TESTS = 3
"""How many tests ``tests/test_fanout.py`` of the demo project holds."""

DEMO_FILES = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "fanout-demo"
        version = "0.1"
        requires-python = ">=3.9"

        [tool.setuptools]
        package-dir = {"" = "src"}
        py-modules = ["fanout_demo"]

        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "src/fanout_demo.py": '''
        """Fan work out to any concurrent.futures executor; gather it as it completes."""

        from concurrent.futures import as_completed


        def fan_out(executor, fetch, items):
            """Submit fetch(item) for every item; return {future: item}."""
            return {executor.submit(fetch, item): item for item in items}


        def gather(futures, timeout=None):
            """{item: result} for every future of fan_out(), in the order they complete;
            a fetch that raised gives its exception instead of a result."""
            results = {}
            for future in as_completed(futures, timeout=timeout):
                error = future.exception()
                results[futures[future]] = future.result() if error is None else error
            return results


        def total_size(executor, items, timeout=None):
            """The sum of len(item) over items, computed by the executor."""
            return sum(gather(fan_out(executor, len, items), timeout).values())
    ''',
    "tests/test_fanout.py": """
        from fanout_demo import fan_out, gather, total_size


        def held_len(item, gate):  # module level: process pools pickle it
            gate.wait()
            return len(item)


        def test_total_size(executor):
            assert total_size(executor, ["a", "bb", "ccc"], timeout=60) == 6


        def test_fetches_run_side_by_side(executor, futures_controls):
            gate = futures_controls.gate()
            futures = [executor.submit(held_len, item, gate) for item in ("a", "bb")]
            gate.wait_inside(2)  # both are running, held at the gate
            assert not any(future.done() for future in futures)
            gate.release()
            assert [future.result(timeout=60) for future in futures] == [1, 2]


        def test_a_failing_fetch_is_reported_not_raised(executor):
            results = gather(fan_out(executor, int, ["1", "x"]), timeout=60)
            assert results["1"] == 1
            assert isinstance(results["x"], ValueError)
    """,
}
"""The demo project. The second test is the README's sample, word for word."""

_NOT_INSTALLED = shutil.ignore_patterns(
    ".git",
    ".nox",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    ".benchmarks",
    ".coverage*",
    "htmlcov",
)


@dataclasses.dataclass(frozen=True)
class Demo:
    """The demo project at *root*, with its venv's ``bin`` directory and environment."""

    root: Path
    bin: Path
    env: Mapping[str, str] = dataclasses.field(repr=False)  # never print the environment

    def run(self, *args: str, timeout: float = PYTEST_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv (``args[0]`` names it) in the project; output merged."""
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=self.root,
            env=dict(self.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )


def _clean_environment(venv: Path) -> dict[str, str]:
    """This process's environment without what would make the demo see this checkout or
    this run (PYTHONPATH, PYTEST_*, coverage's subprocess hooks), with the venv first on
    PATH and pip's cache and version check off."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTHON", "PYTEST", "COV_", "COVERAGE", "VIRTUAL_ENV"))
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["PIP_NO_CACHE_DIR"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _check(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what} exited with {result.returncode}:\n{result.stdout}"
    return result.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo project, its venv made and everything installed in it."""
    work = tmp_path_factory.mktemp("reuse")
    root = work / "fanout-demo"
    for name, text in DEMO_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
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
        "python", "-m", "pip", "install", str(checkout), str(root), "loky", timeout=INSTALL_TIMEOUT
    )
    _check(installed, "pip install")
    return project


def _summary(output: str) -> str:
    """pytest's last line, e.g. ``== 12 passed in 1.23s ==`` (empty if there is no output)."""
    lines = output.strip().splitlines()
    return lines[-1] if lines else ""


def test_pytest_futures_is_installed_as_a_plain_package(demo: Demo) -> None:
    where = demo.run(
        "python", "-c", "import pytest_futures_plugin, executor_impl; print(executor_impl.__file__)"
    )
    location = Path(_check(where, "import executor_impl").strip())
    assert demo.bin.parent in location.parents, f"imported from {location}, not the venv"
    assert "site-packages" in location.parts


def test_the_demo_tests_pass_on_every_builtin_backend(demo: Demo) -> None:
    result = demo.run("pytest", "--executor=all")
    output = _check(result, "pytest --executor=all")

    assert re.search(
        rf"^pytest-futures \S+: executors {BUILTINS}; seed \d+ ", output, re.MULTILINE
    ), output
    assert re.fullmatch(rf"=+ {4 * DEMO_TESTS} passed in .*", _summary(output)), output


def test_the_demo_tests_pass_on_loky(demo: Demo) -> None:
    result = demo.run("pytest", "--executor=loky:ProcessPoolExecutor")
    summary = _summary(result.stdout)
    output = _check(result, "pytest --executor=loky:ProcessPoolExecutor")

    assert re.search(
        r"^pytest-futures \S+: executors loky:ProcessPoolExecutor; seed", output, re.MULTILINE
    ), output
    assert re.fullmatch(rf"=+ {DEMO_TESTS} passed in .*", summary), output


def test_the_shipped_specs_run_from_the_project(demo: Demo) -> None:
    result = demo.run("pytest", "--futures-specs", "--executor=stdlib-thread")
    output = _check(result, "pytest --futures-specs --executor=stdlib-thread")

    assert re.search(r"^=+ pytest-futures conformance =+$", output, re.MULTILINE), output
    summary = _summary(output)
    assert re.fullmatch(r"=+ \d+ passed(, \d+ (skipped|xfailed))* in .*", summary), output
