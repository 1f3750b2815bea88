"""The ``--executor`` option, the backend axis and the executor fixtures, seen from outside:
each test writes a small test file and runs pytest on it in a subprocess, as a user would."""

from __future__ import annotations

import re
import sys
import textwrap

import pytest

BUILTINS = ["thread", "process", "stdlib-thread", "stdlib-process"]

USES_EXECUTOR = """
    import os

    def test_runs(executor, futures_api, executor_backend):
        future = executor.submit(pow, 2, 10)
        assert future.result(timeout=30) == 1024
        assert futures_api.wait([future], timeout=30).done == {future}

    def test_plain():
        pass
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in a subprocess with the plugin loaded from its entry point."""
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


def ids_of(result: pytest.RunResult, name: str) -> list[str]:
    """The parameter ids of the test *name* that ran, in order."""
    return re.findall(rf"::{name}\[(.+?)\] PASSED", result.stdout.str())


def test_the_default_backend_is_thread_and_plain_tests_run_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_EXECUTOR)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2)
    assert ids_of(result, "test_runs") == ["thread"]
    result.stdout.fnmatch_lines(["*::test_plain PASSED*"])


def test_all_selects_every_builtin_backend_in_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_EXECUTOR)
    result = run(pytester, "-v", "--executor=all")
    result.assert_outcomes(passed=5)
    assert ids_of(result, "test_runs") == BUILTINS


def test_values_are_comma_separated_repeatable_and_deduplicated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_EXECUTOR)
    result = run(pytester, "-v", "--executor", "stdlib-process,thread", "--executor", "thread")
    assert ids_of(result, "test_runs") == ["stdlib-process", "thread"]


def test_the_header_names_the_backends_and_the_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_EXECUTOR)
    result = run(pytester, "--executor=thread,stdlib-thread", "--futures-seed=77")
    result.stdout.fnmatch_lines(
        ["pytest-futures *: executors thread, stdlib-thread; seed 77 (--futures-seed=77*"]
    )


def test_module_attr_names_any_executor_factory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import concurrent.futures

        def test_type(executor, futures_api):
            assert type(executor) is concurrent.futures.ThreadPoolExecutor
            assert futures_api.wait is concurrent.futures.wait
        """
    )
    result = run(pytester, "-v", "--executor=concurrent.futures:ThreadPoolExecutor")
    result.assert_outcomes(passed=1)
    assert ids_of(result, "test_type") == ["concurrent.futures:ThreadPoolExecutor"]


def test_module_attr_takes_the_api_from_its_module_with_the_stdlib_as_fallback(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        mypool="""
        import concurrent.futures

        def wait(fs, timeout=None, return_when="ALL_COMPLETED"):
            return concurrent.futures.wait(fs, timeout, return_when)

        def make_pool(max_workers=None):
            return concurrent.futures.ThreadPoolExecutor(max_workers)
        """,
        test_api="""
        import concurrent.futures
        import mypool

        def test_api(futures_api, futures_backend):
            assert futures_api.wait is mypool.wait
            assert futures_api.as_completed is concurrent.futures.as_completed
            assert futures_api.origins["wait"] == "mypool"
            assert futures_backend.capabilities.processes is False
        """,
    )
    run(pytester, "--executor=mypool:make_pool").assert_outcomes(passed=1)


def test_the_builtin_apis_are_executor_impl_and_the_stdlib(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import concurrent.futures, executor_impl

        EXPECTED = {
            "thread": (executor_impl, False),
            "process": (executor_impl, True),
            "stdlib-thread": (concurrent.futures, False),
            "stdlib-process": (concurrent.futures, True),
        }

        def test_api(executor_backend, futures_api, futures_backend):
            module, processes = EXPECTED[executor_backend]
            assert futures_api.wait is module.wait
            assert futures_api.Future is module.Future
            assert futures_api.BrokenProcessPool is concurrent.futures.process.BrokenProcessPool
            assert futures_backend.capabilities.processes is processes
            assert futures_backend.capabilities.cancel_futures
        """
    )
    run(pytester, "--executor=all").assert_outcomes(passed=4)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "bogus",
            (
                "*--executor=bogus: unknown backend 'bogus'; valid values are thread, process,"
                " stdlib-thread, stdlib-process, deterministic, all*MODULE:ATTR*"
            ),
        ),
        ("thread,,process", "*--executor=thread,,process: empty backend name; valid values*"),
        (
            "no_such_module_xyz:Pool",
            (
                "*--executor=no_such_module_xyz:Pool: cannot import module"
                " 'no_such_module_xyz': ModuleNotFoundError: No module named 'no_such_module_xyz'*"
            ),
        ),
        (
            "concurrent.futures:NoSuchPool",
            "*module 'concurrent.futures' has no attribute 'NoSuchPool'*",
        ),
        ("concurrent.futures:ALL_COMPLETED", "*'ALL_COMPLETED' is a str, not an executor factory*"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_it(
    pytester: pytest.Pytester, value: str, message: str
) -> None:
    pytester.makepyfile(USES_EXECUTOR)
    result = run(pytester, f"--executor={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_an_import_error_inside_the_module_names_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(badpool="raise RuntimeError('badpool needs a licence key')")
    pytester.makepyfile(USES_EXECUTOR)
    result = run(pytester, "--executor=badpool:Pool")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*cannot import module 'badpool': RuntimeError: badpool needs a licence key*"]
    )


def test_the_command_line_beats_the_environment_which_beats_the_ini_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(USES_EXECUTOR)
    pytester.makeini("[pytest]\nfutures_executor = stdlib-thread\n")
    assert ids_of(run(pytester, "-v"), "test_runs") == ["stdlib-thread"]
    monkeypatch.setenv("PYTEST_FUTURES_EXECUTOR", "process")
    assert ids_of(run(pytester, "-v"), "test_runs") == ["process"]
    assert ids_of(run(pytester, "-v", "--executor=thread"), "test_runs") == ["thread"]
    monkeypatch.setenv("PYTEST_FUTURES_EXECUTOR", "nope")
    result = run(pytester, "-v")
    result.stderr.fnmatch_lines(
        ["*--executor=nope: unknown backend*(from PYTEST_FUTURES_EXECUTOR)"]
    )


def test_a_conftest_fixture_narrows_the_axis(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(params=["stdlib-thread"])
        def futures_backend_name(request):
            return request.param
        """
    )
    pytester.makepyfile(USES_EXECUTOR)
    assert ids_of(run(pytester, "-v", "--executor=all"), "test_runs") == ["stdlib-thread"]


def test_parametrize_narrows_the_axis_for_one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, concurrent.futures

        @pytest.mark.parametrize("futures_backend_name", ["stdlib-process"])
        def test_one(executor):
            assert isinstance(executor, concurrent.futures.ProcessPoolExecutor)

        def test_other(executor):
            pass
        """
    )
    result = run(pytester, "-v", "--executor=thread,stdlib-thread")
    assert ids_of(result, "test_one") == ["stdlib-process"]
    assert ids_of(result, "test_other") == ["thread", "stdlib-thread"]


def test_the_executor_is_shut_down_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        made = []

        def test_makes(executor):
            made.append(executor)

        def test_sees_them_shut_down():
            assert len(made) == 4
            for executor in made:
                with pytest.raises(RuntimeError):
                    executor.submit(print)
        """
    )
    run(pytester, "--executor=all").assert_outcomes(passed=5)


def test_the_marker_passes_arguments_to_the_executor(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, threading

        def name():
            return threading.current_thread().name

        @pytest.mark.futures_executor(max_workers=1, thread_name_prefix="Custom")
        @pytest.mark.parametrize("futures_backend_name", ["thread", "stdlib-thread"])
        def test_prefix(executor):
            assert executor.submit(name).result(timeout=30).startswith("Custom")
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_the_factory_makes_several_executors_and_closes_them_all(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        made = []

        def test_makes(executor_factory):
            made.extend(executor_factory(max_workers=n) for n in (1, 3))
            assert [f.result(timeout=30) for f in [e.submit(abs, -2) for e in made]] == [2, 2]

        def test_closed():
            for executor in made:
                with pytest.raises(RuntimeError):
                    executor.submit(print)
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_fixtures_are_listed_with_one_line_docstrings(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--fixtures")
    names = ("futures_backend_name", "executor_backend", "executor", "executor_factory")
    for name in (*names, "futures_api"):
        result.stdout.fnmatch_lines([f"{name}*", "    [A-Z]*"])


def test_a_registered_entry_point_is_a_backend(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = pytester.mkdir("site")
    (site / "thirdparty_pool.py").write_text(
        textwrap.dedent(
            """
            import concurrent.futures

            def make(max_workers=None, **kwargs):
                return concurrent.futures.ThreadPoolExecutor(max_workers, "ThirdParty", **kwargs)
            """
        )
    )
    info = site / "thirdparty_pool-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-pool\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[pytest_futures.backends]\nthirdparty = thirdparty_pool:make\n"
    )
    pytester.makepyfile(
        """
        import threading

        def test_it(executor, executor_backend):
            name = executor.submit(lambda: threading.current_thread().name).result(30)
            assert name.startswith("ThirdParty") == (executor_backend == "thirdparty")
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = run(pytester, "-v", "--executor=thirdparty,thread")
    assert ids_of(result, "test_it") == ["thirdparty", "thread"]
    result = run(pytester, "--executor=nope")
    result.stderr.fnmatch_lines(["*valid values are thread, *, all, thirdparty, MODULE:ATTR*"])


def test_each_test_has_its_own_stable_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_a(futures_seed):
            print("SEED a", futures_seed)

        def test_b(futures_seed):
            print("SEED b", futures_seed)
        """
    )

    def seeds(*args: str) -> dict[str, str]:
        result = run(pytester, "-s", "-p", "no:xdist", *args)
        return dict(re.findall(r"SEED (\w) (\d+)", result.stdout.str()))

    first = seeds("--futures-seed=5")
    assert first == seeds("--futures-seed=5")
    assert first["a"] != first["b"]
    assert seeds("--futures-seed=6") != first
    assert seeds("--futures-seed=5", "-k", "test_b")["b"] == first["b"]


def test_a_bad_seed_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--futures-seed=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--futures-seed=abc: expected an integer or 'random'*"])


def test_a_failure_prints_a_replay_command_that_reproduces_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import random

        def test_unlucky(executor, futures_seed):
            assert random.Random(futures_seed).random() < 0.0, "always fails"
        """
    )
    result = run(pytester, "--executor=thread,stdlib-thread")
    result.assert_outcomes(failed=2)
    commands = re.findall(r"^pytest .*--futures-seed=\d+$", result.stdout.str(), re.MULTILINE)
    assert len(commands) == 2
    replay = commands[1].split()[1:]
    rerun = run(pytester, *[word.strip("'") for word in replay])
    rerun.assert_outcomes(failed=1)
    assert "[stdlib-thread]" in rerun.stdout.str()


def test_xdist_runs_every_backend_with_the_seeds_of_a_serial_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pathlib

        def test_runs(executor, futures_seed, request):
            assert executor.submit(abs, -1).result(timeout=30) == 1
            out = pathlib.Path(request.config.rootpath, "seeds", request.node.name)
            out.write_text(str(futures_seed))
        """
    )
    seeds = pytester.mkdir("seeds")
    run(pytester, "-n", "2", "--executor=all", "--futures-seed=9").assert_outcomes(passed=4)
    parallel = {path.name: path.read_text() for path in seeds.iterdir()}
    for path in seeds.iterdir():
        path.unlink()
    run(pytester, "-p", "no:xdist", "--executor=all", "--futures-seed=9").assert_outcomes(passed=4)
    assert {path.name: path.read_text() for path in seeds.iterdir()} == parallel
    assert len(set(parallel.values())) == 4


def test_the_engine_imports_neither_pytest_nor_hypothesis(pytester: pytest.Pytester) -> None:
    result = pytester.run(
        sys.executable,
        "-c",
        "import sys, pytest_futures_plugin.backends as b; b.resolve(['all']); "
        "bad = {'pytest', 'hypothesis', '_pytest'} & set(sys.modules); "
        "print('IMPORTED', sorted(bad)); sys.exit(bool(bad))",
        timeout=60,
    )
    assert result.ret == 0, result.stdout.str()
