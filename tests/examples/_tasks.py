"""The seed examples' tasks, at module level so that every pool can run them.

A worker process started by ``spawn`` or ``forkserver`` finds a task by its module and name,
so everything the examples submit lives here, in a module that imports nothing but the
standard library and the plugin's controls (passed in as arguments, never created here).
The tutorials' tasks sleep to make an ordering likely; these wait on gates instead, which
the test opens in the order it wants.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from email.message import Message

    from pytest_futures_plugin.controls import Gate, Latch, Recorder


def whoami(n: int, gate: Gate | None = None, finished: Latch | None = None) -> tuple[int, str, int]:
    """Wait on *gate* if given, count *finished* down if given, and return
    ``(n, the running thread's name, the running process's id)``."""
    if gate is not None:
        gate.wait()
    if finished is not None:
        finished.count_down()
    return n, threading.current_thread().name, os.getpid()


def tenth(n: int, gate: Gate | None = None, started: Recorder | None = None) -> float:
    """The tutorials' ``task(n)``: record *n* as started, wait on *gate*, return ``n / 10``."""
    if started is not None:
        started.started(n)
    if gate is not None:
        gate.wait()
    return n / 10


def tenth_pair(n: int, gate: Gate) -> tuple[int, float]:
    """Wait on *gate*, then return ``(n, n / 10)`` (the as_completed tutorial's task)."""
    gate.wait()
    return n, n / 10


def reject(n: int, gate: Gate | None = None) -> float:
    """Wait on *gate* if given, then raise ``ValueError("the value N is no good")``."""
    if gate is not None:
        gate.wait()
    raise ValueError(f"the value {n} is no good")


def note(recorder: Recorder, n: int) -> None:
    """Record *n*: the context-manager tutorial's task, which printed it."""
    recorder.record(n)


def pid_of(n: int) -> tuple[int, int]:
    """Return ``(n, the running process's id)``."""
    return n, os.getpid()


class FetchHTTPError(urllib.error.HTTPError):
    """An ``HTTPError`` that can travel back from a worker process.

    The stdlib's ``HTTPError`` holds the open response and cannot be unpickled (its
    ``__reduce__`` gives the constructor none of its five arguments), so a process pool
    cannot return it as it is. This one keeps the URL, the status, the reason and the
    headers, and drops the body.
    """

    def __init__(self, url: str, code: int, msg: str, hdrs: Message) -> None:
        super().__init__(url, code, msg, hdrs, None)

    def __reduce__(self) -> tuple[type[FetchHTTPError], tuple[str, int, str, Message]]:
        return type(self), (str(self.filename), self.code, self.msg, self.hdrs)


# Requests go straight to the address in the URL: a proxy named by the environment
# (http_proxy) must not stand between the test and its own server on 127.0.0.1.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def load_url(url: str, timeout: float) -> bytes:
    """The tutorial's ``load_url``: fetch *url* and return its body.

    Raises ``urllib.error.URLError`` when no connection can be made, :class:`FetchHTTPError`
    (an ``HTTPError``) for an error status, ``TimeoutError``/``OSError`` after *timeout*
    seconds without progress.
    """
    try:
        with _opener.open(url, timeout=timeout) as conn:
            body: bytes = conn.read()
            return body
    except urllib.error.HTTPError as error:
        error.close()  # the open response it holds
        raise FetchHTTPError(url, error.code, error.msg, error.hdrs) from None
