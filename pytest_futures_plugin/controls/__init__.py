"""Gates, latches and recorders that tasks use wherever they run: threads or worker processes.

The face of the controls: :mod:`._controls` holds the controls themselves (and the usage
example), :mod:`._server` the server that owns a control's state in the process that created
it, :mod:`._wire` the frames and the client side of a request from another process. Standard
library only: no pytest, no hypothesis.
"""

from __future__ import annotations

from pytest_futures_plugin import _adopt

from . import _controls
from ._controls import *  # noqa: F403 (the face: every public name of the controls)

__all__: list[str] = []
__all__ += _controls.__all__

_adopt(globals())
