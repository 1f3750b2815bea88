"""``virtual_clock``/``scheduler`` taken together with ``executor``: the executor's threads are
managed on every thread-based backend (their sleeps are virtual, the test takes no real time),
and a process-based backend is skipped with the reason. Black-box: pytester in a subprocess."""

from __future__ import annotations

import pytest

from . import real_sleeps
from .retrying import SOURCE

POOL_TESTS = """
    import time
    from concurrent.futures import as_completed, wait

    def slow(n):
        time.sleep(3600)
        return n

    def test_a_pool_sleeps_in_virtual_time(virtual_clock, executor):
        futures = [executor.submit(slow, n) for n in range(3)]
        done, not_done = wait(futures)
        assert not not_done
        assert sorted(f.result() for f in as_completed(futures)) == [0, 1, 2]
        assert virtual_clock.elapsed() >= 3600

    def test_the_scheduler_alias_composes_too(scheduler, executor_factory):
        with executor_factory(max_workers=2) as pool:
            assert pool.submit(slow, 7).result() == 7
        assert scheduler.clock.elapsed() >= 3600
"""

RETRY_WITH_A_POOL = """
    import time

    import pytest

    from retrying import retry


    def test_retry_through_a_pool_gives_up_after_its_timeout(virtual_clock, executor):
        submitted = []

        def attempt():
            submitted.append(virtual_clock.elapsed())
            return executor.submit(time.sleep, 3600).result(timeout=5)

        with pytest.raises(TimeoutError):
            retry(attempt, timeout=120)
        # Each attempt waits 5 s for its result, then 1, 2, 4, ... s before the next one.
        assert submitted == pytest.approx([0, 6, 13, 22, 35, 56, 93], abs=0.01)
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-rs", *args, timeout=240
    )


@pytest.mark.parametrize("backend", ["thread", "stdlib-thread", "deterministic"])
def test_a_pool_under_the_virtual_clock_takes_no_real_time(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(
        test_pool=POOL_TESTS,
        test_retry=RETRY_WITH_A_POOL,
        retrying=SOURCE,
        real_sleeps=real_sleeps.SOURCE,
    )
    result = run(pytester, "-p", real_sleeps.PLUGIN_NAME, f"--executor={backend}")
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize("backend", ["process", "stdlib-process"])
def test_a_process_pool_under_the_virtual_clock_is_skipped_naming_why(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(test_pool=POOL_TESTS)
    result = run(pytester, f"--executor={backend}")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([f"*--executor={backend}: its tasks run in other processes*"])


PROCESS_POOLS = """
import concurrent.futures

import executor_impl


def stdlib_pool(**kwargs):
    return concurrent.futures.ProcessPoolExecutor(**kwargs)


def our_pool(**kwargs):
    return executor_impl.ProcessPoolExecutor(**kwargs)
"""


@pytest.mark.parametrize("factory", ["pools:stdlib_pool", "pools:our_pool"])
def test_a_process_based_module_attr_backend_is_probed_before_the_run(
    pytester: pytest.Pytester, factory: str
) -> None:
    # A factory function, not a class: nothing but the probe, run before the scheduler's run
    # starts, can tell that its tasks run in other processes.
    pytester.makepyfile(pools=PROCESS_POOLS, test_pool=POOL_TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = run(pytester, f"--executor={factory}")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([f"*--executor={factory}: its tasks run in other processes*"])
    deterministic = run(pytester, f"--executor=deterministic:{factory}")
    deterministic.assert_outcomes(errors=2)
    deterministic.stdout.fnmatch_lines(
        [f"*UsageError: --executor=deterministic:{factory}: its tasks run in other processes*"]
    )
