"""``--executor=deterministic`` and the ``scheduler``/``virtual_clock`` fixtures, from outside.

The first seed tutorial's two deadlocks (the same test file as the hang guard's tests) are
reported under the scheduler as a ``DeadlockError`` with the wait-for graph, at once, with
the hang guard's bound far away; a failure prints its replay command and its schedule, and the
same seed prints the same schedule.
"""

from __future__ import annotations

import re

import pytest

from tests.adapter.test_guards import DEADLOCKS


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


@pytest.mark.parametrize(
    "backend", ["deterministic", "deterministic:concurrent.futures:ThreadPoolExecutor"]
)
def test_the_seed_deadlocks_are_reported_with_their_wait_for_graph(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(DEADLOCKS)
    result = run(pytester, f"--executor={backend}", "--futures-hang-timeout=120")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "FuturesHangError" not in out, "the hang guard fired: the scheduler did not report"
    result.stdout.fnmatch_lines(
        [
            "*DeadlockError: Deadlock: every managed thread is blocked and no timeout is pending*",
            "*Wait-for graph:",
            (
                "*MainThread waits in Future.result() on <Future at 0x* state=running> "
                "(running in thread '*')"
            ),
            "*waits in Future.result() on <Future at 0x* state=running> (running in thread '*')",
            "*waits in Future.result() on <Future at 0x* state=running> (running in thread '*')",
            "*Cycle: * -> * -> *",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*waits in Future.result() on <Future at 0x* state=pending> (queued: no worker*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*pytest-futures replay*",
            f"pytest *test_two_tasks_wait_on_each_other* --executor={backend} --futures-seed=*",
        ]
    )
    result.stdout.fnmatch_lines(["*pytest-futures schedule*", "*decisions (Scripted(...)*"])


def test_the_same_seed_prints_the_same_schedule(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEADLOCKS)
    schedules = []
    for _ in range(2):
        result = run(pytester, "--executor=deterministic", "--futures-seed=7", "-k", "each_other")
        result.assert_outcomes(failed=1)
        decisions = re.findall(
            r"decisions \(Scripted\(\.\.\.\) replays them\): (.*)", result.stdout.str()
        )
        assert decisions, result.stdout.str()
        schedules.append(decisions)
    assert schedules[0] == schedules[1]


def test_a_process_pool_cannot_run_under_the_scheduler(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(executor):\n    executor.submit(abs, 1).result()\n")
    result = run(pytester, "--executor=deterministic:concurrent.futures:ProcessPoolExecutor")
    result.stdout.fnmatch_lines(
        ["*its tasks run in other processes; the deterministic scheduler controls the threads*"]
    )
    assert result.ret != 0


RETRY = '''
    import time
    import pytest

    def retry(call, *, timeout, first_delay=1.0):
        """Call until it succeeds, doubling the pause after each failure; give up after
        *timeout* seconds with TimeoutError."""
        deadline = time.monotonic() + timeout
        delay = first_delay
        while True:
            try:
                return call()
            except ConnectionError:
                if time.monotonic() + delay > deadline:
                    raise TimeoutError(f"gave up after {timeout}s") from None
                time.sleep(delay)
                delay *= 2

    def test_retry_gives_up_after_its_timeout(virtual_clock):
        attempts = []

        def unreachable():
            attempts.append(virtual_clock.elapsed())
            raise ConnectionError

        with pytest.raises(TimeoutError):
            retry(unreachable, timeout=60)
        assert attempts == [0, 1, 3, 7, 15, 31]  # virtual seconds: the test takes none

    def test_retry_returns_once_the_service_is_back(scheduler, virtual_clock):
        def back_after_ten_seconds():
            if virtual_clock.elapsed() < 10:
                raise ConnectionError
            return "ok"

        assert retry(back_after_ten_seconds, timeout=60) == "ok"
        assert virtual_clock.elapsed() == 15  # 1 + 2 + 4 + 8
        assert scheduler.stats()["clock_jumps"] == 4
'''


def test_a_retry_loop_runs_in_virtual_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RETRY)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2)


FAN_OUT = '''
    from concurrent.futures import ThreadPoolExecutor
    import pytest
    from pytest_futures_plugin.scheduler import DeadlockError

    def fan_out(pool, items):
        """Each item's task submits its children to the same pool and waits for them."""
        def handle(item):
            children = [pool.submit(str, child) for child in range(item)]
            return [child.result() for child in children]
        return [f.result() for f in [pool.submit(handle, item) for item in items]]

    # FIFO: the test's thread submits both parents before any worker runs, so both workers
    # take a parent (under a random policy, a worker may run the first parent's children
    # before the second parent is submitted, and it all finishes).
    @pytest.mark.futures_scheduler(
        policy="fifo", modules=["concurrent.futures.thread", "concurrent.futures._base"]
    )
    def test_fan_out_deadlocks_once_the_pool_is_full_of_waiting_parents(scheduler):
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert fan_out(pool, [1]) == [["0"]]  # one parent: a worker is free for its child
            with pytest.raises(DeadlockError, match="queued: no worker has started it"):
                fan_out(pool, [2, 2])  # two parents hold both workers, waiting
'''


def test_a_fan_out_that_deadlocks_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAN_OUT)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=1)
