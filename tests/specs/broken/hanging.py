"""Executors that hang: each spec run on them must still end on its own, with FAIL verdicts,
in a bounded time (tests/specs/test_hangs_get_verdicts.py). They are not ``CASES``: each
hangs in most areas, not in one."""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

_STOP = object()


class _SimplePool(concurrent.futures.Executor):
    """A small thread pool of *max_workers* threads and one queue, for the variants below."""

    future_class: type[concurrent.futures.Future[Any]] = concurrent.futures.Future
    dies_on_a_raising_callback = False

    def __init__(self, max_workers: int | None = None, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"unexpected keyword arguments {sorted(kwargs)}")
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shut_down = False
        self._threads = [
            threading.Thread(target=self._work, name=f"hanging-pool-{n}", daemon=True)
            for n in range(max_workers or 2)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future = self.future_class()
            self._queue.put((future, fn, args, kwargs))
            return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                outcome: dict[str, Any] = {"error": error}
            else:
                outcome = {"result": result}
            try:
                self._complete(future, **outcome)
            except Exception:
                if self.dies_on_a_raising_callback:
                    return  # the worker thread ends: nothing replaces it
                raise

    def _complete(
        self, future: Any, result: Any = None, error: BaseException | None = None
    ) -> None:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut_down = True
        for _ in self._threads:
            self._queue.put(_STOP)
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()


class _CallbackEscapes(concurrent.futures.Future[Any]):
    """Runs its done callbacks without catching what they raise."""

    def _invoke_callbacks(self) -> None:
        for callback in self._done_callbacks:  # type: ignore[attr-defined]
            callback(self)


class WorkerDiesOnARaisingCallback(_SimplePool):
    """A done callback that raises ends the worker thread that completed the future: the
    calls queued behind it never run, and ``shutdown(wait=True)`` waits for ever."""

    future_class = _CallbackEscapes
    dies_on_a_raising_callback = True


class AsCompletedMissesDoneFutures:
    """The stdlib's thread pool, with an ``as_completed`` that never yields a future that was
    already done when it was called: it waits for it until the timeout, or for ever."""

    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor

    @staticmethod
    def as_completed(
        fs: Iterable[concurrent.futures.Future[Any]], timeout: float | None = None
    ) -> Iterator[concurrent.futures.Future[Any]]:
        futures = set(fs)
        pending = {f for f in futures if not f.done()}
        yield from concurrent.futures.as_completed(pending, timeout)
        if pending != futures:
            threading.Event().wait(timeout)
            raise concurrent.futures.TimeoutError(f"{len(futures - pending)} futures missed")


class SwallowsBaseException(concurrent.futures.Executor):
    """Runs each call inside ``submit()`` and keeps whatever it raises, ``BaseException``
    included (as futurist's ``SynchronousExecutor`` does): an interrupt raised into a call
    never reaches the caller."""

    def __init__(self, max_workers: int | None = None, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"unexpected keyword arguments {sorted(kwargs)}")
        self._shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        if self._shut_down:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            future.set_exception(error)
        else:
            future.set_result(result)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shut_down = True
