"""The hang guard and the leak check, seen from outside: a hung or leaky test fails and says why.

The two deadlocks are the ones of the first seed tutorial: two tasks waiting on each other's
futures, and a task waiting on a future it submitted to its own one-worker pool. On real
executors they are reported by the hang guard, with the futures each thread waits on.
"""

from __future__ import annotations

import pytest

DEADLOCKS = """
    import pytest
    from pytest_futures_plugin import tasks

    def wait_on(box, name, gate):
        gate.wait()
        return box[name].result()

    @pytest.mark.futures_executor(max_workers=2)
    def test_two_tasks_wait_on_each_other(executor, futures_controls):
        gate, box = futures_controls.gate(), {}
        box["a"] = executor.submit(wait_on, box, "b", gate)
        box["b"] = executor.submit(wait_on, box, "a", gate)
        gate.release()
        box["a"].result()

    @pytest.mark.futures_executor(max_workers=1)
    def test_a_task_waits_on_a_future_it_submitted_to_its_own_pool(executor):
        def wait_on_future():
            return executor.submit(pow, 5, 2).result()

        assert executor.submit(wait_on_future).result() == 25
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


@pytest.mark.parametrize("backend", ["thread", "stdlib-thread"])
def test_the_seed_deadlocks_are_reported_not_hung_on(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(DEADLOCKS)
    result = run(pytester, f"--executor={backend}", "--futures-hang-timeout=1")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert out.count("FuturesHangError") >= 2
    result.stdout.fnmatch_lines(
        [
            f"*backend: {backend}; test: *test_two_tasks_wait_on_each_other*",
            "*MainThread waits in Future.result() on <Future at 0x* state=running>*",
            "*waits in Future.result() on <Future at 0x* state=running>*",
        ]
    )
    result.stdout.fnmatch_lines(
        [f"*backend: {backend}; test: *test_a_task_waits_on_a_future_it_submitted*"]
    )
    # the queued pow(5, 2) never started: the one worker waits on it
    result.stdout.fnmatch_lines(["*waits in Future.result() on <Future at 0x* state=pending>*"])


def test_the_marker_sets_the_bound_and_zero_disables_the_guard(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading, pytest

        @pytest.mark.futures_hang_timeout(0.5)
        def test_marked(executor):
            threading.Event().wait(30)

        @pytest.mark.futures_hang_timeout(0)
        def test_disabled(executor):
            assert threading.Event().wait(1.5) is False
        """
    )
    result = run(pytester, "--futures-hang-timeout=1000")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*FuturesHangError*0.5*"])


def test_a_bad_bound_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--futures-hang-timeout=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--futures-hang-timeout='soon': expected a number of seconds*"])


def test_a_thread_left_running_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading, pytest

        stop = threading.Event()

        def test_leaks(executor):
            threading.Thread(target=stop.wait, name="left-behind").start()

        def test_after():
            stop.set()
        """
    )
    result = run(pytester, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*leak check*", "*left-behind*"])


def test_an_executor_the_test_made_itself_and_left_open_is_a_leak(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import concurrent.futures, pytest

        @pytest.mark.futures_leak_check
        def test_forgets_shutdown():
            pool = concurrent.futures.ThreadPoolExecutor(1, "Forgotten")
            pool.submit(concurrent.futures.Future().exception, 12)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*leak check*", "*Forgotten*"])
