"""executor_impl's public surface (executor_impl/__init__.py) is the stdlib's.

Same names, same signatures (parameter names, kinds and defaults: callers pass them by
keyword), and the stdlib's exception classes themselves, so that ``except
concurrent.futures.CancelledError`` catches what executor_impl raises.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import concurrent.futures.thread
import inspect
import subprocess
import sys
from typing import Any

import pytest

import executor_impl
import executor_impl.process
import executor_impl.thread

PUBLIC_NAMES = [
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ALL_COMPLETED",
    "CancelledError",
    "TimeoutError",
    "InvalidStateError",
    "BrokenExecutor",
    "Future",
    "Executor",
    "wait",
    "as_completed",
    "ThreadPoolExecutor",
    "ProcessPoolExecutor",
]


def test_every_public_name_is_exported() -> None:
    assert sorted(PUBLIC_NAMES) == sorted(executor_impl.__all__)
    for name in PUBLIC_NAMES:
        assert hasattr(executor_impl, name), name
    with pytest.raises(AttributeError, match="no_such_name"):
        executor_impl.no_such_name  # noqa: B018


def test_a_worker_process_importing_its_module_loads_no_pool_code() -> None:
    """Names are imported on first use: a spawned worker imports only the worker module."""
    code = (
        "import sys, executor_impl._process_worker; "
        "print(sorted(m for m in sys.modules if m.startswith('executor_impl')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "['executor_impl', 'executor_impl._process_worker']"


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (executor_impl.CancelledError, concurrent.futures.CancelledError),
        (executor_impl.TimeoutError, concurrent.futures.TimeoutError),
        (executor_impl.InvalidStateError, concurrent.futures.InvalidStateError),
        (executor_impl.BrokenExecutor, concurrent.futures.BrokenExecutor),
        (executor_impl.thread.BrokenThreadPool, concurrent.futures.thread.BrokenThreadPool),
        (executor_impl.process.BrokenProcessPool, concurrent.futures.process.BrokenProcessPool),
    ],
    ids=lambda cls: cls.__name__,
)
def test_exception_classes_are_the_stdlibs_own(ours: type, theirs: type) -> None:
    assert ours is theirs


SIGNATURES = [
    "wait",
    "as_completed",
    "Future.__init__",
    "Future.cancel",
    "Future.cancelled",
    "Future.running",
    "Future.done",
    "Future.add_done_callback",
    "Future.result",
    "Future.exception",
    "Future.set_running_or_notify_cancel",
    "Future.set_result",
    "Future.set_exception",
    "Executor.submit",
    "Executor.map",
    "Executor.shutdown",
    "ThreadPoolExecutor.__init__",
    "ThreadPoolExecutor.submit",
    "ThreadPoolExecutor.map",
    "ThreadPoolExecutor.shutdown",
    "ProcessPoolExecutor.__init__",
    "ProcessPoolExecutor.submit",
    "ProcessPoolExecutor.map",
    "ProcessPoolExecutor.shutdown",
]


LATER_PARAMETERS = {"__init__": ("max_tasks_per_child",), "map": ("buffersize",)}
"""By method name: parameters a newer stdlib added, which executor_impl offers on every Python."""


def resolve(module: Any, dotted: str) -> Any:
    """The attribute at the dotted path *dotted* under *module*."""
    target = module
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


def shape(function: Any) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter: the signature without its annotations."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("dotted", SIGNATURES)
def test_public_callables_take_the_stdlibs_parameters(dotted: str) -> None:
    ours = shape(resolve(executor_impl, dotted))
    theirs = shape(resolve(concurrent.futures, dotted))
    # Feature probe: parameters the stdlib gained later (max_tasks_per_child in 3.11,
    # map's buffersize in 3.14) and ours has everywhere.
    later = LATER_PARAMETERS.get(dotted.rpartition(".")[2], ())
    theirs_names = {name for name, _, _ in theirs}
    ours = [p for p in ours if p[0] not in later or p[0] in theirs_names]
    assert ours == theirs
