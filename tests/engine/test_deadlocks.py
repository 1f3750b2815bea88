"""The deadlock watcher's engine, in-process: what it finds, what it leaves alone, how it
unblocks the threads. Every wait is bounded; the black-box tests are test_plugin_deadlocks.py."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import executor_impl
from pytest_futures_plugin.guards import DeadlockWatcher, FuturesDeadlockError

WAIT = 60.0
"""Seconds a wait that must end may take: only a watcher that did not act waits so long."""

MODULES = [
    pytest.param(executor_impl, id="executor_impl"),
    pytest.param(concurrent.futures, id="stdlib"),
]


@pytest.fixture
def watcher() -> Any:
    with DeadlockWatcher(interval=0.05) as running:
        yield running


@pytest.mark.parametrize("module", MODULES)
def test_a_task_waiting_on_its_own_queue_is_starvation_and_gets_unblocked(
    module: Any, watcher: DeadlockWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    with module.ThreadPoolExecutor(max_workers=1) as pool:
        outer = pool.submit(lambda: pool.submit(pow, 5, 2).result())
        error = outer.exception(timeout=WAIT)  # the worker's result() was woken

    assert isinstance(error, (concurrent.futures.CancelledError, concurrent.futures.TimeoutError))
    [found] = watcher.errors
    assert found.starved
    assert not found.cycle
    assert "queued in ThreadPoolExecutor(max_workers=1): no worker has started it" in str(found)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("module", MODULES)
def test_two_tasks_waiting_on_each_other_are_a_cycle(
    module: Any, watcher: DeadlockWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    box: dict[str, concurrent.futures.Future[Any]] = {}

    def wait_on(name: str) -> Any:
        gate.wait(WAIT)
        return box[name].result()

    with module.ThreadPoolExecutor(max_workers=2) as pool:
        box["a"] = pool.submit(wait_on, "b")
        box["b"] = pool.submit(wait_on, "a")
        gate.set()
        concurrent.futures.wait(box.values(), timeout=WAIT)  # a timeout: never reported

    assert all(future.done() for future in box.values())
    [found] = watcher.errors
    assert len(found.cycle) == 2
    assert "Cycle: " in str(found)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("module", MODULES)
def test_a_wait_with_a_timeout_is_left_alone(module: Any, watcher: DeadlockWatcher) -> None:
    with module.ThreadPoolExecutor(max_workers=1) as pool:

        def wait_on_future() -> str:
            try:
                return str(pool.submit(pow, 5, 2).result(timeout=1.0))
            except concurrent.futures.TimeoutError:
                return "timed out"

        assert pool.submit(wait_on_future).result(timeout=WAIT) == "timed out"
    assert watcher.errors == []


@pytest.mark.parametrize("module", MODULES)
def test_a_join_and_an_exception_call_are_waits_too(module: Any, watcher: DeadlockWatcher) -> None:
    """The only worker joins a thread that waits on a call queued behind it."""
    started = threading.Event()
    with module.ThreadPoolExecutor(max_workers=1) as pool:
        box: dict[str, Any] = {}

        def waits_on_the_queued_call() -> None:
            started.wait(WAIT)
            with contextlib.suppress(concurrent.futures.CancelledError):
                box["queued"].exception()  # no timeout

        other = threading.Thread(target=waits_on_the_queued_call, name="other")

        def joins_the_other_thread() -> None:
            other.start()
            box["queued"] = pool.submit(pow, 5, 2)
            started.set()
            other.join()  # no timeout

        joining = pool.submit(joins_the_other_thread)
        joining.result(timeout=WAIT)
        other.join(WAIT)

    assert not other.is_alive(), "the recovery did not end the thread that waited"
    [found] = watcher.errors
    text = str(found)
    assert "waits in Thread.join() on thread 'other'" in text
    assert "other waits in Future.exception() on <Future at" in text
    assert "in waits_on_the_queued_call" in text


def test_watching_raises_the_deadlock_found_in_its_block(watcher: DeadlockWatcher) -> None:
    starved = pytest.raises(FuturesDeadlockError, match="Starvation: ThreadPoolExecutor")
    pool = executor_impl.ThreadPoolExecutor(max_workers=1)
    with starved, watcher.watching(), pool:
        pool.submit(lambda: pool.submit(pow, 5, 2).result()).result()


@pytest.mark.parametrize("interval", [0, -1.0, float("nan"), "0.2"])
def test_a_bad_interval_is_refused_by_name(interval: Any) -> None:
    with pytest.raises(ValueError, match="deadlock watcher interval must be in"):
        DeadlockWatcher(interval=interval)


STRESS_SECONDS = "3"
"""How long the stress runs: long enough for thousands of threads to start and end."""


def test_the_watcher_survives_threads_starting_and_blocking_quickly() -> None:
    """The watcher reads no other thread's stack, which could crash CPython 3.11: a stress run
    in its own interpreter (a crash is its return code), reporting no deadlock where none is."""
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-X", "faulthandler", "-m", "tests.engine._watch_stress"]
    done = subprocess.run(
        [*command, STRESS_SECONDS],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=WAIT + float(STRESS_SECONDS),
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"the stress run ended with return code {done.returncode}:\n{output}"
    )
    assert "0 deadlocks reported" in done.stdout, output
