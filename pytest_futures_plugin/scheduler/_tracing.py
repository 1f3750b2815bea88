"""Scheduling points inside the code under test: an opt-in finer granularity.

A race with no lock in it (``counter += 1`` from two threads) has no synchronising
operation for the scheduler to stop at. :class:`FineGrained` adds a scheduling point before
every opcode of the chosen files that reads or writes shared memory (a global, an attribute,
a closure's variable), carrying a :class:`MemoryAccess` so that partial-order reduction
treats two such points as conflicting only when they touch the same location and one writes.
The library (the scheduler, executor_impl, the standard library) keeps the granularity of
its synchronising operations.

The interpreter's hooks do it: on 3.12+ ``sys.monitoring`` (instruction events on the chosen
files' code objects only, in every thread); before, ``sys.settrace`` with opcode events (on
the calling thread and, through ``threading.settrace``, every thread started while it is
on), which is slow and suspends any tracer already installed (a coverage tool) meanwhile.
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
_POSITIONS = sys.version_info >= (3, 13)  # starts_line is a bool, the line in positions


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


def _accesses(code: types.CodeType) -> dict[int, tuple[str, str, bool, int]]:
    """Offset -> (kind, name, write, line) for the memory-touching opcodes of *code*."""
    table: dict[int, tuple[str, str, bool, int]] = {}
    line = code.co_firstlineno
    for instruction in dis.get_instructions(code):
        if instruction.starts_line:  # the line number on 3.9-3.12, True on 3.13
            positions: Any = getattr(instruction, "positions", None)  # 3.11+
            line = positions.lineno if _POSITIONS else instruction.starts_line
        name = instruction.opname
        kind = _READS.get(name) or _WRITES.get(name)
        if kind is None:
            continue
        if name == "LOAD_ATTR" and _METHOD_FLAG and (instruction.arg or 0) & 1:
            continue
        table[instruction.offset] = (kind, str(instruction.argval), name in _WRITES, line or 0)
    return table


def _access(code: types.CodeType, kind: str, name: str, write: bool, where: str) -> None:
    if kind == "global":
        key: tuple[str, ...] = ("global", code.co_filename, name)
    elif kind == "variable":
        key = ("variable", code.co_filename, name)
    else:
        key = ("attribute", name)
    point(f"about to {'write' if write else 'read'} {kind} {name}", MemoryAccess(key, write, where))


class FineGrained:
    """While entered, a scheduling point before each shared-memory opcode of *files*.

    On 3.12+ through ``sys.monitoring`` (instruction events on the code objects of *files*
    only, each turned off at an instruction that touches no memory), else ``sys.settrace``.
    """

    def __init__(self, files: Iterable[str]) -> None:
        self.files = frozenset(os.path.abspath(f) for f in files)
        self._tables: dict[types.CodeType, dict[int, tuple[str, str, bool, int]]] = {}
        self._wanted: dict[str, bool] = {}
        self._saved: tuple[Any, Any] | None = None
        self._tool: int | None = None

    def __enter__(self) -> FineGrained:
        monitoring: Any = getattr(sys, "monitoring", None)
        if monitoring is not None:
            free = [t for t in (4, 3, 2) if monitoring.get_tool(t) is None]
            if free:
                self._tool = tool = free[0]
                events = monitoring.events
                monitoring.use_tool_id(tool, "pytest-futures fine-grained points")
                monitoring.restart_events()
                monitoring.register_callback(tool, events.PY_START, self._start)
                monitoring.register_callback(tool, events.INSTRUCTION, self._instruction)
                monitoring.set_events(tool, events.PY_START)
                return self
        self._saved = (sys.gettrace(), getattr(threading, "_trace_hook", None))
        threading.settrace(self._global)
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._tool is not None:
            monitoring: Any = getattr(sys, "monitoring")  # noqa: B009 (3.12+ only)
            tool, self._tool = self._tool, None
            monitoring.set_events(tool, 0)
            for code in self._tables:
                monitoring.set_local_events(tool, code, 0)
            monitoring.register_callback(tool, monitoring.events.PY_START, None)
            monitoring.register_callback(tool, monitoring.events.INSTRUCTION, None)
            monitoring.free_tool_id(tool)
            return
        assert self._saved is not None
        sys.settrace(self._saved[0])
        threading.settrace(self._saved[1])
        self._saved = None

    def _wants(self, filename: str) -> bool:
        wanted = self._wanted.get(filename)
        if wanted is None:
            wanted = self._wanted[filename] = os.path.abspath(filename) in self.files
        return wanted

    def _table(self, code: types.CodeType) -> dict[int, tuple[str, str, bool, int]]:
        table = self._tables.get(code)
        if table is None:
            table = self._tables[code] = _accesses(code)
        return table

    # -- sys.monitoring (3.12+) ----------------------------------------------------------------

    def _start(self, code: types.CodeType, offset: int) -> object:
        monitoring: Any = getattr(sys, "monitoring")  # noqa: B009 (3.12+ only)
        if self._tool is not None and self._wants(code.co_filename):
            self._table(code)
            monitoring.set_local_events(self._tool, code, monitoring.events.INSTRUCTION)
        return monitoring.DISABLE

    def _instruction(self, code: types.CodeType, offset: int) -> object:
        entry = self._table(code).get(offset)
        if entry is None:
            return getattr(sys, "monitoring").DISABLE  # noqa: B009 (3.12+ only)
        kind, name, write, line = entry
        where = f"{os.path.basename(code.co_filename)}:{line} ({code.co_name})"
        _access(code, kind, name, write, where)
        return None

    # -- sys.settrace ------------------------------------------------------------------------

    def _global(self, frame: types.FrameType, event: str, arg: object) -> Callable[..., Any] | None:
        if not self._wants(frame.f_code.co_filename):
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return self._local

    def _local(self, frame: types.FrameType, event: str, arg: object) -> Callable[..., Any]:
        if event == "opcode":
            code = frame.f_code
            entry = self._table(code).get(frame.f_lasti)
            if entry is not None:
                kind, name, write, _ = entry
                _access(code, kind, name, write, frame_location(frame))
        return self._local
