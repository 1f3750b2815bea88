"""Gates, latches and recorders that tasks use wherever they run: threads or worker processes.

The face of the controls: :mod:`._controls` holds the controls themselves (and the usage
example), :mod:`._server` the server that owns a control's state in the process that created
it, :mod:`._wire` the frames and the client side of a request from another process. Standard
library only: no pytest, no hypothesis.
"""

from __future__ import annotations

from pytest_futures_plugin import _adopt

from ._controls import (
    DEFAULT_TIMEOUT,
    SERVER_THREAD_NAME,
    ControlClosed,
    ControlError,
    Controls,
    ControlServer,
    ControlTimeout,
    Gate,
    Latch,
    Recorder,
    default_server,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "SERVER_THREAD_NAME",
    "ControlClosed",
    "ControlError",
    "ControlServer",
    "ControlTimeout",
    "Controls",
    "Gate",
    "Latch",
    "Recorder",
    "default_server",
]

_adopt(globals())
