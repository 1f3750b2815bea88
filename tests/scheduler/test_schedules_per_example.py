"""One run of the scheduler, many schedules: ``Scheduler.restart`` and the ``Preemptions``
policy, as a property-based test uses them (one schedule per Hypothesis example, drawn as
data), and what makes an example replay exactly (futures hashed by creation order, log
messages formatted before any handler's lock is taken).
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures._base
import concurrent.futures.thread
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import pytest

from pytest_futures_plugin import scheduler as sch
from pytest_futures_plugin.clock import EPOCH
from pytest_futures_plugin.scheduler import FIFO, Preemptions, RandomPolicy, Scheduler

if TYPE_CHECKING:
    from pytest_futures_plugin.scheduler import Policy

STDLIB = (concurrent.futures.thread, concurrent.futures._base)


def lost_update() -> int:
    """Two tasks increment a counter with a read and a write around a scheduling point: one
    preemption there loses an update."""
    box = [0]

    def increment() -> None:
        value = box[0]
        time.sleep(0)
        box[0] = value + 1

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(increment) for _ in range(2)]:
            future.result()
    return box[0]


def run(policy: Policy, program: Callable[[], Any] = lost_update) -> tuple[Any, Scheduler]:
    scheduler = Scheduler(policy, modules=STDLIB)
    return scheduler.run(program), scheduler


def test_no_preemptions_is_fifo() -> None:
    result, preempted = run(Preemptions([]))
    assert result == 2
    assert preempted.trace == run(FIFO())[1].trace
    assert preempted.policy.taken == []  # type: ignore[attr-defined]


def test_one_listed_preemption_is_enough_to_lose_an_update() -> None:
    lost = {}
    for after in range(30):
        result, scheduler = run(Preemptions([(after, 1)]))
        lost[after] = result == 1
        if lost[after]:
            assert scheduler.policy.taken == [after]  # type: ignore[attr-defined]
    assert any(lost.values()), "no single preemption loses an update"
    assert not all(lost.values()), "every single preemption loses an update"


def test_a_time_slice_preempts_a_thread_that_goes_on_too_long() -> None:
    results = {time_slice: run(Preemptions([], time_slice))[0] for time_slice in range(1, 12)}
    assert 1 in results.values(), f"no time slice loses an update: {results}"


def test_preemptions_reject_negative_numbers() -> None:
    with pytest.raises(ValueError, match=r"\(-1, 1\)"):
        Preemptions([(-1, 1)])
    with pytest.raises(ValueError, match="time_slice must be >= 0, not -2"):
        Preemptions([], -2)


def test_each_restart_is_a_schedule_of_its_own_that_replays() -> None:
    """Within one run, the same policy after ``restart`` gives the same trace, numbered from
    T1 again, from the clock's epoch, whatever ran before."""
    traces: dict[int, list[tuple[str, str]]] = {}
    with Scheduler(RandomPolicy(0), modules=STDLIB) as scheduler:
        for seed in (3, 4, 3, 5, 4):
            scheduler.restart(RandomPolicy(seed))
            assert scheduler.clock.now() == EPOCH
            lost_update()
            time.sleep(5)  # virtual: the next restart puts the clock back
            assert [t.tid_name for t in scheduler.threads][:2] == ["T0", "T1"]
            trace = list(scheduler.trace)
            assert traces.setdefault(seed, trace) == trace, f"seed {seed} did not replay"
            assert scheduler.steps == len(trace)
    assert traces[3] != traces[4]


def test_restart_lets_the_threads_that_can_run_finish_first() -> None:
    finished: list[str] = []

    def setter(event: threading.Event) -> None:
        event.set()  # the owner may take over here, and restart() before this thread ends
        finished.append("setter")

    with Scheduler(RandomPolicy(0), modules=[__name__]) as scheduler:
        for _ in range(5):
            event = threading.Event()
            threading.Thread(target=setter, args=(event,)).start()
            event.wait()
            scheduler.restart(FIFO())
            assert finished[-1:] == ["setter"]
            assert [t.tid_name for t in scheduler.threads] == ["T0"]


def test_restart_is_for_the_owner_of_a_running_scheduler() -> None:
    scheduler = Scheduler()
    with pytest.raises(RuntimeError, match="owner thread of a running scheduler"):
        scheduler.restart(FIFO())


def test_stdlib_futures_hash_by_creation_order_during_a_run() -> None:
    """``wait()`` and ``as_completed()`` of the stdlib iterate sets of futures: under the
    scheduler they do in creation order, whatever the addresses, so a schedule replays."""
    future_class = concurrent.futures.Future

    def program() -> tuple[list[int], list[int]]:
        futures: list[concurrent.futures.Future[None]] = [future_class() for _ in range(6)]
        hashes = [hash(f) for f in futures]
        return hashes, [futures.index(f) for f in set(futures)]

    (hashes, order), _ = run(FIFO(), program)
    assert hashes == sorted(hashes)
    assert order == list(range(6))
    assert future_class.__hash__ is object.__hash__
    assert "__hash__" not in vars(future_class)


def test_log_messages_of_managed_threads_are_formatted_before_any_handler_runs() -> None:
    """A pool logs a callback that raised with the future's repr, which takes the future's
    lock: formatted inside a handler, that scheduling point would come while the handler
    holds its own (real) lock, and any other thread that logs would block outside the
    scheduler's control."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    def program() -> None:
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        future.set_result(1)
        future.add_done_callback(lambda f: 1 / 0)

    logger = logging.getLogger("concurrent.futures")
    handler = Keep()
    logger.addHandler(handler)
    try:
        run(FIFO(), program)
    finally:
        logger.removeHandler(handler)
    (record,) = records
    assert record.args is None
    assert record.msg.startswith("exception calling callback for <Future at")


def test_a_schedule_that_deadlocked_does_not_stop_the_next_one() -> None:
    """Hypothesis goes on after an example that raised ``DeadlockError``: the next schedule
    starts with the deadlocked threads unwound, and the threads it starts are managed."""

    def stuck(never: threading.Event) -> None:
        never.wait()

    with Scheduler(RandomPolicy(0), modules=[__name__, *STDLIB]) as scheduler:
        never = threading.Event()
        threading.Thread(target=stuck, args=(never,)).start()
        with pytest.raises(sch.DeadlockError):
            never.wait()
        scheduler.restart(FIFO())
        assert [t.tid_name for t in scheduler.threads] == ["T0"]
        assert lost_update() == 2
        scheduler.restart(RandomPolicy(1))
        assert lost_update() in (1, 2)
