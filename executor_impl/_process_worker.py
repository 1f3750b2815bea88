"""The worker side of ProcessPoolExecutor, and the wire format both sides speak.

A worker owns one end of a socket pair; the parent owns the other.  Every message is one
frame::

    !Q length of payload | !Q task id | !B flags | payload (pickle)

Parent -> worker: payload is ``pickle((fn, args, kwargs))``; flags carry ``EXIT`` (no
payload: finish) or a crash point (fault injection, see ``CRASH_POINTS``).
Worker -> parent: flags say what the payload is: ``OK`` (the pickled result), ``ERROR``
(pickled ``(exception, traceback text)``), ``INIT_FAILED`` (the initializer's traceback,
UTF-8; the worker then exits).

The worker reads and writes with plain blocking system calls and keeps nothing between
tasks.  This module is small and imports little: spawned children import it first, so
``logging`` and ``traceback`` are imported only when a worker has something to report, and
``spin`` bounds itself on ``time``'s own clock: it spends real CPU time, in the worker (where
no scheduler ever runs) and in the parent, where a virtual clock that stood still would leave
the spin unbounded.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CRASH_POINTS", "FRAME", "worker_main"]

FRAME = struct.Struct("!QQB")

# Flags, parent -> worker.
EXIT = 0x80
CRASH_MASK = 0x07
# Where a worker may be told to die abruptly (os._exit), for tests of a broken pool:
# the task's bytes received but not unpickled; unpickled but not run; the result pickled but
# not sent; half of the result's bytes written.
CRASH_POINTS = ("task_received", "task_unpickled", "result_pickled", "result_half_sent")
CRASH_EXIT_CODE = 70

# Kinds, worker -> parent.
OK = 0
ERROR = 1
INIT_FAILED = 2


def _format_exception(exc: BaseException) -> str:
    """*exc* with its traceback, as the interpreter prints it."""
    import traceback  # on the first error only (see the module docstring)

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def read_exactly(fd: int, n: int) -> bytes | bytearray:
    """Read *n* bytes from blocking *fd*; raise EOFError if the peer closed first."""
    if n <= 65536:
        data = os.read(fd, n)
        if len(data) == n:
            return data
        buf = bytearray(data)
        while len(buf) < n:
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    buf = bytearray(n)
    view = memoryview(buf)
    pos = 0
    while pos < n:
        got = os.readv(fd, [view[pos:]])
        if not got:
            raise EOFError
        pos += got
    return buf


def write_all(fd: int, *parts: bytes | bytearray | memoryview) -> None:
    """Write every byte of *parts* to blocking *fd*."""
    views = [memoryview(p) for p in parts]
    while views:
        written = os.writev(fd, views)
        while written and views:
            size = len(views[0])
            if written >= size:
                written -= size
                views.pop(0)
            else:
                views[0] = views[0][written:]
                written = 0


def _dumps_outcome(task_id: int, kind: int, value: Any) -> tuple[bytes, bytes]:
    """Pickle a result or an (exception, traceback) pair; a pickling failure becomes the
    task's error, so one bad result fails its own future and nothing else."""
    try:
        payload = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        text = _format_exception(exc)
        if kind == ERROR:
            # The task's own exception does not pickle: its call fails with the pickling
            # error (as in the stdlib), whose cause shows both tracebacks.
            text = value[1] + "\nDuring pickling of that exception:\n\n" + text
        try:
            payload = pickle.dumps((exc, text), pickle.HIGHEST_PROTOCOL)
        except BaseException:
            payload = pickle.dumps((RuntimeError(repr(exc)), text), pickle.HIGHEST_PROTOCOL)
        kind = ERROR
    return FRAME.pack(len(payload), task_id, kind), payload


def _call(data: bytes | bytearray, crash: int) -> tuple[int, Any]:
    """Unpickle and run one call; its arguments are freed when this returns."""
    try:
        fn, args, kwargs = pickle.loads(data)
        if crash == 2:
            os._exit(CRASH_EXIT_CODE)
        return OK, fn(*args, **kwargs)
    except BaseException as exc:
        text = _format_exception(exc)
        # Drop the traceback: its frames would keep the call's arguments alive.
        return ERROR, (exc.with_traceback(None), text)


#: How long to poll without sleeping for an answer or a call expected soon, in seconds.
#: Waking a process that sleeps costs more than the whole round trip when its CPU is idle
#: (on the 2-vCPU test machine, an idle pool's submit().result() took 85-140 us sleeping
#: and 23-33 us spinning), while a spin that finds nothing costs at most this much CPU.
SPIN_SECONDS = 50e-6

#: A yield that took longer than this (seconds) gave the CPU to somebody else.
_GAVE_AWAY = 20e-6


def _may_spin() -> bool:
    """Whether spinning can help: not if this process may run on one CPU only, where the
    process it waits for needs the very CPU it would spin on."""
    try:
        return len(os.sched_getaffinity(0)) > 1
    except (AttributeError, OSError):  # no sched_getaffinity (macOS): assume several CPUs
        return (os.cpu_count() or 1) > 1


_sched_yield = getattr(os, "sched_yield", lambda: None)
_MAY_SPIN = _may_spin()


def spin(
    poller: Any, seconds: float = SPIN_SECONDS, clock: Callable[[], float] = time.monotonic
) -> list[tuple[int, int]]:
    """What ``poller.poll(0)`` finds within *seconds* of *clock*, polling without sleeping;
    ``[]`` if nothing came.

    Between polls the CPU is offered to any other runnable task (``sched_yield``); a yield
    that gave it away (the machine is busy: the process waited for may even have run here)
    ends the spin after one more poll.  No spin at all where this process may use one CPU
    only (``_may_spin``)."""
    ready: list[tuple[int, int]] = poller.poll(0)
    if ready or seconds <= 0 or not _MAY_SPIN:
        return ready
    now = clock()
    end = now + seconds
    while now < end:
        _sched_yield()
        ready = poller.poll(0)
        before, now = now, clock()
        if ready or now - before > _GAVE_AWAY:
            return ready
    return ready


def worker_main(
    fd_holder: Any,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    max_tasks: int | None,
) -> None:
    """Run tasks read from the parent until told to exit, *max_tasks* are done, or the parent
    goes away.

    *fd_holder* is this worker's end of the socket pair (a ``multiprocessing`` Connection,
    so that every start method can pass it to the child).  The parent counts tasks too: it
    sends no more than *max_tasks* and expects the exit after the last result.
    """
    fd = fd_holder.fileno()
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException as exc:
            import logging  # only now (see the module docstring)

            logging.getLogger("concurrent.futures").critical(
                "Exception in initializer:", exc_info=True
            )
            text = _format_exception(exc)
            encoded = text.encode("utf-8", "replace")
            try:
                write_all(fd, FRAME.pack(len(encoded), 0, INIT_FAILED), encoded)
            except OSError:
                pass
            return
    header_size = FRAME.size
    # Wait for a call in poll(), not in a blocking read.  A task blocked in read() on a Unix
    # socket sleeps on the queue that writers waiting for room sleep on, so the parent
    # reading our last answer (which frees room) woke this process for nothing, once per
    # call (seen with perf sched; it cost about 7% of a submit().result() round trip on
    # the 2-CPU test machine).  poll() for input only is woken by input.  After an answer
    # the next call often follows within microseconds: spin() first (see SPIN_SECONDS).
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        try:
            spin(poller) or poller.poll()
            size, task_id, flags = FRAME.unpack(read_exactly(fd, header_size))
            data = read_exactly(fd, size) if size else b""
        except (EOFError, OSError):
            return  # the parent is gone
        if flags & EXIT:
            return
        crash = flags & CRASH_MASK
        if crash == 1:
            os._exit(CRASH_EXIT_CODE)
        outcome = _call(data, crash)
        del data
        header, payload = _dumps_outcome(task_id, *outcome)
        del outcome
        if crash == 3:
            os._exit(CRASH_EXIT_CODE)
        try:
            if crash == 4:
                write_all(fd, header, payload[: len(payload) // 2])
                os._exit(CRASH_EXIT_CODE)
            write_all(fd, header, payload)
        except OSError:
            return  # the parent is gone
        del header, payload
        if max_tasks is not None:
            max_tasks -= 1
            if max_tasks <= 0:
                return
