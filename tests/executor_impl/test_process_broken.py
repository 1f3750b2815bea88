"""A broken ProcessPoolExecutor (executor_impl/process.py), side by side with the stdlib's.

As documented: BrokenProcessPool, a BrokenExecutor, is raised "when one of the workers of a
ProcessPoolExecutor has terminated in a non-clean fashion (for example, if it was killed
from the outside)"; then every pending future fails with it, and so does every later
submit(). "If initializer raises an exception, all currently pending jobs will raise a
BrokenProcessPool, as well as any attempt to submit more jobs to the pool." Only picklable
objects can be executed and returned.

What these tests hold the pools to: a dead worker breaks the pool visibly and at once (no
future is left pending, shutdown() returns, no process is left behind); a call, argument,
result or exception that does not pickle fails its own future and nothing else.
executor_impl's testing hook ``inject_crash`` ends a worker at chosen points of the exchange
of a task, which the stdlib can only approach by killing a worker at some moment.
"""

from __future__ import annotations

import concurrent.futures.process
import itertools
import multiprocessing
import pickle
from typing import TYPE_CHECKING, Any, Callable

import pytest

from ._helpers import LONG_WAIT, BackgroundCall, FuturesAPI, is_stdlib, xfail_stdlib_if
from ._process_helpers import (
    CONTEXTS,
    CRASH_POINTS,
    DEFAULT_CONTEXT,
    FORK_WARNING,
    ProcessPools,
    broken_process_pool_error,
    entered,
    impl_process_module,
    inject_crash,
    kill,
    results_within,
    run_crashes_while_sending_data,
    stdlib_fails_to_break_when_a_pending_future_was_cancelled,
    stdlib_hangs_after_a_crash_while_sending_data,
    stdlib_shares_one_broken_process_pool_error,
    wait_until_gone,
)
from ._process_tasks import (
    Unpicklable,
    big_result,
    block,
    block_at,
    exit_abruptly_at,
    fail_to_initialize_at,
    identity,
    install_gate,
    raise_unpicklable,
    return_fails_to_unpickle,
    return_unpicklable,
)

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from ._process_tasks import Gate

pytestmark = [pytest.mark.usefixtures("process_pools"), pytest.mark.filterwarnings(FORK_WARNING)]


def shut_down_within_bound(pool: ProcessPoolExecutor) -> None:
    """``pool.shutdown(wait=True)``, failing the test if it has not returned in LONG_WAIT."""
    BackgroundCall(pool.shutdown).outcome("shutdown(wait=True) of the broken pool to return")


def skip_stdlib_with_gh_107219(cf: FuturesAPI) -> None:
    """Skip, not xfail: on the stdlib that still has gh-107219, a future cancelled while the
    pool breaks kills the pool's manager thread, which leaves its queue thread running and
    the other futures pending for ever."""
    if is_stdlib(cf) and stdlib_fails_to_break_when_a_pending_future_was_cancelled():
        pytest.skip("gh-107219: the pool's manager thread dies on a cancelled future")


def assert_broken(cf: FuturesAPI, pool: ProcessPoolExecutor, futures: list[Future[Any]]) -> None:
    """Every future in *futures* fails with BrokenProcessPool (soon), and so does submit()."""
    broken_process_pool = broken_process_pool_error(cf)
    results_within(cf, futures, "every future to fail once a worker died")
    errors = [future.exception() for future in futures]
    assert all(isinstance(error, broken_process_pool) for error in errors), errors
    with pytest.raises(broken_process_pool):
        pool.submit(identity, "after the pool broke")


# ---------------------------------------------------------------------------------------------
# The exception


def test_broken_process_pool_is_a_broken_executor(cf: FuturesAPI) -> None:
    assert issubclass(broken_process_pool_error(cf), cf.BrokenExecutor)
    assert issubclass(cf.BrokenExecutor, RuntimeError)


def test_executor_impl_raises_the_stdlibs_own_broken_process_pool(impl: FuturesAPI) -> None:
    """So that ``except concurrent.futures.process.BrokenProcessPool`` catches ours."""
    assert broken_process_pool_error(impl) is concurrent.futures.process.BrokenProcessPool


def test_executor_impl_offers_the_crash_points_these_tests_inject() -> None:
    assert tuple(impl_process_module().CRASH_POINTS) == CRASH_POINTS


# ---------------------------------------------------------------------------------------------
# A worker dies


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_killed_worker_fails_every_running_and_pending_future_and_later_submissions(
    cf: FuturesAPI, process_pools: ProcessPools, context: str
) -> None:
    """The other worker is still blocked when the pool breaks: it must not outlive the pool."""
    gate = process_pools.gate()
    pool = process_pools.make(cf, context=context, max_workers=2)
    running = [pool.submit(block, gate, i) for i in range(2)]
    pending = [pool.submit(identity, i) for i in range(3)]
    pids = {entered(gate, "the first task to start"), entered(gate, "the second task to start")}
    process_pools.observe(*pids)
    kill(min(pids))
    assert_broken(cf, pool, running + pending)
    shut_down_within_bound(pool)
    assert wait_until_gone(pids, 0) == set(), "shutdown() returned before the workers ended"
    assert [c for c in multiprocessing.active_children() if c.pid in pids] == []


def submit_a_crash_and_three_more(
    cf: FuturesAPI, process_pools: ProcessPools
) -> tuple[ProcessPoolExecutor, list[Future[Any]]]:
    """A one-worker pool whose first task ends its worker abruptly, but only once three
    more tasks are queued behind it. Returns (pool, the four futures)."""
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    futures: list[Future[Any]] = [pool.submit(exit_abruptly_at, gate)]
    futures += [pool.submit(identity, i) for i in range(3)]
    process_pools.observe(entered(gate, "the crashing task to start"))
    gate.open()
    return pool, futures


def test_a_worker_exiting_abruptly_inside_a_task_breaks_the_pool(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    pool, futures = submit_a_crash_and_three_more(cf, process_pools)
    assert_broken(cf, pool, futures)
    shut_down_within_bound(pool)


def test_each_future_of_a_broken_pool_fails_with_its_own_broken_process_pool(
    cf: FuturesAPI, process_pools: ProcessPools, request: pytest.FixtureRequest
) -> None:
    """Exceptions are mutable: raising one shared instance from several futures chains
    their tracebacks into one that grows with every result() call."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_shares_one_broken_process_pool_error(),
        "gh-101267: ProcessPoolExecutor shares one BrokenProcessPool among all futures",
    )
    pool, futures = submit_a_crash_and_three_more(cf, process_pools)
    assert_broken(cf, pool, futures)
    errors = [future.exception() for future in futures]
    assert len({id(error) for error in errors}) == len(errors)


def test_a_future_cancelled_before_the_pool_broke_stays_cancelled_and_the_others_fail(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    skip_stdlib_with_gh_107219(cf)
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    running = pool.submit(block, gate, "running")
    queued = [pool.submit(identity, i) for i in range(8)]
    cancelled, last = pool.submit(identity, "cancelled"), pool.submit(identity, "last")
    pid = entered(gate, "the blocking task to start")
    process_pools.observe(pid)
    assert cancelled.cancel(), "a future queued behind eight others could not be cancelled"
    kill(pid)
    futures: list[Future[Any]] = [running, *queued, last]
    assert_broken(cf, pool, futures)
    assert cancelled.cancelled()
    shut_down_within_bound(pool)


TASKS = 10_000
BLOCKED_TASK = TASKS // 2


@pytest.fixture
def gated_pool(
    cf: FuturesAPI, process_pools: ProcessPools
) -> tuple[ProcessPoolExecutor, ProcessPools, Gate]:
    """A two-worker pool whose ``block_at`` task waits at a gate (given to each worker by
    the initializer, not pickled with each of the many tasks): (pool, pools, gate)."""
    gate = process_pools.gate()
    pool = process_pools.make(cf, initializer=install_gate, initargs=(gate,))
    return pool, process_pools, gate


def test_every_one_of_10k_futures_resolves_when_a_worker_is_killed_midway(
    cf: FuturesAPI, gated_pool: tuple[ProcessPoolExecutor, ProcessPools, Gate]
) -> None:
    pool, process_pools, gate = gated_pool
    futures = [pool.submit(block_at, i, BLOCKED_TASK) for i in range(TASKS)]
    pid = entered(gate, f"task {BLOCKED_TASK} to start")
    process_pools.observe(pid)
    kill(pid)
    results_within(
        cf, futures, f"every one of {TASKS} futures to resolve after a worker was killed"
    )
    broken_process_pool = broken_process_pool_error(cf)
    outcomes = [f.exception() or f.result() for f in futures]
    assert isinstance(outcomes[BLOCKED_TASK], broken_process_pool)
    unexpected = [
        (i, outcome)
        for i, outcome in enumerate(outcomes)
        if outcome != i and not isinstance(outcome, broken_process_pool)
    ]
    assert unexpected == []
    shut_down_within_bound(pool)


def test_a_map_of_10k_calls_stops_with_broken_process_pool_when_a_worker_is_killed_midway(
    cf: FuturesAPI, gated_pool: tuple[ProcessPoolExecutor, ProcessPools, Gate]
) -> None:
    """When map() raises, it cancels the calls not yet run while the pool fails them."""
    skip_stdlib_with_gh_107219(cf)
    pool, process_pools, gate = gated_pool
    results = pool.map(block_at, range(TASKS), itertools.repeat(BLOCKED_TASK), chunksize=2)
    yielded: list[int] = []
    consumer = BackgroundCall(lambda: yielded.extend(results), name="test-map-consumer")
    pid = entered(gate, f"call {BLOCKED_TASK} to start")
    process_pools.observe(pid)
    kill(pid)
    with pytest.raises(broken_process_pool_error(cf)):
        consumer.outcome("the map to stop once a worker was killed")
    assert yielded == list(range(len(yielded)))
    assert len(yielded) <= BLOCKED_TASK
    shut_down_within_bound(pool)


# ---------------------------------------------------------------------------------------------
# A failing initializer


def test_a_failing_initializer_breaks_the_pool_and_is_logged(
    cf: FuturesAPI,
    process_pools: ProcessPools,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The initializer fails only once every task is queued. With spawn, a worker logs to
    its stderr (this process's, captured); a pool may also log in the parent."""
    gate = process_pools.gate()
    pool = process_pools.make(
        cf, context="spawn", initializer=fail_to_initialize_at, initargs=(gate,)
    )
    futures = [pool.submit(identity, i) for i in range(4)]
    process_pools.observe(entered(gate, "a worker to run its initializer"))
    gate.open()
    assert_broken(cf, pool, futures)
    shut_down_within_bound(pool)
    logged = capfd.readouterr().err + caplog.text
    assert "initializer failed on purpose" in logged


# ---------------------------------------------------------------------------------------------
# What does not pickle fails its own future


def _unpicklable_function() -> Callable[[], int]:
    return lambda: 1


BAD_INPUT: dict[str, tuple[Callable[..., Any], tuple[Any, ...], str]] = {
    # case: (function, arguments, message of the pickling error)
    "function": (_unpicklable_function(), (), ""),
    "argument": (identity, (Unpicklable(),), "Unpicklable refuses to be pickled, on purpose"),
    "result": (return_unpicklable, (), "Unpicklable refuses to be pickled, on purpose"),
    "exception": (raise_unpicklable, (), "UnpicklableError refuses to be pickled, on purpose"),
}

PICKLING_ERRORS = (pickle.PicklingError, AttributeError, TypeError)
"""What pickling a lambda raises, depending on the Python version."""


@pytest.mark.parametrize("case", sorted(BAD_INPUT), ids=lambda case: f"unpicklable {case}")
def test_what_does_not_pickle_fails_its_own_future_and_the_pool_keeps_working(
    cf: FuturesAPI, process_pools: ProcessPools, case: str
) -> None:
    function, args, message = BAD_INPUT[case]
    pool = process_pools.make(cf, max_workers=1)
    before = pool.submit(identity, "before").result(timeout=LONG_WAIT)
    future = pool.submit(function, *args)
    error = future.exception(timeout=LONG_WAIT)
    if message:
        assert isinstance(error, pickle.PicklingError), repr(error)
        assert str(error) == message
    else:
        assert isinstance(error, PICKLING_ERRORS), repr(error)
    assert (before, pool.submit(identity, "after").result(timeout=LONG_WAIT)) == (
        "before",
        "after",
    )


def test_a_result_that_fails_to_unpickle_fails_its_future(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    """The stdlib breaks the whole pool (BrokenProcessPool, the unpickling error in its
    cause); either way the future fails, at once, and nothing hangs."""
    pool = process_pools.make(cf, max_workers=1)
    future = pool.submit(return_fails_to_unpickle)
    error = future.exception(timeout=LONG_WAIT)
    assert isinstance(error, (pickle.UnpicklingError, broken_process_pool_error(cf)))
    if not is_stdlib(cf):
        assert isinstance(error, pickle.UnpicklingError)
        assert pool.submit(identity, "after").result(timeout=LONG_WAIT) == "after"
    shut_down_within_bound(pool)


# ---------------------------------------------------------------------------------------------
# Crashes at precise points (executor_impl's inject_crash)


def busy_pool_with_a_crash_injected(
    impl: FuturesAPI, process_pools: ProcessPools, point: str, context: str = DEFAULT_CONTEXT
) -> tuple[ProcessPoolExecutor, Future[str], Gate]:
    """A one-worker pool of executor_impl busy with a task blocked at a gate, the crash at
    *point* injected for the next task: tasks submitted now queue behind the blocked one,
    and the next of them crashes the worker once the gate opens. Returns (pool, the blocked
    task's future, gate)."""
    gate = process_pools.gate()
    pool = process_pools.make(impl, context=context, max_workers=1)
    blocked = pool.submit(block, gate, "blocked")
    process_pools.observe(entered(gate, "the blocking task to start"))
    inject_crash(pool, point)
    return pool, blocked, gate


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_worker_crashing_at_any_point_of_the_exchange_breaks_the_pool(
    impl: FuturesAPI, process_pools: ProcessPools, point: str
) -> None:
    pool, blocked, gate = busy_pool_with_a_crash_injected(impl, process_pools, point)
    futures: list[Future[Any]] = [pool.submit(identity, i) for i in range(3)]
    gate.open()
    assert blocked.result(timeout=LONG_WAIT) == "blocked"
    assert_broken(impl, pool, futures)
    shut_down_within_bound(pool)


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_worker_crashing_half_way_through_sending_a_large_result_breaks_the_pool(
    impl: FuturesAPI, process_pools: ProcessPools, context: str
) -> None:
    pool, blocked, gate = busy_pool_with_a_crash_injected(
        impl, process_pools, "result_half_sent", context
    )
    futures: list[Future[Any]] = [pool.submit(big_result, 1 << 20)]
    futures.append(pool.submit(identity, "pending"))
    gate.open()
    assert blocked.result(timeout=LONG_WAIT) == "blocked"
    assert_broken(impl, pool, futures)
    shut_down_within_bound(pool)


def test_a_worker_crashing_while_the_parent_writes_a_large_task_does_not_hang_the_parent(
    impl: FuturesAPI, process_pools: ProcessPools
) -> None:
    """50 MB is far more than a pipe holds: submit() must return while the worker is busy
    (the parent writes later, or in another thread), and that write must give up when the
    worker is gone, not wait for a reader that will never come."""
    pool, blocked, gate = busy_pool_with_a_crash_injected(impl, process_pools, "task_received")
    data = b"x" * (50 << 20)

    def submit_both() -> list[Future[Any]]:
        return [pool.submit(len, data), pool.submit(identity, 1)]

    futures = BackgroundCall(submit_both).outcome("submit() of a 50 MB task to return")
    gate.open()
    assert blocked.result(timeout=LONG_WAIT) == "blocked"
    assert_broken(impl, pool, futures)
    shut_down_within_bound(pool)


def test_a_worker_dying_while_the_parent_sends_it_large_calls_breaks_the_pool_and_exit_is_clean(
    cf: FuturesAPI, request: pytest.FixtureRequest
) -> None:
    """CPython's test_crash_big_data, in a fresh interpreter: a map of calls with 4 MB
    arguments whose workers exit at once raises BrokenProcessPool, then shutdown() returns.
    Before 3.11 the stdlib hangs in shutdown() (gh-94777); the run is bounded."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_hangs_after_a_crash_while_sending_data(),
        "gh-94777: ProcessPoolExecutor deadlocks when a worker dies while a large call is sent",
    )
    run = run_crashes_while_sending_data(cf.__name__)
    assert (run.finished, run.returncode, run.stderr) == (True, 0, "")
    assert run.stdout.splitlines() == ["BrokenProcessPool", "shut down"]
