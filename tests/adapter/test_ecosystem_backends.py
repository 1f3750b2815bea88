"""The ecosystem's executors as ``--executor`` backends (pytest_futures_plugin/ecosystem.py),
seen from outside: each test writes a small test file and runs pytest on it in a subprocess.

A backend whose package is not installed is skipped here; the spec runs on each are the nox
session ``ecosystem``, not this suite.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_futures_plugin import ecosystem

USES_THE_BACKEND = """
    import dataclasses

    from pytest_futures_plugin import backends, ecosystem
    from pytest_futures_plugin.guards import LeakCheck

    NAME = {name!r}
    BOUND = 60.0

    def test_the_executor_fixture_runs_calls(executor, futures_api, futures_backend):
        # The executor fixture's leak check fails this test if the backend leaves a thread
        # or a process behind after the fixture shut the executor down.
        assert futures_backend.name == NAME
        future = executor.submit(pow, 2, 10)
        assert future.result(timeout=BOUND) == 1024
        assert futures_api.wait([future], timeout=BOUND).done == {{future}}
        assert list(executor.map(abs, [-1, -2], timeout=BOUND)) == [1, 2]

    def test_the_probe_finds_the_declared_capabilities(futures_backend):
        declared = dataclasses.asdict(ecosystem.spec(NAME).declared)
        probed = dataclasses.asdict(futures_backend.capabilities)
        assert {{k: probed[k] for k in declared if k in probed}} == {{
            k: v for k, v in declared.items() if k in probed
        }}

    def test_shutdown_leaves_no_cluster_thread_or_process():
        backend = backends.lookup(NAME)
        # A first executor starts what lives as long as the interpreter (dask's offload
        # thread, multiprocessing's resource tracker); the second must leave nothing.
        warm = backend.make(max_workers=2)
        assert warm.submit(pow, 2, 3).result(timeout=BOUND) == 8
        warm.shutdown(wait=True)
        # Threads and processes exit asynchronously after shutdown returns: the check gives
        # them BOUND seconds, then names each one still running.
        with LeakCheck(grace=BOUND) as leaks:
            executor = backend.make(max_workers=2)
            assert executor.submit(pow, 2, 3).result(timeout=BOUND) == 8
            executor.shutdown(wait=True)
        assert not leaks.problems, f"{{NAME}} left: {{leaks.problems}}"
        cluster = getattr(executor, "cluster", None)
        if cluster is not None:
            assert cluster.status.name == "closed"
            assert executor._client.status == "closed"
"""


def installed(name: str) -> bool:
    return ecosystem.spec(name).available()


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=280)


@pytest.mark.slow
@pytest.mark.parametrize("name", ecosystem.NAMES)
def test_each_backend_is_made_used_and_cleaned_up(pytester: pytest.Pytester, name: str) -> None:
    if not installed(name):
        pytest.skip(f"{ecosystem.spec(name).package} is not installed")
    pytester.makepyfile(USES_THE_BACKEND.format(name=name))
    result = run(pytester, "-v", f"--executor={name}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"*test_the_executor_fixture_runs_calls?{name}? PASSED*"])


def test_the_ecosystem_names_are_valid_values(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(executor): pass")
    result = run(pytester, "--executor=no-such-backend")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no-such-backend*"])
    for name in ecosystem.NAMES:
        assert name in result.stderr.str()


@pytest.mark.parametrize(
    ("name", "package"),
    [("loky", "loky"), ("futurist-sync", "futurist"), ("dask-process", "distributed")],
)
def test_a_missing_package_is_a_usage_error_naming_the_backend_and_the_extra(
    pytester: pytest.Pytester, name: str, package: str
) -> None:
    # The rootdir's conftest runs before the plugin resolves --executor; a None entry in
    # sys.modules is how Python spells "this module cannot be imported".
    pytester.makeconftest(f"import sys\nsys.modules[{package!r}] = None\n")
    pytester.makepyfile("def test_nothing(executor): pass")
    result = run(pytester, f"--executor={name}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--executor={name}: needs the {package!r} package*pytest-futures[[]{package}[]]*"]
    )


def test_the_packages_are_imported_only_when_their_backend_is_selected() -> None:
    code = (
        "import sys\n"
        "from pytest_futures_plugin import backends\n"
        "backends.valid_values(); backends.resolve(['thread'])\n"
        "print(sorted({'loky', 'futurist', 'distributed', 'dask'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
