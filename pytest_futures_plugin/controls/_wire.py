"""The wire between a control and the server that owns it: frames, errors, the client side.

A process that uses a control it did not create (see ``_server``) sends each
operation as one request frame and blocks until the reply frame: a 4-byte big-endian length
(``HEADER``) and a pickle. A request is ``(kind, id, op, args, timeout)``, where *timeout* is
None for an operation that answers at once and the wait's bound otherwise; a reply is
``(status, value)`` with status "ok", "closed", "timeout" (value: how far the wait got) or
"error" (value: the message).

Each thread keeps one connection per server, made on first use and remade after a fork (the
pid tells), so a task blocked on a gate never holds up another thread's request, and a forked
child never shares a socket with its parent. A connection whose request was interrupted is
closed, never reused: its reply may still arrive.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import threading
from typing import Any

REPLY_GRACE = 10.0
"""Seconds a worker waits for a reply beyond the timeout of its request: the server answers
every request at once or when the request's own deadline passes, so only a lost server
takes this long."""

HEADER = struct.Struct("!I")
"""A frame's header: the length of the pickle that follows."""

MAX_FRAME = 16 << 20
"""The largest request a server accepts: a control's request is tiny, so a larger one is
not from a control."""

PICKLE_PROTOCOL = 4
"""Readable by every supported Python, whatever interpreter a worker runs."""


class ControlError(Exception):
    """A control was misused, or its server cannot be reached."""


class ControlClosed(ControlError):
    """The control, or the server that owns it, was closed (at the end of its test)."""


# Defined here, below _controls.py and the package, which re-export them: users import them from there, and
# tracebacks (and pickles) should name that module.
ControlError.__module__ = ControlClosed.__module__ = "pytest_futures_plugin.controls"


class _Connection:
    """One socket to one server, used by one thread for one request at a time."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(address)
        except BaseException:
            self.sock.close()
            raise

    def request(self, frame: bytes, timeout: float) -> Any:
        self.sock.settimeout(timeout)
        self.sock.sendall(frame)
        (size,) = HEADER.unpack(self._exactly(HEADER.size))
        return pickle.loads(self._exactly(size))

    def _exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError("the control server hung up")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        self.sock.close()

    def __del__(self) -> None:  # a thread's cache dies with it: close without a warning
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()


class _Connections(threading.local):
    """Each thread's connections, by server address, with the pid that made them."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.by_address: dict[str, _Connection] = {}


_connections = _Connections()


def request(address: str, message: tuple[Any, ...], timeout: float) -> tuple[str, Any]:
    """Send *message* to the server at *address*; return its reply ``(status, value)``.

    Waits *timeout* seconds at most for the reply. Raises ``ControlClosed`` if the server is
    gone, ``ControlError`` if it cannot be reached or *message* cannot be pickled.
    """
    cache = _connections
    if cache.pid != os.getpid():  # the forking thread's sockets, copied: never share them
        for inherited in cache.by_address.values():
            inherited.close()
        cache.pid, cache.by_address = os.getpid(), {}
    try:  # before connecting: an unpicklable label must not cost the connection
        payload = pickle.dumps(message, PICKLE_PROTOCOL)
    except Exception as error:
        raise ControlError(f"cannot send {message[2]}{message[3]!r}: {error}") from error
    connection = cache.by_address.get(address)
    try:
        if connection is None:
            connection = cache.by_address[address] = _Connection(address)
        reply: tuple[str, Any] = connection.request(HEADER.pack(len(payload)) + payload, timeout)
        return reply
    except BaseException as error:
        # Whatever interrupted it (a lost server, a timeout, an exception raised by a signal
        # handler), a reply may still be on its way: never reuse this connection.
        lost = cache.by_address.pop(address, None)
        if lost is not None:
            lost.close()
        if not isinstance(error, (OSError, EOFError, pickle.UnpicklingError)):
            raise
        if not os.path.exists(address):
            raise ControlClosed(f"the control server at {address} is closed") from None
        raise ControlError(f"lost the control server at {address}: {error!r}") from error
