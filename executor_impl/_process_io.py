"""The parent's side of a worker's wire: receive what a worker sent, parse its frames,
decode each answer (see ``_process_worker`` for the frame format).

Pure functions on a ``Worker``'s input buffer, non-blocking, called only by whoever holds
that worker's ``read_lock`` (the manager thread, or a thread reading its own answer: see
``_process_direct``).  A worker never imports this module: it needs the stdlib's
``_RemoteTraceback`` (and with it ``concurrent.futures.process``), which would cost every
spawned worker its import.
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures.process import _RemoteTraceback
from typing import TYPE_CHECKING, Any

from ._process_worker import ERROR, FRAME, INIT_FAILED

if TYPE_CHECKING:
    from ._process_manager import Worker

__all__ = ["Outcome", "parse_frames", "read_frames", "remote_traceback"]

_READ_SIZE = 1 << 16

# An answer read from a worker: (task id, (raised, result or exception)).
Outcome = tuple[int, tuple[bool, Any]]


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
