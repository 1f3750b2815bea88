"""Broken pools, as the documentation of ``concurrent.futures`` states them.

    BrokenExecutor: "Derived from RuntimeError, this exception class is raised when an
    executor is broken for some reason, and cannot be used to submit or execute new tasks."

    BrokenProcessPool: "Derived from BrokenExecutor (formerly RuntimeError), this exception
    class is raised when one of the workers of a ProcessPoolExecutor has terminated in a
    non-clean fashion (for example, if it was killed from the outside)."

    BrokenThreadPool: "Derived from BrokenExecutor, this exception class is raised when one
    of the workers of a ThreadPoolExecutor has failed initializing."

    ProcessPoolExecutor / ThreadPoolExecutor(initializer=...): "Should initializer raise an
    exception, all currently pending jobs will raise a BrokenProcessPool [BrokenThreadPool],
    as well as any attempt to submit more jobs to the pool."

    shutdown(wait=True): "this method will not return until all the pending futures are done
    executing and the resources associated with the executor have been freed."

What the machines hold a pool to, under every interleaving:

- A worker process that dies (``faults.crash_worker`` inside a call, or SIGKILL from the
  test) breaks the pool within ``BOUND``: every call not finished by then fails with
  ``BrokenProcessPool``; a call that had finished keeps its result; every later ``submit``
  raises ``BrokenProcessPool``; ``shutdown()`` returns, and no worker outlives it.
- An initializer that raises fails every call submitted meanwhile with ``BrokenProcessPool``
  (``BrokenThreadPool`` for a thread pool), and every later ``submit`` raises it.

How the machines make that deterministic on a real pool: the calls that must fail wait at a
gate of their own (``_tasks.hold``) that stays closed, so none can finish before the pool
breaks; the dying worker is one running such a call (only the first call held can be known
to be running: a pool may queue later ones behind it, in a worker's own queue). A call that
returns at once is waited for when nothing is held; submitted while calls are held, it may
finish or fail, either is right. A break shows up asynchronously: the machine first waits
for the held calls to fail, and only then expects ``submit`` to raise. Initializers wait at
a gate too, so every call submitted before the test releases it is pending when they fail.

The stdlib's texts (3.9-3.13), not asserted (other pools word them differently): a future
fails with "A process in the process pool was terminated abruptly while the future was
running or pending." and ``submit`` raises "A child process terminated abruptly, the process
pool is not usable anymore"; a thread pool's initializer failure reads "A thread initializer
failed, the thread pool is not usable anymore", for futures and ``submit`` alike.

Known stdlib bug, a strict xfail of its own where a probe shows it: gh-101267, every future
of a broken stdlib process pool fails with one shared ``BrokenProcessPool`` instance. Not
exercised, as stdlib bugs of older versions that a real pool hits only by chance:
cancelling a call while the pool breaks (gh-107219, fixed in 3.12: it kills the stdlib's
manager thread), calls too large for a pipe (gh-94777, fixed in 3.11), and ``submit()``
racing the break (before 3.12 the stdlib fails the pending calls without the lock that
``submit()`` takes; the lock came with gh-109047's fix): the machines submit again only once
the break is visible.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
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

from . import _tasks
from ._fixtures import futures_known_bugs  # noqa: F401 (a fixture the tests request)
from ._harness import BOUND, NO_SHRINKING, result_within, run_spec, shut_down_within_bound
from ._known_bugs import expects_known_bug

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from pytest_futures_plugin.backends import Backend
    from pytest_futures_plugin.controls import Gate

pytestmark = pytest.mark.futures_area("broken-pools")

values = st.none() | st.integers() | st.text(max_size=3)


# ------------------------------------------------------------------------------------------
# Helpers


EXAMPLES_SCALE = 2
"""Each example starts and breaks a process pool (a few milliseconds with fork), and many a
generated example never gets as far as the break: twice the profile's examples."""


def is_running(pid: int) -> bool:
    """Whether process *pid* exists and has not exited (a zombie has exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid was reused by someone else's process
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # no /proc: it exists, count it as running
        return True


def failed_with(future: Future[Any], error_type: type[BaseException]) -> str | None:
    """None if the done *future* failed with an *error_type* that says why, else what it did."""
    error = future.exception(timeout=0)
    if isinstance(error, error_type) and str(error):
        return None
    outcome = repr(error) if error is not None else f"returned {future.result()!r}"
    return f"{future!r}: expected {error_type.__name__} with a message, got {outcome}"


# ------------------------------------------------------------------------------------------
# A worker process dies


@dataclasses.dataclass
class Held:
    """A call blocked at its own gate (``_tasks.hold``): it cannot finish before the break."""

    label: int
    future: Future[Any]
    gate: Gate


class DeadWorker(RuleBasedStateMachine):
    """One process pool, calls held at gates and calls that return at once, until a worker
    dies; then the pool is broken for good."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.api = backend.api
        self.controls = Controls(timeout=BOUND)
        self.crash = self.controls.gate("crash")  # released: the next call let go crashes
        self.pids = self.controls.recorder("pids")  # (label, pid) of every held call
        self.labels = itertools.count(1)
        self.pool: Executor | None = None
        self.held: list[Held] = []
        self.finished: list[tuple[Future[Any], Any]] = []  # done before the break
        self.racing: list[tuple[Future[Any], Any]] = []  # submitted behind held calls
        self.broken = False
        self.shut_down = False

    @property
    def executor(self) -> Executor:
        assert self.pool is not None, "make_executor runs first"
        return self.pool

    @initialize(workers=st.integers(1, 2))
    def make_executor(self, workers: int) -> None:
        self.pool = self.backend.make(max_workers=workers)

    @rule(value=values)
    def submit(self, value: Any) -> None:
        if self.shut_down:  # "Calls to Executor.submit() ... made after shutdown will raise
            with pytest.raises(RuntimeError):  # RuntimeError", a BrokenExecutor or not
                self.executor.submit(tasks.return_value, value)
            return
        if self.broken:
            with pytest.raises(self.api.BrokenProcessPool):
                self.executor.submit(tasks.return_value, value)
            return
        future = self.executor.submit(tasks.return_value, value)
        if self.held:  # it may run on a free worker, or wait behind a held call
            self.racing.append((future, value))
        else:
            assert result_within(future, "a call to a working pool", self.api) == value
            self.finished.append((future, value))

    @precondition(lambda self: not self.broken)
    @rule(count=st.integers(1, 3))
    def submit_blocked(self, count: int) -> None:
        for _ in range(count):
            label = next(self.labels)
            gate = self.controls.gate(f"held-{label}")
            future = self.executor.submit(
                _tasks.hold, gate, self.crash, self.pids, label, os.getpid()
            )
            self.held.append(Held(label, future, gate))

    @precondition(lambda self: not self.broken and self.held)
    @rule()
    def crash_worker(self) -> None:
        """The first held call ends its worker with ``os._exit`` (``faults.crash_worker``)."""
        victim = self._running_victim()
        self.crash.release()
        victim.gate.release()
        self._pool_breaks("a worker exited abruptly in a call")

    @precondition(lambda self: not self.broken and self.held)
    @rule()
    def kill_worker(self) -> None:
        """The test sends SIGKILL to the worker running the first held call."""
        victim = self._running_victim()
        pids = [pid for label, pid in self.pids.events if label == victim.label]
        os.kill(pids[0], signal.SIGKILL)
        self._pool_breaks(f"the worker of call {victim.label} was killed")

    @precondition(lambda self: self.broken and not self.shut_down)
    @rule()
    def shutdown(self) -> None:
        shut_down_within_bound(self.executor, "of a broken pool")
        self.shut_down = True
        left = [pid for _, pid in self.pids.events if is_running(pid)]
        assert left == [], f"worker processes still running after shutdown(): {left}"

    def _running_victim(self) -> Held:
        victim = self.held[0]
        try:
            victim.gate.wait_inside(1, timeout=BOUND)
        except ControlTimeout:
            raise AssertionError(
                f"held call {victim.label} never started ({victim.future!r}), though "
                "every call submitted before it had finished"
            ) from None
        return victim

    def _pool_breaks(self, how: str) -> None:
        outstanding = [h.future for h in self.held] + [f for f, _ in self.racing]
        not_done = self.api.wait(outstanding, timeout=BOUND).not_done
        assert not not_done, (
            f"{how}: {len(not_done)} of {len(outstanding)} unfinished futures still not done "
            f"after {BOUND}s: {sorted(map(repr, not_done))}"
        )
        broken = self.api.BrokenProcessPool
        wrong = [failed_with(h.future, broken) for h in self.held]
        wrong += [
            failed_with(future, broken)
            for future, value in self.racing
            if future.exception(timeout=0) is not None or future.result() != value
        ]
        assert [w for w in wrong if w] == [], f"{how}: futures that did not fail as they must"
        self.broken = True
        self.submit(None)  # now that its futures failed, the pool refuses calls

    @invariant()
    def finished_calls_keep_their_results(self) -> None:
        for future, value in self.finished:
            assert future.done(), f"{future!r} finished, then became not done"
            assert future.exception(timeout=0) is None, f"{future!r} finished, then failed"
            assert future.result(timeout=0) == value, f"{future!r} lost its result {value!r}"

    @invariant()
    def held_calls_are_not_done_before_the_pool_breaks(self) -> None:
        if not self.broken:
            done = [h.future for h in self.held if h.future.done()]
            assert done == [], f"calls held at a closed gate are done: {done}"

    def teardown(self) -> None:
        self.controls.close()  # every held call returns (or fails): nothing waits on a gate
        if self.pool is not None and not self.shut_down:
            shut_down_within_bound(self.pool, "at the end of the example")


def test_a_dead_worker_breaks_the_pool(futures_backend: Backend, futures_seed: int) -> None:
    """Every unfinished call fails with BrokenProcessPool, later submits raise it, finished
    calls keep their results, shutdown() returns and frees every worker."""
    if not futures_backend.capabilities.processes:
        pytest.skip("tasks run in threads: there is no worker process to lose")
    run_spec(
        DeadWorker,
        futures_backend,
        seed=futures_seed,
        scale=EXAMPLES_SCALE,
        phases=NO_SHRINKING,
    )


# ------------------------------------------------------------------------------------------
# An initializer fails


class FailingInitializer(RuleBasedStateMachine):
    """A pool whose workers' initializer raises once the test releases it."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.api = backend.api
        self.error = (
            self.api.BrokenProcessPool
            if backend.capabilities.processes
            else self.api.BrokenThreadPool
        )
        self.controls = Controls(timeout=BOUND)
        self.initializing = self.controls.gate("initializer")
        self.pool: Executor | None = None
        self.pending: list[Future[Any]] = []
        self.broken = False
        self.shut_down = False

    @property
    def executor(self) -> Executor:
        assert self.pool is not None, "make_executor runs first"
        return self.pool

    @initialize(workers=st.integers(1, 2))
    def make_executor(self, workers: int) -> None:
        self.pool = self.backend.make(
            max_workers=workers,
            initializer=_tasks.fail_once_released,
            initargs=(self.initializing,),
        )

    @rule(value=values)
    def submit(self, value: Any) -> None:
        if self.shut_down:
            with pytest.raises(RuntimeError):
                self.executor.submit(tasks.return_value, value)
            return
        if self.broken:
            with pytest.raises(self.error):
                self.executor.submit(tasks.return_value, value)
            return
        self.pending.append(self.executor.submit(tasks.return_value, value))

    @precondition(lambda self: self.pending and not self.broken)
    @rule()
    def initializer_raises(self) -> None:
        self.initializing.release()
        not_done = self.api.wait(self.pending, timeout=BOUND).not_done
        assert not not_done, (
            f"the initializer failed, yet {len(not_done)} of {len(self.pending)} pending "
            f"futures are not done after {BOUND}s: {sorted(map(repr, not_done))}"
        )
        wrong = [failed_with(future, self.error) for future in self.pending]
        assert [w for w in wrong if w] == [], "pending futures that did not fail as they must"
        self.broken = True
        self.submit(None)  # now that its futures failed, the pool refuses calls

    @precondition(lambda self: self.broken and not self.shut_down)
    @rule()
    def shutdown(self) -> None:
        shut_down_within_bound(self.executor, "of a pool whose initializer failed")
        self.shut_down = True

    @invariant()
    def no_call_runs_before_its_worker_is_initialized(self) -> None:
        if not self.broken:
            done = [future for future in self.pending if future.done()]
            assert done == [], f"done while every worker is still initializing: {done}"

    def teardown(self) -> None:
        self.controls.close()
        if self.pool is not None and not self.shut_down:
            shut_down_within_bound(self.pool, "at the end of the example")


def test_a_failing_initializer_breaks_the_pool(futures_backend: Backend, futures_seed: int) -> None:
    """Every pending call fails with BrokenProcessPool / BrokenThreadPool, later submits raise."""
    if not futures_backend.capabilities.initializer:
        pytest.skip("the executor takes no initializer")
    run_spec(
        FailingInitializer,
        futures_backend,
        seed=futures_seed,
        scale=EXAMPLES_SCALE,
        phases=NO_SHRINKING,
    )


# ------------------------------------------------------------------------------------------
# gh-101267: one exception per future


@expects_known_bug("gh-101267")
@pytest.mark.usefixtures("futures_known_bugs")
def test_each_future_of_a_broken_pool_fails_with_its_own_exception(
    futures_backend: Backend,
) -> None:
    """Exceptions are mutable (their traceback grows each time one is raised): several
    futures must not share one."""
    if not futures_backend.capabilities.processes:
        pytest.skip("tasks run in threads: there is no worker process to lose")
    api = futures_backend.api
    with Controls(timeout=BOUND) as controls:
        crash, pids = controls.gate("crash"), controls.recorder("pids")
        gates = [controls.gate(f"held-{label}") for label in range(3)]
        pool = futures_backend.make(max_workers=1)
        try:
            futures = [
                pool.submit(_tasks.hold, gate, crash, pids, label, os.getpid())
                for label, gate in enumerate(gates)
            ]
            gates[0].wait_inside(1, timeout=BOUND)
            crash.release()
            gates[0].release()
            assert not api.wait(futures, timeout=BOUND).not_done, "the pool never broke"
            errors = [future.exception(timeout=0) for future in futures]
            assert all(isinstance(error, api.BrokenProcessPool) for error in errors), errors
            assert len({id(error) for error in errors}) == len(errors), errors
        finally:
            controls.close()
            shut_down_within_bound(pool, "of a broken pool")
