"""Future (executor_impl/_future.py), side by side with concurrent.futures.Future.

The states and the calls that move a future between them, reached here through the public
API only::

    PENDING --set_running_or_notify_cancel()--> RUNNING --set_result/set_exception--> FINISHED
    PENDING --set_result/set_exception--> FINISHED
    PENDING --cancel()--> CANCELLED --set_running_or_notify_cancel()--> CANCELLED_AND_NOTIFIED

``done()`` is true in CANCELLED, CANCELLED_AND_NOTIFIED and FINISHED; ``cancelled()`` in the
two cancelled states; ``running()`` in RUNNING only.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import sys
import threading
import types
from typing import TYPE_CHECKING, Any, Callable, cast

import pytest

from ._helpers import (
    LONG_WAIT,
    SHORT_TIMEOUT,
    STATE_BUILDERS,
    FalsyError,
    FuturesAPI,
    after,
    cancelled_future,
    pending_future,
    running_future,
    stdlib_repr_hides_falsy_exceptions,
    stdlib_result_swallows_falsy_exceptions,
    xfail_stdlib_if,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

ADDRESS = "0x[0-9a-f]+"

# ---------------------------------------------------------------------------------------------
# States


def test_new_future_is_pending(cf: FuturesAPI) -> None:
    future = cf.Future()
    assert (future.running(), future.cancelled(), future.done()) == (False, False, False)


def test_set_running_or_notify_cancel_returns_true_and_marks_a_pending_future_running(
    cf: FuturesAPI,
) -> None:
    future = cf.Future()
    assert future.set_running_or_notify_cancel() is True
    assert (future.running(), future.cancelled(), future.done()) == (True, False, False)


def test_cancel_returns_true_and_makes_a_pending_future_cancelled_and_done(cf: FuturesAPI) -> None:
    future = cf.Future()
    assert future.cancel() is True
    assert (future.running(), future.cancelled(), future.done()) == (False, True, True)


def test_cancel_returns_false_once_running(cf: FuturesAPI) -> None:
    future = running_future(cf)
    assert future.cancel() is False
    assert (future.running(), future.cancelled(), future.done()) == (True, False, False)


@pytest.mark.parametrize("state", ["returned", "raised"])
def test_cancel_returns_false_once_finished(cf: FuturesAPI, state: str) -> None:
    future = STATE_BUILDERS[state](cf)
    assert future.cancel() is False
    assert (future.running(), future.cancelled(), future.done()) == (False, False, True)


@pytest.mark.parametrize("state", ["cancelled", "cancelled_and_notified"])
def test_cancel_returns_true_again_on_a_cancelled_future(cf: FuturesAPI, state: str) -> None:
    future = STATE_BUILDERS[state](cf)
    assert future.cancel() is True
    assert (future.running(), future.cancelled(), future.done()) == (False, True, True)


def test_set_running_or_notify_cancel_returns_false_on_a_cancelled_future(cf: FuturesAPI) -> None:
    future = cancelled_future(cf)
    assert future.set_running_or_notify_cancel() is False
    assert (future.running(), future.cancelled(), future.done()) == (False, True, True)


@pytest.mark.parametrize("state", ["running", "returned", "raised", "cancelled_and_notified"])
def test_set_running_or_notify_cancel_raises_runtime_error_unless_pending_or_cancelled(
    cf: FuturesAPI, state: str, caplog: pytest.LogCaptureFixture
) -> None:
    future = STATE_BUILDERS[state](cf)
    caplog.set_level(logging.CRITICAL, logger="concurrent.futures")  # the stdlib logs it too
    with pytest.raises(RuntimeError, match="Future in unexpected state"):
        future.set_running_or_notify_cancel()


@pytest.mark.parametrize("start", ["pending", "running"])
def test_set_result_finishes_a_pending_or_running_future(cf: FuturesAPI, start: str) -> None:
    future = STATE_BUILDERS[start](cf)
    future.set_result("value")
    assert (future.running(), future.cancelled(), future.done()) == (False, False, True)
    assert future.result() == "value"


@pytest.mark.parametrize("start", ["pending", "running"])
def test_set_exception_finishes_a_pending_or_running_future(cf: FuturesAPI, start: str) -> None:
    future = STATE_BUILDERS[start](cf)
    error = ValueError("boom")
    future.set_exception(error)
    assert (future.running(), future.cancelled(), future.done()) == (False, False, True)
    assert future.exception() is error


# ---------------------------------------------------------------------------------------------
# result() and exception()


def test_result_returns_the_value_set_and_exception_returns_none(cf: FuturesAPI) -> None:
    future: Future[list[int]] = cf.Future()
    value = [1, 2]
    future.set_result(value)
    assert future.result() is value
    assert future.exception() is None


def test_result_raises_the_very_exception_set_and_exception_returns_it(cf: FuturesAPI) -> None:
    future = cf.Future()
    error = KeyError("k")
    future.set_exception(error)
    with pytest.raises(KeyError) as excinfo:
        future.result()
    assert excinfo.value is error
    assert future.exception() is error


@pytest.mark.parametrize("timeout", [0, -1])
def test_result_and_exception_with_zero_or_negative_timeout_answer_when_finished(
    cf: FuturesAPI, timeout: float
) -> None:
    returned = STATE_BUILDERS["returned"](cf)
    raised = STATE_BUILDERS["raised"](cf)
    assert returned.result(timeout=timeout) == 42
    assert returned.exception(timeout=timeout) is None
    with pytest.raises(ValueError, match="raised on purpose"):
        raised.result(timeout=timeout)
    assert isinstance(raised.exception(timeout=timeout), ValueError)


@pytest.mark.parametrize("timeout", [0, -1, SHORT_TIMEOUT])
@pytest.mark.parametrize("state", ["pending", "running"])
def test_result_raises_timeout_error_when_not_finished_in_time(
    cf: FuturesAPI, state: str, timeout: float
) -> None:
    future = STATE_BUILDERS[state](cf)
    with pytest.raises(cf.TimeoutError):
        future.result(timeout=timeout)
    assert not future.done()


@pytest.mark.parametrize("timeout", [0, -1, SHORT_TIMEOUT])
@pytest.mark.parametrize("state", ["pending", "running"])
def test_exception_raises_timeout_error_when_not_finished_in_time(
    cf: FuturesAPI, state: str, timeout: float
) -> None:
    future = STATE_BUILDERS[state](cf)
    with pytest.raises(cf.TimeoutError):
        future.exception(timeout=timeout)


@pytest.mark.parametrize("timeout", [None, 0])
@pytest.mark.parametrize("state", ["cancelled", "cancelled_and_notified"])
def test_result_and_exception_raise_cancelled_error_on_a_cancelled_future(
    cf: FuturesAPI, state: str, timeout: float | None
) -> None:
    future = STATE_BUILDERS[state](cf)
    with pytest.raises(cf.CancelledError):
        future.result(timeout=timeout)
    with pytest.raises(cf.CancelledError):
        future.exception(timeout=timeout)


def test_result_waits_for_a_result_set_by_another_thread(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    future = cf.Future()
    go = make_event()
    setter = after(go, lambda: future.set_result("late"))
    go.set()
    assert future.result(timeout=LONG_WAIT) == "late"
    setter.outcome("the setting thread to finish")


def test_exception_waits_for_an_exception_set_by_another_thread(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    future = cf.Future()
    error = OSError("late")
    go = make_event()
    setter = after(go, lambda: future.set_exception(error))
    go.set()
    assert future.exception(timeout=LONG_WAIT) is error
    setter.outcome("the setting thread to finish")


@pytest.mark.parametrize("method", ["result", "exception"])
def test_a_waiting_result_or_exception_raises_cancelled_error_when_another_thread_cancels(
    cf: FuturesAPI, make_event: Callable[[], threading.Event], method: str
) -> None:
    future = cf.Future()
    go = make_event()
    canceller = after(go, future.cancel)
    go.set()
    with pytest.raises(cf.CancelledError):
        getattr(future, method)(timeout=LONG_WAIT)
    canceller.outcome("the cancelling thread to finish")


def test_timeout_error_is_the_stdlib_class_and_a_builtin_timeout_error_on_311_and_later(
    cf: FuturesAPI,
) -> None:
    """From 3.11 ``concurrent.futures.TimeoutError`` is the builtin ``TimeoutError``."""
    assert cf.TimeoutError is concurrent.futures.TimeoutError
    assert issubclass(cf.TimeoutError, TimeoutError) == (sys.version_info >= (3, 11))


# ---------------------------------------------------------------------------------------------
# set_result() and set_exception() on a future that is already done


def test_set_result_twice_raises_invalid_state_error_and_keeps_the_first_result(
    cf: FuturesAPI,
) -> None:
    future = cf.Future()
    future.set_result(1)
    expected = f"FINISHED: <Future at {ADDRESS} state=finished returned int>"
    with pytest.raises(cf.InvalidStateError, match=f"^{expected}$"):
        future.set_result(2)
    with pytest.raises(cf.InvalidStateError, match=f"^{expected}$"):
        future.set_exception(ValueError())
    assert future.result() == 1


def test_set_exception_twice_raises_invalid_state_error_and_keeps_the_first_exception(
    cf: FuturesAPI,
) -> None:
    future = cf.Future()
    first = ValueError("first")
    future.set_exception(first)
    expected = f"FINISHED: <Future at {ADDRESS} state=finished raised ValueError>"
    with pytest.raises(cf.InvalidStateError, match=f"^{expected}$"):
        future.set_exception(TypeError("second"))
    with pytest.raises(cf.InvalidStateError, match=f"^{expected}$"):
        future.set_result(2)
    assert future.exception() is first


@pytest.mark.parametrize("method", ["set_result", "set_exception"])
@pytest.mark.parametrize(
    ("state", "label"),
    [("cancelled", "CANCELLED"), ("cancelled_and_notified", "CANCELLED_AND_NOTIFIED")],
)
def test_set_result_and_set_exception_raise_invalid_state_error_after_cancel(
    cf: FuturesAPI, state: str, label: str, method: str
) -> None:
    future = STATE_BUILDERS[state](cf)
    with pytest.raises(
        cf.InvalidStateError, match=f"^{label}: <Future at {ADDRESS} state=cancelled>$"
    ):
        getattr(future, method)(ValueError("too late"))
    assert future.cancelled()


# ---------------------------------------------------------------------------------------------
# add_done_callback()


def test_done_callbacks_run_once_in_registration_order_when_a_result_is_set(
    cf: FuturesAPI,
) -> None:
    future = cf.Future()
    calls: list[str] = []

    def record(name: str) -> Callable[[Future[Any]], None]:
        return lambda f: calls.append(name)

    for name in ("first", "second", "third"):
        future.add_done_callback(record(name))
    assert future.set_running_or_notify_cancel()
    assert calls == [], "a callback ran when the future started running"
    future.set_result(None)
    assert calls == ["first", "second", "third"]
    assert not future.cancel()
    with pytest.raises(cf.InvalidStateError):
        future.set_result(None)
    assert calls == ["first", "second", "third"], "a callback ran twice"


def test_done_callbacks_run_when_an_exception_is_set(cf: FuturesAPI) -> None:
    future = cf.Future()
    seen: list[BaseException | None] = []
    future.add_done_callback(lambda f: seen.append(f.exception()))
    error = ValueError("boom")
    future.set_exception(error)
    assert seen == [error]


def test_done_callbacks_run_once_on_cancel_and_not_again_when_notified(cf: FuturesAPI) -> None:
    future = cf.Future()
    seen: list[bool] = []
    future.add_done_callback(lambda f: seen.append(f.cancelled()))
    future.add_done_callback(lambda f: seen.append(f.done()))
    assert future.cancel()
    assert seen == [True, True]
    assert future.cancel()
    assert not future.set_running_or_notify_cancel()
    assert seen == [True, True], "a callback ran again"


def test_done_callback_receives_the_future_it_was_added_to(cf: FuturesAPI) -> None:
    future = cf.Future()
    received: list[Future[Any]] = []
    future.add_done_callback(received.append)
    future.set_result(None)
    assert len(received) == 1
    assert received[0] is future


@pytest.mark.parametrize("state", ["returned", "raised", "cancelled", "cancelled_and_notified"])
def test_done_callback_added_after_completion_runs_at_once_in_the_adding_thread(
    cf: FuturesAPI, state: str
) -> None:
    future = STATE_BUILDERS[state](cf)
    threads: list[int] = []
    future.add_done_callback(lambda f: threads.append(threading.get_ident()))
    assert threads == [threading.get_ident()]


def test_done_callbacks_run_in_the_thread_that_completes_the_future(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    future = cf.Future()
    threads: list[int] = []
    future.add_done_callback(lambda f: threads.append(threading.get_ident()))
    go = make_event()
    setter = after(go, lambda: future.set_result(None))
    go.set()
    setter.outcome("the setting thread to finish")
    assert threads == [setter.thread.ident]


def test_a_done_callback_may_call_result_and_add_done_callback_without_deadlock(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    """Callbacks must run after the future's lock is released; holding it would deadlock
    here, which the bounded ``outcome()`` turns into a failure."""
    future = cf.Future()
    seen: list[object] = []

    def callback(f: Future[Any]) -> None:
        seen.append(f.result(timeout=0))
        f.add_done_callback(lambda g: seen.append("nested"))
        seen.append(repr(f))

    future.add_done_callback(callback)
    go = make_event()
    setter = after(go, lambda: future.set_result("value"))
    go.set()
    setter.outcome("set_result() to return although a callback uses the future")
    assert seen[:2] == ["value", "nested"]


def test_a_raising_done_callback_is_logged_and_later_callbacks_still_run(
    cf: FuturesAPI, caplog: pytest.LogCaptureFixture
) -> None:
    future = cf.Future()
    calls: list[str] = []

    def raising(f: Future[Any]) -> None:
        calls.append("raising")
        raise RuntimeError("callback failed on purpose")

    future.add_done_callback(raising)
    future.add_done_callback(lambda f: calls.append("after"))
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        future.set_result(5)
    assert calls == ["raising", "after"]
    assert future.result() == 5
    [record] = [r for r in caplog.records if r.name == "concurrent.futures"]
    assert record.levelno == logging.ERROR
    assert "exception calling callback for" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_a_raising_done_callback_added_after_completion_is_logged_not_raised(
    cf: FuturesAPI, caplog: pytest.LogCaptureFixture
) -> None:
    future = cf.Future()
    future.set_result(5)
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        future.add_done_callback(lambda f: 1 / 0)
    [record] = [r for r in caplog.records if r.name == "concurrent.futures"]
    assert "exception calling callback for" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ZeroDivisionError)


# ---------------------------------------------------------------------------------------------
# repr() and typing


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ("pending", "pending"),
        ("running", "running"),
        ("cancelled", "cancelled"),
        ("cancelled_and_notified", "cancelled"),
        ("returned", "finished returned int"),
        ("raised", "finished raised ValueError"),
    ],
)
def test_repr_shows_the_state_and_what_a_finished_future_holds(
    cf: FuturesAPI, state: str, shown: str
) -> None:
    future = STATE_BUILDERS[state](cf)
    assert re.fullmatch(f"<Future at {ADDRESS} state={shown}>", repr(future)), repr(future)


def test_repr_address_is_the_id_of_the_future(cf: FuturesAPI) -> None:
    future = pending_future(cf)
    assert repr(future) == f"<Future at {id(future):#x} state=pending>"


def test_future_can_be_subscripted_as_a_generic_alias(cf: FuturesAPI) -> None:
    alias = cast("Any", cf.Future)[int]
    assert isinstance(alias(), cf.Future)
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is cf.Future
    assert alias.__args__ == (int,)


# ---------------------------------------------------------------------------------------------
# Exceptions that are false in a boolean context


def test_result_raises_an_exception_whose_bool_is_false(
    cf: FuturesAPI, request: pytest.FixtureRequest
) -> None:
    """Ours tests ``exception is not None``; the stdlib tests the exception's truth value
    and returns None instead of raising (gh-132063)."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_result_swallows_falsy_exceptions(),
        "gh-132063: Future.result() returns None for an exception whose bool() is False",
    )
    future = cf.Future()
    error = FalsyError("falsy")
    future.set_exception(error)
    assert future.exception() is error
    with pytest.raises(FalsyError) as excinfo:
        future.result(timeout=0)
    assert excinfo.value is error


def test_repr_shows_an_exception_whose_bool_is_false_as_raised(
    cf: FuturesAPI, request: pytest.FixtureRequest
) -> None:
    """The stdlib's repr tests the exception's truth value too (gh-132063)."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_repr_hides_falsy_exceptions(),
        "gh-132063: Future.__repr__ shows 'returned NoneType' for a falsy exception",
    )
    future = cf.Future()
    future.set_exception(FalsyError())
    assert re.fullmatch(f"<Future at {ADDRESS} state=finished raised FalsyError>", repr(future))
