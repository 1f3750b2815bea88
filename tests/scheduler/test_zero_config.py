"""A project's own package, outside its tests, under the scheduler with no module list.

Black-box: pytester in a subprocess; the package ``lib`` is on the path as an installed one
would be, and named nowhere. Its modules bind ``sleep``/``monotonic`` with ``from time
import``, ``Event`` with ``from threading import``, make their queues, locks and threads
with ``queue.Queue()``/``threading.Lock()``/``threading.Thread()`` when called, and hold a
lock and an event made at import (before any run). Under ``virtual_clock`` every one of them
made during the test is controlled on every thread-based backend, and minutes of virtual time
pass with no real sleep (``real_sleeps.py`` fails a test that makes one); a task that waits on the event made before the run fails
the test at once, naming the event, the thread and the line; a failing run's schedule names
the source line of each scheduling point.
"""

from __future__ import annotations

import re

import pytest

from . import real_sleeps

REPORT_LIMIT = 5.0
"""Real seconds in which a task blocked on an object made before the run is reported (the
scheduler's own bound for a thread that makes no scheduling point is 10 s)."""

CLOCK = """
from time import monotonic, sleep
"""

FLAGS = """
import threading
from threading import Event

READY = Event()  # made at import: before any run
LOCK = threading.Lock()  # made at import: before any run
COUNT = [0]


def bump():
    with LOCK:  # never held across a scheduling point: works although not controlled
        COUNT[0] += 1


def wait_ready():
    return READY.wait()
"""

WORK = """
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

from .clock import monotonic, sleep
from .flags import Event, bump


def pipeline(n, executor=None):
    items = queue.Queue(maxsize=2)
    done = Event()
    results = []
    guard = threading.Lock()

    def produce():
        for i in range(n):
            sleep(10)
            items.put(i)
        items.put(None)

    def consume():
        while True:
            item = items.get()
            if item is None:
                break
            bump()
            with guard:
                sleep(1)  # a scheduling point under a lock made during the run
                results.append(item * item)
        done.set()

    pool = executor if executor is not None else ThreadPoolExecutor(max_workers=2)
    start = monotonic()
    futures = [pool.submit(produce), pool.submit(consume)]
    assert done.wait(timeout=3600)
    for future in futures:
        future.result()
    if executor is None:
        pool.shutdown()
    return results, monotonic() - start


def watchdog(seconds):
    fired = Event()
    stop = Event()

    def watch():
        if not stop.wait(timeout=seconds):
            fired.set()

    thread = threading.Thread(target=watch)
    thread.start()
    thread.join()
    return fired.is_set()
"""

TESTS = """
from lib.work import pipeline, watchdog


def test_a_pipeline_on_its_own_stdlib_pool(virtual_clock, executor):
    results, took = pipeline(6)
    assert results == [0, 1, 4, 9, 16, 25]
    assert took >= 60 and virtual_clock.elapsed() >= 60


def test_a_pipeline_on_the_executor(virtual_clock, executor):
    results, took = pipeline(30, executor)
    assert results == [n * n for n in range(30)]
    assert took >= 300


def test_a_thread_of_its_own_times_out_in_virtual_time(virtual_clock, executor):
    assert watchdog(600) is True
    assert virtual_clock.elapsed() >= 600
"""


def project(pytester: pytest.Pytester) -> None:
    lib = pytester.mkpydir("lib")
    for name, text in (("clock", CLOCK), ("flags", FLAGS), ("work", WORK)):
        lib.joinpath(f"{name}.py").write_text(text)
    pytester.makeini("[pytest]\npythonpath = .\n")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


@pytest.mark.parametrize("backend", ["thread", "stdlib-thread", "deterministic"])
def test_a_packages_own_threading_and_time_run_in_virtual_time_with_no_module_list(
    pytester: pytest.Pytester, backend: str
) -> None:
    project(pytester)
    pytester.makepyfile(test_lib=TESTS, real_sleeps=real_sleeps.SOURCE)
    result = run(pytester, "-p", real_sleeps.PLUGIN_NAME, f"--executor={backend}")
    result.assert_outcomes(passed=3)


IN_REAL_TIME = """
from lib.work import pipeline


def test_a_pipeline_without_the_clock():
    assert pipeline(3)[0] == [0, 1, 4]
"""


def test_the_check_fails_a_test_whose_sleeps_are_real(pytester: pytest.Pytester) -> None:
    # What the check above sees with virtual time off: the package's sleeps, real, fail the
    # test that made them, named with their source line (and are not slept).
    project(pytester)
    pytester.makepyfile(test_real=IN_REAL_TIME, real_sleeps=real_sleeps.SOURCE)
    result = run(pytester, "-p", real_sleeps.PLUGIN_NAME)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*real sleeps, where virtual time was expected: time.sleep(10) at *work.py:*"]
    )


BLOCKED_ON_AN_OLD_EVENT = """
import time
from concurrent.futures import ThreadPoolExecutor

from lib import flags


def announce():
    time.sleep(5)
    flags.READY.set()


def test_a_task_waits_on_an_event_made_before_the_run(virtual_clock):
    with ThreadPoolExecutor(max_workers=2) as pool:
        waiter = pool.submit(flags.wait_ready)
        pool.submit(announce)
        waiter.result()
"""


def test_a_task_blocked_on_an_object_made_before_the_run_is_named_at_once(
    pytester: pytest.Pytester,
) -> None:
    project(pytester)
    pytester.makepyfile(test_old_event=BLOCKED_ON_AN_OLD_EVENT)
    result = run(pytester, "--durations=0", "--durations-min=0")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*UncontrolledBlockingError: thread 'ThreadPoolExecutor-*' (T*) is blocked at "
                "flags.py:16 (wait_ready) on the module-level `READY` of lib.flags "
                "(a threading.Event) that the scheduler does not control*"
            )
        ]
    )
    assert "ran for 10" not in result.stdout.str()
    took = re.search(r"^([0-9.]+)s call ", result.stdout.str(), re.M)
    assert took is not None, result.stdout.str()
    assert float(took.group(1)) < REPORT_LIMIT, f"reported after {took.group(1)} s"


FAILS_AFTER_A_SCHEDULE = """
import threading
from concurrent.futures import ThreadPoolExecutor


def test_fails_after_its_threads_ran(scheduler):
    lock = threading.Lock()
    total = []

    def work(n):
        with lock:
            total.append(n)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(work, range(3)))
    assert total == [], "fails on purpose"
"""


@pytest.mark.parametrize("policy", ["random", "pct", "fifo"])
def test_a_failing_runs_schedule_names_the_source_line_of_each_point(
    pytester: pytest.Pytester, policy: str
) -> None:
    pytester.makepyfile(test_schedule=FAILS_AFTER_A_SCHEDULE)
    result = run(pytester, f"--futures-policy={policy}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    section = out[out.index("pytest-futures schedule") :]
    result.stdout.fnmatch_lines(
        [
            "*pytest-futures schedule*",
            "* T0 (MainThread): * at test_schedule.py:1? (test_fails_after_its_threads_ran)",
        ]
    )
    points = re.findall(r"^\s+\d+ T\d+ \(.*?\): (.*)$", section, re.M)
    assert points, section
    assert all(" at " in point for point in points), section
