"""Gates, latches and recorders that tasks use wherever they run: threads or worker processes.

A test creates the controls (best through one ``Controls`` per test, which opens every gate
and closes everything when the test ends) and passes them to its tasks as ordinary
arguments: they pickle, so they reach workers started by fork, spawn or forkserver, and
pools that cloudpickle their calls (loky)::

    with Controls() as controls:
        gate = controls.gate()
        futures = [pool.submit(tasks.block_on, gate, i) for i in range(2)]
        gate.wait_inside(2)         # both tasks are running, blocked in gate.wait()
        assert not any(f.done() for f in futures)
        gate.release()              # every current and later gate.wait() returns

In the process that created it a control works on its state directly (a condition
variable); anywhere else it asks the control server of the creating process (see
``_server``), which starts with the first control created in a process. Nothing
here sleeps or polls: every wait is woken by the change it waits for, and every wait is
bounded (``DEFAULT_TIMEOUT`` unless told otherwise), failing with a ``ControlTimeout`` that
names the control, what was awaited and how far it got.

After its test ended (``Controls.close()``, ``ControlServer.close()``) a control is closed:
what tasks may still call changes nothing (gates are open, ``record`` and ``count_down`` are
ignored), while the test-side waits and reads of a remote copy raise ``ControlClosed``.
Standard library only: this module never imports pytest or hypothesis.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypeVar

from pytest_futures_plugin import LONG_WAIT

from ._server import (
    SERVER_THREAD_NAME,
    ControlServer,
    State,
    default_server,
    expired_waits,
    local_state,
    register_kind,
)
from ._wire import REPLY_GRACE, ControlClosed, ControlError, request

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "DEFAULT_TIMEOUT",
    "SERVER_THREAD_NAME",
    "ControlClosed",
    "ControlError",
    "ControlServer",
    "ControlTimeout",
    "Controls",
    "Gate",
    "Latch",
    "Recorder",
    "default_server",
    "expired_waits",
]

DEFAULT_TIMEOUT = LONG_WAIT
"""Seconds a wait lasts when not told otherwise (:data:`pytest_futures_plugin.LONG_WAIT`)."""


class ControlTimeout(ControlError):
    """A wait on a control expired; the message names the control, what was awaited and how
    far it got. Not a ``TimeoutError``: a test that expects a future's timeout must not
    mistake a task's expired gate for it."""


# ------------------------------------------------------------------------------------------
# States: what each control is, in the process that created it


@register_kind
class _GateState(State):
    kind = "gate"
    waits = frozenset({"wait", "wait_inside"})
    ignored_once_closed = frozenset({"wait", "release"})

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.released = False
        self.entered = 0

    def do(self, op: str, args: tuple[Any, ...]) -> Any:
        if op == "release":
            self.released = True
            return None
        if op == "entered":
            return self.entered
        if op == "released":
            return self.released
        return super().do(op, args)

    def begin_wait(self, op: str, args: tuple[Any, ...]) -> Callable[[], bool]:
        if op == "wait":
            self.entered += 1
            return lambda: self.released
        if op == "wait_inside":
            (count,) = args
            return lambda: self.entered >= count
        return super().begin_wait(op, args)

    def progress(self) -> Any:
        return self.entered

    def close(self) -> None:
        super().close()
        self.released = True


@register_kind
class _LatchState(State):
    kind = "latch"
    waits = frozenset({"wait"})
    ignored_once_closed = frozenset({"count_down"})

    def __init__(self, name: str, count: int) -> None:
        super().__init__(name)
        self.count = count

    def do(self, op: str, args: tuple[Any, ...]) -> Any:
        if op == "count_down":
            if self.closed:
                return None
            if self.count == 0:
                raise ControlError(f"latch {self.name!r}: count_down() below zero")
            self.count -= 1
            return None
        if op == "count":
            return self.count
        return super().do(op, args)

    def begin_wait(self, op: str, args: tuple[Any, ...]) -> Callable[[], bool]:
        if op == "wait":
            return lambda: self.count == 0
        return super().begin_wait(op, args)

    def progress(self) -> Any:
        return self.count


@register_kind
class _RecorderState(State):
    kind = "recorder"
    ignored_once_closed = frozenset({"record"})

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.events: list[Any] = []

    def do(self, op: str, args: tuple[Any, ...]) -> Any:
        if op == "record":
            if not self.closed:
                self.events.append(args[0])
            return None
        if op == "events":
            return list(self.events)
        return super().do(op, args)


# ------------------------------------------------------------------------------------------
# The controls: handles that pickle


_names = {kind: itertools.count(1) for kind in ("gate", "latch", "recorder")}


class _Control:
    """A handle on a state: in-process path in its creator, requests anywhere else."""

    _kind: ClassVar[str]
    _state_class: ClassVar[type[State]]

    def __init__(
        self, state: State, timeout: float, server: ControlServer | None, name: str
    ) -> None:
        server = server if server is not None else default_server()
        self.name = name
        self.timeout = timeout
        self._ident = server.register(state)
        self._address = server.address
        self._pid = server.pid
        self._local: State | None = state

    def __getstate__(self) -> dict[str, Any]:
        fields = self.__dict__.copy()
        fields["_local"] = None
        return fields

    def __setstate__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)
        # Back in its creator (a result, a copy): the in-process path again.
        if self._pid == os.getpid():
            self._local = local_state(self._address, self._ident)

    def __repr__(self) -> str:
        where = "local" if self._owned() is not None else f"served by pid {self._pid}"
        return f"<{type(self).__name__} {self.name!r} ({where})>"

    def _owned(self) -> State | None:
        # A forked child holds a copy of its parent's state: the pid tells it apart.
        return self._local if self._pid == os.getpid() else None

    def _do(self, op: str, *args: Any) -> Any:
        state = self._owned()
        if state is not None:
            return state.apply(op, args)
        return self._outcome(op, self._request(op, args, None, REPLY_GRACE))

    def _wait(self, op: str, args: tuple[Any, ...], timeout: float | None, what: str) -> None:
        seconds = self.timeout if timeout is None else max(0.0, float(timeout))
        if not math.isfinite(seconds):
            raise ValueError(f"every wait is bounded: a timeout of {timeout!r} is not")
        state = self._owned()
        if state is not None:
            reply = state.wait(op, args, seconds)
        else:
            reply = self._request(op, args, seconds, seconds + REPLY_GRACE)
        if reply[0] == "timeout":
            raise ControlTimeout(
                f"{self._kind} {self.name!r}: waited {seconds:g}s in vain for {what}; "
                f"{self._progress(reply[1])}"
            )
        self._outcome(op, reply)

    def _request(
        self, op: str, args: tuple[Any, ...], timeout: float | None, bound: float
    ) -> tuple[str, Any]:
        message = (self._kind, self._ident, op, args, timeout)
        try:
            return request(self._address, message, bound)
        except ControlClosed:
            if op in self._state_class.ignored_once_closed:
                return ("ok", None)
            raise

    def _outcome(self, op: str, reply: tuple[str, Any]) -> Any:
        status, value = reply
        if status == "ok":
            return value
        if status == "closed":
            raise ControlClosed(f"{self._kind} {self.name!r} is closed: {op}() cannot run")
        raise ControlError(value)  # the server's message names the control

    def _progress(self, value: Any) -> str:
        return f"progress: {value!r}"


_C = TypeVar("_C", bound=_Control)


class Gate(_Control):
    """Tasks block in ``wait()`` until the test calls ``release()``; then every current and
    later ``wait()`` returns at once. ``entered`` counts the ``wait()`` calls so far.

    Any thread or process may call any method; the usual split is ``wait`` in tasks,
    ``wait_inside``/``release`` in the test.
    """

    _kind = "gate"
    _state_class = _GateState

    def __init__(
        self,
        name: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        server: ControlServer | None = None,
    ) -> None:
        """A closed gate named *name* (default "gate-N"), whose waits last *timeout* seconds
        unless told otherwise, owned by *server* (default: ``default_server()``)."""
        name = name or f"gate-{next(_names['gate'])}"
        super().__init__(_GateState(name), timeout, server, name)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the gate is released (return at once if it is); count as entered.

        Raises ``ControlTimeout`` after *timeout* seconds (default: the gate's ``timeout``).
        """
        self._wait("wait", (), timeout, "release()")

    def release(self) -> None:
        """Open the gate for good: every blocked and every later ``wait()`` returns."""
        self._do("release")

    def wait_inside(self, count: int, timeout: float | None = None) -> None:
        """Block until *count* calls of ``wait()`` have begun, in all (blocked or released).

        Raises ``ControlTimeout`` after *timeout* seconds, ``ControlClosed`` once closed.
        """
        if count < 0:
            raise ValueError(f"wait_inside() needs a count >= 0, not {count!r}")
        self._wait("wait_inside", (count,), timeout, f"{count} wait() call(s) to begin")

    @property
    def entered(self) -> int:
        """How many ``wait()`` calls have begun so far, whether still blocked or not."""
        entered: int = self._do("entered")
        return entered

    @property
    def released(self) -> bool:
        """Whether ``release()`` was called (or the gate was closed)."""
        released: bool = self._do("released")
        return released

    def _progress(self, value: Any) -> str:
        return f"{value} wait() call(s) had begun"


class Latch(_Control):
    """A count-down latch: tasks call ``count_down()``, the test ``wait()``s for zero.

    Counting down below zero raises ``ControlError``: a task ran more often than planned.
    """

    _kind = "latch"
    _state_class = _LatchState

    def __init__(
        self,
        count: int,
        name: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        server: ControlServer | None = None,
    ) -> None:
        """A latch at *count* (>= 0) named *name* (default "latch-N"); see ``Gate``."""
        if count < 0:
            raise ValueError(f"a latch needs a count >= 0, not {count!r}")
        name = name or f"latch-{next(_names['latch'])}"
        self.initial = count
        super().__init__(_LatchState(name, count), timeout, server, name)

    def count_down(self) -> None:
        """Decrement the count; at zero, wake every ``wait()``. Ignored once closed."""
        self._do("count_down")

    def wait(self, timeout: float | None = None) -> None:
        """Block until the count is zero. Raises ``ControlTimeout`` after *timeout* seconds
        (default: the latch's ``timeout``), ``ControlClosed`` if closed meanwhile."""
        self._wait("wait", (), timeout, "a count of zero")

    @property
    def count(self) -> int:
        """The current count."""
        count: int = self._do("count")
        return count

    def _progress(self, value: Any) -> str:
        return f"the count is still {value} of {self.initial}"


class Recorder(_Control):
    """Tasks ``record()`` labels; the test reads them in arrival order from ``events``.

    ``started(label)``/``finished(label)`` record ``("start", label)``/``("finish", label)``;
    ``start_order``/``finish_order`` read those labels back (``tasks.record_start_finish``
    records both around a task). A label is any small picklable value. ``record()`` returns
    once the label is stored, so a task's events are in ``events`` once its future is done.
    """

    _kind = "recorder"
    _state_class = _RecorderState

    def __init__(self, name: str | None = None, *, server: ControlServer | None = None) -> None:
        """An empty recorder named *name* (default "recorder-N"); see ``Gate``."""
        name = name or f"recorder-{next(_names['recorder'])}"
        super().__init__(_RecorderState(name), DEFAULT_TIMEOUT, server, name)

    def record(self, label: Any) -> None:
        """Append *label* to ``events``. Raises ``ControlError`` if it cannot be pickled and
        the recorder is remote; ignored once closed."""
        self._do("record", label)

    def started(self, label: Any) -> None:
        """Record ``("start", label)``."""
        self.record(("start", label))

    def finished(self, label: Any) -> None:
        """Record ``("finish", label)``."""
        self.record(("finish", label))

    @property
    def events(self) -> list[Any]:
        """Every label recorded so far, in arrival order (a copy)."""
        events: list[Any] = self._do("events")
        return events

    @property
    def start_order(self) -> list[Any]:
        """The labels of ``started()``, in order."""
        return _labels(self.events, "start")

    @property
    def finish_order(self) -> list[Any]:
        """The labels of ``finished()``, in order."""
        return _labels(self.events, "finish")


def _labels(events: list[Any], what: str) -> list[Any]:
    return [e[1] for e in events if isinstance(e, tuple) and len(e) == 2 and e[0] == what]


# ------------------------------------------------------------------------------------------
# One test's controls


class Controls:
    """Creates the controls of one test and, at its end, releases and closes them all, so
    that a failing test never leaves a task blocked.

    Use it as a context manager, or call ``close()``; a pytest fixture is a few lines. Names
    count from 1 in each ``Controls`` ("gate-1", "latch-1", ...). Only the creating process
    may use it (its controls go anywhere). Creating one is cheap: the server starts with the
    first control, once per process.
    """

    def __init__(
        self, *, timeout: float = DEFAULT_TIMEOUT, server: ControlServer | None = None
    ) -> None:
        """Controls whose waits last *timeout* seconds by default, owned by *server*
        (default: ``default_server()``)."""
        self.timeout = timeout
        self.server = server if server is not None else default_server()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._controls: list[_Control] = []
        self._counts = {kind: itertools.count(1) for kind in _names}
        self._closed = False

    def __repr__(self) -> str:
        return f"<Controls of {len(self._controls)} controls{' closed' if self._closed else ''}>"

    def gate(self, name: str | None = None) -> Gate:
        """A new closed ``Gate`` named *name* (default "gate-N")."""
        return self._add(Gate(self._name("gate", name), timeout=self.timeout, server=self.server))

    def latch(self, count: int, name: str | None = None) -> Latch:
        """A new ``Latch`` at *count* named *name* (default "latch-N")."""
        name = self._name("latch", name)
        return self._add(Latch(count, name, timeout=self.timeout, server=self.server))

    def recorder(self, name: str | None = None) -> Recorder:
        """A new empty ``Recorder`` named *name* (default "recorder-N")."""
        return self._add(Recorder(self._name("recorder", name), server=self.server))

    def release_all(self) -> None:
        """Release every gate made here (the controls stay usable)."""
        for control in self._snapshot():
            if isinstance(control, Gate):
                control.release()

    def close(self) -> None:
        """Open every gate, end every wait on these controls (``ControlClosed`` for the
        test-side ones) and free their state. Idempotent."""
        with self._lock:
            self._closed = True
        controls = self._snapshot()
        for control in controls:
            state = control._owned()
            if state is not None:
                state.close_and_notify()
        self.server.forget(control._ident for control in controls)

    def __enter__(self) -> Controls:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _name(self, kind: str, name: str | None) -> str:
        return name or f"{kind}-{next(self._counts[kind])}"

    def _add(self, control: _C) -> _C:
        with self._lock:
            closed = self._closed
            if not closed:
                self._controls.append(control)
        if closed:  # close() ran meanwhile: this one must not outlive it either
            state = control._owned()
            if state is not None:
                state.close_and_notify()
            self.server.forget([control._ident])
            raise ControlClosed(f"{self!r}: cannot add {control!r}")
        return control

    def _snapshot(self) -> list[_Control]:
        if os.getpid() != self._pid:
            raise ControlError(f"{self!r} belongs to process {self._pid}, not {os.getpid()}")
        with self._lock:
            return list(self._controls)
