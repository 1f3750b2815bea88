"""ProcessPoolExecutor (executor_impl/process.py), side by side with the stdlib's.

As documented: ``ProcessPoolExecutor(max_workers=None, mp_context=None, initializer=None,
initargs=(), *, max_tasks_per_child=None)`` runs calls in at most *max_workers* worker
processes (default: the number of CPUs) started by *mp_context*; only picklable objects can
be executed and returned. *initializer(*initargs)* runs at the start of each worker. A
worker exits after *max_tasks_per_child* tasks and a fresh one replaces it; that requires a
start method other than fork, and without an mp_context it makes the pool use spawn.
``map(fn, *iterables, timeout=None, chunksize=1)`` sends the calls in chunks of *chunksize*
and yields their results in input order. An exception raised by a call is raised again in
the parent, the worker's traceback (as text) being its ``__cause__``.

A broken pool is tested in test_process_broken.py; shutdown and interpreter exit in
test_process_shutdown.py. Tasks live in _process_tasks.py, where a spawned worker finds them.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue

import pytest

from . import _process_tasks as tasks
from ._helpers import LONG_WAIT, SHORT_TIMEOUT, FuturesAPI, is_stdlib, xfail_stdlib_if
from ._process_helpers import (
    CONTEXTS,
    FORK_WARNING,
    ProcessPools,
    entered,
    process_pool_class,
    run_a_backlog_with_max_tasks_per_child,
    stdlib_hangs_on_a_max_tasks_per_child_backlog,
    stdlib_lacks_max_tasks_per_child,
    wait_until_gone,
)
from ._process_tasks import (
    BASE_EXCEPTIONS,
    block,
    capture,
    fail_at,
    identity,
    origin,
    raise_base_exception,
    raise_value_error,
    remember,
    remembered,
    remembered_event_is_set,
)

pytestmark = [pytest.mark.usefixtures("process_pools"), pytest.mark.filterwarnings(FORK_WARNING)]


def skip_stdlib_without_max_tasks_per_child(cf: FuturesAPI) -> None:
    if is_stdlib(cf) and stdlib_lacks_max_tasks_per_child():
        pytest.skip("the stdlib has max_tasks_per_child from Python 3.11")


# ---------------------------------------------------------------------------------------------
# Construction


@pytest.mark.parametrize("max_workers", [0, -1])
def test_max_workers_below_one_raises_value_error(cf: FuturesAPI, max_workers: int) -> None:
    with pytest.raises(ValueError, match=r"^max_workers must be greater than 0$"):
        process_pool_class(cf)(max_workers=max_workers)


def test_a_non_callable_initializer_raises_type_error(cf: FuturesAPI) -> None:
    with pytest.raises(TypeError, match=r"^initializer must be a callable$"):
        process_pool_class(cf)(max_workers=1, initializer="not callable")  # type: ignore[call-overload]


@pytest.mark.parametrize("value", ["3", 2.0])
def test_max_tasks_per_child_that_is_not_an_int_raises_type_error(
    cf: FuturesAPI, process_pools: ProcessPools, value: object
) -> None:
    skip_stdlib_without_max_tasks_per_child(cf)
    with pytest.raises(TypeError, match=r"^max_tasks_per_child must be an integer$"):
        process_pools.make(cf, context="spawn", max_tasks_per_child=value)


@pytest.mark.parametrize("value", [0, -1])
def test_max_tasks_per_child_below_one_raises_value_error(
    cf: FuturesAPI, process_pools: ProcessPools, value: int
) -> None:
    skip_stdlib_without_max_tasks_per_child(cf)
    with pytest.raises(ValueError, match=r"^max_tasks_per_child must be >= 1$"):
        process_pools.make(cf, context="spawn", max_tasks_per_child=value)


@pytest.mark.skipif("fork" not in CONTEXTS, reason="needs the fork start method")
def test_max_tasks_per_child_with_the_fork_start_method_raises_value_error(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    """CPython issue 90622: a replacement worker would be forked from a process that runs
    threads."""
    skip_stdlib_without_max_tasks_per_child(cf)
    with pytest.raises(ValueError, match="'fork'"):
        process_pools.make(cf, context="fork", max_tasks_per_child=3)


FROM_THE_TEST = "set by the test process"

EXPECTED_ORIGIN = {
    # start method: (the worker is a child of this process, it inherited this memory)
    "fork": (True, True),
    "forkserver": (False, False),
    "spawn": (True, False),
}


def test_max_tasks_per_child_without_mp_context_starts_workers_with_spawn(
    cf: FuturesAPI, process_pools: ProcessPools, monkeypatch: pytest.MonkeyPatch
) -> None:
    skip_stdlib_without_max_tasks_per_child(cf)
    monkeypatch.setattr(tasks, "INHERITED", FROM_THE_TEST)
    pool = process_pools.make(cf, context=None, max_workers=1, max_tasks_per_child=3)
    pid, parent, inherited = pool.submit(origin).result(timeout=LONG_WAIT)
    process_pools.observe(pid)
    assert (parent == os.getpid(), inherited == FROM_THE_TEST) == EXPECTED_ORIGIN["spawn"]


def test_max_workers_defaults_to_the_cpu_count(cf: FuturesAPI, process_pools: ProcessPools) -> None:
    """The count is os.process_cpu_count() from 3.13, os.cpu_count() before."""
    expected = getattr(os, "process_cpu_count", os.cpu_count)() or 1
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=None)
    futures = [pool.submit(block, gate, i) for i in range(expected + 2)]
    pids = {entered(gate, f"task {i} of {expected} to start") for i in range(expected)}
    assert process_pools.worker_pids(cf, pool) == sorted(pids)
    gate.open()
    assert [f.result(timeout=LONG_WAIT) for f in futures] == list(range(expected + 2))


# ---------------------------------------------------------------------------------------------
# Worker processes


@pytest.mark.parametrize("context", CONTEXTS)
def test_mp_context_decides_how_the_workers_start(
    cf: FuturesAPI, process_pools: ProcessPools, context: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "INHERITED", FROM_THE_TEST)
    pool = process_pools.make(cf, context=context)
    pid, parent, inherited = pool.submit(origin).result(timeout=LONG_WAIT)
    process_pools.observe(pid)
    assert pid != os.getpid()
    assert (parent == os.getpid(), inherited == FROM_THE_TEST) == EXPECTED_ORIGIN[context]


def test_never_more_than_max_workers_tasks_run_at_once(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=2)
    futures = [pool.submit(block, gate, i) for i in range(5)]
    pids = {entered(gate, "a first task to start"), entered(gate, "a second task to start")}
    with pytest.raises(queue.Empty):
        gate.entered.get(timeout=SHORT_TIMEOUT)
    assert process_pools.worker_pids(cf, pool) == sorted(pids)
    assert os.getpid() not in pids
    gate.open()
    assert [f.result(timeout=LONG_WAIT) for f in futures] == list(range(5))


def test_every_task_sees_what_the_initializer_set_up_with_initargs(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    pool = process_pools.make(cf, initializer=remember, initargs=({"set": "up"},))
    results = [f.result(timeout=LONG_WAIT) for f in [pool.submit(remembered) for _ in range(6)]]
    process_pools.observe(*(pid for _, pid in results))
    assert [value for value, _ in results] == [{"set": "up"}] * 6


@pytest.mark.parametrize("context", [c for c in CONTEXTS if c != "forkserver"])
def test_initargs_may_carry_a_synchronisation_primitive_of_the_pool_context(
    cf: FuturesAPI, process_pools: ProcessPools, context: str
) -> None:
    """Such objects may only be shared through inheritance, that is in the arguments of the
    worker process: the pool must pass *initargs* to each worker when it starts it."""
    event = multiprocessing.get_context(context).Event()
    event.set()
    pool = process_pools.make(
        cf, context=context, max_workers=1, initializer=remember, initargs=(event,)
    )
    assert pool.submit(remembered_event_is_set).result(timeout=LONG_WAIT) is True


# ---------------------------------------------------------------------------------------------
# submit()


@pytest.mark.parametrize("context", CONTEXTS)
def test_submit_runs_a_module_level_function_with_its_arguments_including_fn_and_self(
    cf: FuturesAPI, process_pools: ProcessPools, context: str
) -> None:
    pool = process_pools.make(cf, context=context)
    future = pool.submit(capture, 1, "two", fn=3, self=4, kw="five")
    assert future.result(timeout=LONG_WAIT) == ((1, "two"), {"fn": 3, "self": 4, "kw": "five"})


def test_submit_takes_the_callable_positionally_only(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    pool = process_pools.make(cf)
    with pytest.raises(TypeError):
        pool.submit(fn=capture, arg=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        pool.submit()  # type: ignore[call-arg]


def test_a_result_is_a_copy_made_by_pickling(cf: FuturesAPI, process_pools: ProcessPools) -> None:
    sent = {"nested": [1, 2, 3]}
    pool = process_pools.make(cf)
    received = pool.submit(identity, sent).result(timeout=LONG_WAIT)
    assert received == sent
    assert received is not sent


def test_an_exception_raised_in_a_worker_is_raised_again_with_the_remote_traceback_as_cause(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    """The stdlib's cause is a ``_RemoteTraceback`` whose str() is the formatted traceback;
    what matters to users is that the text shows where the worker raised."""
    pool = process_pools.make(cf)
    future = pool.submit(raise_value_error, "raised in the worker")
    with pytest.raises(ValueError, match=r"^raised in the worker$") as excinfo:
        future.result(timeout=LONG_WAIT)
    assert isinstance(future.exception(), ValueError)
    cause = str(excinfo.value.__cause__)
    assert "Traceback" in cause
    assert "raise_value_error" in cause
    assert "raise ValueError(message)" in cause


@pytest.mark.parametrize("kind", sorted(BASE_EXCEPTIONS))
def test_a_base_exception_raised_by_a_task_reaches_its_future_and_the_worker_survives(
    cf: FuturesAPI, process_pools: ProcessPools, kind: str
) -> None:
    pool = process_pools.make(cf, max_workers=1)
    before = pool.submit(os.getpid).result(timeout=LONG_WAIT)
    future = pool.submit(raise_base_exception, kind, 3)
    with pytest.raises(BASE_EXCEPTIONS[kind]) as excinfo:
        future.result(timeout=LONG_WAIT)
    assert excinfo.value.args == (3,)
    assert pool.submit(os.getpid).result(timeout=LONG_WAIT) == before


# ---------------------------------------------------------------------------------------------
# map()


@pytest.mark.parametrize(
    ("context", "chunksize"),
    # Every chunksize with one start method, every other start method once.
    [(CONTEXTS[0], 1), (CONTEXTS[0], 3), (CONTEXTS[0], 256), *((c, 3) for c in CONTEXTS[1:])],
)
def test_map_yields_the_results_in_input_order(
    cf: FuturesAPI, process_pools: ProcessPools, context: str, chunksize: int
) -> None:
    pool = process_pools.make(cf, context=context)
    assert list(pool.map(identity, range(1000), chunksize=chunksize)) == list(range(1000))


def test_map_zips_several_iterables_and_stops_at_the_shortest(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    bases, exponents, moduli = range(10), [2] * 6, range(3, 100)
    pool = process_pools.make(cf)
    results = pool.map(pow, bases, exponents, moduli, chunksize=4)
    assert list(results) == list(map(pow, bases, exponents, moduli))


def test_map_of_nothing_yields_nothing(cf: FuturesAPI, process_pools: ProcessPools) -> None:
    pool = process_pools.make(cf)
    assert list(pool.map(identity, [], chunksize=5)) == []


@pytest.mark.parametrize("chunksize", [0, -1])
def test_map_with_a_chunksize_below_one_raises_value_error(
    cf: FuturesAPI, process_pools: ProcessPools, chunksize: int
) -> None:
    pool = process_pools.make(cf)
    with pytest.raises(ValueError, match=r"^chunksize must be >= 1\.$"):
        pool.map(identity, range(3), chunksize=chunksize)


def test_map_raises_a_calls_exception_after_yielding_every_earlier_result(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    pool = process_pools.make(cf)
    yielded: list[int] = []
    with pytest.raises(ValueError, match=r"^item 4 failed on purpose$"):
        yielded.extend(pool.map(fail_at, range(10), itertools.repeat(4)))
    assert yielded == [0, 1, 2, 3]


@pytest.mark.parametrize("chunksize", [3, 256])
def test_map_chunks_are_invisible_when_a_call_raises(
    impl: FuturesAPI, process_pools: ProcessPools, chunksize: int
) -> None:
    """executor_impl only: the results of a chunk's calls before the failing one are yielded
    first, as with chunksize=1. The stdlib runs a chunk as one call returning a list, so the
    exception replaces the whole chunk: it yields [0, 1, 2] with chunksize=3, nothing with
    256 (its documented contract only says the exception is raised when its value is
    retrieved)."""
    pool = process_pools.make(impl)
    yielded: list[int] = []
    with pytest.raises(ValueError, match=r"^item 4 failed on purpose$"):
        yielded.extend(pool.map(fail_at, range(10), itertools.repeat(4), chunksize=chunksize))
    assert yielded == [0, 1, 2, 3]


@pytest.mark.parametrize("chunksize", [1, 3])
def test_map_raises_timeout_error_when_a_result_is_late(
    cf: FuturesAPI, process_pools: ProcessPools, chunksize: int
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(cf)
    results = pool.map(block, itertools.repeat(gate, 2), [1, 2], timeout=SHORT_TIMEOUT)
    with pytest.raises(cf.TimeoutError):
        next(results)
    gate.open()


# ---------------------------------------------------------------------------------------------
# max_tasks_per_child


def test_a_worker_exits_after_max_tasks_per_child_tasks_and_a_fresh_one_replaces_it(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    skip_stdlib_without_max_tasks_per_child(cf)
    context = "forkserver" if "forkserver" in CONTEXTS else "spawn"
    pool = process_pools.make(cf, context=context, max_workers=1, max_tasks_per_child=2)
    pids = [pool.submit(os.getpid).result(timeout=LONG_WAIT) for _ in range(5)]
    process_pools.observe(*pids)
    assert pids[0] == pids[1]
    assert pids[2] == pids[3]
    assert len({pids[0], pids[2], pids[4]}) == 3, pids
    assert wait_until_gone({pids[0], pids[2]}, LONG_WAIT) == set(), "a used-up worker lives on"


def test_a_backlog_runs_to_completion_with_max_tasks_per_child(
    cf: FuturesAPI, request: pytest.FixtureRequest
) -> None:
    """gh-115634: twenty tasks on two workers that each exit after two tasks, all submitted
    at once. The stdlib (3.11 to 3.13 at least) stops once the first workers have exited and
    never replaces them; the run is in a fresh interpreter, bounded, so that its hang costs a
    few seconds only."""
    skip_stdlib_without_max_tasks_per_child(cf)
    xfail_stdlib_if(
        request,
        cf,
        stdlib_hangs_on_a_max_tasks_per_child_backlog(),
        "gh-115634: ProcessPoolExecutor hangs when 1 < max_tasks_per_child < tasks/workers",
    )
    run = run_a_backlog_with_max_tasks_per_child(cf.__name__)
    assert (run.finished, run.returncode, run.stderr) == (True, 0, "")
    done, distinct_workers = map(int, run.stdout.split())
    assert done == 20
    assert distinct_workers >= 10
