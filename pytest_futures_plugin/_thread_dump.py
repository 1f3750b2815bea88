"""The thread dump of the hang guard: every thread's stack, and what each one waits on.

Which future a thread waits on is read from the frames of the waiting calls of
``concurrent.futures`` and executor_impl (``Future.result()``, ``wait()``, ``as_completed()``,
``Thread.join()``, ...), lock-free, since a hung thread may hold the locks. Standard library
only: no pytest, no hypothesis.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import FrameType

__all__ = [
    "blocked_on",
    "describe_threads",
    "release_waiters",
    "running_futures",
    "wait_line",
]


_FUTURE = ("concurrent/futures/_base.py", "executor_impl/_future.py")
_WAITING = ("concurrent/futures/_base.py", "executor_impl/_waiting.py")
_MAP = ("concurrent/futures/_base.py", "executor_impl/_executor.py")
_POOLS = (
    "concurrent/futures/thread.py",
    "concurrent/futures/process.py",
    "executor_impl/thread.py",
    "executor_impl/process.py",
)
_THREADING = ("/threading.py", "/queue.py")
_SYNC_CALLS = frozenset(("join", "wait", "wait_for", "acquire", "get", "put"))
# The stdlib's state names, as its Future repr prints them.
_STATES = {
    "PENDING": "pending",
    "RUNNING": "running",
    "CANCELLED": "cancelled",
    "CANCELLED_AND_NOTIFIED": "cancelled",
    "FINISHED": "finished",
}


def _describe_future(future: Any, workers: dict[int, str]) -> str:
    """The stdlib's Future repr, built from ``_state`` without the lock a hung thread may hold."""
    state = getattr(future, "_state", None)
    text = f"<{type(future).__name__} at {id(future):#x}"
    if isinstance(state, str):
        text += f" state={_STATES.get(state, state)}"
        if state == "FINISHED":
            exc = getattr(future, "_exception", None)
            outcome = getattr(future, "_result", None) if exc is None else exc
            text += f" {'returned' if exc is None else 'raised'} {type(outcome).__name__}"
    text += ">"
    if id(future) in workers:
        text += f" (running in thread {workers[id(future)]!r})"
    return text


def _describe_futures(items: list[Any], workers: dict[int, str]) -> str:
    shown = ", ".join(_describe_future(f, workers) for f in items[:8])
    more = f", and {len(items) - 8} more" if len(items) > 8 else ""
    return f"{len(items)} future{'s' if len(items) != 1 else ''}: {shown}{more}"


def _futures_in(value: Any) -> list[Any]:
    # Only materialise containers: iterating an arbitrary iterable could run user code.
    return list(value) if isinstance(value, (set, frozenset, list, tuple, dict)) else []


def _wait_point(frame: FrameType, workers: dict[int, str]) -> tuple[str, str, str] | None:
    """``(kind, call, target)`` if *frame* is a known wait, else None.

    Kinds: ``block`` waits on futures or a thread; ``sync`` is a threading or queue wait;
    ``context`` an enclosing API call (``map``'s iterator, ``shutdown``) worth naming.
    """
    code = frame.f_code
    name, filename = code.co_name, code.co_filename.replace(os.sep, "/")
    if name in ("result", "exception") and filename.endswith(_FUTURE):
        return "block", f"Future.{name}()", _describe_future(frame.f_locals.get("self"), workers)
    if name in ("wait", "as_completed") and filename.endswith(_WAITING):
        local = frame.f_locals
        pending = next((local[n] for n in ("not_done", "pending", "fs") if n in local), ())
        return "block", f"{name}()", _describe_futures(_futures_in(pending), workers)
    if name in _SYNC_CALLS and filename.endswith(_THREADING):
        this = frame.f_locals.get("self")
        if name == "join" and isinstance(this, threading.Thread):
            return "block", "Thread.join()", f"thread {this.name!r}"
        kind = type(this)
        return (
            "sync",
            f"{kind.__name__}.{name}()",
            f"<{kind.__module__}.{kind.__qualname__} at {id(this):#x}>",
        )
    if name in ("result_iterator", "_results_in_order") and filename.endswith(_MAP):
        return "context", "Executor.map() results", ""
    if name == "shutdown" and filename.endswith(_POOLS):
        return "context", f"{type(frame.f_locals.get('self')).__name__}.shutdown()", ""
    return None


def wait_line(name: str, frame: FrameType | None, workers: dict[int, str]) -> str | None:
    """``"<name> waits in <call> on <target>"`` for one thread's stack, None if not waiting.

    The innermost ``block`` wins (``Future.result()``, not the lock inside it); failing that the
    outermost ``sync`` (``Event.wait()``, not the ``Condition.wait()`` inside it).
    """
    block: tuple[str, str] | None = None
    sync: tuple[str, str] | None = None
    contexts: list[str] = []
    while frame is not None:  # innermost first
        point = _wait_point(frame, workers)
        if point is not None:
            kind, call, target = point
            if kind == "block" and block is None:
                block = (call, target)
            elif kind == "sync" and block is None:
                sync = (call, target)
            elif kind == "context" and (block or sync):
                contexts.append(call)
        frame = frame.f_back
    chosen = block or sync
    if chosen is None:
        return None
    via = f" (inside {', '.join(reversed(contexts))})" if contexts else ""
    return f"{name} waits in {chosen[0]} on {chosen[1]}{via}"


def running_futures(frames: dict[int, FrameType], names: dict[int, str]) -> dict[int, str]:
    """id(future) -> name of the pool worker thread running it (executor_impl's and stdlib's)."""
    workers: dict[int, str] = {}
    for ident, frame in frames.items():
        current: FrameType | None = frame
        while current is not None:
            # f_locals only for the frames that match: before 3.13 each read copies them.
            code = current.f_code
            filename = code.co_filename.replace(os.sep, "/")
            future: Any = None
            if code.co_name == "_worker" and filename.endswith("executor_impl/thread.py"):
                future = current.f_locals.get("future")
            elif code.co_name == "run" and filename.endswith("concurrent/futures/thread.py"):
                future = getattr(current.f_locals.get("self"), "future", None)
            if future is not None:
                workers[id(future)] = names.get(ident, f"<unknown thread {ident}>")
            current = current.f_back
    return workers


def describe_threads(*, exclude: Iterable[int] = ()) -> str:
    """Describe every Python thread: what it waits on (futures, threads, Events), then its stack.

    *exclude* lists thread idents to leave out (the hang guard leaves out its watchdog).  Reads
    the frames lock-free, so it is safe to call while other threads hang; it never raises (a
    failure is described in the text instead).
    """
    try:
        skip = set(exclude)
        frames = {k: v for k, v in sys._current_frames().items() if k not in skip}
        threads = {t.ident: t for t in threading.enumerate()}
        names = {
            ident: getattr(threads.get(ident), "name", f"<unknown {ident}>") for ident in frames
        }
        main = threading.main_thread().ident
        order = sorted(frames, key=lambda ident: (ident != main, names[ident]))
        workers = running_futures(frames, names)
        waits, stacks = [], []
        for ident in order:
            try:
                line = wait_line(names[ident], frames[ident], workers)
                if line is not None:
                    waits.append(f"  {line}")
                daemon = getattr(threads.get(ident), "daemon", "?")
                stacks.append(
                    f"Thread {names[ident]!r} (ident {ident}, daemon={daemon}), most recent call last:\n"
                    + "".join(traceback.format_stack(frames[ident]))
                )
            except Exception as exc:  # one odd thread must not cost the whole report
                stacks.append(f"Thread {names[ident]!r}: could not describe it: {exc!r}\n")
        waits = waits or ["  (no thread waits in a known futures or threading call)"]
        return "Waits:\n" + "\n".join(waits) + f"\n\nThreads ({len(order)}):\n" + "\n".join(stacks)
    except Exception as exc:
        return f"could not describe the threads: {exc!r}\n"


def blocked_on(frame: FrameType | None) -> list[Any]:
    """The futures the innermost futures wait of a stack (``result()``, ``wait()``, ...) is on."""
    while frame is not None:
        code = frame.f_code
        name, filename = code.co_name, code.co_filename.replace(os.sep, "/")
        if name in ("result", "exception") and filename.endswith(_FUTURE):
            return [frame.f_locals.get("self")]
        if name in ("wait", "as_completed") and filename.endswith(_WAITING):
            local = frame.f_locals
            pending = next((local[n] for n in ("not_done", "pending", "fs") if n in local), ())
            return _futures_in(pending)
        frame = frame.f_back
    return []


def release_waiters(error: BaseException) -> list[str]:
    """Fail every unfinished future that a thread other than the caller is blocked on, with
    *error*, and return their descriptions.

    The way out of a deadlock once it has been reported: the blocked tasks return (raising),
    their workers go back to their pools, and the pools can shut down, so the process does
    not hang at exit. A future that finished meanwhile is left alone; the worker of a future
    failed before it ran finds it done and skips or drops it, as the pool does for any
    future completed behind its back.
    """
    me = threading.get_ident()
    released: list[str] = []
    seen: set[int] = set()
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        for future in blocked_on(frame):
            if future is None or id(future) in seen or not hasattr(future, "set_exception"):
                continue
            seen.add(id(future))
            try:
                if future.done():
                    continue
                future.set_exception(error)
            except Exception:  # finished just now (InvalidStateError), or not a real Future
                continue
            released.append(_describe_future(future, {}))
    return released
