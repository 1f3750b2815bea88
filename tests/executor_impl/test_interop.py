"""executor_impl among its neighbours: asyncio, and the stdlib's own futures and functions.

A drop-in must work wherever ``concurrent.futures`` objects go: ``asyncio.wrap_future`` (and
so ``loop.run_in_executor`` and ``loop.set_default_executor``) on its futures and pools, the
stdlib's ``wait``/``as_completed`` on its futures, its ``wait``/``as_completed`` on the
stdlib's futures, and on lists that mix both.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import pytest

from ._helpers import (
    LONG_WAIT,
    BackgroundCall,
    FuturesAPI,
    after,
    load_api,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from concurrent.futures import Future

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# wait() and as_completed() of one implementation on futures of the other


@pytest.fixture(params=["impl", "stdlib"], ids=lambda kind: f"waiting={kind}")
def waiting(request: pytest.FixtureRequest) -> FuturesAPI:
    """The module whose wait() and as_completed() are called."""
    kind: str = request.param
    return load_api(kind)


FutureFactory = Callable[[int], "list[Future[Any]]"]


@pytest.fixture(params=["impl", "stdlib", "mixed"], ids=lambda kind: f"futures={kind}")
def new_futures(request: pytest.FixtureRequest) -> FutureFactory:
    """Make n pending futures: all executor_impl's, all the stdlib's, or alternating."""
    kinds = ["impl", "stdlib"] if request.param == "mixed" else [request.param]
    apis = [load_api(kind) for kind in kinds]

    def make(n: int) -> list[Future[Any]]:
        return [apis[i % len(apis)].Future() for i in range(n)]

    return make


def test_wait_all_completed_on_futures_of_either_implementation(
    waiting: FuturesAPI, new_futures: FutureFactory, make_event: Callable[[], threading.Event]
) -> None:
    futures = new_futures(4)
    futures[0].set_result("already")

    def complete() -> None:
        futures[1].set_result(1)
        futures[2].set_exception(ValueError())
        assert futures[3].cancel()
        assert not futures[3].set_running_or_notify_cancel()

    go = make_event()
    completer = after(go, complete)
    go.set()
    assert waiting.wait(futures, timeout=LONG_WAIT) == (set(futures), set())
    completer.outcome("the completing thread to finish")


def test_wait_first_completed_on_futures_of_either_implementation(
    waiting: FuturesAPI, new_futures: FutureFactory, finish_at_teardown: Callable[..., None]
) -> None:
    """wait() has no timeout here: only the completion can make it return."""
    futures = new_futures(4)
    finish_at_teardown(futures)
    waiter = BackgroundCall(lambda: waiting.wait(futures, return_when=waiting.FIRST_COMPLETED))
    futures[1].set_result(None)
    done, not_done = waiter.outcome("wait(FIRST_COMPLETED) to return after a result")
    assert (done, not_done) == ({futures[1]}, set(futures) - {futures[1]})


def test_wait_first_exception_on_futures_of_either_implementation(
    waiting: FuturesAPI, new_futures: FutureFactory, finish_at_teardown: Callable[..., None]
) -> None:
    """wait() has no timeout here: only the exception can make it return."""
    futures = new_futures(4)
    finish_at_teardown(futures)
    waiter = BackgroundCall(lambda: waiting.wait(futures, return_when=waiting.FIRST_EXCEPTION))
    futures[0].set_result(None)
    futures[3].set_exception(ValueError())
    done, not_done = waiter.outcome("wait(FIRST_EXCEPTION) to return after an exception")
    assert (done, not_done) == ({futures[0], futures[3]}, {futures[1], futures[2]})


def test_wait_timeout_on_futures_of_either_implementation(
    waiting: FuturesAPI, new_futures: FutureFactory
) -> None:
    futures = new_futures(4)
    futures[0].set_result(None)
    futures[1].set_exception(ValueError())
    assert futures[2].set_running_or_notify_cancel()
    assert waiting.wait(futures, timeout=0) == (set(futures[:2]), set(futures[2:]))


def test_as_completed_on_futures_of_either_implementation(
    waiting: FuturesAPI, new_futures: FutureFactory
) -> None:
    futures = new_futures(4)
    futures[2].set_result("first")
    iterator = waiting.as_completed(futures, timeout=LONG_WAIT)
    assert next(iterator) is futures[2]
    for i in (3, 0, 1):
        futures[i].set_result(i)
        assert next(iterator) is futures[i]
    with pytest.raises(StopIteration):
        next(iterator)


def test_as_completed_timeout_on_futures_of_either_implementation(
    waiting: FuturesAPI, new_futures: FutureFactory
) -> None:
    futures = new_futures(3)
    futures[0].set_result(None)
    yielded: list[Future[Any]] = []
    with pytest.raises(waiting.TimeoutError, match=r"^2 \(of 3\) futures unfinished$"):
        yielded.extend(waiting.as_completed(futures, timeout=0))
    assert yielded == [futures[0]]


def test_as_completed_on_futures_completed_by_other_threads_of_either_implementation(
    waiting: FuturesAPI, new_futures: FutureFactory, make_event: Callable[[], threading.Event]
) -> None:
    futures = new_futures(4)

    def complete() -> None:
        for future in reversed(futures):
            future.set_result(None)

    go = make_event()
    completer = after(go, complete)
    go.set()
    assert set(waiting.as_completed(futures, timeout=LONG_WAIT)) == set(futures)
    completer.outcome("the completing thread to finish")


@pytest.mark.parametrize("pool_kind", ["impl", "stdlib"])
def test_wait_and_as_completed_on_the_futures_of_either_pool(
    waiting: FuturesAPI, pool_kind: str, make_event: Callable[[], threading.Event]
) -> None:
    """Futures made by a pool, including one cancelled while queued, which the pool's worker
    notifies when it reaches it."""
    release = make_event()
    with load_api(pool_kind).ThreadPoolExecutor(max_workers=1) as pool:
        blocked = pool.submit(wait_for, release, "the cancellation of the queued task")
        cancelled = pool.submit(int)
        assert cancelled.cancel()
        ran = [pool.submit(pow, 2, i) for i in range(3)]
        release.set()
        every: list[Future[Any]] = [blocked, cancelled, *ran]
        assert waiting.wait(every, timeout=LONG_WAIT) == (set(every), set())
        assert set(waiting.as_completed(every, timeout=LONG_WAIT)) == set(every)
    assert [f.result() for f in ran] == [1, 2, 4]


def test_the_return_when_constants_are_the_stdlibs_values() -> None:
    impl, stdlib = load_api("impl"), load_api("stdlib")
    for name in ("FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"):
        assert getattr(impl, name) == getattr(stdlib, name)


# ---------------------------------------------------------------------------------------------
# asyncio


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run *coroutine* on a new event loop; fail if it takes longer than ``LONG_WAIT``."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, timeout=LONG_WAIT)

    return asyncio.run(bounded())


async def loop_turn() -> None:
    """Return once every callback already scheduled on the running loop has run."""
    loop = asyncio.get_running_loop()
    turn = loop.create_future()
    loop.call_soon(turn.set_result, None)
    await turn


def test_asyncio_wrap_future_awaits_a_result_set_by_another_thread(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    future: Future[str] = cf.Future()
    go = make_event()
    setter = after(go, lambda: future.set_result("from a thread"))

    async def main() -> str:
        wrapped = asyncio.wrap_future(future)
        go.set()
        return await wrapped

    assert run(main()) == "from a thread"
    setter.outcome("the setting thread to finish")


def test_asyncio_wrap_future_raises_the_futures_exception(cf: FuturesAPI) -> None:
    future: Future[None] = cf.Future()
    error = ValueError("from the future")
    future.set_exception(error)

    async def main() -> BaseException:
        with pytest.raises(ValueError, match="from the future") as excinfo:
            await asyncio.wrap_future(future)
        return excinfo.value

    assert run(main()) is error


def test_cancelling_the_asyncio_wrapper_cancels_the_pending_future(cf: FuturesAPI) -> None:
    future: Future[None] = cf.Future()

    async def main() -> None:
        wrapped = asyncio.wrap_future(future)
        assert wrapped.cancel()
        await loop_turn()

    run(main())
    assert future.cancelled()


def test_cancelling_the_future_cancels_its_asyncio_wrapper(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    future: Future[None] = cf.Future()
    go = make_event()
    canceller = after(go, future.cancel)

    async def main() -> None:
        wrapped = asyncio.wrap_future(future)
        go.set()
        with pytest.raises(asyncio.CancelledError):
            await wrapped

    run(main())
    canceller.outcome("the cancelling thread to finish")


def test_run_in_executor_runs_the_call_in_the_pool(cf: FuturesAPI) -> None:
    async def main() -> tuple[int, str]:
        loop = asyncio.get_running_loop()
        with cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="interop") as pool:
            return await loop.run_in_executor(
                pool, lambda x: (x * 2, threading.current_thread().name), 21
            )

    assert run(main()) == (42, "interop_0")


def test_run_in_executor_raises_the_calls_exception(cf: FuturesAPI) -> None:
    def fail() -> None:
        raise LookupError("from the pool")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pool = cf.ThreadPoolExecutor(max_workers=1)
        with pool, pytest.raises(LookupError, match="from the pool"):
            await loop.run_in_executor(pool, fail)

    run(main())


def test_the_pool_can_be_the_event_loops_default_executor(cf: FuturesAPI) -> None:
    """asyncio accepts only ThreadPoolExecutor instances there (a TypeError from 3.11 on)."""
    pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="default")
    try:

        async def main() -> str:
            loop = asyncio.get_running_loop()
            loop.set_default_executor(pool)
            return await loop.run_in_executor(None, lambda: threading.current_thread().name)

        assert run(main()) == "default_0"
    finally:
        pool.shutdown(wait=True)


def test_run_in_executor_on_a_shut_down_pool_raises_runtime_error(cf: FuturesAPI) -> None:
    pool = cf.ThreadPoolExecutor(max_workers=1)
    pool.shutdown()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
            await loop.run_in_executor(pool, int)

    run(main())
