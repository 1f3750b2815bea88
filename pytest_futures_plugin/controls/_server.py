"""The control server: it owns the state of every control created in its process.

A control (a gate, latch or recorder of ``_controls.py``) used in the process that created it
works on its ``State`` directly, under the state's condition variable. Used in any other
process (a worker started by fork, spawn or forkserver, a loky worker that cloudpickled it),
it sends requests to the server of the creating process over an AF_UNIX socket::

    task in a worker --request frame--> server thread: one selectors loop, which applies an
                                        operation to its state at once, or parks a wait
                     <--reply frame---  until it is satisfied, closed, or past its deadline

The frames and the client side are in ``_wire``. Pickle is safe enough here: the
socket lies in a private directory (``tempfile.mkdtemp``, mode 0700), so only this user's
processes can connect.

The server starts when its first control is registered, in one daemon thread named
``SERVER_THREAD_NAME`` so that leak checks can tell it from a leaked thread. ``close()``
closes every state (which opens every gate), answers every parked wait, and removes the
socket. A forked child inherits the server object but not its thread: it never serves or
closes its parent's server (every entry point compares ``os.getpid()`` with the creator's
pid), closes its copies of the server's sockets right after the fork, and starts a server
of its own if it creates controls itself.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import os
import pickle
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from ._wire import (
    HEADER,
    MAX_FRAME,
    PICKLE_PROTOCOL,
    REPLY_GRACE,
    ControlClosed,
    ControlError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

SERVER_THREAD_NAME = "pytest-futures-controls"
"""The name of every control server's thread, for leak checks to ignore."""


def _new_condition() -> Any:
    """A condition variable for a control's state: a controlled one when a managed thread of
    the deterministic scheduler creates it (its tasks then wait under the scheduler, in
    virtual time), a real one otherwise."""
    from pytest_futures_plugin import scheduler

    if scheduler.manages_current_thread():
        return scheduler.Condition(scheduler.Lock())
    return threading.Condition(threading.Lock())


class State:
    """The state of one control, owned by the server of the process that created it.

    Every field is guarded by ``cond``. ``do`` and ``begin_wait`` run with it held: in the
    owner's threads directly (``apply``, ``wait``), or in the server thread on behalf of
    another process. Subclasses name their operations; nothing else can be invoked remotely.
    """

    kind: ClassVar[str] = ""
    waits: ClassVar[frozenset[str]] = frozenset()
    """The operations that block until a predicate holds."""
    ignored_once_closed: ClassVar[frozenset[str]] = frozenset()
    """The operations that a task may still call after the end of the test: they return
    at once and change nothing (every other one raises ``ControlClosed``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cond = _new_condition()
        self.closed = False
        self.server: ControlServer | None = None
        # Waits parked in the server thread: a change made by another thread must wake it.
        self.remote_waiters = 0

    def do(self, op: str, args: tuple[Any, ...]) -> Any:
        """Run the immediate operation *op* (``cond`` held); return its result."""
        raise ControlError(f"{self.kind} {self.name!r} has no operation {op!r}")

    def begin_wait(self, op: str, args: tuple[Any, ...]) -> Callable[[], bool]:
        """Start the wait *op* (``cond`` held); return the predicate that ends it."""
        raise ControlError(f"{self.kind} {self.name!r} has no wait {op!r}")

    def progress(self) -> Any:
        """What a timeout message reports: how far the awaited condition got."""
        return None

    def close(self) -> None:
        """Mark the control closed (``cond`` held); subclasses open what blocks tasks."""
        self.closed = True

    def outcome(self, predicate: Callable[[], bool], deadline: float) -> tuple[str, Any] | None:
        """The reply that ends a wait (``cond`` held), or None while it must go on."""
        if predicate():
            return ("ok", None)
        if self.closed:
            return ("closed", None)
        if time.monotonic() >= deadline:
            _count_expired()
            return ("timeout", self.progress())
        return None

    def apply(self, op: str, args: tuple[Any, ...]) -> Any:
        """Run *op* from a thread of the owner process, waking whoever it may concern."""
        with self.cond:
            value = self.do(op, args)
            self.cond.notify_all()
            wake = self.remote_waiters > 0
        if wake and self.server is not None:
            self.server.wake()
        return value

    def wait(self, op: str, args: tuple[Any, ...], timeout: float) -> tuple[str, Any]:
        """Run the wait *op* from a thread of the owner process; return its reply."""
        deadline = time.monotonic() + timeout
        with self.cond:
            predicate = self.begin_wait(op, args)
            self.cond.notify_all()
            if self.remote_waiters > 0 and self.server is not None:
                self.server.wake()
            while True:
                reply = self.outcome(predicate, deadline)
                if reply is not None:
                    return reply
                self.cond.wait(max(0.0, deadline - time.monotonic()))

    def close_and_notify(self) -> None:
        """Close this control from a thread of the owner process, waking every waiter."""
        with self.cond:
            self.close()
            self.cond.notify_all()
            wake = self.remote_waiters > 0
        if wake and self.server is not None:
            self.server.wake()


_expired_so_far = 0
_expired_lock = threading.Lock()


def _count_expired() -> None:
    global _expired_so_far
    with _expired_lock:
        _expired_so_far += 1


def expired_waits() -> int:
    """How many waits on this process's controls ran out their timeout so far: every wait,
    from a thread of this process or from another process, ends here. A bounded harness reads
    it to tell a step that waited out a bound (a hung task whose expired gate an executor
    swallowed) from one that did not."""
    with _expired_lock:
        return _expired_so_far


class _Peer:
    """One connection from a worker thread, as the server thread sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.closed = False


class _Parked:
    """A wait that a remote thread is blocked in, waiting for its reply."""

    def __init__(
        self, peer: _Peer, state: State, predicate: Callable[[], bool], deadline: float
    ) -> None:
        self.peer = peer
        self.state = state
        self.predicate = predicate
        self.deadline = deadline


class ControlServer:
    """Owns the states of the controls created with it, and serves them to other processes.

    Create one per process (``default_server()``) or one per purpose; it starts when its
    first control is registered. Only the creating process may register controls on it or
    close it. ``close()`` opens every gate and ends every wait, stops the thread and removes
    the socket; it is also called at interpreter exit.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()  # guards _states, _closed, the start
        self._states: dict[int, State] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._directory = ""
        self.address = ""
        """The socket's path: empty until the server starts."""
        # Touched by the server thread alone once it runs.
        self._parked: list[_Parked] = []
        self._peers: set[_Peer] = set()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._thread else "not started"
        return f"<ControlServer pid={self.pid} {state} {self.address or ''}>"

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (or the server thread ended)."""
        return self._closed

    def register(self, state: State) -> int:
        """Own *state*, starting the server if needed; return the id that names it.

        Raises ``ControlClosed`` once closed, ``ControlError`` outside the creating process.
        """
        if os.getpid() != self.pid:
            raise ControlError(f"{self!r} belongs to process {self.pid}, not {os.getpid()}")
        with self._lock:
            if self._closed:
                raise ControlClosed(f"cannot create a {state.kind}: {self!r} is closed")
            if self._thread is None:
                self._start()
            ident = next(self._ids)
            state.server = self
            self._states[ident] = state
        return ident

    def lookup(self, ident: int) -> State | None:
        """The state registered as *ident*, None if forgotten or closed."""
        with self._lock:
            return self._states.get(ident)

    def forget(self, idents: Iterable[int]) -> None:
        """Drop the states *idents* (closed by their owner): later requests get the replies
        of a closed control."""
        with self._lock:
            for ident in idents:
                self._states.pop(ident, None)

    def wake(self) -> None:
        """Make the server thread look at its parked waits again (any thread may call)."""
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full: a wake-up is pending anyway; closed: nothing left to wake
            pass

    def close(self, timeout: float = REPLY_GRACE) -> None:
        """Close every state (gates open, other waits end with ControlClosed), stop the
        thread and remove the socket. Idempotent; does nothing in a forked child.

        Raises ``ControlError`` if the thread has not stopped after *timeout* seconds.
        """
        if os.getpid() != self.pid:
            return
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        self._stop.set()
        self.wake()
        thread.join(timeout)
        if thread.is_alive():
            raise ControlError(f"{self!r}: its thread did not stop within {timeout}s")

    # -- the server thread ------------------------------------------------------------------

    def _start(self) -> None:
        """Bind the socket and start the thread (``_lock`` held)."""
        directory = tempfile.mkdtemp(prefix="pytest-futures-")
        if len(directory) > 80:  # sun_path holds ~100 bytes; a long TMPDIR (macOS) won't do
            shutil.rmtree(directory, ignore_errors=True)
            directory = tempfile.mkdtemp(prefix="pytest-futures-", dir="/tmp")
        address = os.path.join(directory, "controls.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(address)
            listener.listen(128)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeups)
        self._listener, self._directory, self.address = listener, directory, address
        _servers[address] = self
        _close_at_exit_of_this_process()
        self._thread = threading.Thread(target=self._run, name=SERVER_THREAD_NAME, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for key, _ in self._selector.select(self._next_deadline()):
                    key.data(key.fileobj)
                self._settle()
        finally:  # even after a bug: open every gate rather than leave a task blocked
            self._finish()

    def _next_deadline(self) -> float | None:
        if not self._parked:
            return None
        return max(0.0, min(wait.deadline for wait in self._parked) - time.monotonic())

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            # A timeout, not non-blocking mode: recv() follows readiness, and a reply to a
            # peer that stopped reading must not stall the loop for ever.
            sock.settimeout(REPLY_GRACE)
            peer = _Peer(sock)
            self._peers.add(peer)
            self._selector.register(sock, selectors.EVENT_READ, functools.partial(self._read, peer))

    def _drain_wakeups(self, sock: socket.socket) -> None:
        try:
            while sock.recv(4096):
                pass
        except OSError:  # BlockingIOError: drained
            pass

    def _read(self, peer: _Peer, sock: socket.socket) -> None:
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(peer)
            return
        peer.buffer += chunk
        while len(peer.buffer) >= HEADER.size and not peer.closed:
            (size,) = HEADER.unpack_from(peer.buffer)
            if size > MAX_FRAME:
                self._drop(peer)
                return
            end = HEADER.size + size
            if len(peer.buffer) < end:
                return
            frame = bytes(peer.buffer[HEADER.size : end])
            del peer.buffer[:end]
            self._handle(peer, frame)

    def _handle(self, peer: _Peer, frame: bytes) -> None:
        reply: tuple[str, Any] | None
        try:
            kind, ident, op, args, timeout = pickle.loads(frame)
            state = self.lookup(ident)
            if state is None or state.kind != kind:
                known = _kinds.get(kind)
                ignored = known is not None and op in known.ignored_once_closed
                self._reply(peer, ("ok", None) if ignored else ("closed", None))
                return
        except Exception as error:  # not from a control: answer, and go on serving
            self._reply(peer, ("error", f"unreadable request: {error!r}"))
            return
        try:
            with state.cond:
                if op in state.waits:
                    deadline = time.monotonic() + float(timeout)
                    predicate = state.begin_wait(op, tuple(args))
                    state.cond.notify_all()
                    reply = state.outcome(predicate, deadline)
                    if reply is None:
                        state.remote_waiters += 1
                        self._parked.append(_Parked(peer, state, predicate, deadline))
                else:
                    reply = ("ok", state.do(op, tuple(args)))
                    state.cond.notify_all()
        except ControlError as error:  # misuse, named by the state: latch 'x': below zero
            reply = ("error", str(error))
        except Exception as error:  # a bad request must not stop the server
            reply = ("error", f"{kind} {state.name!r}: {op}{args!r} failed: {error!r}")
        if reply is not None:
            self._reply(peer, reply)

    def _settle(self) -> None:
        """Answer every parked wait that is satisfied, closed or late."""
        parked = []
        for wait in self._parked:
            with wait.state.cond:
                if wait.peer.closed:  # its worker hung up or died: nobody to answer
                    reply = None
                else:
                    reply = wait.state.outcome(wait.predicate, wait.deadline)
                    if reply is None:
                        parked.append(wait)
                        continue
                wait.state.remote_waiters -= 1
            if reply is not None:
                self._reply(wait.peer, reply)
        self._parked = parked

    def _reply(self, peer: _Peer, reply: tuple[str, Any]) -> None:
        try:
            payload = pickle.dumps(reply, PICKLE_PROTOCOL)
        except Exception as error:  # e.g. events holding a label recorded in this process
            payload = pickle.dumps(("error", f"reply cannot be pickled: {error!r}"))
        try:
            peer.sock.sendall(HEADER.pack(len(payload)) + payload)
        except OSError:
            self._drop(peer)

    def _drop(self, peer: _Peer) -> None:
        """Forget a connection whose worker hung up or died; ``_settle`` unparks its wait."""
        if peer.closed:
            return
        peer.closed = True
        self._peers.discard(peer)
        self._selector.unregister(peer.sock)
        peer.sock.close()

    def _finish(self) -> None:
        with self._lock:
            self._closed = True
            states = list(self._states.values())
            self._states.clear()
        for state in states:
            with state.cond:
                state.close()
                state.cond.notify_all()
        self._settle()  # every parked wait is now answered: opened gates "ok", others "closed"
        for peer in list(self._peers):
            self._drop(peer)
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        _servers.pop(self.address, None)
        shutil.rmtree(self._directory, ignore_errors=True)

    def _abandon(self) -> None:
        """In a forked child: close the child's copies of the descriptors, nothing else."""
        for sock in (self._listener, self._wake_r, self._wake_w, *(p.sock for p in self._peers)):
            sock.close()
        self._selector.close()


_kinds: dict[str, type[State]] = {}
"""The state classes by kind, for the replies about controls already forgotten."""


def register_kind(cls: type[State]) -> type[State]:
    """Class decorator: make *cls* known to every server (its kind, its operations)."""
    _kinds[cls.kind] = cls
    return cls


_servers: dict[str, ControlServer] = {}
"""This process's started servers by address: unpickling a control in its owner process
finds its state here and takes the in-process path again."""

_default: ControlServer | None = None
_default_lock = threading.Lock()


def default_server() -> ControlServer:
    """This process's shared server, created when first asked for (and started by the first
    control registered on it); a new one in a forked child or after ``close()``."""
    global _default
    with _default_lock:
        if _default is None or _default.pid != os.getpid() or _default.closed:
            _default = ControlServer()
        return _default


def local_state(address: str, ident: int) -> State | None:
    """The state *ident* of the server at *address* if that server runs in this process."""
    server = _servers.get(address)
    if server is None or server.pid != os.getpid():
        return None
    return server.lookup(ident)


def _after_fork_in_child() -> None:
    global _default, _default_lock
    _default_lock = threading.Lock()  # may have been held by another thread at the fork
    _default = None
    inherited = list(_servers.values())
    _servers.clear()
    for server in inherited:
        try:
            server._abandon()
        except OSError:
            pass


def _close_at_exit() -> None:
    for server in list(_servers.values()):
        if server.pid == os.getpid():
            server.close()


_exit_hooked_pid = 0


def _close_at_exit_of_this_process() -> None:
    """Close this process's servers when it exits, removing their sockets: ``atexit`` in a
    main process, multiprocessing's exit finalizers in its children (which leave through
    ``os._exit``, skipping ``atexit``)."""
    global _exit_hooked_pid
    if _exit_hooked_pid == os.getpid():
        return
    _exit_hooked_pid = os.getpid()
    util = sys.modules.get("multiprocessing.util")
    if util is not None:  # only if loaded: not worth importing multiprocessing for
        util.Finalize(None, _close_at_exit, exitpriority=0)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)
