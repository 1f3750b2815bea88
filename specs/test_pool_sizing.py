"""Pool sizing, as the documentation of ``concurrent.futures`` states it.

    ThreadPoolExecutor: "An Executor subclass that uses a pool of at most max_workers threads
    to execute calls asynchronously." ... "thread_name_prefix was added to allow users to
    control the threading.Thread names for worker threads created by the pool for easier
    debugging."

    ProcessPoolExecutor: "An Executor subclass that executes calls asynchronously using a
    pool of at most max_workers processes. If max_workers is None or not given, it will
    default to the number of processors on the machine. If max_workers is less than or equal
    to 0, then a ValueError will be raised." ... "max_tasks_per_child is an optional argument
    that specifies the maximum number of tasks a single process can execute before it will
    exit and be replaced with a fresh worker process." ... "This feature is incompatible with
    the "fork" start method."

What the machines check, under every interleaving and without sleeping:

- At most ``max_workers`` calls run at once. Each call records its start and its finish
  (``tasks.record_start_finish``) around a wait at a gate; the recorded history never has
  more than ``max_workers`` calls between start and finish. While the gate is closed,
  exactly ``min(submitted, max_workers)`` calls wait at it: that many must get there
  (every call is eventually run, ``max_workers=1`` included), and no more may.
- ``max_workers <= 0`` raises ``ValueError("max_workers must be greater than 0")``, the
  stdlib's text; ``None`` (or no argument) gives a pool that runs calls.
- Thread pools name their threads starting with ``thread_name_prefix``, where they take one.
- ``max_tasks_per_child=n`` (where the factory takes it): no worker process runs more than
  *n* calls (told apart by pid), and calls keep running as workers are replaced; ``n <= 0``
  raises ``ValueError("max_tasks_per_child must be >= 1")`` and the ``fork`` start method
  raises ``ValueError`` too.

A backlog of calls with ``1 < max_tasks_per_child`` hangs the stdlib (gh-115634): the
retirement machine queues several calls at once only with ``max_tasks_per_child=1``.
"""

from __future__ import annotations

import collections
import inspect
import itertools
import multiprocessing
import os
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from pytest_futures_plugin import tasks
from pytest_futures_plugin.controls import Controls, ControlTimeout

from ._harness import BOUND, result_within, run_spec, shut_down_within_bound

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from pytest_futures_plugin.backends import Backend

pytestmark = pytest.mark.futures_area("pool-sizing")


def takes(backend: Backend, keyword: str) -> bool:
    """Whether the backend's factory names *keyword* among its parameters."""
    try:
        return keyword in inspect.signature(backend.factory).parameters
    except (TypeError, ValueError):
        return False


def refused(backend: Backend, **kwargs: Any) -> None:
    """``backend.make(**kwargs)`` raises ValueError, as documented: the type, not the stdlib's
    wording (executor_impl's own tests check its wording). A pool made instead is shut down
    before the failure is reported."""
    made: list[Executor] = []
    try:
        with pytest.raises(ValueError):  # noqa: PT011 (the documented type is all there is)
            made.append(backend.make(**kwargs))
    finally:
        for pool in made:
            shut_down_within_bound(pool)


def most_at_once(events: list[Any]) -> tuple[int, list[Any]]:
    """The largest number of calls between ``("start", label)`` and ``("finish", label)``
    in *events*, and the labels of one moment it was reached."""
    running: list[Any] = []
    peak: tuple[int, list[Any]] = (0, [])
    for event in events:
        what, label = event
        if what == "start":
            running.append(label)
            if len(running) > peak[0]:
                peak = (len(running), list(running))
        elif label in running:
            running.remove(label)
    return peak


# ------------------------------------------------------------------------------------------
# At most max_workers calls at once


class Concurrency(RuleBasedStateMachine):
    """Rounds of calls held at a gate: submit some, then release them all and start over."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.api = backend.api
        self.controls = Controls(timeout=BOUND)
        self.recorder = self.controls.recorder("starts and finishes")
        self.gate = self.controls.gate("round-1")
        self.rounds = itertools.count(2)
        self.labels = itertools.count(1)
        self.pool: Executor | None = None
        self.max_workers = 0
        self.prefix: str | None = None
        self.held: list[tuple[int, Future[Any]]] = []  # submitted in this round
        self.ran: list[int] = []  # labels of the calls of the rounds released

    @property
    def executor(self) -> Executor:
        assert self.pool is not None, "make_executor runs first"
        return self.pool

    @initialize(data=st.data())
    def make_executor(self, data: st.DataObject) -> None:
        processes = self.backend.capabilities.processes
        self.max_workers = data.draw(st.integers(1, 2 if processes else 3), "max_workers")
        kwargs: dict[str, Any] = {"max_workers": self.max_workers}
        if not processes and takes(self.backend, "thread_name_prefix"):
            self.prefix = data.draw(st.none() | st.text(min_size=1, max_size=5), "prefix")
            if self.prefix is not None:
                kwargs["thread_name_prefix"] = self.prefix
        self.pool = self.backend.make(**kwargs)

    @rule(count=st.integers(1, 4))
    def submit(self, count: int) -> None:
        for _ in range(count):
            label = next(self.labels)
            future = self.executor.submit(
                tasks.record_start_finish, self.recorder, label, label, self.gate
            )
            self.held.append((label, future))

    @precondition(lambda self: self.held)
    @rule()
    def release(self) -> None:
        """Exactly min(submitted, max_workers) calls wait at the gate; then they all run."""
        inside = min(len(self.held), self.max_workers)
        try:
            self.gate.wait_inside(inside, timeout=BOUND)
        except ControlTimeout:
            raise AssertionError(
                f"only {self.gate.entered} of {len(self.held)} calls started within "
                f"{BOUND}s on a pool of max_workers={self.max_workers}"
            ) from None
        entered = self.gate.entered
        assert entered == inside, (
            f"{entered} calls run at once on a pool of max_workers={self.max_workers}"
        )
        self.gate.release()
        for label, future in self.held:
            assert result_within(future, f"call {label} once released", self.api) == label
            self.ran.append(label)
        self.held = []
        self.gate = self.controls.gate(f"round-{next(self.rounds)}")

    @precondition(lambda self: self.prefix is not None and not self.held)
    @rule()
    def submit_current_thread_name(self) -> None:
        future = self.executor.submit(tasks.current_thread_name)
        name = result_within(future, "current_thread_name()", self.api)
        assert isinstance(name, str), f"current_thread_name() returned {name!r}"
        assert name.startswith(str(self.prefix)), (
            f"a worker thread named {name!r} with thread_name_prefix={self.prefix!r}"
        )

    @invariant()
    def at_most_max_workers_calls_run_at_once(self) -> None:
        peak, labels = most_at_once(self.recorder.events)
        assert peak <= self.max_workers, (
            f"calls {labels} ran at once on a pool of max_workers={self.max_workers}"
        )

    @invariant()
    def at_most_max_workers_calls_wait_at_the_gate(self) -> None:
        entered = self.gate.entered
        assert entered <= min(len(self.held), self.max_workers), (
            f"{entered} of {len(self.held)} calls at the gate at once on a pool of "
            f"max_workers={self.max_workers}"
        )

    @invariant()
    def every_released_call_ran_once(self) -> None:
        starts = self.recorder.start_order
        repeated = [label for label, n in collections.Counter(starts).items() if n > 1]
        assert repeated == [], f"calls started more than once: {repeated}"
        assert set(self.ran) <= set(self.recorder.finish_order), "a released call never finished"

    def teardown(self) -> None:
        self.controls.close()
        if self.pool is not None:
            shut_down_within_bound(self.pool)


def test_at_most_max_workers_calls_run_at_once(futures_backend: Backend, futures_seed: int) -> None:
    """Never more than max_workers calls between start and finish; every call runs."""
    run_spec(Concurrency, futures_backend, seed=futures_seed)


# ------------------------------------------------------------------------------------------
# What the constructor accepts


class Construction(RuleBasedStateMachine):
    """Executors made with valid and invalid sizes; each valid one runs a call."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.api = backend.api
        self.retires = backend.capabilities.max_tasks_per_child
        self.forks = (
            backend.capabilities.mp_context and "fork" in multiprocessing.get_all_start_methods()
        )
        self.default_made = False

    @rule(max_workers=st.integers(max_value=0))
    def make_executor_with_no_workers(self, max_workers: int) -> None:
        refused(self.backend, max_workers=max_workers)

    @precondition(lambda self: not self.default_made)
    @rule(explicit=st.booleans())
    def make_executor_of_the_default_size(self, explicit: bool) -> None:
        """Once per example: a process pool of the default size starts a worker per CPU."""
        self.default_made = True
        pool = self.backend.make(max_workers=None) if explicit else self.backend.make()
        try:
            future = pool.submit(tasks.return_value, "default size")
            assert result_within(future, "a call to a pool of the default size", self.api) == (
                "default size"
            )
        finally:
            shut_down_within_bound(pool)

    @precondition(lambda self: self.retires)
    @rule(max_tasks=st.integers(max_value=0))
    def make_executor_with_no_tasks_per_child(self, max_tasks: int) -> None:
        refused(self.backend, max_workers=1, max_tasks_per_child=max_tasks)

    @precondition(lambda self: self.retires and self.forks)
    @rule(max_tasks=st.integers(1, 3))
    def make_executor_retiring_forked_workers(self, max_tasks: int) -> None:
        fork = multiprocessing.get_context("fork")
        refused(
            self.backend,
            max_workers=1,
            mp_context=fork,
            max_tasks_per_child=max_tasks,
        )


def test_the_constructor_validates_its_sizes(futures_backend: Backend, futures_seed: int) -> None:
    """max_workers <= 0 and max_tasks_per_child <= 0 or with fork raise ValueError."""
    run_spec(Construction, futures_backend, seed=futures_seed, stateful_step_count=4)


# ------------------------------------------------------------------------------------------
# max_tasks_per_child


def start_method() -> str:
    """The cheapest start method that max_tasks_per_child allows here."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class WorkerRetirement(RuleBasedStateMachine):
    """A pool whose workers each run at most max_tasks_per_child calls."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.api = backend.api
        self.pool: Executor | None = None
        self.max_tasks = 0
        self.pids: list[int] = []  # the worker of each call, in the order they finished

    @property
    def executor(self) -> Executor:
        assert self.pool is not None, "make_executor runs first"
        return self.pool

    @initialize(max_workers=st.integers(1, 2), max_tasks=st.integers(1, 3))
    def make_executor(self, max_workers: int, max_tasks: int) -> None:
        self.max_tasks = max_tasks
        kwargs: dict[str, Any] = {"max_workers": max_workers, "max_tasks_per_child": max_tasks}
        if self.backend.capabilities.mp_context:
            kwargs["mp_context"] = multiprocessing.get_context(start_method())
        self.pool = self.backend.make(**kwargs)

    @rule()
    def submit(self) -> None:
        future = self.executor.submit(tasks.get_pid)
        self.pids.append(result_within(future, f"call {len(self.pids) + 1}", self.api))

    @precondition(lambda self: self.max_tasks == 1)
    @rule(count=st.integers(2, 4))
    def submit_several(self, count: int) -> None:
        """A backlog: each worker exits after one call while the others wait (gh-115634
        hangs the stdlib for a backlog with 1 < max_tasks_per_child)."""
        futures = [self.executor.submit(tasks.get_pid) for _ in range(count)]
        for n, future in enumerate(futures, len(self.pids) + 1):
            self.pids.append(result_within(future, f"call {n} of a backlog", self.api))

    @invariant()
    def no_worker_runs_more_than_max_tasks_per_child_calls(self) -> None:
        counts = collections.Counter(self.pids)
        over = {pid: n for pid, n in counts.items() if n > self.max_tasks}
        assert over == {}, f"workers (pid: calls) over max_tasks_per_child={self.max_tasks}: {over}"
        assert os.getpid() not in counts, "a call ran in the test process"

    def teardown(self) -> None:
        if self.pool is not None:
            shut_down_within_bound(self.pool)


def test_workers_retire_after_max_tasks_per_child_calls(
    futures_backend: Backend, futures_seed: int
) -> None:
    """No worker process runs more than max_tasks_per_child calls; fresh ones take over."""
    if not futures_backend.capabilities.max_tasks_per_child:
        pytest.skip("the executor takes no max_tasks_per_child")
    run_spec(WorkerRetirement, futures_backend, seed=futures_seed, stateful_step_count=6)
