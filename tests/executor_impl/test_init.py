"""executor_impl's public surface (executor_impl/__init__.py) is the stdlib's thread side.

Same names, same signatures (parameter names, kinds and defaults: callers pass them by
keyword), and the stdlib's exception classes themselves, so that ``except
concurrent.futures.CancelledError`` catches what executor_impl raises.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.thread
import inspect
from typing import Any

import pytest

import executor_impl
import executor_impl.thread

THREAD_SIDE_NAMES = [
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
]


def test_every_public_name_of_the_thread_side_is_exported() -> None:
    assert sorted(THREAD_SIDE_NAMES) == sorted(executor_impl.__all__)
    for name in THREAD_SIDE_NAMES:
        assert hasattr(executor_impl, name), name


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (executor_impl.CancelledError, concurrent.futures.CancelledError),
        (executor_impl.TimeoutError, concurrent.futures.TimeoutError),
        (executor_impl.InvalidStateError, concurrent.futures.InvalidStateError),
        (executor_impl.BrokenExecutor, concurrent.futures.BrokenExecutor),
        (executor_impl.thread.BrokenThreadPool, concurrent.futures.thread.BrokenThreadPool),
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
]


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
    assert shape(resolve(executor_impl, dotted)) == shape(resolve(concurrent.futures, dotted))
