"""wait() and as_completed() (executor_impl/_waiting.py), side by side with the stdlib.

As documented: ``wait(fs, timeout=None, return_when=ALL_COMPLETED)`` returns a named 2-tuple
of sets ``(done, not_done)``; duplicates are returned once. ``as_completed(fs, timeout=None)``
yields each given future once, as it completes, the already completed ones first, and raises
TimeoutError if ``__next__()`` is called when not every future finished within *timeout*.

"Done" for both means FINISHED or CANCELLED_AND_NOTIFIED: a future cancelled by ``cancel()``
alone counts as not done until ``set_running_or_notify_cancel()`` (what an executor calls
when it reaches the work item). That is CPython's behaviour (gh-92001 discusses it) and
executor_impl keeps it.
"""

from __future__ import annotations

import gc
import itertools
import weakref
from typing import TYPE_CHECKING, Any, Callable

import pytest

from ._helpers import (
    LONG_WAIT,
    SHORT_TIMEOUT,
    BackgroundCall,
    FuturesAPI,
    after,
    cancelled_and_notified_future,
    cancelled_future,
    raised_future,
    returned_future,
    running_future,
    wait_for,
)

if TYPE_CHECKING:
    import threading
    from concurrent.futures import Future

RETURN_WHENS = ["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"]

# ---------------------------------------------------------------------------------------------
# wait()


@pytest.mark.parametrize("return_when", RETURN_WHENS)
def test_wait_on_no_futures_returns_two_empty_sets_at_once(
    cf: FuturesAPI, return_when: str
) -> None:
    no_futures: list[Future[None]] = []
    call = BackgroundCall(lambda: cf.wait(no_futures, return_when=getattr(cf, return_when)))
    assert call.outcome("wait([]) to return") == (set(), set())


def test_wait_returns_a_named_tuple_of_done_and_not_done_sets(cf: FuturesAPI) -> None:
    done, pending = returned_future(cf), cf.Future()
    result = cf.wait([done, pending], timeout=0)
    assert result.done == {done}
    assert result.not_done == {pending}
    assert tuple(result) == ({done}, {pending})


def test_wait_returns_a_future_given_twice_once(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    future = cf.Future()
    go = make_event()
    setter = after(go, lambda: future.set_result(None))
    go.set()
    done, not_done = cf.wait([future, future], timeout=LONG_WAIT)
    assert (done, not_done) == ({future}, set())
    setter.outcome("the setting thread to finish")


def test_wait_accepts_any_iterable_of_futures(cf: FuturesAPI) -> None:
    futures = [returned_future(cf), raised_future(cf)]
    done, not_done = cf.wait(f for f in futures)
    assert (done, not_done) == (set(futures), set())


def test_wait_all_completed_is_the_default_and_waits_for_every_future(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    first, second, third = cf.Future(), cf.Future(), running_future(cf)

    def finish_all() -> None:
        first.set_result(1)
        second.set_exception(ValueError())
        third.set_result(3)

    go = make_event()
    setter = after(go, finish_all)
    go.set()
    done, not_done = cf.wait([first, second, third], timeout=LONG_WAIT)
    assert (done, not_done) == ({first, second, third}, set())
    setter.outcome("the setting thread to finish")


def test_wait_all_completed_returns_at_once_when_every_future_is_done(cf: FuturesAPI) -> None:
    futures = [returned_future(cf), raised_future(cf), cancelled_and_notified_future(cf)]
    call = BackgroundCall(lambda: cf.wait(futures, return_when=cf.ALL_COMPLETED))
    assert call.outcome("wait() on done futures to return") == (set(futures), set())


def test_wait_first_completed_returns_at_once_when_a_future_is_already_done(
    cf: FuturesAPI, finish_at_teardown: Callable[..., None]
) -> None:
    done = [returned_future(cf), cancelled_and_notified_future(cf)]
    pending = [cf.Future(), running_future(cf)]
    finish_at_teardown(pending)
    call = BackgroundCall(lambda: cf.wait(done + pending, return_when=cf.FIRST_COMPLETED))
    assert call.outcome("wait(FIRST_COMPLETED) to return") == (set(done), set(pending))


@pytest.mark.parametrize("completion", ["result", "exception", "notified cancellation"])
def test_wait_first_completed_returns_when_one_future_completes(
    cf: FuturesAPI, finish_at_teardown: Callable[..., None], completion: str
) -> None:
    """wait() has no timeout here: only the completion can make it return."""
    completing, never = cf.Future(), cf.Future()
    finish_at_teardown([never])
    waiting = BackgroundCall(
        lambda: cf.wait([never, completing], return_when=cf.FIRST_COMPLETED), name="test-waiter"
    )
    if completion == "result":
        completing.set_result(None)
    elif completion == "exception":
        completing.set_exception(ValueError())
    else:
        assert completing.cancel()
        assert not completing.set_running_or_notify_cancel()
    done, not_done = waiting.outcome(f"wait(FIRST_COMPLETED) to return after a {completion}")
    assert (done, not_done) == ({completing}, {never})


def test_wait_first_exception_returns_when_a_future_raises(
    cf: FuturesAPI, finish_at_teardown: Callable[..., None]
) -> None:
    """wait() has no timeout here: only the exception can make it return."""
    succeeds, raises, never = cf.Future(), cf.Future(), cf.Future()
    finish_at_teardown([never])
    waiting = BackgroundCall(
        lambda: cf.wait([succeeds, raises, never], return_when=cf.FIRST_EXCEPTION),
        name="test-waiter",
    )
    succeeds.set_result(None)
    raises.set_exception(ValueError())
    done, not_done = waiting.outcome("wait(FIRST_EXCEPTION) to return after an exception")
    assert (done, not_done) == ({succeeds, raises}, {never})


def test_wait_first_exception_returns_at_once_when_a_done_future_raised(
    cf: FuturesAPI, finish_at_teardown: Callable[..., None]
) -> None:
    raised, returned, pending = raised_future(cf), returned_future(cf), cf.Future()
    finish_at_teardown([pending])
    call = BackgroundCall(
        lambda: cf.wait([raised, returned, pending], return_when=cf.FIRST_EXCEPTION)
    )
    assert call.outcome("wait(FIRST_EXCEPTION) to return") == ({raised, returned}, {pending})


def test_wait_first_exception_waits_for_every_future_when_none_raises(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    first, second = cf.Future(), cf.Future()
    already = returned_future(cf)

    def complete() -> None:
        first.set_result(1)
        second.set_result(2)

    go = make_event()
    setter = after(go, complete)
    go.set()
    done, not_done = cf.wait(
        [already, first, second], timeout=LONG_WAIT, return_when=cf.FIRST_EXCEPTION
    )
    assert (done, not_done) == ({already, first, second}, set())
    setter.outcome("the completing thread to finish")


def test_wait_first_exception_does_not_count_a_cancellation_as_an_exception(
    cf: FuturesAPI,
) -> None:
    notified, pending = cancelled_and_notified_future(cf), cf.Future()
    done, not_done = cf.wait([notified, pending], timeout=0, return_when=cf.FIRST_EXCEPTION)
    assert (done, not_done) == ({notified}, {pending})


@pytest.mark.parametrize("timeout", [0, SHORT_TIMEOUT])
@pytest.mark.parametrize("return_when", RETURN_WHENS)
def test_wait_timeout_splits_futures_into_done_and_not_done(
    cf: FuturesAPI, timeout: float, return_when: str
) -> None:
    done = [returned_future(cf), cancelled_and_notified_future(cf)]
    if return_when != "FIRST_EXCEPTION":
        done.append(raised_future(cf))  # else wait() would return because of it
    pending = [cf.Future(), running_future(cf)]
    result = cf.wait(done + pending, timeout=timeout, return_when=getattr(cf, return_when))
    assert result == (set(done), set(pending))


def test_wait_counts_a_cancelled_future_as_done_only_once_notified(cf: FuturesAPI) -> None:
    """What CPython does (gh-92001); executor_impl keeps it for Future used without its
    pool. Its own ThreadPoolExecutor notifies cancellations, see test_thread.py."""
    cancelled = cancelled_future(cf)
    assert cf.wait([cancelled], timeout=0) == (set(), {cancelled})
    assert not cancelled.set_running_or_notify_cancel()
    assert cf.wait([cancelled], timeout=0) == ({cancelled}, set())


def test_wait_wakes_when_a_waited_cancellation_is_notified(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    future = cf.Future()

    def cancel_and_notify() -> None:
        assert future.cancel()
        assert not future.set_running_or_notify_cancel()

    go = make_event()
    setter = after(go, cancel_and_notify)
    go.set()
    assert cf.wait([future], timeout=LONG_WAIT) == ({future}, set())
    setter.outcome("the cancelling thread to finish")


def test_wait_raises_value_error_for_an_unknown_return_when(cf: FuturesAPI) -> None:
    with pytest.raises(ValueError, match="Invalid return condition: 'SOMETIMES'"):
        cf.wait([cf.Future()], timeout=0, return_when="SOMETIMES")


def test_wait_validates_return_when_even_if_every_future_is_done(impl: FuturesAPI) -> None:
    """executor_impl only: the stdlib checks return_when only when it has to block, so a
    typo goes unnoticed while the futures happen to be done. Ours raises every time."""
    with pytest.raises(ValueError, match="Invalid return condition: 'SOMETIMES'"):
        impl.wait([returned_future(impl)], return_when="SOMETIMES")
    with pytest.raises(ValueError, match="Invalid return condition: 'SOMETIMES'"):
        impl.wait([], return_when="SOMETIMES")


def test_wait_sees_every_one_of_many_futures_completed_by_a_pool(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    """Many futures finishing at once from several workers (CPython issue 14406)."""
    release = make_event()
    with cf.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {pool.submit(wait_for, release, "the release of all tasks") for _ in range(100)}
        release.set()
        assert cf.wait(futures, timeout=LONG_WAIT) == (futures, set())


# ---------------------------------------------------------------------------------------------
# as_completed()


def test_as_completed_yields_nothing_for_no_futures(cf: FuturesAPI) -> None:
    assert list(cf.as_completed([], timeout=0)) == []


def test_as_completed_yields_each_future_once_finished_ones_first_then_in_completion_order(
    cf: FuturesAPI,
) -> None:
    first_pending, second_pending = cf.Future(), cf.Future()
    finished = [returned_future(cf), raised_future(cf), cancelled_and_notified_future(cf)]
    iterator = cf.as_completed(
        [first_pending, finished[0], second_pending, finished[1], finished[2]], timeout=LONG_WAIT
    )
    assert {next(iterator) for _ in finished} == set(finished)
    second_pending.set_result(2)
    first_pending.set_exception(ValueError())
    assert next(iterator) is second_pending
    assert next(iterator) is first_pending
    with pytest.raises(StopIteration):
        next(iterator)


def test_as_completed_yields_futures_completed_by_other_threads(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    futures = [cf.Future() for _ in range(3)]

    def complete() -> None:
        futures[2].set_result(None)
        futures[0].set_exception(ValueError())
        assert futures[1].cancel()
        assert not futures[1].set_running_or_notify_cancel()

    go = make_event()
    setter = after(go, complete)
    go.set()
    assert set(cf.as_completed(futures, timeout=LONG_WAIT)) == set(futures)
    setter.outcome("the completing thread to finish")


def test_as_completed_yields_a_future_given_several_times_once(cf: FuturesAPI) -> None:
    finished, pending = returned_future(cf), cf.Future()
    iterator = cf.as_completed(
        itertools.chain(itertools.repeat(finished, 3), itertools.repeat(pending, 3)),
        timeout=LONG_WAIT,
    )
    assert next(iterator) is finished
    pending.set_result(None)
    assert list(iterator) == [pending]


def test_as_completed_timeout_error_says_how_many_futures_are_unfinished(cf: FuturesAPI) -> None:
    futures = [
        cancelled_and_notified_future(cf),
        cf.Future(),
        running_future(cf),
        returned_future(cf),
    ]
    yielded: list[Future[Any]] = []
    with pytest.raises(cf.TimeoutError) as excinfo:
        yielded.extend(cf.as_completed(futures + futures[:2], timeout=0))
    assert str(excinfo.value) == "2 (of 4) futures unfinished"
    assert set(yielded) == {futures[0], futures[3]}


def test_as_completed_raises_timeout_error_after_yielding_the_finished_futures(
    cf: FuturesAPI,
) -> None:
    finished, pending = returned_future(cf), cf.Future()
    iterator = cf.as_completed([pending, finished], timeout=SHORT_TIMEOUT)
    assert next(iterator) is finished
    with pytest.raises(cf.TimeoutError, match=r"^1 \(of 2\) futures unfinished$"):
        next(iterator)


def test_as_completed_with_zero_timeout_yields_every_finished_future_without_error(
    cf: FuturesAPI,
) -> None:
    futures = [returned_future(cf), raised_future(cf), cancelled_and_notified_future(cf)]
    assert set(cf.as_completed(futures, timeout=0)) == set(futures)


def test_as_completed_counts_a_cancelled_future_as_unfinished_until_notified(
    cf: FuturesAPI,
) -> None:
    """Same rule as wait() (gh-92001)."""
    cancelled = cancelled_future(cf)
    with pytest.raises(cf.TimeoutError, match=r"^1 \(of 1\) futures unfinished$"):
        list(cf.as_completed([cancelled], timeout=0))
    assert not cancelled.set_running_or_notify_cancel()
    assert list(cf.as_completed([cancelled], timeout=0)) == [cancelled]


def test_as_completed_keeps_no_reference_to_the_futures_it_yielded(cf: FuturesAPI) -> None:
    """A long-running as_completed() loop must not keep every finished future (and its
    result) alive (CPython issue 14406)."""
    futures = [cf.Future() for _ in range(4)]
    futures += [cancelled_and_notified_future(cf), returned_future(cf)]
    collected: list[bool] = []
    iterator = cf.as_completed(futures, timeout=0)
    for _ in range(2):  # the finished ones
        future = next(iterator)
        futures.remove(future)
        ref = weakref.ref(future)
        del future
        gc.collect()
        collected.append(ref() is None)
    with pytest.raises(cf.TimeoutError):
        next(iterator)
    assert collected == [True, True]

    futures[0].set_result("first")
    for future in cf.as_completed(futures, timeout=LONG_WAIT):
        futures.remove(future)
        ref = weakref.ref(future)
        del future
        gc.collect()
        collected.append(ref() is None)
        if futures:
            futures[0].set_result("next")
    assert collected == [True] * 6


def test_as_completed_yields_futures_of_a_pool_as_they_finish(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    releases = [make_event() for _ in range(3)]
    with cf.ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(wait_for, release, f"the release of task {i}")
            for i, release in enumerate(releases)
        ]
        iterator = cf.as_completed(futures, timeout=LONG_WAIT)
        for i in (2, 0, 1):
            releases[i].set()
            assert next(iterator) is futures[i]
        with pytest.raises(StopIteration):
            next(iterator)
