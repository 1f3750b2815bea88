"""Patching a run's modules: which names of ``threading``, ``queue``, ``time`` and ``_thread``
a controlled module sees replaced, and the record of every attribute a run replaced, put back
at its end.

A controlled module's reference to one of those modules is replaced by a facade (the
controlled names, and everything else from the real module); a name imported from one (``from
threading import Lock``) by its controlled equivalent; a module-level lock by a controlled one;
``id`` by a stable one; the hash of a ``Future`` class it defines by a stable one. The tables
are built at import, from the controlled primitives and virtual time functions.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
import queue as _queue_module
import sys
import threading
import time as _time_module
import types
from typing import Any

from ._primitives import (
    BoundedSemaphore,
    Condition,
    Event,
    LifoQueue,
    Lock,
    PriorityQueue,
    Queue,
    RLock,
    Semaphore,
    SimpleQueue,
    Thread,
)
from ._state import real_monotonic, real_sleep
from ._virtual_time import monotonic, monotonic_ns, sleep, stable_hash, stable_id, wall

__all__ = [
    "Patches",
]

_LockType = _thread.LockType
_RLockType = type(threading.RLock())
_object_hash: object = object.__hash__
_ABSENT = object()


class Patches:
    """The attributes a run replaced, with what they were: :meth:`unpatch` puts them back."""

    def __init__(self) -> None:
        self._patches: list[tuple[Any, str, Any]] = []

    def patch(self, target: Any, name: str, value: Any) -> None:
        """Set *target*.*name* to *value*, remembering what it was (or that it was absent)."""
        self._patches.append((target, name, getattr(target, name, _ABSENT)))
        setattr(target, name, value)

    def unpatch(self) -> None:
        """Put back every attribute patched, the last first."""
        while self._patches:
            target, name, original = self._patches.pop()
            if original is _ABSENT:
                delattr(target, name)
            else:
                setattr(target, name, original)

    def patch_module(self, module: types.ModuleType | str) -> None:
        """Control *module* (an object or a dotted name, imported if need be): see the module
        docstring for what it sees replaced."""
        if isinstance(module, str):
            module = sys.modules.get(module) or __import__(module, fromlist=["_"])
        for name, value in list(vars(module).items()):
            replacement = _replacement_for(value)
            if replacement is not None:
                self.patch(module, name, replacement)
            elif isinstance(value, _LockType) and not value.locked():
                self.patch(module, name, Lock())
            elif isinstance(value, _RLockType) and not _rlock_is_held(value):
                self.patch(module, name, RLock())
        if "id" not in vars(module):  # sorted(futures, key=id): the order of their locks
            self.patch(module, "id", stable_id)
        future: Any = vars(module).get("Future")
        if (
            isinstance(future, type)
            and future.__module__ == module.__name__
            and getattr(future, "__hash__", None) is _object_hash
        ):
            # wait() and as_completed() iterate sets of futures: in the order of their
            # addresses, which differ from run to run, unless they hash by creation order.
            self._patches.append((future, "__hash__", vars(future).get("__hash__", _ABSENT)))
            future.__hash__ = stable_hash  # type: ignore[method-assign,assignment]


def _rlock_is_held(lock: Any) -> bool:
    is_owned = getattr(lock, "_is_owned", None)
    if is_owned is not None and is_owned():
        return True
    if lock.acquire(blocking=False):
        lock.release()
        return False
    return True


class _Facade(types.ModuleType):
    """A stand-in for a module in a controlled module's namespace: the controlled names, and
    everything else from the real module."""

    def __init__(self, real: types.ModuleType, names: dict[str, Any]) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__.update(names)
        self.__dict__["_pytest_futures_real"] = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_pytest_futures_real"], name)


_THREADING_NAMES: dict[str, Any] = {
    "Lock": Lock,
    "RLock": RLock,
    "Condition": Condition,
    "Event": Event,
    "Semaphore": Semaphore,
    "BoundedSemaphore": BoundedSemaphore,
    "Thread": Thread,
}
_QUEUE_NAMES: dict[str, Any] = {
    "Queue": Queue,
    "SimpleQueue": SimpleQueue,
    "LifoQueue": LifoQueue,
    "PriorityQueue": PriorityQueue,
}
_TIME_NAMES: dict[str, Any] = {
    "sleep": sleep,
    "monotonic": monotonic,
    "monotonic_ns": monotonic_ns,
    "time": wall,
    "perf_counter": monotonic,
}
_THREAD_NAMES: dict[str, Any] = {"allocate_lock": Lock, "LockType": Lock}

_FACADES: dict[int, _Facade] = {
    id(threading): _Facade(threading, _THREADING_NAMES),
    id(_queue_module): _Facade(_queue_module, _QUEUE_NAMES),
    id(_time_module): _Facade(_time_module, _TIME_NAMES),
    id(_thread): _Facade(_thread, _THREAD_NAMES),
}

_REPLACEMENTS: dict[int, tuple[Any, Any]] = {}
for _real_module, _names in (
    (threading, _THREADING_NAMES),
    (_queue_module, _QUEUE_NAMES),
    (_time_module, _TIME_NAMES),
    (_thread, _THREAD_NAMES),
):
    for _name, _controlled in _names.items():
        _original = getattr(_real_module, _name)
        _REPLACEMENTS[id(_original)] = (_original, _controlled)
_REPLACEMENTS[id(real_sleep)] = (real_sleep, sleep)
_REPLACEMENTS[id(id)] = (id, stable_id)
_REPLACEMENTS[id(real_monotonic)] = (real_monotonic, monotonic)


def _replacement_for(value: Any) -> Any:
    facade = _FACADES.get(id(value))
    if facade is not None and facade.__dict__["_pytest_futures_real"] is value:
        return facade
    entry = _REPLACEMENTS.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    return None
