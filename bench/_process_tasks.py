"""The task functions ``bench_process.py`` sends to worker processes.

They live in a module of their own, imported everywhere as ``bench._process_tasks``, because
a process pool pickles a function by its module and name and the worker imports that module
again: a function defined in the script itself would be ``__main__.fn`` in the parent, which a
spawned child can only resolve by re-running the script.  A spawn or forkserver child gets the
parent's ``sys.path``, where the script put the project root first, so ``bench`` (a folder
without ``__init__.py``, a namespace package) imports there too.  Standard library only, and
nothing heavy at import time: every spawned worker imports this module.
"""

from __future__ import annotations

import os
import time


def identity(x: int) -> int:
    """Return *x*: the cheapest task there is, so the pool's own overhead is what is timed."""
    return x


def length(data: bytes) -> int:
    """The size of *data*: the payload travels only to the worker."""
    return len(data)


def echo(data: bytes) -> bytes:
    """*data* itself: the payload travels to the worker and back."""
    return data


def block_until(started: str, release: str, timeout: float) -> int:
    """Create the file *started*, then wait until the file *release* exists; return the pid.

    A file, polled every millisecond, rather than a ``multiprocessing.Event``: a pool pickles a
    task's arguments, and synchronisation primitives may only reach a child by inheritance.
    Raises ``TimeoutError`` after *timeout* seconds so a worker can never hang for good.
    """
    with open(started, "w", encoding="ascii"):
        pass
    deadline = time.monotonic() + timeout
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} never appeared")
        time.sleep(0.001)
    return os.getpid()
