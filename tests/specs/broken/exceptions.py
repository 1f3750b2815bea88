"""Broken exception propagation for the exceptions spec (specs/test_exceptions.py).

Each backend is one of executor_impl's pools with one bug, not the stdlib's: the stdlib loses
falsy exceptions (gh-132063), and the spec's strict xfails for that apply only to the stdlib's
own API module, so a broken pool built on the stdlib would fail those tests whatever its bug.
The thread pools wrap each call (or give their futures a broken class, see
``callbacks.GivesFuturesClass``); the process pools wrap each call in a module-level function,
which pickles.
"""

from __future__ import annotations

import copy
import os
import pickle
from typing import Any, Callable, TypeVar

import executor_impl
from executor_impl._future import Future as ImplFuture

from . import Broken
from .callbacks import GivesFuturesClass

T = TypeVar("T")

CRASH_EXIT_CODE = 70


# ------------------------------------------------------------------------------ thread pools


def _reraise_a_copy(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return fn(*args, **kwargs)
    except BaseException as error:
        # "Drop the worker's traceback": but the copy is another object.
        raise copy.copy(error) from None


def _base_exception_means_none(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    try:
        return fn(*args, **kwargs)
    except Exception:
        raise
    except BaseException:
        return None  # "interrupted": swallowed, the call looks as if it returned None


class CopiesExceptions(executor_impl.ThreadPoolExecutor):
    """The future holds a copy of the exception the call raised, not the exception."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> ImplFuture[T]:
        return super().submit(_reraise_a_copy, fn, *args, **kwargs)


class SwallowsBaseExceptions(executor_impl.ThreadPoolExecutor):
    """A call that raises a BaseException that is not an Exception returns None instead."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> ImplFuture[T]:
        return super().submit(_base_exception_means_none, fn, *args, **kwargs)  # type: ignore[arg-type]


class FalsyMeansNoError(ImplFuture[Any]):
    """result() tests the exception's truth, as the stdlib does (gh-132063), not ``is None``."""

    __slots__ = ()

    def result(self, timeout: float | None = None) -> Any:
        error = self.exception(timeout)
        if error:
            raise error
        return self._result


class LosesFalsyExceptions:
    """executor_impl's thread pool whose futures' result() returns None for a falsy exception."""

    Future = FalsyMeansNoError

    class ThreadPoolExecutor(GivesFuturesClass, executor_impl.ThreadPoolExecutor):
        future_class = FalsyMeansNoError


class PublishesTheStateFirst(ImplFuture[Any]):
    """set_exception() finishes the future as if it returned None, and stores the exception
    only then: a result() that runs in between returns None. Only some interleavings show it."""

    __slots__ = ()

    def set_exception(self, exception: BaseException | None) -> None:
        super().set_result(None)
        self._exception = exception


class RacesOnExceptions:
    """executor_impl's thread pool whose futures publish an exception after the state."""

    Future = PublishesTheStateFirst

    class ThreadPoolExecutor(GivesFuturesClass, executor_impl.ThreadPoolExecutor):
        future_class = PublishesTheStateFirst


# ------------------------------------------------------------------------------ process pools


def _send_the_text(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return fn(*args, **kwargs)
    except BaseException as error:
        # What crosses the boundary is the text, as over a JSON channel.
        raise RuntimeError(f"{type(error).__name__}: {error}") from None


def _die_on_unpicklable_result(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    result = fn(*args, **kwargs)
    try:
        pickle.dumps(result)
    except Exception:
        os._exit(CRASH_EXIT_CODE)  # the serializer takes the worker down with it
    return result


class SendsExceptionText(executor_impl.ProcessPoolExecutor):
    """A call's exception comes back as a RuntimeError carrying its text."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> ImplFuture[T]:
        return super().submit(_send_the_text, fn, *args, **kwargs)


class DiesOnUnpicklableResult(executor_impl.ProcessPoolExecutor):
    """A result that cannot be pickled kills its worker: the whole pool breaks."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> ImplFuture[T]:
        return super().submit(_die_on_unpicklable_result, fn, *args, **kwargs)


SPEC = "test_exceptions.py"

CASES = [
    Broken(f"{__name__}:CopiesExceptions", SPEC, "the future holds a copy of the exception"),
    Broken(
        f"{__name__}:SwallowsBaseExceptions",
        SPEC,
        "a BaseException that is not an Exception becomes a None result",
    ),
    Broken(
        f"{__name__}:LosesFalsyExceptions.ThreadPoolExecutor",
        SPEC,
        "result() returns None for a falsy exception (gh-132063 in a non-stdlib pool)",
        known_bug="gh-132063",
    ),
    Broken(
        f"{__name__}:SendsExceptionText",
        SPEC,
        "a worker process's exception comes back as a RuntimeError with its text",
    ),
    Broken(
        f"{__name__}:DiesOnUnpicklableResult",
        SPEC,
        "an unpicklable result kills its worker and breaks the whole pool",
    ),
]

RACE_ONLY_CASES = [
    Broken(
        f"{__name__}:RacesOnExceptions.ThreadPoolExecutor",
        SPEC,
        "set_exception() publishes the finished state before the exception",
        race_only=True,
    ),
]
