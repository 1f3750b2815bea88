"""Linearizability of ``concurrent.futures.Future``: histories, the sequential model, a checker.

A *parallel section* (as Lincheck calls it) is a few calls on one shared future from two or
three threads, after an optional sequential prefix. Each call is recorded as an
:class:`Operation`: its thread, the :class:`Call`, its invocation and response points (numbers
from one counter shared by every thread, taken just before the call and just after it returns),
and its :class:`Outcome` (what it returned or raised, and the done callbacks it ran). The
history is *linearizable* (Herlihy & Wing, 1990) when some sequential order of its operations

- respects real time: an operation that returned before another was invoked comes first, and
- gives every operation the outcome it had, when the calls are made one at a time on the
  sequential model, :func:`step`, starting from a new (PENDING) future.

:func:`check` searches for such an order by backtracking (trying, at each point, every
operation whose real-time predecessors are all placed), remembering the (model state, placed
operations) pairs that lead nowhere: plenty for a section of 3 threads x 4 calls. When there is
none, it raises :class:`NotLinearizableError`, whose message lays the history out per thread
and shows the longest orders that explain part of it and why each next operation contradicts
the model there.

The sequential model is the stdlib's ``Future`` (``concurrent/futures/_base.py``, the same in
3.9 to 3.13), one call at a time:

==============================  =============  ==============  ==================  ===========
call                            PENDING        RUNNING         CANCELLED(_AND_N.)  FINISHED
==============================  =============  ==============  ==================  ===========
cancel()                        True ->C *     False           True                False
set_running_or_notify_cancel()  True ->R       RuntimeError    False ->C_AND_N;    RuntimeError
                                                               C_AND_N: RuntimeE.
set_result(x)/set_exception(e)  None ->F *     None ->F *      InvalidStateError   InvalidSt.
result(timeout=0)               TimeoutError   TimeoutError    CancelledError      x / raise e
exception(timeout=0)            TimeoutError   TimeoutError    CancelledError      None / e
add_done_callback(cb)           queued         queued          cb runs now         cb runs now
cancelled() running() done()    the state, read
==============================  =============  ==============  ==================  ===========

``*``: the call runs the queued done callbacks, in the order they were added, before it
returns (the stdlib after releasing the future's lock; an operation's outcome includes the
callbacks its thread ran during it). ``InvalidStateError`` exists since Python 3.8 (before, a
second ``set_result`` overwrote the first); ``RuntimeError('Future in unexpected state')`` is
what ``set_running_or_notify_cancel`` raises outside PENDING and CANCELLED.

:func:`pytest_futures_plugin.sections.run_section` runs a section and records its history.
This module is pure data and search: no threads, no pytest, no hypothesis.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CALLS",
    "Call",
    "FutureState",
    "NotLinearizableError",
    "Operation",
    "Outcome",
    "PlantedError",
    "check",
    "explain",
    "format_history",
    "linearize",
    "step",
]

PENDING, RUNNING, FINISHED = "PENDING", "RUNNING", "FINISHED"
CANCELLED, CANCELLED_AND_NOTIFIED = "CANCELLED", "CANCELLED_AND_NOTIFIED"
_CANCELLED = (CANCELLED, CANCELLED_AND_NOTIFIED)
_DONE = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)

CALLS = (
    "cancel",
    "cancelled",
    "running",
    "done",
    "set_running_or_notify_cancel",
    "set_result",
    "set_exception",
    "result",
    "exception",
    "add_done_callback",
)
"""The ``Future`` methods a section calls. ``result`` and ``exception`` are called with
``timeout=0``; ``set_result(n)`` sets the integer *n*, ``set_exception(n)`` a
:class:`PlantedError` (n), ``add_done_callback(n)`` adds callback number *n*."""

_WITH_ARGUMENT = ("set_result", "set_exception", "add_done_callback")


class PlantedError(Exception):
    """The exception ``set_exception(n)`` sets: equal to another of the same *token*."""

    def __init__(self, token: int) -> None:
        super().__init__(token)
        self.token = token

    def __repr__(self) -> str:
        return f"PlantedError({self.token})"


@dataclasses.dataclass(frozen=True)
class Call:
    """One method call on the future: *name* from :data:`CALLS` and its integer *argument*
    (for ``set_result``, ``set_exception`` and ``add_done_callback``)."""

    name: str
    argument: int = 0

    def __post_init__(self) -> None:
        if self.name not in CALLS:
            raise ValueError(f"Call({self.name!r}): not one of {', '.join(CALLS)}")

    def __repr__(self) -> str:
        if self.name in _WITH_ARGUMENT:
            return f"Call({self.name!r}, {self.argument!r})"
        return f"Call({self.name!r})"

    def __str__(self) -> str:
        if self.name in ("result", "exception"):
            return f"{self.name}(timeout=0)"
        if self.name == "set_exception":
            return f"set_exception(PlantedError({self.argument}))"
        if self.name == "add_done_callback":
            return f"add_done_callback(cb{self.argument})"
        if self.name == "set_result":
            return f"set_result({self.argument})"
        return f"{self.name}()"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a call did: returned ``value`` (a repr) or raised the exception ``value`` names,
    and the done callbacks its thread ran meanwhile, in the order they ran."""

    value: str
    raised: bool = False
    called_back: tuple[int, ...] = ()

    def __str__(self) -> str:
        text = f"raises {self.value}" if self.raised else self.value
        if self.called_back:
            text += ", runs " + ", ".join(f"cb{n}" for n in self.called_back)
        return text

    def phrase(self, tense: str, callbacks: bool = False) -> str:
        """The outcome as a verb phrase: ``"returned True"`` (*tense* ``"past"``) or
        ``"return True"`` (``"present"``); with the callbacks run if *callbacks*."""
        past = tense == "past"
        text = ("raise" if self.raised else "return") + ("ed " if past else " ") + self.value
        if callbacks:
            ran = ", ".join(f"cb{n}" for n in self.called_back) or "no callback"
            text += f" ({'ran' if past else 'run'} {ran})"
        return text


@dataclasses.dataclass(frozen=True)
class Operation:
    """One call of a history: its *thread* (a label), the *call*, its *invoked* and
    *responded* points (one counter across threads) and its *outcome*."""

    thread: str
    call: Call
    invoked: int
    responded: int
    outcome: Outcome

    def __str__(self) -> str:
        return f"{self.thread}: {self.call} -> {self.outcome}"


# -- the sequential model ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FutureState:
    """The sequential model's state: *status* (PENDING, RUNNING, CANCELLED,
    CANCELLED_AND_NOTIFIED, FINISHED), the *token* set by ``set_result`` or
    ``set_exception`` (*failed* for the latter), and the queued *callbacks*."""

    status: str = PENDING
    token: int = 0
    failed: bool = False
    callbacks: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.status == FINISHED:
            if self.failed:
                return f"FINISHED with the exception PlantedError({self.token})"
            return f"FINISHED with the result {self.token}"
        queued = f" with cb{', cb'.join(map(str, self.callbacks))} queued" if self.callbacks else ""
        return f"{self.status}{queued}"


def _returns(value: object, called_back: tuple[int, ...] = ()) -> Outcome:
    return Outcome(repr(value), False, called_back)


def _raises(name: str) -> Outcome:
    return Outcome(name, True)


def step(state: FutureState, call: Call) -> tuple[FutureState, Outcome]:
    """The sequential ``Future``: the state after *call* on a future in *state*, and the
    call's outcome (see the table in the module's docstring)."""
    status, name = state.status, call.name
    if name == "cancel":
        if status != PENDING:
            return state, _returns(status in _CANCELLED)
        return FutureState(CANCELLED), _returns(True, state.callbacks)
    if name == "cancelled":
        return state, _returns(status in _CANCELLED)
    if name == "running":
        return state, _returns(status == RUNNING)
    if name == "done":
        return state, _returns(status in _DONE)
    if name == "set_running_or_notify_cancel":
        if status == PENDING:
            return dataclasses.replace(state, status=RUNNING), _returns(True)
        if status == CANCELLED:
            return dataclasses.replace(state, status=CANCELLED_AND_NOTIFIED), _returns(False)
        return state, _raises("RuntimeError")
    if name in ("set_result", "set_exception"):
        if status in _DONE:
            return state, _raises("InvalidStateError")
        failed = name == "set_exception"
        return FutureState(FINISHED, call.argument, failed), _returns(None, state.callbacks)
    if name in ("result", "exception"):
        if status in _CANCELLED:
            return state, _raises("CancelledError")
        if status != FINISHED:
            return state, _raises("TimeoutError")
        if name == "exception":
            return state, _returns(PlantedError(state.token) if state.failed else None)
        if state.failed:
            return state, _raises(repr(PlantedError(state.token)))
        return state, _returns(state.token)
    assert name == "add_done_callback", name
    if status in _DONE:
        return state, _returns(None, (call.argument,))
    return dataclasses.replace(state, callbacks=(*state.callbacks, call.argument)), _returns(None)


# -- the checker ---------------------------------------------------------------------------------


class NotLinearizableError(AssertionError):
    """No sequential order of the history's operations respects real time and gives every
    operation its outcome. ``history`` is the history; the message explains (see
    :func:`explain`); the caller may append to ``notes``, which the message ends with, and
    set ``schedule``: the decisions of the scheduler the section ran under, if any."""

    def __init__(self, history: Sequence[Operation], explanation: str) -> None:
        super().__init__(explanation)
        self.history = list(history)
        self.explanation = explanation
        self.notes: list[str] = []
        self.schedule: list[str] = []

    def __str__(self) -> str:
        return "\n".join([self.explanation, *self.notes])


@dataclasses.dataclass
class _DeadEnd:
    order: list[int]
    state: FutureState
    contradictions: list[tuple[int, Outcome]]


class _Search:
    def __init__(
        self,
        history: Sequence[Operation],
        model: Callable[[FutureState, Call], tuple[FutureState, Outcome]],
    ) -> None:
        self.ops = sorted(history, key=lambda op: (op.invoked, op.responded))
        self.model = model
        count = len(self.ops)
        self.full = (1 << count) - 1
        # before[i]: the operations that returned before operation i was invoked.
        self.before = [
            sum(1 << j for j, other in enumerate(self.ops) if other.responded < op.invoked)
            for op in self.ops
        ]
        self.hopeless: set[tuple[FutureState, int]] = set()
        self.dead_ends: list[_DeadEnd] = []
        self.explored = 0

    def run(self, state: FutureState) -> list[Operation] | None:
        order = self._search(state, 0, [])
        return None if order is None else [self.ops[i] for i in order]

    def _search(self, state: FutureState, placed: int, order: list[int]) -> list[int] | None:
        if placed == self.full:
            return order
        if (state, placed) in self.hopeless:
            return None
        self.explored += 1
        contradictions: list[tuple[int, Outcome]] = []
        for i, op in enumerate(self.ops):
            if placed >> i & 1 or self.before[i] & ~placed:
                continue
            after, expected = self.model(state, op.call)
            if expected != op.outcome:
                contradictions.append((i, expected))
                continue
            found = self._search(after, placed | 1 << i, [*order, i])
            if found is not None:
                return found
        self.hopeless.add((state, placed))
        self._note(_DeadEnd(order, state, contradictions))
        return None

    def _note(self, dead_end: _DeadEnd) -> None:
        deepest = len(self.dead_ends[0].order) if self.dead_ends else -1
        if len(dead_end.order) > deepest:
            self.dead_ends = [dead_end]
        elif len(dead_end.order) == deepest and len(self.dead_ends) < 3:
            self.dead_ends.append(dead_end)


def linearize(
    history: Sequence[Operation],
    model: Callable[[FutureState, Call], tuple[FutureState, Outcome]] = step,
    initial: FutureState | None = None,
) -> list[Operation] | None:
    """A sequential order of *history* that respects real time and that *model* (from
    *initial*, a new future) explains, or None when there is none."""
    return _Search(history, model).run(initial or FutureState())


def check(
    history: Sequence[Operation],
    model: Callable[[FutureState, Call], tuple[FutureState, Outcome]] = step,
    initial: FutureState | None = None,
) -> list[Operation]:
    """The order :func:`linearize` finds; raises :class:`NotLinearizableError`, explaining
    why, when there is none."""
    search = _Search(history, model)
    order = search.run(initial or FutureState())
    if order is None:
        raise NotLinearizableError(history, _explain(search))
    return order


def explain(
    history: Sequence[Operation],
    model: Callable[[FutureState, Call], tuple[FutureState, Outcome]] = step,
    initial: FutureState | None = None,
) -> str:
    """Why *history* is not linearizable (or the order that shows it is)."""
    search = _Search(history, model)
    order = search.run(initial or FutureState())
    if order is not None:
        return "linearizable, in this order:\n" + "\n".join(f"  {op}" for op in order)
    return _explain(search)


def format_history(history: Sequence[Operation]) -> str:
    """The history, a block per thread (in the order each first called), each operation
    with its span: the points of its invocation and its response."""
    threads: dict[str, list[Operation]] = {}
    for op in sorted(history, key=lambda op: op.invoked):
        threads.setdefault(op.thread, []).append(op)
    width = len(str(max((op.responded for op in history), default=0)))
    lines = []
    for thread, ops in threads.items():
        lines.append(f"  {thread}:")
        for op in ops:
            span = f"{op.invoked:>{width}}-{op.responded:<{width}}"
            lines.append(f"    [{span}] {op.call} -> {op.outcome}")
    return "\n".join(lines)


def _explain(search: _Search) -> str:
    ops = search.ops
    lines = [
        (
            f"not linearizable: no order of these {len(ops)} operations that respects real "
            "time (an operation that returned before another was invoked comes first) gives "
            "each the outcome it had on a sequential Future."
        ),
        "History, per thread ([invoked-responded] on one counter shared by the threads):",
        format_history(ops),
    ]
    if search.dead_ends:
        depth = len(search.dead_ends[0].order)
        lines.append(
            f"The longest orders that explain part of it ({depth} of {len(ops)} operations), "
            "and what each operation that may come next would have to do instead:"
        )
        for dead_end in search.dead_ends:
            placed = ", ".join(str(ops[i]) for i in dead_end.order) or "(nothing yet)"
            lines.append(f"  after {placed}")
            lines.append(f"  the future is {dead_end.state}; then")
            for i, expected in dead_end.contradictions:
                op = ops[i]
                both = expected.called_back != op.outcome.called_back
                lines.append(
                    f"    {op.thread}: {op.call} would {expected.phrase('present', both)}, "
                    f"but it {op.outcome.phrase('past', both)}"
                )
    return "\n".join(lines)
