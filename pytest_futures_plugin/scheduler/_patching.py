"""Patching a run's modules: which names of ``threading``, ``queue``, ``time`` and ``_thread``
a controlled module sees replaced, the names every other module of the user's sees replaced,
and the record of every attribute a run replaced, put back at its end.

A controlled module's reference to one of those modules is replaced by a facade (the
controlled names, and everything else from the real module); a name imported from one (``from
threading import Lock``) by its controlled equivalent; a module-level lock by a controlled one;
``id`` by a stable one; the hash of a ``Future`` class it defines by a stable one. The tables
are built at import, from the controlled primitives and virtual time functions.

Every other module (:meth:`Patches.patch_everywhere`: all of ``sys.modules`` but the standard
library, the scheduler, executor_impl and the test runner's own packages) has each global that
is one of those modules or names replaced by a *switch*: called on a managed thread it makes
the controlled object (a ``Lock``, an ``Event``, a ``Queue``, a ``Thread``; virtual time for
``sleep``/``monotonic``/``time``/``perf_counter``), on any other thread the real one, and
``isinstance`` accepts both. Its module-level objects (a lock made at import) are left as they
are. A module found to hold none of those names is not looked at again while its namespace
keeps its size, so that a run in a process with thousands of modules starts in well under a
millisecond (see ``bench/bench_scheduler.py``).

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
import queue as _queue_module
import sys
import threading
import time as _time_module
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

from . import _state
from ._locations import is_library_file
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
from ._virtual_time import (
    GLOBAL_TIME,
    monotonic,
    monotonic_ns,
    sleep,
    stable_hash,
    stable_id,
    wall,
)

__all__ = [
    "SKIPPED_PACKAGES",
    "Patches",
]

SKIPPED_PACKAGES = frozenset(
    {
        "_pytest",
        "pytest",
        "pluggy",
        "py",
        "xdist",
        "execnet",
        "hypothesis",
        "_hypothesis_ftz_detector",
        "_hypothesis_globals",
        "coverage",
        "pytest_timeout",
        "pytest_futures_plugin",
        "executor_impl",
    }
)
"""Top-level packages :meth:`Patches.patch_everywhere` leaves alone: the test runner's (their
threads are not the code under test) and ours (controlled by name where it must be)."""

_LockType = _thread.LockType
_RLockType = type(threading.RLock())
_object_hash: object = object.__hash__
_ABSENT = object()


class Patches:
    """The attributes a run replaced, with what they were: :meth:`unpatch` puts them back."""

    def __init__(self) -> None:
        self._patches: list[tuple[Any, str, Any]] = []
        self._switched: list[tuple[dict[str, Any], str, Any, Any]] = []

    def patch(self, target: Any, name: str, value: Any) -> None:
        """Set *target*.*name* to *value*, remembering what it was (or that it was absent)."""
        self._patches.append((target, name, getattr(target, name, _ABSENT)))
        setattr(target, name, value)

    def unpatch(self) -> None:
        """Put back every attribute patched, the last first (a global that
        :meth:`patch_everywhere` switched only if it still holds the switch: a module that
        rebound it during the run keeps what it bound)."""
        while self._switched:
            namespace, name, original, switch = self._switched.pop()
            if namespace.get(name) is switch:
                namespace[name] = original
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

    def patch_run(self, modules: Iterable[types.ModuleType | str], *, everywhere: bool) -> None:
        """What a run patches as it starts: each of *modules* (:meth:`patch_module`), and
        when *everywhere*, every other module of the user's (:meth:`patch_everywhere`)."""
        for module in modules:
            self.patch_module(module)
        if everywhere:
            self.patch_everywhere()

    def patch_everywhere(self) -> int:
        """Switch, in every module of the user's (see the module docstring), each global that
        is ``threading``, ``queue`` or one of their classes, ``_thread.allocate_lock`` or one
        of ``time``'s clocks and ``sleep``; return how many namespaces were read through (a
        module whose namespace kept its size since it was last read has only the names found
        then looked at)."""
        scanned = 0
        switched = self._switched
        for module_name, module in list(sys.modules.items()):
            entry = _SCAN_CACHE.get(module_name)
            if entry is not None and entry[0] is module:
                cached = entry[2]
                if cached is None:
                    continue
                namespace = module.__dict__
                if len(namespace) == entry[1]:  # the same names: only those are looked at
                    for name in cached:
                        value = namespace.get(name)
                        switch = _SWITCHES.get(id(value))
                        if switch is not None and switch[0] is value:
                            switched.append((namespace, name, value, switch[1]))
                            namespace[name] = switch[1]
                    continue
            elif not _is_user_module(module_name, module):
                _SCAN_CACHE[module_name] = (module, 0, None)
                continue
            namespace = module.__dict__
            scanned += 1
            found = []
            for name, value in list(namespace.items()):
                switch = _SWITCHES.get(id(value))
                if switch is not None and switch[0] is value:
                    found.append(name)
                    switched.append((namespace, name, value, switch[1]))
                    namespace[name] = switch[1]
            _SCAN_CACHE[module_name] = (module, len(namespace), tuple(found))
        return scanned


_SCAN_CACHE: dict[str, tuple[Any, int, tuple[str, ...] | None]] = {}
"""By module name: the module, the size of its namespace when scanned, and the names it held
that :meth:`Patches.patch_everywhere` switches (None: a module never scanned, the stdlib's)."""


def _is_user_module(name: str, module: Any) -> bool:
    if not isinstance(module, types.ModuleType) or name.partition(".")[0] in SKIPPED_PACKAGES:
        return False
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str):
        return name == "__main__"
    return not is_library_file(filename)


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


def _on_managed_thread() -> bool:
    sched = _state.ACTIVE
    return sched is not None and _thread.get_ident() in sched._threads_by_ident


class _Switch:
    """A class or function of ``threading``/``queue``/``_thread`` as a user's module sees it
    during a run: the controlled one on a managed thread, the real one elsewhere."""

    def __init__(self, real: Any, controlled: Any) -> None:
        self._real = real
        self._controlled = controlled
        self.__name__ = getattr(real, "__name__", type(real).__name__)
        self.__qualname__ = getattr(real, "__qualname__", self.__name__)
        self.__module__ = getattr(real, "__module__", None) or "builtins"
        self.__doc__ = getattr(real, "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return (self._controlled if _on_managed_thread() else self._real)(*args, **kwargs)

    def __instancecheck__(self, instance: Any) -> bool:
        kinds = tuple(k for k in (self._real, self._controlled) if isinstance(k, type))
        return isinstance(instance, kinds)

    def __subclasscheck__(self, subclass: Any) -> bool:
        kinds = tuple(k for k in (self._real, self._controlled) if isinstance(k, type))
        return issubclass(subclass, kinds)

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[Any, ...]:
        return (self._real,)  # ``class Worker(threading.Thread)`` during a run: the real one

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __repr__(self) -> str:
        return f"<switch {self.__module__}.{self.__qualname__}: controlled on managed threads>"


class _SwitchModule(types.ModuleType):
    """``threading`` or ``queue`` as a user's module sees it during a run: the switches, and
    everything else (read and written) the real module's."""

    def __init__(self, real: types.ModuleType, switches: dict[str, _Switch]) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__.update(switches)
        self.__dict__["_pytest_futures_real"] = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_pytest_futures_real"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__.pop(name, None)  # ``threading.excepthook = ...`` reaches the real one
        setattr(self.__dict__["_pytest_futures_real"], name, value)

    def __delattr__(self, name: str) -> None:
        self.__dict__.pop(name, None)
        delattr(self.__dict__["_pytest_futures_real"], name)


def _build_switches() -> dict[int, tuple[Any, Any]]:
    """id of a real module, class or function -> (it, what a user's module sees instead)."""
    table: dict[int, tuple[Any, Any]] = {}
    for real_module, names in (
        (threading, _THREADING_NAMES),
        (_queue_module, _QUEUE_NAMES),
        (_thread, _THREAD_NAMES),
    ):
        switches = {}
        for name, controlled in names.items():
            original = getattr(real_module, name)
            if id(original) not in table:
                table[id(original)] = (original, _Switch(original, controlled))
            switches[name] = table[id(original)][1]
        if real_module is not _thread:
            table[id(real_module)] = (real_module, _SwitchModule(real_module, switches))
    for name, function in GLOBAL_TIME.items():
        original = getattr(_time_module, name)
        table[id(original)] = (original, function)
    return table


_SWITCHES = _build_switches()
