"""ThreadPoolExecutor.shutdown() and interpreter exit (executor_impl/thread.py), side by side
with the stdlib's.

As documented: ``shutdown(wait=True, *, cancel_futures=False)`` refuses new work, optionally
cancels the queued work, and waits for the rest; it may be called again.  At interpreter exit
the queued work still runs and the workers are joined.  Done callbacks may use the pool.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

from ._helpers import (
    LONG_WAIT,
    BackgroundCall,
    FuturesAPI,
    broken_thread_pool_error,
    set_once_shut_down,
    stdlib_shutdown_leaves_cancelled_futures_unnotified,
    wait_for,
    workers,
    xfail_stdlib_if,
)

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator
    from concurrent.futures import Future


# ---------------------------------------------------------------------------------------------
# shutdown()


def test_submit_after_shutdown_raises_runtime_error(cf: FuturesAPI) -> None:
    pool = cf.ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    with pytest.raises(RuntimeError, match=r"^cannot schedule new futures after shutdown$"):
        pool.submit(int)


def test_shutdown_can_be_called_again(cf: FuturesAPI) -> None:
    pool = cf.ThreadPoolExecutor(max_workers=1)
    assert pool.submit(int, "3").result(timeout=LONG_WAIT) == 3
    pool.shutdown(wait=False)
    pool.shutdown(wait=True)
    pool.shutdown(wait=True, cancel_futures=True)
    with pool:
        pass


def test_shutdown_with_wait_waits_for_running_and_queued_tasks(
    cf: FuturesAPI, prefix: str, make_event: Callable[[], threading.Event]
) -> None:
    started, release = make_event(), make_event()

    def block() -> str:
        started.set()
        wait_for(release, "shutdown to be called")
        return "blocked"

    pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix=prefix)
    try:
        running = pool.submit(block)
        queued = [pool.submit(str, i) for i in range(3)]
        wait_for(started, "the blocking task to start")
        releaser = set_once_shut_down(pool, release)
    finally:
        pool.shutdown(wait=True)
    assert running.done(), "shutdown(wait=True) returned before the running task finished"
    assert all(f.done() for f in queued), "shutdown(wait=True) returned before queued tasks ran"
    assert [f.result() for f in [running, *queued]] == ["blocked", "0", "1", "2"]
    assert workers(prefix) == [], "a worker is alive after shutdown(wait=True)"
    releaser.outcome("the releasing thread to finish")


def test_shutdown_without_wait_returns_while_a_task_runs_and_queued_tasks_still_run(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    """CPython issue 12364: shutdown() alone does not drop queued work."""
    started, release = make_event(), make_event()

    def block() -> str:
        started.set()
        wait_for(release, "shutdown(wait=False) to return")
        return "blocked"

    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(block)
        queued = [pool.submit(str, i) for i in range(3)]
        wait_for(started, "the blocking task to start")
        BackgroundCall(lambda: pool.shutdown(wait=False)).outcome("shutdown(wait=False)")
        assert not running.done()
        release.set()
        assert [f.result(timeout=LONG_WAIT) for f in [running, *queued]] == [
            "blocked",
            "0",
            "1",
            "2",
        ]


def test_shutdown_does_not_hang_after_a_future_was_cancelled_just_before(
    cf: FuturesAPI,
) -> None:
    """gh-94440: a work item cancelled right before shutdown(wait=True)."""
    pool = cf.ThreadPoolExecutor(max_workers=1)
    pool.submit(int).result(timeout=LONG_WAIT)
    pool.submit(int).cancel()
    BackgroundCall(lambda: pool.shutdown(wait=True)).outcome("shutdown(wait=True) to return")


@pytest.fixture
def busy_pool_with_queue(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> Iterator[tuple[Any, Future[str], list[Future[str]], threading.Event, list[str]]]:
    """A one-worker pool running a blocked task, with three tasks queued behind it.

    Yields (pool, running future, queued futures, release event, calls that ran).
    """
    started, release = make_event(), make_event()
    ran: list[str] = []

    def block() -> str:
        started.set()
        wait_for(release, "the test to release the running task")
        return "finished"

    def record(name: str) -> str:
        ran.append(name)
        return name

    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(block)
        queued = [pool.submit(record, f"queued {i}") for i in range(3)]
        wait_for(started, "the blocking task to start")
        yield pool, running, queued, release, ran
        release.set()


def test_shutdown_cancel_futures_cancels_exactly_the_queued_tasks(
    busy_pool_with_queue: tuple[Any, Future[str], list[Future[str]], threading.Event, list[str]],
) -> None:
    pool, running, queued, release, ran = busy_pool_with_queue
    pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    assert running.running()
    assert not running.cancelled()
    release.set()
    assert running.result(timeout=LONG_WAIT) == "finished"
    pool.shutdown(wait=True)
    assert ran == []


def test_shutdown_cancel_futures_lets_wait_and_as_completed_see_the_cancelled_futures(
    cf: FuturesAPI,
    busy_pool_with_queue: tuple[Any, Future[str], list[Future[str]], threading.Event, list[str]],
    request: pytest.FixtureRequest,
) -> None:
    """Ours notifies the futures it cancels, as a worker reaching them would; the stdlib
    only calls cancel(), so wait() and as_completed() never count them as done."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_shutdown_leaves_cancelled_futures_unnotified(),
        "gh-109934/gh-136655: shutdown(cancel_futures=True) does not notify waiters",
    )
    pool, running, queued, _release, _ = busy_pool_with_queue
    pool.shutdown(wait=False, cancel_futures=True)
    assert cf.wait(queued, timeout=0) == (set(queued), set())
    assert set(cf.as_completed(queued, timeout=0)) == set(queued)
    assert cf.wait([running, *queued], timeout=0, return_when=cf.FIRST_COMPLETED).done == set(
        queued
    )


NOTIFICATION_BOUND = 2.0
"""Seconds a waiter may take to see futures that shutdown() cancelled. Notification is
immediate; the bound only limits how long the stdlib's xfail takes."""


@pytest.mark.parametrize("waiter", ["wait", "as_completed"])
def test_shutdown_cancel_futures_wakes_a_thread_waiting_on_the_queued_futures(
    cf: FuturesAPI,
    busy_pool_with_queue: tuple[Any, Future[str], list[Future[str]], threading.Event, list[str]],
    request: pytest.FixtureRequest,
    waiter: str,
) -> None:
    """Ours notifies the futures it cancels; with the stdlib the waiter hangs until its
    timeout (gh-109934, gh-136655)."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_shutdown_leaves_cancelled_futures_unnotified(),
        "gh-109934/gh-136655: shutdown(cancel_futures=True) does not notify waiters",
    )
    pool, _, queued, _, _ = busy_pool_with_queue

    def wait_for_queued() -> set[Future[str]]:
        if waiter == "wait":
            return cf.wait(queued, timeout=NOTIFICATION_BOUND).done
        return set(cf.as_completed(queued, timeout=NOTIFICATION_BOUND))

    waiting = BackgroundCall(wait_for_queued, name="test-waiter")
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiting.outcome(f"{waiter}() to return") == set(queued)


# ---------------------------------------------------------------------------------------------
# Done callbacks that use the pool


def test_a_done_callback_may_submit_to_the_pool_that_completed_its_future(
    cf: FuturesAPI,
) -> None:
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        chained: list[Future[int]] = []
        first = pool.submit(int, "1")
        first.add_done_callback(lambda f: chained.append(pool.submit(int, "2")))
        assert first.result(timeout=LONG_WAIT) == 1
        assert cf.wait(chained, timeout=LONG_WAIT).not_done == set()
        assert [f.result() for f in chained] == [2]


def test_a_done_callback_may_call_submit_while_shutdown_cancels_its_future(
    impl: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    """executor_impl only: it runs the callbacks of the futures that shutdown(cancel_futures=
    True) cancels after releasing the pool's lock, so submit() raises RuntimeError. The stdlib
    runs them under its non-reentrant ``_shutdown_lock``: such a callback deadlocks shutdown()
    (and would hang this test process, hence no stdlib run)."""
    started, release = make_event(), make_event()
    outcomes: list[str] = []

    def block() -> None:
        started.set()
        wait_for(release, "shutdown to return")

    def submit_again(future: Future[Any]) -> None:
        try:
            pool.submit(int)
        except RuntimeError as error:
            outcomes.append(str(error))

    with impl.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(block)
        queued = pool.submit(int)
        queued.add_done_callback(submit_again)
        wait_for(started, "the blocking task to start")
        BackgroundCall(lambda: pool.shutdown(wait=False, cancel_futures=True)).outcome(
            "shutdown(cancel_futures=True) to return"
        )
        release.set()
    assert outcomes == ["cannot schedule new futures after shutdown"]


def test_a_done_callback_may_call_submit_when_a_failing_initializer_breaks_its_future(
    impl: FuturesAPI, make_event: Callable[[], threading.Event], caplog: pytest.LogCaptureFixture
) -> None:
    """executor_impl only: the futures a broken initializer fails get their callbacks after
    the pool's lock is released. The stdlib sets their exception under ``_shutdown_lock``,
    so a callback calling submit() deadlocks the worker (hence no stdlib run)."""
    broken_thread_pool = broken_thread_pool_error(impl)
    all_submitted = make_event()
    outcomes: list[type[BaseException]] = []

    def initializer() -> None:
        wait_for(all_submitted, "the task to be submitted")
        raise ValueError("initializer failed on purpose")

    def submit_again(future: Future[Any]) -> None:
        try:
            pool.submit(int)
        except BaseException as error:  # the BrokenThreadPool expected, or anything else
            outcomes.append(type(error))

    caplog.set_level(logging.CRITICAL, logger="concurrent.futures")
    with impl.ThreadPoolExecutor(max_workers=1, initializer=initializer) as pool:
        future = pool.submit(int)
        future.add_done_callback(submit_again)
        all_submitted.set()
        with pytest.raises(broken_thread_pool):
            future.result(timeout=LONG_WAIT)
    assert outcomes == [broken_thread_pool]


# ---------------------------------------------------------------------------------------------
# At interpreter exit (each in a fresh interpreter)

REPO_ROOT = Path(__file__).resolve().parents[2]

EXIT_PROLOGUE = """
import threading
from {module} import ThreadPoolExecutor

started, release = threading.Event(), threading.Event()

def running():
    started.set()
    release.wait(10)
    print("running task finished", flush=True)

def queued():
    print("queued task finished", flush=True)

pool = ThreadPoolExecutor(max_workers=1)
pool.submit(running)
pool.submit(queued)
started.wait(10)
"""


def run_interpreter(cf: FuturesAPI, script: str) -> subprocess.CompletedProcess[str]:
    """Run *script* (``{module}`` replaced by cf's name) in a new interpreter that imports
    this checkout's executor_impl; fail if it does not exit within ``LONG_WAIT``."""
    path = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return subprocess.run(
        [sys.executable, "-c", script.format(module=cf.__name__)],
        capture_output=True,
        text=True,
        timeout=LONG_WAIT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
        check=False,
    )


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        ("release.set()", ["running task finished", "queued task finished"]),
        (
            "pool.shutdown(wait=False)\nrelease.set()",
            ["running task finished", "queued task finished"],
        ),
        (
            "pool.shutdown(wait=False, cancel_futures=True)\nrelease.set()",
            ["running task finished"],
        ),
    ],
    ids=["no shutdown", "shutdown(wait=False)", "shutdown(wait=False, cancel_futures=True)"],
)
def test_the_interpreter_exits_after_running_the_tasks_it_still_has(
    cf: FuturesAPI, ending: str, expected: list[str]
) -> None:
    """CPython's test_interpreter_shutdown, gh-83386 and test_cancel_futures_wait_false:
    workers are joined at exit, queued tasks run unless cancelled, nothing is printed to
    stderr, and exit does not hang."""
    process = run_interpreter(cf, EXIT_PROLOGUE + ending + "\n")
    assert (process.returncode, process.stderr) == (0, "")
    assert process.stdout.splitlines() == expected


def test_submit_from_an_atexit_handler_raises_runtime_error(cf: FuturesAPI) -> None:
    """atexit handlers run after the pools were told to exit."""
    script = """
import atexit
from {module} import ThreadPoolExecutor

@atexit.register
def submit_at_exit():
    try:
        pool.submit(int)
    except RuntimeError as error:
        print(error, flush=True)

pool = ThreadPoolExecutor(max_workers=1)
pool.submit(int).result(10)
"""
    process = run_interpreter(cf, script)
    assert (process.returncode, process.stderr) == (0, "")
    # The stdlib says "... after shutdown" when a worker that saw the exit flagged the pool
    # first, "... after interpreter shutdown" otherwise.
    [message] = process.stdout.splitlines()
    assert re.fullmatch("cannot schedule new futures after (interpreter )?shutdown", message)
