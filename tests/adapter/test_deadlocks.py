"""The deadlock watcher, seen from outside: a deadlock on real threads fails in seconds.

The deadlocks are the first seed tutorial's (the hang guard's tests run the same file with the
watcher off): two tasks waiting on each other's futures, and a task waiting on a future it
submitted to its own one-worker pool. Each inner run has pytest-timeout's bound far below the
hang guard's 120 s, so a run the watcher did not end fails with pytest-timeout's report
instead of ours; no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import pytest

from tests.adapter.test_guards import DEADLOCKS

BACKENDS = ["thread", "stdlib-thread"]
CYCLE = "test_two_tasks_wait_on_each_other"
STARVATION = "test_a_task_waits_on_a_future_it_submitted_to_its_own_pool"

RUNNING_IN_WAIT_ON = (
    "  * waits in Future.result() on <Future at 0x* state=running> (running in thread '*'), "
    "at *.py:* in wait_on"
)

INNER_TIMEOUT = "60"
"""pytest-timeout's bound on each inner test: half the hang guard's default, and far more than
the watcher's 2 to 3 polls of 0.2 s."""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # -p no:logging: a CRITICAL logged by a pool worker reaches stderr, whichever test it
    # comes after, instead of a captured-log section. No option: the watcher is on by default
    # on every Python.
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:logging",
        f"--timeout={INNER_TIMEOUT}",
        *args,
        timeout=240,
    )


def assert_clean(result: pytest.RunResult) -> None:
    """No pytest-timeout kill, no hang guard, no worker tracebacks after the recovery."""
    everything = result.stdout.str() + result.stderr.str()
    assert "from pytest-timeout" not in everything, (
        "pytest-timeout stopped the run: the watcher did not"
    )
    assert "FuturesHangError" not in everything, "the hang guard fired: the watcher did not"
    assert "InvalidStateError" not in everything
    assert "Exception in worker" not in everything


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_tasks_waiting_on_each_other_fail_with_the_cycle(
    pytester: pytest.Pytester, backend: str
) -> None:
    path = pytester.makepyfile(DEADLOCKS)
    result = run(pytester, f"--executor={backend}", f"{path.name}::{CYCLE}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*FuturesDeadlockError: Deadlock on real threads: *(found by pytest-futures' "
                f"deadlock watcher * s into the test; backend: {backend})."
            ),
            "Wait-for graph:",
            (
                "  MainThread waits in Future.result() on <Future at 0x* state=running> "
                "(running in thread '*'), at *.py:* in test_two_tasks_wait_on_each_other"
            ),
            RUNNING_IN_WAIT_ON,
            RUNNING_IN_WAIT_ON,
            "Cycle: * -> * -> *",
            "The deadlocked waits were released*",
        ]
    )
    assert_clean(result)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pool_starved_by_a_task_waiting_on_its_own_queue_fails(
    pytester: pytest.Pytester, backend: str
) -> None:
    path = pytester.makepyfile(DEADLOCKS)
    result = run(pytester, f"--executor={backend}", f"{path.name}::{STARVATION}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FuturesDeadlockError: Deadlock on real threads: *",
            "Wait-for graph:",
            "  MainThread waits in Future.result() on <Future at 0x* state=running> *",
            (
                "  * waits in Future.result() on <Future at 0x* state=pending> (queued in "
                "ThreadPoolExecutor(max_workers=1): no worker has started it), at *.py:* in "
                "wait_on_future"
            ),
            (
                "Starvation: ThreadPoolExecutor(max_workers=1): every worker (*) waits on "
                "futures queued in that same pool"
            ),
        ]
    )
    assert "Cycle:" not in result.stdout.str()
    assert_clean(result)


def test_the_report_has_no_frames_of_pytest_or_pluggy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEADLOCKS)
    result = run(pytester, "--executor=thread")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    # One report per test in the failures (the short summary repeats the message, the whole
    # of it where pytest runs on CI, so it is left out of the count).
    failures = out.split("short test summary info")[0]
    assert failures.count("FuturesDeadlockError: Deadlock on real threads") == 2
    for where in ("pluggy/", "_pytest/", "pytest_futures_plugin/", "contextlib.py"):
        assert where not in out, f"the report shows a frame of {where}"


USER_CODE = """
    import concurrent.futures
    import threading
    import pytest

    @pytest.mark.futures_leak_check  # guarded by pytest-futures, though it takes no fixture
    def test_the_tutorial_deadlock_in_a_pool_the_test_made_itself():
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)

        def wait_on_future():
            return executor.submit(pow, 5, 2).result()

        with executor:
            outer = executor.submit(wait_on_future)
            concurrent.futures.wait([outer])

    @pytest.mark.futures_executor(max_workers=1)
    def test_as_completed_in_a_task_on_its_own_queue(executor, futures_api):
        def fan_in():
            inner = [executor.submit(pow, 5, 2)]
            return [f.result() for f in futures_api.as_completed(inner)]

        executor.submit(fan_in).result()
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_deadlock_found_in_wait_or_as_completed_ends_too(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(USER_CODE)
    result = run(pytester, f"--executor={backend}")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*MainThread waits in wait() on 1 future: <Future at 0x* state=running> *",
            "*Starvation: ThreadPoolExecutor(max_workers=1)*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "* waits in as_completed() on 1 future: <Future at 0x* state=pending> (queued in *",
            "*Starvation: ThreadPoolExecutor(max_workers=1)*",
        ]
    )
    assert_clean(result)


WAITS_WITH_A_TIMEOUT = """
    import pytest

    @pytest.mark.futures_executor(max_workers=1)
    def test_result_with_a_timeout(executor, futures_api):
        def wait_on_future():
            try:
                return executor.submit(pow, 5, 2).result(timeout=2)
            except futures_api.TimeoutError:
                return "timed out"

        assert executor.submit(wait_on_future).result() == "timed out"

    @pytest.mark.futures_executor(max_workers=1)
    def test_wait_and_as_completed_with_a_timeout(executor, futures_api):
        def wait_on_futures():
            inner = executor.submit(pow, 5, 2)
            done, _ = futures_api.wait([inner], timeout=1)
            try:
                list(futures_api.as_completed([inner], timeout=1))
            except futures_api.TimeoutError:
                return len(done), "timed out"

        assert executor.submit(wait_on_futures).result() == (0, "timed out")
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wait_with_a_timeout_is_never_reported(pytester: pytest.Pytester, backend: str) -> None:
    """A starved pool whose worker waits with a timeout: the wait ends by itself."""
    pytester.makepyfile(WAITS_WITH_A_TIMEOUT)
    result = run(pytester, f"--executor={backend}")
    result.assert_outcomes(passed=2)
    assert "FuturesDeadlockError" not in result.stdout.str()
    assert_clean(result)


def test_the_watcher_can_be_turned_off_and_the_hang_guard_remains(
    pytester: pytest.Pytester,
) -> None:
    path = pytester.makepyfile(DEADLOCKS)
    result = run(
        pytester,
        "--executor=thread",
        f"{path.name}::{CYCLE}",
        "--futures-deadlock-watch=off",
        "--futures-hang-timeout=1",
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "FuturesDeadlockError" not in out
    assert "FuturesHangError" in out


@pytest.mark.parametrize(
    ("args", "source"),
    [
        (("--futures-deadlock-watch=maybe",), "--futures-deadlock-watch='maybe'"),
        (("-o", "futures_deadlock_watch=1"), "ini futures_deadlock_watch='1'"),
    ],
)
def test_a_bad_watch_setting_is_a_usage_error(
    pytester: pytest.Pytester, args: tuple[str, ...], source: str
) -> None:
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{source}: expected 'on' or 'off'*"])
