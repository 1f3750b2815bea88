"""The deterministic scheduler's engine (``pytest_futures_plugin/scheduler/``), used directly.

Programs run under :class:`Scheduler` with executor_impl's pool (its seam controlled) or the
stdlib's (``concurrent.futures.thread`` and ``_base`` controlled): replay from a seed, the
policies, virtual time, the deadlock report with its wait-for graph, and the errors that
replace a hang (livelock, blocking outside the scheduler's control).
"""

from __future__ import annotations

import _thread
import concurrent.futures
import concurrent.futures._base
import concurrent.futures.thread
import queue
import threading
import time
from typing import Any, Callable

import pytest

import executor_impl
from executor_impl import _sync
from pytest_futures_plugin import scheduler as sch
from pytest_futures_plugin.scheduler import (
    FIFO,
    PCT,
    DeadlockError,
    LivelockError,
    RandomPolicy,
    ScheduleError,
    Scheduler,
    Scripted,
    UncontrolledBlockingError,
)

POOLS: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "executor_impl": (executor_impl.ThreadPoolExecutor, (_sync,)),
    "stdlib": (
        concurrent.futures.ThreadPoolExecutor,
        (concurrent.futures.thread, concurrent.futures._base),
    ),
}


@pytest.fixture(params=sorted(POOLS))
def pool_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def fan_out(pool_class: Callable[..., Any]) -> Callable[[], list[int]]:
    """Three tasks on two workers: the small program of the issue."""

    def program() -> list[int]:
        with pool_class(max_workers=2) as pool:
            futures = [pool.submit(pow, 2, n) for n in range(3)]
            return [future.result() for future in futures]

    return program


def run(pool_kind: str, policy: sch.Policy, program: Callable[[], Any] | None = None) -> Scheduler:
    pool_class, modules = POOLS[pool_kind]
    scheduler = Scheduler(policy, modules=modules)
    result = scheduler.run(program or fan_out(pool_class))
    if program is None:
        assert result == [1, 2, 4]
    return scheduler


# -- replay ------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_trace(pool_kind: str) -> None:
    for seed in (0, 1, 7):
        first = run(pool_kind, RandomPolicy(seed))
        again = run(pool_kind, RandomPolicy(seed))
        assert first.trace == again.trace, f"seed {seed}"
        assert first.schedule == again.schedule, f"seed {seed}"
        assert first.trace, "a run has scheduling points"


def test_different_seeds_give_different_traces(pool_kind: str) -> None:
    traces = {tuple(run(pool_kind, RandomPolicy(seed)).trace) for seed in range(20)}
    assert len(traces) >= 10, f"only {len(traces)} distinct traces in 20 seeds"


def test_a_scripted_schedule_replays_a_random_run(pool_kind: str) -> None:
    for seed in range(5):
        original = run(pool_kind, RandomPolicy(seed))
        replayed = run(pool_kind, Scripted(original.schedule))
        assert replayed.trace == original.trace, f"seed {seed}"


def test_a_script_naming_a_thread_that_cannot_run_is_a_schedule_error() -> None:
    with pytest.raises(ScheduleError, match=r"decision 0 is 'T9', which cannot run then"):
        run("executor_impl", Scripted(["T9"]))


def test_pct_and_fifo_run_the_program_to_completion(pool_kind: str) -> None:
    for policy in (FIFO(), PCT(3, depth=3, horizon=50)):
        scheduler = run(pool_kind, policy)
        assert scheduler.stats()["threads"] >= 2


# -- finding a race ------------------------------------------------------------------------------


def lost_update(pool_class: Callable[..., Any]) -> Callable[[], int]:
    """Two tasks increment a counter with a read and a write around a lock-free gap (a
    ``sleep(0)``, a scheduling point): a preemption there loses an update."""

    def program() -> int:
        box = [0]

        def increment() -> None:
            value = box[0]
            time.sleep(0)
            box[0] = value + 1

        with pool_class(max_workers=2) as pool:
            for future in [pool.submit(increment) for _ in range(2)]:
                future.result()
        return box[0]

    return program


def test_random_schedules_find_a_race_that_fifo_never_shows(pool_kind: str) -> None:
    pool_class, _ = POOLS[pool_kind]
    program = lost_update(pool_class)
    assert run(pool_kind, FIFO(), program).trace  # FIFO: no preemption
    results = {}
    for seed in range(40):
        scheduler = Scheduler(RandomPolicy(seed), modules=POOLS[pool_kind][1])
        results[seed] = scheduler.run(program)
    assert Scheduler(FIFO(), modules=POOLS[pool_kind][1]).run(program) == 2
    assert 1 in results.values(), f"no lost update in 40 random schedules: {results}"
    assert 2 in results.values(), f"every random schedule lost an update: {results}"


# -- deadlocks -----------------------------------------------------------------------------------


def mutual_wait(pool_class: Callable[..., Any]) -> Callable[[], Any]:
    """The first tutorial's deadlock: two tasks, each waiting on the other's future."""

    def program() -> Any:
        with pool_class(max_workers=2) as pool:
            futures: dict[str, Any] = {}

            def wait_on(other: str) -> Any:
                time.sleep(5)  # as the tutorial: let the other be submitted
                return futures[other].result()

            futures["a"] = pool.submit(wait_on, "b")
            futures["b"] = pool.submit(wait_on, "a")
            return futures["a"].result()

    return program


def self_wait(pool_class: Callable[..., Any]) -> Callable[[], Any]:
    """The first tutorial's other deadlock: a task waits on a future it submitted to its own
    one-worker pool."""

    def program() -> Any:
        with pool_class(max_workers=1) as pool:

            def outer() -> Any:
                return pool.submit(pow, 5, 2).result()

            return pool.submit(outer).result()

    return program


@pytest.mark.parametrize("policy", ["random", "pct", "fifo"])
def test_two_tasks_waiting_on_each_other_are_reported_with_the_cycle(
    pool_kind: str, policy: str
) -> None:
    pool_class, modules = POOLS[pool_kind]
    chosen = {"random": RandomPolicy(3), "pct": PCT(3), "fifo": FIFO()}[policy]
    scheduler = Scheduler(chosen, modules=modules)
    with pytest.raises(DeadlockError) as caught:
        scheduler.run(mutual_wait(pool_class))
    error = caught.value
    text = str(error)
    assert "Deadlock: every managed thread is blocked and no timeout is pending" in text
    assert len(error.graph) == 3, text
    assert error.graph[0].startswith("MainThread waits in Future.result() on <Future"), text
    workers = sorted(line.split(" ")[0] for line in error.graph[1:])
    assert sorted(error.cycle) == workers, text
    for line in error.graph[1:]:
        assert "waits in Future.result() on <Future" in line, text
        assert "state=running> (running in thread" in line, text
    assert "Cycle: " in text
    assert scheduler.clock.elapsed() == 5.0, "the tasks' sleep(5) took virtual time"
    assert scheduler.leftovers == []


def test_a_task_waiting_on_its_own_pool_is_reported(pool_kind: str) -> None:
    pool_class, modules = POOLS[pool_kind]
    scheduler = Scheduler(RandomPolicy(1), modules=modules)
    with pytest.raises(DeadlockError) as caught:
        scheduler.run(self_wait(pool_class))
    graph = caught.value.graph
    assert len(graph) == 2, str(caught.value)
    worker = graph[1].split(" ")[0]
    assert graph[0].endswith(f"state=running> (running in thread {worker!r})"), graph
    assert graph[1].endswith("state=pending> (queued: no worker has started it)"), graph


def test_a_lock_cycle_names_each_holder() -> None:
    def program() -> None:
        first, second = threading.Lock(), threading.Lock()

        def take(a: Any, b: Any) -> None:
            with a:
                time.sleep(1)
                with b:
                    pass

        threads = [
            threading.Thread(target=take, args=(first, second), name="left"),
            threading.Thread(target=take, args=(second, first), name="right"),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    scheduler = Scheduler(RandomPolicy(0), modules=[__name__])
    with pytest.raises(DeadlockError) as caught:
        scheduler.run(program)
    text = str(caught.value)
    assert "left waits in acquire Lock-" in text, text
    assert "(held by 'right')" in text, text
    assert sorted(caught.value.cycle) == ["left", "right"], text


# -- virtual time --------------------------------------------------------------------------------


def test_sleeping_a_minute_costs_no_wall_time() -> None:
    def program() -> float:
        start = time.monotonic()
        time.sleep(60)
        return time.monotonic() - start

    started = time.perf_counter()
    scheduler = Scheduler(RandomPolicy(0))
    assert scheduler.run(program) == 60
    assert time.perf_counter() - started < 30, "the minute was slept for real"
    assert scheduler.clock.jumps == 1


def test_a_result_timeout_expires_in_virtual_time(pool_kind: str) -> None:
    pool_class, modules = POOLS[pool_kind]
    api: Any = concurrent.futures if pool_kind == "stdlib" else executor_impl

    def program() -> tuple[str, float]:
        with pool_class(max_workers=1) as pool:
            future = pool.submit(time.sleep, 100)
            start = time.monotonic()
            try:
                future.result(timeout=60)
            except api.TimeoutError:
                return "timed out", time.monotonic() - start
            return "returned", time.monotonic() - start

    scheduler = Scheduler(RandomPolicy(0), modules=modules)
    assert scheduler.run(program) == ("timed out", 60)
    assert scheduler.clock.elapsed() == 100, "the pool's exit waited for the 100 s task"


def test_threads_the_scheduler_does_not_manage_keep_real_time() -> None:
    seen: list[float] = []
    before = time.monotonic()
    outside = threading.Thread(target=lambda: seen.append(time.monotonic()))

    def program() -> None:
        outside.start()  # started from the test module, which is not controlled here
        outside.join()

    Scheduler(RandomPolicy(0)).run(program)
    assert len(seen) == 1, "the unmanaged thread ran"
    assert seen[0] >= before, "an unmanaged thread read virtual time"


# -- what would hang -----------------------------------------------------------------------------


def test_a_busy_loop_polling_the_clock_is_a_livelock() -> None:
    def program() -> None:
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:  # virtual time never moves while one thread runs
            pass

    with pytest.raises(LivelockError, match="more than 500 scheduling points"):
        Scheduler(RandomPolicy(0), max_steps=500).run(program)


def test_blocking_on_a_lock_the_scheduler_does_not_own_is_reported() -> None:
    real_lock = _thread.allocate_lock()  # made before the run: not controlled
    real_lock.acquire()

    def blocked() -> None:
        real_lock.acquire(timeout=30)  # bounded, in case the report never comes
        real_lock.release()

    def program() -> None:
        thread = threading.Thread(target=blocked, name="stuck")
        thread.start()
        thread.join()

    scheduler = Scheduler(RandomPolicy(0), modules=[__name__], uncontrolled_timeout=0.5)
    try:
        with pytest.raises(UncontrolledBlockingError, match=r"thread 'stuck' ran for 0\.5s"):
            scheduler.run(program)
    finally:
        real_lock.release()  # let the stuck thread go
    # The end of the run waited ABORT_JOIN seconds for it, in vain: it was still stuck then.
    assert scheduler.leftovers == ["threads still alive after the run was aborted: ['stuck']"]


def test_threads_left_blocked_at_the_end_are_listed_and_aborted() -> None:
    def program() -> executor_impl.ThreadPoolExecutor:
        pool = executor_impl.ThreadPoolExecutor(max_workers=1)
        pool.submit(pow, 2, 2).result()  # never shut down: its worker waits for work
        return pool  # still referenced when the run ends, so its worker is not told to exit

    scheduler = Scheduler(RandomPolicy(0), modules=[_sync])
    pool = scheduler.run(program)
    assert len(scheduler.leftovers) == 1
    assert "waits in get SimpleQueue-" in scheduler.leftovers[0], scheduler.leftovers
    pool.shutdown(wait=True)  # the aborted worker has exited: nothing to wait for


# -- controlled primitives -----------------------------------------------------------------------


def producer_consumer() -> list[int]:
    items: queue.Queue[int | None] = queue.Queue(maxsize=2)
    out: list[int] = []
    ready = threading.Event()
    lock = threading.RLock()
    cond = threading.Condition(lock)
    slots = threading.BoundedSemaphore(1)

    def consume() -> None:
        ready.set()
        while True:
            item = items.get()
            items.task_done()
            if item is None:
                return
            with slots, cond:
                out.append(item)
                cond.notify_all()

    consumer = threading.Thread(target=consume, name="consumer")
    consumer.start()
    assert ready.wait(timeout=10)
    for n in range(5):
        items.put(n)
    with cond:
        assert cond.wait_for(lambda: len(out) == 5, timeout=10)
    items.put(None)
    items.join()
    consumer.join()
    return out


def test_queues_conditions_events_and_semaphores_keep_their_contracts() -> None:
    for seed in range(30):
        scheduler = Scheduler(RandomPolicy(seed), modules=[__name__])
        assert scheduler.run(producer_consumer) == [0, 1, 2, 3, 4], f"seed {seed}"


def test_controlled_primitives_raise_as_the_stdlib_does() -> None:
    def program() -> None:
        lock = threading.Lock()
        with pytest.raises(RuntimeError, match="release unlocked lock"):
            lock.release()
        with pytest.raises(ValueError, match="can't specify a timeout for a non-blocking call"):
            lock.acquire(False, 1)
        semaphore = threading.BoundedSemaphore(1)
        with pytest.raises(ValueError, match="Semaphore released too many times"):
            semaphore.release()
        with pytest.raises(ValueError, match="semaphore initial value must be >= 0"):
            threading.Semaphore(-1)
        with pytest.raises(queue.Empty):
            queue.SimpleQueue().get(timeout=1)
        full: queue.Queue[int] = queue.Queue(maxsize=1)
        full.put(1)
        with pytest.raises(queue.Full):
            full.put(2, timeout=1)
        with pytest.raises(ValueError, match="sleep length must be non-negative"):
            time.sleep(-1)
        with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
            threading.Condition().wait(1)

    scheduler = Scheduler(RandomPolicy(0), modules=[__name__])
    scheduler.run(program)
    assert scheduler.clock.elapsed() == 2, "the two 1 s timeouts expired in virtual time"


def test_the_modules_are_restored_after_the_run() -> None:
    before = (threading.Lock, queue.Queue, time.sleep, time.monotonic, _sync.allocate_lock)
    Scheduler(RandomPolicy(0), modules=[__name__, _sync]).run(lambda: None)
    after = (threading.Lock, queue.Queue, time.sleep, time.monotonic, _sync.allocate_lock)
    assert after == before
    assert sch.active() is None


def test_one_scheduler_at_a_time_and_each_runs_once() -> None:
    scheduler = Scheduler()
    scheduler.run(lambda: None)
    with pytest.raises(RuntimeError, match="a Scheduler runs once"):
        scheduler.run(lambda: None)
    with Scheduler(), pytest.raises(RuntimeError, match="another scheduler is active"):
        Scheduler().run(lambda: None)
