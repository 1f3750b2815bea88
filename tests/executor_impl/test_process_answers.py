"""How a call's answer reaches its future, whoever waits for it and however.

executor_impl's process pool lets the thread that waits for a call read the answer from the
worker's socket itself, when the call went to an idle worker (see the docstring of
executor_impl/_process_manager.py); every other answer is read by the pool's manager thread.
These tests hold for both implementations: they pin down that an answer reaches its future
whatever comes first (``result()``, ``done()``, a timeout, a callback, ``wait()``, another
``submit``, a shutdown, the worker's death), also with several threads at once.
"""

from __future__ import annotations

import concurrent.futures
import functools
import gc
import os
import select
import socket
import threading
import time
import weakref
from concurrent.futures._base import FINISHED
from typing import TYPE_CHECKING, Any

import pytest

from executor_impl import _process_worker
from executor_impl._process_worker import spin
from executor_impl.process import ProcessPoolExecutor

from ._helpers import LONG_WAIT, SHORT_TIMEOUT, BackgroundCall, FuturesAPI, wait_for
from ._process_helpers import (
    CONTEXTS,
    CRASH_POINTS,
    FORK_WARNING,
    ProcessPools,
    broken_process_pool_error,
    entered,
    inject_crash,
    kill,
)
from ._process_tasks import big_result, block, identity

if TYPE_CHECKING:
    from concurrent.futures import Future

pytestmark = [pytest.mark.usefixtures("process_pools"), pytest.mark.filterwarnings(FORK_WARNING)]


def done_within(future: Future[Any], what: str) -> None:
    """Poll ``future.done()`` (without sleeping) until it is true, at most ``LONG_WAIT``."""
    deadline = time.monotonic() + LONG_WAIT
    while not future.done():
        assert time.monotonic() < deadline, f"waited {LONG_WAIT}s in vain for {what}"


def finished(future: Future[Any]) -> bool:
    """Whether *future* has its outcome, read from its state as the stdlib's ``wait()`` reads
    it: without calling the future, which may fetch its answer (executor_impl's ``done()``)
    or hand it to the manager thread (``add_done_callback()``, ``wait()``)."""
    return future._state == FINISHED


def finished_within(future: Future[Any], what: str) -> None:
    """Poll ``finished(future)`` (without sleeping) until it is true, at most ``LONG_WAIT``."""
    deadline = time.monotonic() + LONG_WAIT
    while not finished(future):
        assert time.monotonic() < deadline, f"waited {LONG_WAIT}s in vain for {what}"


@pytest.mark.parametrize("context", CONTEXTS)
def test_calls_submitted_and_waited_for_one_at_a_time_return_their_results(
    cf: FuturesAPI, process_pools: ProcessPools, context: str
) -> None:
    pool = process_pools.make(cf, context=context, max_workers=2)
    results = [pool.submit(identity, i).result(timeout=LONG_WAIT) for i in range(50)]
    assert results == list(range(50))


def test_result_with_a_timeout_times_out_while_the_call_runs_and_later_returns_its_result(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    future = pool.submit(block, gate, "late")
    process_pools.observe(entered(gate, "the call to start"))
    with pytest.raises(concurrent.futures.TimeoutError):
        future.result(timeout=SHORT_TIMEOUT)
    with pytest.raises(concurrent.futures.TimeoutError):
        future.exception(timeout=0)
    assert not future.done()
    assert future.running()
    gate.open()
    assert future.result(timeout=LONG_WAIT) == "late"


def test_done_turns_true_once_the_worker_answered_though_nobody_waits(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    pool = process_pools.make(cf, max_workers=1)
    future = pool.submit(identity, "answer")
    done_within(future, "the call to be done")
    assert finished(future)
    assert not future.running()
    assert future.result(timeout=0) == "answer"


def test_a_callback_added_after_submit_runs_though_nobody_waits(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    future = pool.submit(block, gate, "answer")
    called = threading.Event()
    seen: list[Any] = []

    def callback(done: Future[Any]) -> None:
        seen.append(done.result())
        called.set()

    future.add_done_callback(callback)
    gate.open()
    wait_for(called, "the done callback")
    assert seen == ["answer"]


@pytest.mark.parametrize("how", ["wait", "as_completed"])
def test_wait_and_as_completed_see_a_call_that_went_to_an_idle_worker_finish(
    cf: FuturesAPI, process_pools: ProcessPools, how: str
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=2)
    future = pool.submit(block, gate, "answer")
    process_pools.observe(entered(gate, "the call to start"))
    if how == "wait":
        waiting = BackgroundCall(lambda: cf.wait([future], timeout=LONG_WAIT).done)
    else:
        waiting = BackgroundCall(lambda: set(cf.as_completed([future], timeout=LONG_WAIT)))
    gate.open()
    assert waiting.outcome(f"{how}() to return") == {future}
    assert future.result(timeout=0) == "answer"


@pytest.mark.parametrize("max_workers", [1, 2])
def test_a_call_nobody_came_for_completes_once_the_pool_gets_another_call(
    cf: FuturesAPI, process_pools: ProcessPools, max_workers: int
) -> None:
    """The second call goes to the first one's worker (one worker), or to another (two)."""
    pool = process_pools.make(cf, max_workers=max_workers)
    first = pool.submit(identity, "first")
    second = pool.submit(identity, "second")
    assert second.result(timeout=LONG_WAIT) == "second"
    finished_within(first, "the first call to complete")
    assert first.result(timeout=0) == "first"


def test_shutdown_with_wait_completes_a_call_nobody_came_for(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    pool = process_pools.make(cf, max_workers=1)
    future = pool.submit(identity, "answer")
    BackgroundCall(pool.shutdown).outcome("shutdown(wait=True) to return")
    assert finished(future)
    assert future.result(timeout=0) == "answer"


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_worker_killed_while_a_thread_waits_for_its_answer_fails_that_call_at_once(
    cf: FuturesAPI, process_pools: ProcessPools, context: str
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(cf, context=context, max_workers=1)
    future = pool.submit(block, gate, "never")
    pid = entered(gate, "the call to start")
    process_pools.observe(pid)
    waiting = BackgroundCall(lambda: future.exception(timeout=LONG_WAIT))
    # Most likely the thread waits in exception() by now; the outcome is the same if not.
    kill(pid)
    error = waiting.outcome("exception() to return after the worker died")
    assert isinstance(error, broken_process_pool_error(cf))


def test_several_threads_waiting_for_one_call_in_different_ways_all_see_its_answer(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    future = pool.submit(block, gate, "answer")
    process_pools.observe(entered(gate, "the call to start"))
    called = threading.Event()
    future.add_done_callback(lambda _: called.set())
    waiters: list[BackgroundCall[Any]] = [
        BackgroundCall(lambda: future.result(timeout=LONG_WAIT)),
        BackgroundCall(lambda: future.result(timeout=LONG_WAIT)),
        BackgroundCall(lambda: future.exception(timeout=LONG_WAIT)),
        BackgroundCall(lambda: done_within(future, "done() in a thread")),
        BackgroundCall(lambda: cf.wait([future], timeout=LONG_WAIT).done),
    ]
    gate.open()
    outcomes = [waiter.outcome("a waiting thread to return") for waiter in waiters]
    assert outcomes == ["answer", "answer", None, None, {future}]
    wait_for(called, "the done callback")


@pytest.mark.parametrize("cf", ["impl"], indirect=True)
@pytest.mark.parametrize("context", [c for c in CONTEXTS if c != "fork"])
def test_a_worker_retiring_right_after_its_answer_never_breaks_the_pool(
    cf: FuturesAPI, process_pools: ProcessPools, context: str
) -> None:
    """With max_tasks_per_child=1 a worker exits as soon as it has answered: the thread
    reading that answer and the manager thread seeing the exit race, every time.  (The
    stdlib is left out: without a call queued, its workers may hang, gh-115634.)"""
    pool = process_pools.make(cf, context=context, max_workers=1, max_tasks_per_child=1)
    for i in range(12):
        assert pool.submit(identity, i).result(timeout=LONG_WAIT) == i


@pytest.mark.parametrize("context", CONTEXTS)
def test_threads_submitting_and_waiting_in_every_way_at_once_all_get_their_answers(
    cf: FuturesAPI, process_pools: ProcessPools, context: str
) -> None:
    """Each thread submits calls one or two at a time and waits for them in its own way,
    so that answers are read directly, by the manager thread, or both in turn."""
    pool = process_pools.make(cf, context=context, max_workers=2)
    rounds = 60

    def by_result(base: int) -> list[Any]:
        return [pool.submit(identity, base + i).result(timeout=LONG_WAIT) for i in range(rounds)]

    def by_done(base: int) -> list[Any]:
        out = []
        for i in range(rounds):
            future = pool.submit(identity, base + i)
            done_within(future, "done() to turn true")
            out.append(future.result(timeout=0))
        return out

    def by_wait(base: int) -> list[Any]:
        out = []
        for i in range(rounds):
            future = pool.submit(identity, base + i)
            assert cf.wait([future], timeout=LONG_WAIT).done == {future}
            out.append(future.result(timeout=0))
        return out

    def by_callback(base: int) -> list[Any]:
        out = []
        for i in range(rounds):
            called = threading.Event()
            future = pool.submit(identity, base + i)
            future.add_done_callback(lambda _, event=called: event.set())  # type: ignore[misc]
            wait_for(called, "a done callback")
            out.append(future.result(timeout=0))
        return out

    def in_pairs(base: int) -> list[Any]:
        out = []
        for i in range(0, rounds, 2):
            first, second = pool.submit(identity, base + i), pool.submit(identity, base + i + 1)
            later = second.result(timeout=LONG_WAIT)  # the second first: it may be direct
            out += [first.result(timeout=LONG_WAIT), later]
        return out

    ways = [by_result, by_done, by_wait, by_callback, in_pairs, by_result]
    threads = [BackgroundCall(functools.partial(way, n * 1000)) for n, way in enumerate(ways)]
    for n, thread in enumerate(threads):
        expected = list(range(n * 1000, n * 1000 + rounds))
        assert thread.outcome(f"{ways[n].__name__} to finish") == expected


@pytest.mark.parametrize("size", [10, 1 << 20])
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_worker_crashing_while_its_caller_reads_the_answer_breaks_the_pool(
    impl: FuturesAPI, process_pools: ProcessPools, point: str, size: int
) -> None:
    """The call goes to an idle worker and its caller waits in result(): executor_impl's
    caller then reads the answer itself, and sees the worker end at every point of the
    exchange (a large answer ends half-way through several reads)."""
    pool = process_pools.make(impl, max_workers=1)
    assert pool.submit(identity, "warm").result(timeout=LONG_WAIT) == "warm"
    process_pools.worker_pids(impl, pool)
    inject_crash(pool, point)
    future = pool.submit(big_result, size)
    with pytest.raises(broken_process_pool_error(impl)):
        future.result(timeout=LONG_WAIT)
    with pytest.raises(broken_process_pool_error(impl)):
        pool.submit(identity, "after the pool broke")


def test_a_future_kept_after_its_pool_is_gone_does_not_keep_the_pool_alive() -> None:
    """The future of a call that went to an idle worker refers to its pool's state (to read
    the answer itself), but only weakly: an exception's traceback, or a list of results,
    that outlives the pool does not keep the pool's state, manager thread and worker objects."""
    pool = ProcessPoolExecutor(max_workers=1)
    future = pool.submit(identity, 7)
    assert future.result(timeout=LONG_WAIT) == 7
    pool.shutdown(wait=True)
    state = weakref.ref(pool._state)
    del pool
    gc.collect()
    assert state() is None, [type(r).__name__ for r in gc.get_referrers(state())]
    assert future.result() == 7
    assert future.done()
    assert not future.running()


class FakePoller:
    """A poll object whose ``poll(0)`` finds something on call number *ready_at* (never if
    None), and which advances a fake clock by *step* per call."""

    def __init__(self, ready_at: int | None, clock: FakeClock, step: float = 1e-6) -> None:
        self.ready_at, self.clock, self.step, self.calls = ready_at, clock, step, 0

    def poll(self, timeout: int) -> list[tuple[int, int]]:
        assert timeout == 0, "spin() must never block"
        self.calls += 1
        self.clock.now += self.step
        return [(7, select.POLLIN)] if self.calls == self.ready_at else []


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestSpin:
    """``spin()``, how both ends of a worker's socket wait a little before they sleep: it
    returns what ``poll(0)`` found, gives up after its bound when nothing comes, and spins
    not at all where it cannot help.  Its logic runs on a fake clock and a fake poller (a
    real spin's length depends on the machine's load); a real socket shows what it returns."""

    @pytest.fixture(autouse=True)
    def yields(self, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """Count the yields; spin as if this process had several CPUs."""
        counted: list[int] = []
        monkeypatch.setattr(_process_worker, "_sched_yield", lambda: counted.append(1))
        monkeypatch.setattr(_process_worker, "_MAY_SPIN", True)
        return counted

    def test_nothing_coming_gives_up_once_its_time_is_spent(self, yields: list[int]) -> None:
        clock = FakeClock()
        poller = FakePoller(None, clock, step=1e-6)
        assert spin(poller, 50e-6, clock) == []
        # One poll before the loop, then one per yield until 50 us of fake time are spent.
        assert 45 <= poller.calls <= 52, poller.calls
        assert len(yields) == poller.calls - 1

    def test_what_comes_during_the_spin_ends_it(self, yields: list[int]) -> None:
        clock = FakeClock()
        poller = FakePoller(5, clock)
        assert spin(poller, 50e-6, clock) == [(7, select.POLLIN)]
        assert poller.calls == 5
        assert len(yields) == 4

    def test_what_is_there_already_is_returned_without_a_yield(self, yields: list[int]) -> None:
        clock = FakeClock()
        poller = FakePoller(1, clock)
        assert spin(poller, 50e-6, clock) == [(7, select.POLLIN)]
        assert (poller.calls, len(yields)) == (1, 0)

    def test_no_time_at_all_polls_once(self, yields: list[int]) -> None:
        clock = FakeClock()
        poller = FakePoller(None, clock)
        assert spin(poller, 0, clock) == []
        assert (poller.calls, len(yields)) == (1, 0)

    def test_a_yield_that_gave_the_cpu_away_ends_it_after_one_more_poll(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = FakeClock()

        def somebody_else_ran() -> None:
            clock.now += 1e-3

        monkeypatch.setattr(_process_worker, "_sched_yield", somebody_else_ran)
        poller = FakePoller(None, clock)
        assert spin(poller, 50e-6, clock) == []
        assert poller.calls == 2

    def test_a_process_bound_to_one_cpu_does_not_spin(
        self, yields: list[int], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_process_worker, "_MAY_SPIN", False)
        clock = FakeClock()
        poller = FakePoller(None, clock)
        assert spin(poller, 50e-6, clock) == []
        assert (poller.calls, len(yields)) == (1, 0)

    def test_a_real_socket_with_input_or_a_closed_peer_is_returned(self) -> None:
        left, right = socket.socketpair()
        poller = select.poll()
        poller.register(right.fileno(), select.POLLIN)
        with left, right:
            assert spin(poller, 0) == []
            left.send(b"x")
            assert spin(poller) == [(right.fileno(), select.POLLIN)]
            assert right.recv(1) == b"x"
            left.close()
            ((fd, events),) = spin(poller)
            assert fd == right.fileno()
            assert events & (select.POLLIN | select.POLLHUP)

    @pytest.mark.parametrize(("cpus", "expected"), [({0}, False), ({0, 1}, True)])
    def test_spinning_needs_a_second_cpu(
        self, cpus: set[int], expected: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cpus, raising=False)
        assert _process_worker._may_spin() is expected
