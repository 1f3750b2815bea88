"""The parent's non-blocking side of a worker's wire: ``Worker``, the parent's end of one
worker's socket with its buffers; receive what a worker sent, parse its frames, decode each
answer (see ``_process_worker`` for the frame format).

The reading functions work on a ``Worker``'s input buffer and are called only by whoever
holds that worker's ``read_lock`` (the manager thread, or a thread reading its own answer:
see ``_process_direct``); what is written waits in its out-buffer (``consume``).  A worker never imports this module: it needs the stdlib's
``_RemoteTraceback`` (and with it ``concurrent.futures.process``), which would cost every
spawned worker its import.
"""

from __future__ import annotations

import os
import pickle
import socket
from collections import deque
from concurrent.futures.process import _RemoteTraceback
from typing import TYPE_CHECKING, Any

from . import _sync
from ._process_worker import ERROR, FRAME, INIT_FAILED

if TYPE_CHECKING:
    from ._process_direct import ProcessFuture

__all__ = [
    "Outcome",
    "Worker",
    "consume",
    "parent_fds",
    "parse_frames",
    "read_frames",
    "remote_traceback",
    "widen",
]

_READ_SIZE = 1 << 16
# Send buffer of each end of a worker's socket (bytes; the kernel may cap or double it).
_SOCKET_BUFFER = 1 << 20
# Parent-side descriptors of every pool in this process.  A forked child (a fork-context
# worker of any pool, or the user's) closes them at once: it must not keep another worker's
# socket open, or that worker would not see end-of-file when this process dies.
parent_fds: set[int] = set()

# An answer read from a worker: (task id, (raised, result or exception)).
Outcome = tuple[int, tuple[bool, Any]]


class Worker:
    """The parent's view of one worker process."""

    __slots__ = (
        "adopted",
        "budget",
        "claim",
        "conn",
        "events",
        "exiting",
        "expect",
        "fd",
        "inbuf",
        "init_failure",
        "outbuf",
        "poller",
        "process",
        "read_lock",
        "tasks",
        "want_write",
    )

    def __init__(self, process: Any, conn: Any, budget: int | None) -> None:
        self.process = process
        self.conn = conn  # keeps the socket open; we use its descriptor directly
        self.fd: int = conn.fileno()
        os.set_blocking(self.fd, False)
        self.outbuf: deque[memoryview] = deque()
        self.tasks: set[int] = set()  # ids sent and not answered
        self.budget = budget  # calls it may still be sent (max_tasks_per_child)
        self.exiting = False  # it will exit and that is expected
        self.init_failure: str | None = None  # its initializer's traceback: it is exiting
        # Reading the socket: by whoever holds read_lock.
        self.read_lock = _sync.allocate_lock()
        self.inbuf = bytearray()
        self.poller: Any = None  # poll object on the socket and the sentinel, made once
        # Guarded by the pool's watch_lock: the call whose answer a thread reads (or may
        # read) directly; whether the manager waits for answers when nothing is claimed
        # (not while idle after a direct answer); whether it has bytes to write; what the
        # selector watches (the sentinel once adopted by the manager; the socket for
        # ``events``, 0: not registered).
        self.claim: ProcessFuture[Any] | None = None
        self.expect = True
        self.want_write = False
        self.adopted = False
        self.events = 0

    def close(self) -> None:
        parent_fds.discard(self.fd)
        self.conn.close()


def widen(fd: int) -> None:
    """Give the socket *fd* a send buffer of :data:`_SOCKET_BUFFER` bytes (if the system
    allows), so that a large call or answer goes out in one write and one wake-up of the
    reader, instead of a write, a wait for room and another write."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
    except OSError:
        pass  # the default buffer works, only slower for large payloads


def consume(buffers: deque[memoryview], count: int) -> None:
    """Drop the first *count* bytes of the queued *buffers*."""
    while count:
        size = len(buffers[0])
        if count >= size:
            count -= size
            buffers.popleft()
        else:
            buffers[0] = buffers[0][count:]
            count = 0


def remote_traceback(text: str) -> BaseException:
    """The worker-side traceback, to attach as ``__cause__`` of an exception from a worker.

    The stdlib's own class, so code that checks ``type(exc.__cause__)`` sees what it expects
    (typeshed types its argument as a traceback object; it is the formatted text).
    """
    return _RemoteTraceback(text)  # type: ignore[arg-type]


def _decode(kind: int, payload: memoryview) -> tuple[bool, Any]:
    """(raised, value) from a result frame; an undecodable result fails its own call.

    *payload* views the worker's input buffer: it is released here, even when an exception's
    traceback keeps this frame alive, so that the buffer can be trimmed.
    """
    try:
        if kind == INIT_FAILED:
            return True, bytes(payload).decode("utf-8", "replace")
        value = pickle.loads(payload)
    except BaseException as exc:
        return True, exc
    finally:
        payload.release()
    if kind == ERROR:
        error, text = value
        error.__cause__ = remote_traceback(f'\n"""\n{text}"""')
        return True, error
    return False, value


# -- reading a worker's socket: only with its read_lock held ------------------------------------


def _receive(worker: Worker) -> bool:
    """Append what *worker* sent to its input buffer, without blocking; False if it is gone
    (end of file or an error)."""
    header = FRAME.size
    while True:
        # Ask for the whole of a partly received large frame at once.
        inbuf = worker.inbuf
        want = _READ_SIZE
        if len(inbuf) >= header:
            want = max(want, header + FRAME.unpack_from(inbuf)[0] - len(inbuf))
        try:
            chunk = os.read(worker.fd, want)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        if inbuf:
            inbuf += chunk
        else:
            worker.inbuf = bytearray(chunk)
        if len(chunk) < want:
            return True


def parse_frames(worker: Worker, outcomes: list[Outcome]) -> None:
    """Decode every complete frame of *worker*'s input buffer into *outcomes*."""
    inbuf = worker.inbuf
    header = FRAME.size
    pos = 0
    end = len(inbuf)
    with memoryview(inbuf) as view:
        while end - pos >= header:
            size, task_id, kind = FRAME.unpack_from(view, pos)
            stop = pos + header + size
            if stop > end:
                break
            outcome = _decode(kind, view[pos + header : stop])
            if kind == INIT_FAILED:
                # The pool breaks when the worker has exited (its sentinel), as the
                # stdlib's does: by then whatever it logged has been flushed.
                worker.init_failure = outcome[1]
            else:
                outcomes.append((task_id, outcome))
            pos = stop
    if pos:
        del inbuf[:pos]


def read_frames(worker: Worker, outcomes: list[Outcome]) -> bool:
    """Read what *worker* sent without blocking and decode every complete frame; False if it
    is gone."""
    alive = _receive(worker)
    parse_frames(worker, outcomes)
    return alive
