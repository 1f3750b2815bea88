"""Scheduling points inside the code under test: an opt-in finer granularity.

A race with no lock in it (``counter += 1`` from two threads) has no synchronising
operation for the scheduler to stop at. :class:`FineGrained` adds a scheduling point before
every opcode of the chosen files that reads or writes shared memory (a global, an attribute,
a closure's variable), carrying a :class:`MemoryAccess` so that partial-order reduction
treats two such points as conflicting only when they touch the same location and one writes.
The library (the scheduler, executor_impl, the standard library) keeps the granularity of
its synchronising operations.

The interpreter's tracing hooks do it (``sys.settrace`` with opcode events, on the calling
thread and, through ``threading.settrace``, on every thread started while it is on), so it
is slow, and it suspends any tracer already installed (a coverage tool) for its duration.
An attribute is known by its name only (the object is on the value stack, out of a tracer's
reach): two accesses to ``x.count`` and ``y.count`` conflict, which costs schedules, never
a missed race. Item and method mutations (``lst.append``) are not seen.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import dis
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from ._locations import frame_location
from ._state import point

if TYPE_CHECKING:
    import types
    from collections.abc import Iterable

__all__ = ["FineGrained", "MemoryAccess", "target_files"]

_READS = {"LOAD_GLOBAL": "global", "LOAD_ATTR": "attribute", "LOAD_DEREF": "variable"}
_WRITES = {
    "STORE_GLOBAL": "global",
    "STORE_ATTR": "attribute",
    "STORE_DEREF": "variable",
    "DELETE_GLOBAL": "global",
    "DELETE_ATTR": "attribute",
}
_METHOD_FLAG = sys.version_info >= (3, 12)  # LOAD_ATTR's low bit: a method load


class MemoryAccess(NamedTuple):
    """A read or write of one location, as a scheduling point's object."""

    key: tuple[str, ...]
    write: bool
    where: str

    def describe(self) -> str:
        return f"{'write' if self.write else 'read'} {self.key[0]} {self.key[-1]}"


def target_files(targets: Iterable[types.ModuleType | str]) -> set[str]:
    """The source files of *targets*: modules, dotted module names or file paths."""
    files: set[str] = set()
    for target in targets:
        if isinstance(target, str) and (target.endswith(".py") or os.sep in target):
            files.add(os.path.abspath(target))
            continue
        module = sys.modules.get(target) if isinstance(target, str) else target
        if module is None:
            raise ValueError(f"fine-grained target {target!r}: no such module imported")
        filename = getattr(module, "__file__", None)
        if not filename:
            raise ValueError(f"fine-grained target {target!r} has no source file")
        files.add(os.path.abspath(filename))
    return files


def _accesses(code: types.CodeType) -> dict[int, tuple[str, str, bool]]:
    """Offset -> (kind, name, write) for the memory-touching opcodes of *code*."""
    table: dict[int, tuple[str, str, bool]] = {}
    for instruction in dis.get_instructions(code):
        name = instruction.opname
        kind = _READS.get(name) or _WRITES.get(name)
        if kind is None:
            continue
        if name == "LOAD_ATTR" and _METHOD_FLAG and (instruction.arg or 0) & 1:
            continue
        argval = instruction.argval
        table[instruction.offset] = (kind, str(argval), name in _WRITES)
    return table


class FineGrained:
    """While entered, a scheduling point before each shared-memory opcode of *files*."""

    def __init__(self, files: Iterable[str]) -> None:
        self.files = frozenset(os.path.abspath(f) for f in files)
        self._tables: dict[types.CodeType, dict[int, tuple[str, str, bool]]] = {}
        self._wanted: dict[str, bool] = {}
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> FineGrained:
        self._saved = (sys.gettrace(), getattr(threading, "_trace_hook", None))
        threading.settrace(self._global)
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._saved is not None
        sys.settrace(self._saved[0])
        threading.settrace(self._saved[1])
        self._saved = None

    def _global(self, frame: types.FrameType, event: str, arg: object) -> Callable[..., Any] | None:
        filename = frame.f_code.co_filename
        wanted = self._wanted.get(filename)
        if wanted is None:
            wanted = self._wanted[filename] = os.path.abspath(filename) in self.files
        if not wanted:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return self._local

    def _local(self, frame: types.FrameType, event: str, arg: object) -> Callable[..., Any]:
        if event == "opcode":
            code = frame.f_code
            table = self._tables.get(code)
            if table is None:
                table = self._tables[code] = _accesses(code)
            entry = table.get(frame.f_lasti)
            if entry is not None:
                kind, name, write = entry
                if kind == "global":
                    key: tuple[str, ...] = ("global", code.co_filename, name)
                elif kind == "variable":
                    key = ("variable", code.co_filename, name)
                else:
                    key = ("attribute", name)
                access = MemoryAccess(key, write, frame_location(frame))
                point(f"about to {'write' if write else 'read'} {kind} {name}", access)
        return self._local
