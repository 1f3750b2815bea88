"""A project's own code on the stdlib's thread pool, tested under the virtual clock with no
module list: its package uses ``concurrent.futures.ThreadPoolExecutor``, ``wait``,
``as_completed``, ``time.sleep`` and a retry with a timeout, its tests take ``virtual_clock``
and ``executor``, and minutes of virtual time pass with no real sleep on every thread-based
backend (``real_sleeps.py`` fails a test that makes one). Black-box: pytester in a subprocess,
the package on the path as an installed one would be (not the test's module, not named
anywhere)."""

from __future__ import annotations

import pytest

from . import real_sleeps
from .retrying import SOURCE

PACKAGE = """
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait

from retrying import retry

FETCH_SECONDS = 60.0


def fetch(source):
    time.sleep(FETCH_SECONDS)  # a slow service
    return source.upper()


def fetch_all(sources, executor=None):
    pool = executor if executor is not None else ThreadPoolExecutor(max_workers=2)
    try:
        futures = [pool.submit(fetch, source) for source in sources]
        return sorted(future.result() for future in as_completed(futures))
    finally:
        if executor is None:
            pool.shutdown()


def fastest(executor, delays):
    futures = [executor.submit(time.sleep, delay) for delay in delays]
    done, _ = wait(futures, return_when=FIRST_COMPLETED)
    return len(done)


def fetch_with_retry(executor, source, *, attempt_timeout, timeout):
    return retry(
        lambda: executor.submit(fetch, source).result(timeout=attempt_timeout), timeout=timeout
    )
"""

TESTS = """
import pytest

from fetcher import fetch_all, fetch_with_retry, fastest


def test_fetch_all_through_the_executor(virtual_clock, executor):
    assert fetch_all(["a", "b", "c"], executor) == ["A", "B", "C"]
    assert virtual_clock.elapsed() >= 60


def test_fetch_all_on_its_own_stdlib_pool(virtual_clock):
    assert fetch_all(["a", "b", "c", "d"]) == ["A", "B", "C", "D"]
    assert virtual_clock.elapsed() >= 120  # two workers, four minute-long fetches


def test_wait_returns_at_the_first_completed(virtual_clock, executor):
    assert fastest(executor, [300, 5, 600]) == 1
    assert 5 <= virtual_clock.elapsed() < 300


def test_the_retry_succeeds_once_an_attempt_has_time(virtual_clock, executor):
    assert fetch_with_retry(executor, "x", attempt_timeout=90, timeout=600) == "X"
    assert virtual_clock.elapsed() >= 60


def test_the_retry_gives_up_after_minutes(virtual_clock, executor):
    with pytest.raises(TimeoutError, match="gave up after 300"):
        fetch_with_retry(executor, "x", attempt_timeout=30, timeout=300)
    assert virtual_clock.elapsed() >= 240
"""


@pytest.mark.parametrize("backend", ["thread", "stdlib-thread", "deterministic"])
def test_a_projects_stdlib_pool_code_runs_in_virtual_time_with_no_module_list(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.mkpydir("fetcher").joinpath("__init__.py").write_text(PACKAGE)
    pytester.makepyfile(test_fetcher=TESTS, retrying=SOURCE, real_sleeps=real_sleeps.SOURCE)
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        real_sleeps.PLUGIN_NAME,
        f"--executor={backend}",
        timeout=240,
    )
    result.assert_outcomes(passed=5)
