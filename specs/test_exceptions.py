"""Exception propagation, as the documentation of ``concurrent.futures`` states it.

    Future.result(): "If the call raised an exception, this method will raise the same
    exception."

    Future.exception(): "Return the exception raised by the call. ... If the call completed
    without raising, None is returned."

    Executor.map(): "If a fn call raises an exception, then that exception will be raised when
    its value is retrieved from the iterator."

    ProcessPoolExecutor: "only picklable objects can be executed and returned."

What "the same exception" means depends on where the call ran:

* in a thread of the test's process, it is the very object the call raised (identity);
* in a worker process, it is a copy made by pickling: same type, same ``args``, the same
  values of the public attributes the call set. Its ``__cause__`` may carry the worker's
  traceback (the stdlib attaches a ``_RemoteTraceback``), and an executor may add public
  attributes of its own (e.g. a documented ``traceback``); that is allowed, not required.

This holds for ``BaseException`` subclasses that are not ``Exception`` (a pool must not let
them kill its worker), and for exceptions with unusual constructors (several arguments,
keyword-only, none, attributes set after construction), as long as they pickle and unpickle
on process pools.

On a process pool, a call whose argument, result or exception cannot be pickled fails its
own future with an exception, and the pool keeps working. The documentation promises no type
(the stdlib reports ``pickle.PicklingError`` for each of the three on 3.9-3.13; other pools
report what their serializer raised), so only "an ``Exception``, not ``BrokenExecutor``" is
checked.

Recorded, not asserted (behaviours that differ and are not documented):

* An exception that pickles but cannot be unpickled (``LossyError``: its ``args`` are not its
  constructor's arguments) breaks the stdlib's process pool (``BrokenProcessPool`` for every
  pending call, on 3.9-3.13; as an argument the worker dies unpickling the call, as an
  exception the pool's manager fails to unpickle the result); executor_impl fails only that
  call's future. No CPython issue tracks it for concurrent.futures (python/cpython#103061 is
  the same cause in ``multiprocessing.Pool``). So ``LossyError`` runs on thread pools only.
* ``KeyboardInterrupt`` and ``SystemExit`` raised by a call are not exercised: the spec's own
  ``BaseException`` subclass carries the property without disturbing the test run.

Falsy exceptions (``__bool__`` false, or ``__len__`` 0) are in separate tests below: the
stdlib's ``result()`` tests ``if self._exception:`` and returns None for them, and its
process pool turns them into a None result (CPython gh-132063, fixed upstream in 2025); on
an interpreter whose stdlib has the bug (found by trying it) those tests are strict xfails.
"""

from __future__ import annotations

import dataclasses
import errno
import sys
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, multiple, precondition, rule

from pytest_futures_plugin import faults, tasks

from . import _known_bugs, _tasks
from ._deviations import (
    conclude,
    declared,
    futures_deviations,  # noqa: F401 (a fixture the tests request)
    observed,
)
from ._fixtures import futures_known_bugs  # noqa: F401 (a fixture the tests request)
from ._harness import BOUND, drain_before_shutdown, run_spec, shut_down_within_bound
from ._known_bugs import expects_known_bug
from ._seen import note

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from hypothesis.stateful import MultipleResults

    from pytest_futures_plugin.backends import Backend

pytestmark = pytest.mark.futures_area("exceptions")

SERIALIZED = "exceptions/calls_are_serialized"
AT_SUBMIT = "exceptions/submit_pickles_the_arguments"

MAX_WORKERS = 2


def _annotated(message: str, detail: int) -> _tasks.AnnotatedError:
    error = _tasks.AnnotatedError(message)
    error.detail = detail
    return error


EXCEPTIONS = st.one_of(
    st.builds(_tasks.SpecError, st.integers()),
    st.builds(_tasks.SpecBaseError, st.integers()),
    st.builds(_tasks.ManyArgsError, st.integers(), st.text(max_size=3), st.booleans()),
    st.builds(_tasks.KeywordOnlyError, code=st.integers()),
    st.builds(_tasks.NoArgsError),
    st.builds(_annotated, st.text(max_size=3), st.integers()),
    # OSError(errno, text) makes the subclass for that errno (FileNotFoundError, ...).
    st.builds(OSError, st.sampled_from([errno.ENOENT, errno.EACCES]), st.just("spec")),
    st.builds(KeyError, st.text(max_size=3)),
)
"""Exceptions that pickle and unpickle, so every backend carries them."""

VALUES = st.integers() | st.text(max_size=3) | st.none()


def _public(error: BaseException) -> dict[str, Any]:
    return {k: v for k, v in vars(error).items() if not k.startswith("_")}


def same_exception(got: BaseException | None, raised: BaseException, processes: bool) -> bool:
    """Whether *got* is "the same exception" as *raised*: the object itself from a thread,
    an equal copy (type, args, public attributes) from a worker process."""
    if not processes:
        return got is raised
    if got is None or type(got) is not type(raised) or got.args != raised.args:
        return False
    copied = _public(got)
    return all(k in copied and copied[k] == v for k, v in _public(raised).items())


@dataclasses.dataclass
class Expected:
    """What one call's future must report: a value, an exception, or a pickling failure."""

    label: str
    value: Any = None
    error: BaseException | None = None
    unpicklable: str | None = None  # a process pool fails the call: pickling this failed
    value_type: type | None = None  # the value is a new object: only its type is known
    made_by_the_call: bool = False  # the error is made by the call: an equal one is expected

    def describe(self) -> str:
        if self.unpicklable is not None:
            return f"a pickling error about {self.unpicklable}"
        if self.error is not None:
            return f"raising {self.error!r}"
        return f"returning {self.value!r}"


class ExceptionPropagation(RuleBasedStateMachine):
    """Calls that return, raise, or cannot cross a process boundary, on a real pool."""

    futures = Bundle("futures")

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.api = backend.api
        self.backend = backend
        self.processes = backend.capabilities.processes
        # A backend that serializes each call's arguments and exception even in threads (a
        # declared deviation) gets them checked as a process pool's; its results are not.
        self.serialized = not self.processes and declared(backend, SERIALIZED)
        self.copies = self.processes or self.serialized
        self.base_exception_mapped = False  # map() ran a call raising a BaseException
        self.lost: set[int] = set()  # futures a known bug leaves pending (_result_lost)
        self.expected: dict[int, Expected] = {}
        self.objects: list[Future[Any]] = []
        self.executor = backend.make(max_workers=MAX_WORKERS)

    # -- helpers -----------------------------------------------------------------------------

    def _submit(self, expected: Expected, fn: Any, *args: Any) -> Future[Any]:
        try:
            future = self.executor.submit(fn, *args)
        except self.api.BrokenExecutor as error:
            raise AssertionError(
                f"submit() of the call {expected.describe()}: the pool is broken ({error!r}), "
                "yet no call broke it"
            ) from error
        self.expected[id(future)] = expected
        self.objects.append(future)
        if self.lost:
            # After a result lost to that known bug, later calls may never complete either
            # (dask: three lost results on two workers and the next call stays pending; a
            # later map() raised the lost result's serialization error): the example's
            # verdict is the known bug, and its later futures are not waited for.
            self.lost.add(id(future))
        return future

    def _label(self, what: str) -> str:
        return f"future {len(self.objects)} ({what})"

    def _outcome(self, future: Future[Any]) -> BaseException | None:
        """The future's exception, once it is done (bounded)."""
        try:
            return future.exception(timeout=BOUND)
        except self.api.TimeoutError:
            label = self.expected[id(future)].label
            raise AssertionError(f"{label}: {future!r} not done after {BOUND}s") from None

    def _check_exception(self, future: Future[Any], got: BaseException | None) -> None:
        """*got* is what the future reports as its exception: the one the call raised,
        None if it returned, a pickling error if it could not cross."""
        expected = self.expected[id(future)]
        if expected.unpicklable is not None:
            assert self._a_pickling_failure(got), (
                f"{expected.label}: {expected.unpicklable} cannot be pickled: the call fails "
                f"with an exception of its own, not {got!r}"
            )
            self._the_pool_still_works(expected)
            if self.serialized:
                observed(self.backend, SERIALIZED)
        elif expected.error is not None:
            copied = self.copies or expected.made_by_the_call
            assert same_exception(got, expected.error, copied), (
                f"{expected.label}: the call raised {expected.error!r} "
                f"({type(expected.error).__qualname__}), the future reports {got!r} "
                f"({type(got).__qualname__})"
            )
            if self.serialized and got is not expected.error:
                observed(self.backend, SERIALIZED)
        else:
            assert got is None, f"{expected.label}: the call returned, the future has {got!r}"

    def _a_pickling_failure(self, got: BaseException | None) -> bool:
        """An ``Exception`` (any type: none is documented) that does not break the pool."""
        return isinstance(got, Exception) and not isinstance(got, self.api.BrokenExecutor)

    def _check_value(self, future: Future[Any], value: Any) -> None:
        expected = self.expected[id(future)]
        if expected.value_type is not None:
            assert type(value) is expected.value_type, f"{expected.label}: {value!r}"
        else:
            assert value == expected.value, f"{expected.label}: result() {value!r}"

    def _check_result(self, future: Future[Any]) -> None:
        """Wait for *future* (bounded); ``result()`` returns the call's value or raises what
        ``exception()`` returns, which is what the call raised."""
        if id(future) in self.lost:
            return
        expected = self.expected[id(future)]
        failed = self._outcome(future)  # waits, bounded
        raised: BaseException | None = None
        try:
            value = future.result(timeout=0)
        except BaseException as error:  # a BaseException subclass too: it is the call's
            raised = error
        if failed is None:
            assert raised is None, f"{expected.label}: exception() is None, result() raised"
            self._check_exception(future, None)
            self._check_value(future, value)
        else:
            assert raised is failed, (
                f"{expected.label}: result() raised {raised!r}, exception() returned {failed!r}"
            )
            self._check_exception(future, raised)

    def _the_pool_still_works(self, after: Expected) -> None:
        future = self._submit(
            Expected(self._label("returns"), value="still works"), tasks.return_value, "still works"
        )
        if id(future) in self.lost:
            return
        try:
            value = future.result(timeout=BOUND)
        except BaseException as error:
            raise AssertionError(
                f"after {after.label} failed to pickle, the pool cannot run a call: {error!r}"
            ) from error
        assert value == "still works"

    # -- rules -------------------------------------------------------------------------------

    @rule(target=futures, value=VALUES)
    def submit_returning(self, value: Any) -> Future[Any]:
        return self._submit(
            Expected(self._label("returns"), value=value), tasks.return_value, value
        )

    @rule(target=futures, error=EXCEPTIONS)
    def submit_raising(self, error: BaseException) -> Future[Any]:
        label = self._label(f"raises {type(error).__name__}")
        return self._submit(Expected(label, error=error), tasks.raise_exception, error)

    @precondition(lambda self: not self.copies)
    @rule(target=futures, left=st.integers(), right=st.integers())
    def submit_raising_lossy(self, left: int, right: int) -> Future[Any]:
        """An exception that cannot be rebuilt from its args: in a thread nothing copies it."""
        error = _tasks.LossyError(left, right)
        label = self._label("raises LossyError")
        return self._submit(Expected(label, error=error), tasks.raise_exception, error)

    @rule(target=futures)
    def submit_unpicklable_argument(self) -> MultipleResults[Future[Any]]:
        """On a process pool the call fails with an exception; the pool keeps working. (A
        backend that declares it pickles the arguments inside ``submit`` raises there.)"""
        argument = faults.Unpicklable("argument")
        label = self._label("takes an unpicklable argument")
        if self.copies:
            expected = Expected(label, unpicklable=repr(argument))
        else:
            expected = Expected(label, value=argument)
        if self.copies and declared(self.backend, AT_SUBMIT):
            try:
                self.executor.submit(tasks.return_value, argument)
            except Exception:  # no type is documented
                observed(self.backend, AT_SUBMIT)
                self._the_pool_still_works(expected)
                return multiple()
            raise AssertionError(f"{label}: submit() returned, though declared to raise")
        future = self._submit(expected, tasks.return_value, argument)
        self._check_result(future)  # at once: a broken pool fails this step
        return multiple(future)

    @rule(target=futures)
    def submit_returning_unpicklable(self) -> Future[Any]:
        """On a process pool the call fails with an exception; the pool keeps working."""
        label = self._label("returns an unpicklable value")
        if self.processes:
            expected = Expected(label, unpicklable="its result")
        else:
            expected = Expected(label, value_type=faults.Unpicklable)
        future = self._submit(expected, faults.return_unpicklable, "result")
        if self.processes and self._result_lost(future):
            return future
        self._check_result(future)  # at once: a broken pool fails this step
        return future

    def _result_lost(self, future: Future[Any]) -> bool:
        """Whether *future*, of a call returning an unpicklable value, is left pending by a
        known bug that the backend's probe found (recorded as seen): then no check waits for
        it, which would only hang.

        Nor for any earlier future of the example not done yet: its result may be fetched
        together with the lost one and be lost with it (dask gathers the results wanted at the
        same moment in one request, which the unpicklable value fails as a whole; seen as a
        call submitted just before it staying pending for good)."""
        what = f"{self.expected[id(future)].label}: a call returning an unpicklable value"
        if note(self.backend, "dask_unpicklable_result_pending", what):
            self.lost.update(id(earlier) for earlier in self.objects if not earlier.done())
            self.lost.add(id(future))
            return True
        return False

    @rule(target=futures, message=st.text(max_size=3))
    def submit_raising_unpicklable(self, message: str) -> Future[Any]:
        """On a process pool the call fails with an exception; the pool keeps working."""
        label = self._label("raises an unpicklable exception")
        if self.copies:
            expected = Expected(label, unpicklable="its exception")
        else:
            error = faults.UnpicklableError(message)
            expected = Expected(label, error=error, made_by_the_call=True)
        future = self._submit(expected, faults.raise_unpicklable_error, message)
        self._check_result(future)  # at once: a broken pool fails this step
        return future

    @rule(future=futures)
    def result(self, future: Future[Any]) -> None:
        if id(future) not in self.lost:
            self._check_result(future)

    @rule(future=futures)
    def exception(self, future: Future[Any]) -> None:
        if id(future) not in self.lost:
            self._check_exception(future, self._outcome(future))

    @rule(
        outcomes=st.lists(VALUES | EXCEPTIONS, min_size=1, max_size=4),
        chunksize=st.integers(1, 3),
    )
    def map(self, outcomes: list[Any], chunksize: int) -> None:
        """``map`` yields the values in order up to the first call that raised, then raises
        that call's exception. With chunksize > 1 a process pool may raise it earlier: the
        values before it in its chunk may be lost (the stdlib drops them)."""
        if self.lost:
            return  # after a result lost to a known bug, later calls are not checked (_submit)
        first_error = next((o for o in outcomes if isinstance(o, BaseException)), None)
        before = outcomes if first_error is None else outcomes[: outcomes.index(first_error)]
        base = first_error is not None and not isinstance(first_error, Exception)
        self.base_exception_mapped = self.base_exception_mapped or base
        if base and note(
            self.backend,
            "dask_base_exception_hangs",
            f"map({outcomes!r}): its first exception is a BaseException, not an Exception",
        ):
            return  # the probe found map() never delivers it: waiting would only hang
        results = self.executor.map(
            _tasks.return_or_raise, outcomes, timeout=BOUND, chunksize=chunksize
        )
        got: list[Any] = []
        try:
            got.extend(results)
        except BaseException as raised:
            if first_error is None or not same_exception(raised, first_error, self.copies):
                raise AssertionError(
                    f"map({outcomes!r}, chunksize={chunksize}) raised {raised!r} after "
                    f"yielding {got!r}; the first exception is {first_error!r}"
                ) from raised
        else:
            assert first_error is None, (
                f"map({outcomes!r}) yielded {got!r} without raising {first_error!r}"
            )
        if chunksize == 1:
            assert got == before, f"map({outcomes!r}) yielded {got!r}, not {before!r}"
        else:
            assert got == before[: len(got)], f"map({outcomes!r}) yielded {got!r}"

    # -- once quiet ---------------------------------------------------------------------------

    def teardown(self) -> None:
        # A step that failed is the report; checks of the aftermath would only hide it.
        failing = sys.exc_info()[0] is not None
        # Results lost to a known bug (recorded as seen) may hold up the pool's later calls
        # (see _submit): the last call may time out behind them.
        drain_before_shutdown(self.executor, failing=failing or bool(self.lost))
        if self._base_exception_hangs_shutdown(failing):
            self.executor.shutdown(wait=False)  # every future is done: it cancels nothing
        shut_down_within_bound(self.executor, "at teardown")
        if not failing:
            self.every_future_reports_its_call()

    def _base_exception_hangs_shutdown(self, failing: bool) -> bool:
        """Whether a call of this example raised a BaseException that is not an Exception on
        a backend whose probe finds that ``shutdown(wait=True)`` then hangs (a known bug): if
        no step failed, record it as seen and wait (bounded) for every future instead; True
        when the teardown must not wait in ``shutdown``."""
        raised_base = self.base_exception_mapped or any(
            isinstance(e.error, BaseException) and not isinstance(e.error, Exception)
            for e in self.expected.values()
        )
        if not raised_base:
            return False
        if failing:
            return _known_bugs.shows(self.backend, "dask_base_exception_hangs")
        what = "a call raised a BaseException that is not an Exception (shutdown(wait=True) hangs)"
        if not note(self.backend, "dask_base_exception_hangs", what):
            return False
        for future in self.objects:
            if id(future) not in self.lost:
                self._outcome(future)  # bounded
        return True

    def every_future_reports_its_call(self) -> None:
        """After shutdown(wait=True) every call has run: each future reports its outcome."""
        for future in self.objects:
            if id(future) in self.lost:
                continue
            assert future.done(), f"{self.expected[id(future)].label}: {future!r} not done"
            expected = self.expected[id(future)]
            if expected.unpicklable is not None:
                got = future.exception(timeout=0)
                assert self._a_pickling_failure(got), f"{expected.label}: {got!r}"
            else:
                self._check_exception(future, future.exception(timeout=0))


@expects_known_bug("loky_unpicklable_exception")
@pytest.mark.usefixtures("futures_known_bugs", "futures_deviations")
def test_exception_propagation(futures_backend: Backend, futures_seed: int) -> None:
    """Exceptions reach result(), exception() and map as the docstring above says."""
    # One failure is enough: shrinking each distinct one on a real pool takes minutes.
    run_spec(
        ExceptionPropagation,
        futures_backend,
        seed=futures_seed,
        scale=3,
        report_multiple_bugs=False,
    )
    conclude(futures_backend)


# ------------------------------------------------------------------------------------------
# Falsy exceptions (CPython gh-132063)


@pytest.fixture(params=[_tasks.FalsyError, _tasks.EmptyError], ids=["bool", "len"])
def falsy(request: pytest.FixtureRequest) -> BaseException:
    """A falsy exception: ``__bool__`` returns False, or ``__len__`` returns 0."""
    error: BaseException = request.param("falsy")
    assert not error
    return error


def _copies(backend: Backend) -> bool:
    """Whether *backend* gives copies of a call's exception: a process pool, or a backend that
    declares it serializes every call (checked as a process pool)."""
    return backend.capabilities.processes or declared(backend, SERIALIZED)


@expects_known_bug("gh-132063/exception")
@pytest.mark.usefixtures("futures_known_bugs")
def test_exception_returns_a_falsy_exception(
    futures_backend: Backend, executor: Executor, falsy: BaseException
) -> None:
    """exception() returns the exception the call raised, even one that is false."""
    future = executor.submit(tasks.raise_exception, falsy)
    got = future.exception(timeout=BOUND)
    assert same_exception(got, falsy, _copies(futures_backend)), repr(got)


@expects_known_bug("gh-132063/result")
@pytest.mark.usefixtures("futures_known_bugs")
def test_result_raises_a_falsy_exception(
    futures_backend: Backend, executor: Executor, falsy: BaseException
) -> None:
    """result() raises the exception the call raised, even one that is false."""
    future = executor.submit(tasks.raise_exception, falsy)
    with pytest.raises(type(falsy)) as raised:
        future.result(timeout=BOUND)
    assert same_exception(raised.value, falsy, _copies(futures_backend))


@expects_known_bug("gh-132063/map")
@pytest.mark.usefixtures("futures_known_bugs")
def test_map_raises_a_falsy_exception(
    futures_backend: Backend, executor: Executor, falsy: BaseException
) -> None:
    """map raises the exception a call raised, even one that is false."""
    results = executor.map(_tasks.return_or_raise, [1, falsy, 3], timeout=BOUND)
    assert next(results) == 1
    with pytest.raises(type(falsy)) as raised:
        next(results)
    assert same_exception(raised.value, falsy, _copies(futures_backend))
