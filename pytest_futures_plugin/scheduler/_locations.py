"""Where a scheduling point comes from: the ``file:line (function)`` of the first frame
outside the scheduler, executor_impl and the standard library, so that a printed schedule or
a race report names the user's code rather than ``RLock-3``.

Walking the stack costs a few microseconds a point, so a run asks for it only when a trace
is to be read (``Scheduler.locations``; a systematic search replays its failing schedule so).

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import types

__all__ = ["caller_location", "frame_location", "is_library_file", "stack_location"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_EXECUTOR_IMPL = os.path.join(os.path.dirname(os.path.dirname(_HERE)), "executor_impl")
_STDLIB = tuple(
    {
        os.path.normcase(os.path.abspath(path))
        for path in (
            sysconfig.get_paths()["stdlib"],
            os.path.dirname(os.__file__),
            os.path.dirname(threading.__file__),
        )
    }
)
_library: dict[str, bool] = {}


def is_library_file(filename: str) -> bool:
    """Whether *filename* is the scheduler's, executor_impl's or the standard library's
    (site-packages under the standard library's directory are not: they are user code)."""
    known = _library.get(filename)
    if known is not None:
        return known
    path = os.path.normcase(os.path.abspath(filename))
    result = (
        filename.startswith("<")
        or path.startswith((_HERE, _EXECUTOR_IMPL))
        or (path.startswith(_STDLIB) and "site-packages" not in path)
    )
    _library[filename] = result
    return result


def frame_location(frame: types.FrameType) -> str:
    """``file:line (function)`` of *frame*, the file by its base name."""
    code = frame.f_code
    return f"{os.path.basename(code.co_filename)}:{frame.f_lineno} ({code.co_name})"


def caller_location(depth: int = 2) -> str:
    """The location of the first frame of the calling thread outside the library; when
    every frame is the library's (a pool's worker between tasks), the first one outside
    the scheduler, in brackets."""
    return stack_location(sys._getframe(depth))


def stack_location(frame: types.FrameType | None) -> str:
    """:func:`caller_location` of the stack whose innermost frame is *frame*."""
    fallback = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not is_library_file(filename):
            return frame_location(frame)
        if fallback is None and not filename.startswith(_HERE):
            fallback = frame
        frame = frame.f_back
    return f"[{frame_location(fallback)}]" if fallback is not None else "?"
