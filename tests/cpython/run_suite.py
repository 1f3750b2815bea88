"""Run this interpreter's own concurrent.futures test suite against executor_impl.

CPython ships its tests for ``concurrent.futures`` in the ``test`` package (3.9-3.11: one
module ``test.test_concurrent_futures``; 3.12+: a package of that name).  This script
imports them *from the interpreter's installation*, after pointing the public names of
``concurrent.futures`` at executor_impl, and runs the tests of the areas executor_impl
implements.  Nothing is copied from CPython: we execute its suite, as a conformance check.

Usage: python tests/cpython/run_suite.py [--list] [--side=thread,process]
Exit status is unittest's; tests that only inspect the stdlib's private internals are
skipped with the reason recorded in EXCLUDED below.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures._base
import concurrent.futures.process
import concurrent.futures.thread
import faulthandler
import importlib
import sys
import unittest

import executor_impl

# Tests that read or patch private attributes of the stdlib's implementation (not public
# behaviour).  Each entry: test id suffix -> why it does not apply to executor_impl.
EXCLUDED: dict[str, str] = {
    "FutureTests.test_exception_with_success": (
        "completes the future by assigning _state/_exception and calling "
        "_condition.notify_all() itself, bypassing the Future API"
    ),
    "test_python_finalization_error": (
        "makes the stdlib's *second* internal thread (its queue feeder) fail to start; "
        "executor_impl's process pool starts one thread, and a failure to start it gives "
        "BrokenProcessPool (tests/executor_impl covers that)"
    ),
    # executor_impl pickles a call in submit(), so a call that cannot be pickled fails its
    # future at once and starts no worker; these tests submit such calls (a local function,
    # a Semaphore's bound method) and count the workers the stdlib starts regardless.
    "test_processes_terminate": "counts workers started for calls that cannot be pickled",
    "test_saturation": "counts workers started for calls that cannot be pickled",
    "test_del_shutdown": "reads the stdlib's private _call_queue and _executor_manager_thread",
    "test_shutdown_deadlock_pickle": "reads the stdlib's private _executor_manager_thread",
    # executor_impl fails only the call whose task (in the worker) or result (in the parent)
    # cannot be unpickled, with that error or the SystemExit raised while unpickling; the
    # stdlib breaks the whole pool.  tests/executor_impl checks ours.
    "test_exit_at_task_unpickle": "one bad call fails its own future, not the pool",
    "test_error_at_task_unpickle": "one bad call fails its own future, not the pool",
    "test_error_during_result_unpickle_in_result_handler": "one bad result fails its own future",
    "test_exit_during_result_unpickle_in_result_handler": "one bad result fails its own future",
    "test_shutdown_no_wait": "reads the stdlib's private _call_queue and _executor_manager_thread",
}

AREAS = (
    "test_future",
    "test_wait",
    "test_as_completed",
    "test_thread_pool",
    "test_process_pool",
    "test_shutdown",
    "test_init",
    "test_deadlock",
)


def patch_stdlib_names() -> None:
    """Point the names the suite uses (module attributes, read at call time) at ours."""
    for module in (concurrent.futures, concurrent.futures._base):
        for name in ("Future", "wait", "as_completed", "Executor"):
            setattr(module, name, getattr(executor_impl, name))
    for module in (concurrent.futures, concurrent.futures.thread):
        setattr(module, "ThreadPoolExecutor", executor_impl.ThreadPoolExecutor)  # noqa: B010
    for module in (concurrent.futures, concurrent.futures.process):
        setattr(module, "ProcessPoolExecutor", executor_impl.ProcessPoolExecutor)  # noqa: B010


def side_of(test: unittest.TestCase) -> str:
    """The side a test belongs to: "process" for process pools, "thread" for the rest."""
    name = type(test).__name__
    process = any(word in name for word in ("Process", "Fork", "Spawn", "Deadlock"))
    return "process" if process else "thread"


SIDES: tuple[str, ...] = ("thread", "process")


def iter_tests(suite: unittest.TestSuite):  # type: ignore[no-untyped-def]
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


def load() -> unittest.TestSuite:
    loader = unittest.TestLoader()
    try:
        package = importlib.import_module("test.test_concurrent_futures")
    except ImportError as exc:  # pragma: no cover - interpreter without its test suite
        raise SystemExit(f"skip: this interpreter has no test suite ({exc})") from exc
    if hasattr(package, "__path__"):
        modules = [importlib.import_module(f"test.test_concurrent_futures.{a}") for a in AREAS]
    else:
        modules = [package]
    suite = unittest.TestSuite()
    for module in modules:
        for test in iter_tests(loader.loadTestsFromModule(module)):
            if side_of(test) not in SIDES:
                continue
            reason = next((why for key, why in EXCLUDED.items() if test.id().endswith(key)), None)
            if reason is not None:
                setattr(
                    test,
                    test._testMethodName,
                    unittest.skip(reason)(getattr(test, test._testMethodName)),
                )
            suite.addTest(test)
    return suite


class _BoundedResult(unittest.TextTestResult):
    """Turns a hung test into a crash that names it and dumps every thread's stack."""

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self.stream.write(f"\n{test.id()} ... ")
        faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True)

    def stopTest(self, test: unittest.TestCase) -> None:
        # Stay armed between tests too: module and class teardowns can hang as well.
        faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True)
        super().stopTest(test)


TEST_TIMEOUT = 120.0


def main() -> int:
    global SIDES
    for arg in sys.argv[1:]:
        if arg.startswith("--side="):
            SIDES = tuple(arg.split("=", 1)[1].split(","))
    patch_stdlib_names()
    suite = load()
    if "--list" in sys.argv:
        for test in iter_tests(suite):
            print(test.id())
        return 0
    # typeshed wants a callable of (stream, descriptions, verbosity); our class is one.
    runner = unittest.TextTestRunner(verbosity=1, resultclass=_BoundedResult)  # type: ignore[arg-type]
    result = runner.run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
