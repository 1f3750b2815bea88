"""Fixtures of the executor_impl tests.

``cf`` runs each behaviour test twice, side by side: on executor_impl ("impl") and on
``concurrent.futures`` ("stdlib"), the reference. Narrow it for one test with
``@pytest.mark.parametrize("cf", ["impl"], indirect=True)``.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any, Callable

import pytest

from ._helpers import LONG_WAIT, MODULE_NAMES, FuturesAPI, load_api
from ._process_helpers import ProcessPools, start_shared_processes

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future
    from multiprocessing.managers import SyncManager


@pytest.fixture(params=sorted(MODULE_NAMES))
def cf(request: pytest.FixtureRequest) -> FuturesAPI:
    """The module under test: executor_impl ("impl") or concurrent.futures ("stdlib")."""
    kind: str = request.param
    return load_api(kind)


_prefixes = itertools.count()


@pytest.fixture
def prefix() -> str:
    """A thread name prefix that no other pool in this process uses."""
    return f"TestPool{next(_prefixes)}"


@pytest.fixture
def impl() -> FuturesAPI:
    """executor_impl alone, for its deliberate deviations from the stdlib."""
    return load_api("impl")


@pytest.fixture
def make_event() -> Iterator[Callable[[], threading.Event]]:
    """A factory of Events that are all set when the test ends, passed or failed, so that
    no task blocked on one outlives its test."""
    events: list[threading.Event] = []

    def make() -> threading.Event:
        event = threading.Event()
        events.append(event)
        return event

    yield make
    for event in events:
        event.set()


@pytest.fixture
def finish_at_teardown() -> Iterator[Callable[[Iterable[Future[Any]]], None]]:
    """Register futures to be given a result when the test ends if they are still not done,
    so that a ``wait()`` without timeout that a bug left blocked on them returns."""
    futures: list[Future[Any]] = []
    yield futures.extend
    for future in futures:
        if not future.done():
            future.set_result(None)


@pytest.fixture(autouse=True)
def threads_end_with_their_test() -> Iterator[None]:
    """Fail a test that leaves a thread running (a worker a pool did not stop, a helper
    that never returned) for longer than ``LONG_WAIT`` after it ended."""
    before = set(threading.enumerate())
    yield
    leftover = [thread for thread in threading.enumerate() if thread not in before]
    for thread in leftover:
        thread.join(timeout=LONG_WAIT)
    alive = [thread.name for thread in leftover if thread.is_alive()]
    assert not alive, f"threads still alive {LONG_WAIT}s after the test: {alive}"


@pytest.fixture(scope="session")
def shared_processes() -> Iterator[SyncManager]:
    """The processes multiprocessing keeps for a whole session (forkserver, resource tracker),
    started before any test looks for leaked processes, and the manager behind the gates."""
    manager = start_shared_processes()
    yield manager
    manager.shutdown()


@pytest.fixture
def process_pools(shared_processes: SyncManager) -> Iterator[ProcessPools]:
    """Makes the test's process pools and gates; when the test ends, opens the gates, shuts
    the pools down and fails the test if any process it started is still running."""
    pools = ProcessPools(shared_processes)
    yield pools
    problems = pools.close()
    assert not problems, "; ".join(problems)
