"""The scheduler's reports: the wait-for graph of a deadlock (and a cycle in it), and the stack
of a thread that blocked outside the scheduler's control.

Which future a thread waits on, and which worker runs it, is read from the threads' frames by
the hang guard's thread dump (``_thread_dump``), so that both describe a wait alike.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import sys
from typing import Any

from pytest_futures_plugin import _thread_dump

from ._locations import stack_location
from ._state import BLOCKED, DeadlockError, ManagedThread, UncontrolledBlockingError

__all__ = [
    "deadlock_error",
    "frames_of",
    "uncontrolled_error",
]


def frames_of(threads: list[ManagedThread]) -> tuple[dict[int, Any], dict[int, str]]:
    """The current frames of *threads* (those alive), and their names, by thread ident."""
    frames = sys._current_frames()
    found: dict[int, Any] = {}
    names: dict[int, str] = {}
    for thread in threads:
        if thread.ident is None:
            continue
        glet = thread.greenlet
        if glet is None:
            frame = frames.get(thread.ident)
        elif glet.gr_frame is not None:  # thread_mode "greenlet": a parked greenlet
            frame = glet.gr_frame
        elif glet is sys.modules["greenlet"].getcurrent():  # the running one: the caller
            frame = sys._getframe(1)
        else:  # ended, or not started
            frame = None
        if frame is not None:
            found[thread.ident], names[thread.ident] = frame, thread.name
    return found, names


def deadlock_error(
    threads: list[ManagedThread], *, steps: int, elapsed: float, timers: bool
) -> DeadlockError:
    """The error of a run in which every one of *threads* is blocked: the wait-for graph
    (thread -> future -> the worker running it, thread -> lock -> its holder) and a cycle in it.
    *timers*: some thread waits with a deadline, but the clock does not jump (autojump off)."""
    frames, names = frames_of(threads)
    workers = _thread_dump.running_futures(frames, names)
    graph: list[str] = []
    where: list[str] = []
    edges: dict[str, list[str]] = {}
    by_name = {t.name: t for t in threads}
    for thread in threads:
        if thread.state != BLOCKED:
            continue
        frame = frames.get(thread.ident) if thread.ident is not None else None
        line = _thread_dump.wait_line(thread.name, frame, workers)
        targets: list[str] = []
        for future in _thread_dump.blocked_on(frame):
            worker = workers.get(id(future))
            if worker is not None:
                targets.append(worker)
        holder = getattr(thread.waiting, "_holder", None)
        if isinstance(holder, ManagedThread) and holder is not thread:
            targets.append(holder.name)
        joined = getattr(thread.waiting, "tid_name", None)
        if isinstance(thread.waiting, ManagedThread) and joined:
            targets.append(thread.waiting.name)
        if line is None:
            line = f"{thread.name} waits in {thread.op}"
            if isinstance(holder, ManagedThread):
                line += f" (held by {holder.name!r})"
        elif "state=pending" in line and not targets:
            line += " (queued: no worker has started it)"
        graph.append(line)
        where.append(stack_location(frame) if frame is not None else "?")
        edges[thread.name] = [t for t in targets if t in by_name]
    cycle = _find_cycle(edges)
    why = (
        "every managed thread is blocked and virtual time does not jump (autojump off)"
        if timers
        else "every managed thread is blocked and no timeout is pending"
    )
    text = [f"Deadlock: {why} (step {steps}, virtual time +{elapsed:g}s)."]
    text.append("Wait-for graph:")
    for line, location in zip(graph, where):
        text.append(f"  {line}")
        text.append(f"      at {location}")
    if cycle:
        text.append("Cycle: " + " -> ".join([*cycle, cycle[0]]))
    return DeadlockError("\n".join(text), graph, cycle)


def uncontrolled_error(
    current: ManagedThread | None, threads: list[ManagedThread], timeout: float | None
) -> UncontrolledBlockingError:
    """The error of a run whose running thread, *current*, went *timeout* real seconds
    without reaching a scheduling point, with that thread's stack."""
    name = current.name if current else "?"
    frames, _ = frames_of(threads)
    stack = ""
    if current is not None and current.ident in frames:
        import traceback

        stack = "".join(traceback.format_stack(frames[current.ident]))
    return UncontrolledBlockingError(
        f"thread {name!r} ran for {timeout}s without reaching a "
        f"scheduling point: it is blocked in something the scheduler does not control "
        f"(a socket, a C lock, a lock made before the run) or computes for that long. "
        f"Its stack, most recent call last:\n{stack}"
    )


def _find_cycle(edges: dict[str, list[str]]) -> list[str]:
    for start in edges:
        path: list[str] = []
        seen: set[str] = set()
        node: str | None = start
        while node is not None and node not in seen:
            seen.add(node)
            path.append(node)
            targets = edges.get(node) or []
            node = targets[0] if targets else None
        if node is not None and node in path:
            return path[path.index(node) :]
    return []
