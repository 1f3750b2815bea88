"""The hang guard and leak check engines (pytest_futures_plugin/guards/), used directly.

A guarded block that runs past its bound fails with ``FuturesHangError``, whose message names
every thread, its stack, and what it waits on; a leak check names the threads and child
processes a region left running.  The hang tests wait for their bound (0.2 s) by nature; every
other wait is on an Event and bounded by ``RESCUE``, so a broken guard fails a test rather than
hanging it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import pytest

import executor_impl
from pytest_futures_plugin.guards import (
    HANG_SIGNAL,
    WATCHDOG_THREAD_NAME,
    FuturesHangError,
    HangGuard,
    LeakCheck,
    debugger_attached,
    debugger_entered,
    debugger_left,
    describe_threads,
    is_shut_down,
    unclosed_executors,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType, ModuleType

BOUND = 0.2
RESCUE = 30.0  # how long a test waits before declaring the guard (or a thread) broken
SIGNAL = signal.SIGUSR2
CHILD = [sys.executable, "-c", "import sys; sys.stdin.read()"]  # runs until stdin closes

pytestmark = pytest.mark.skipif(
    HANG_SIGNAL is None or not hasattr(signal, "pthread_kill"), reason="needs POSIX signals"
)


@pytest.fixture(autouse=True)
def stray_signals() -> Iterator[list[int]]:
    """Record SIGUSR2s that reach the handler the guards replace: none may, ever."""
    received: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(SIGNAL, record)
    yield received
    restored = signal.getsignal(SIGNAL)
    signal.signal(SIGNAL, previous)
    assert restored is record, "a guard did not restore the previous handler"
    assert received == [], "a guard's signal reached the previous handler"


@pytest.fixture(params=[concurrent.futures, executor_impl], ids=["stdlib", "impl"])
def api(request: pytest.FixtureRequest) -> ModuleType:
    """The futures module under test: the stdlib's, or executor_impl."""
    module: ModuleType = request.param
    return module


@contextlib.contextmanager
def rescued(action: Callable[[], object]) -> Iterator[None]:
    """Run *action* after RESCUE seconds unless the block ended: a hang becomes a failure."""
    done = threading.Event()

    def rescue() -> None:
        if not done.wait(RESCUE):
            action()

    thread = threading.Thread(target=rescue, name="test-rescue", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(RESCUE)


def hang_report(body: Callable[[], object], context: str = "backend: test; test: t.py::t") -> str:
    """Run *body* under ``HangGuard(BOUND)``; return the report of the hang it must fail with."""
    started = time.monotonic()
    with pytest.raises(FuturesHangError) as info, HangGuard(BOUND, context):
        body()
    assert time.monotonic() - started >= BOUND  # it did not fire early
    return str(info.value)


def blocked_thread(name: str, gate: threading.Event) -> threading.Thread:
    """A started thread named *name* that waits for *gate* (at most RESCUE seconds)."""
    thread = threading.Thread(target=gate.wait, args=(RESCUE,), name=name, daemon=True)
    thread.start()
    return thread


# -- the hang guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "waits_in"),
    [
        pytest.param(lambda api, f: f.result(), "Future.result() on ", id="result"),
        pytest.param(lambda api, f: f.exception(), "Future.exception() on ", id="exception"),
        pytest.param(lambda api, f: api.wait([f]), "wait() on 1 future: ", id="wait"),
        pytest.param(
            lambda api, f: next(api.as_completed([f])), "as_completed() on 1 future: ", id="as_c"
        ),
    ],
)
def test_a_wait_on_a_future_that_never_completes_fails_naming_the_thread_call_and_future(
    api: ModuleType, call: Callable[[ModuleType, Any], object], waits_in: str
) -> None:
    future = api.Future()
    with rescued(lambda: future.set_result(None)):
        report = hang_report(lambda: call(api, future))
    assert report.startswith("hang guard: thread 'MainThread' still running after ")
    assert "(bound 0.2 s, report 1); backend: test; test: t.py::t\n" in report
    assert f"\n  MainThread waits in {waits_in}{future!r}\n" in report
    assert "Thread 'MainThread' (ident " in report


def test_a_worker_blocked_on_an_event_shows_with_its_stack_and_the_future_it_runs(
    api: ModuleType,
) -> None:
    started, gate = threading.Event(), threading.Event()

    def task() -> None:
        started.set()
        gate.wait(RESCUE)

    pool = api.ThreadPoolExecutor(1, thread_name_prefix="guarded-worker")
    try:
        future = pool.submit(task)
        assert started.wait(RESCUE)
        report = hang_report(future.result)
        running = repr(future)
    finally:
        gate.set()
        pool.shutdown()
    assert f"MainThread waits in Future.result() on {running}" in report
    assert "(running in thread 'guarded-worker_0')" in report
    assert "\n  guarded-worker_0 waits in Event.wait() on <threading.Event at 0x" in report
    assert "Thread 'guarded-worker_0' (ident " in report
    assert "gate.wait(RESCUE)" in report  # the worker's stack, as a traceback prints it


def test_thread_join_names_the_thread_joined() -> None:
    gate = threading.Event()
    thread = blocked_thread("joined-thread", gate)
    try:
        report = hang_report(thread.join)
    finally:
        gate.set()
        thread.join(RESCUE)
    assert "MainThread waits in Thread.join() on thread 'joined-thread'" in report
    assert "joined-thread waits in Event.wait()" in report


def test_a_hang_in_shutdown_after_the_first_interrupt_is_interrupted_again(
    api: ModuleType,
) -> None:
    gate = threading.Event()
    pool = api.ThreadPoolExecutor(1, thread_name_prefix="stuck-worker")
    try:
        with pytest.raises(FuturesHangError) as info, HangGuard(BOUND), pool:
            pool.submit(gate.wait, RESCUE).result()
    finally:
        gate.set()
        pool.shutdown()
    second, first = str(info.value), str(info.value.__context__)
    assert "report 2" in second
    assert "waits in Thread.join() on thread 'stuck-worker_0' (inside " in second
    assert ".shutdown())" in second
    assert "report 1" in first
    assert "MainThread waits in Future.result()" in first


def test_describe_threads_alone_lists_each_thread_with_its_wait_and_stack() -> None:
    gate = threading.Event()
    thread = blocked_thread("described-thread", gate)
    try:
        text = describe_threads()
        without = describe_threads(exclude=[thread.ident or 0])
    finally:
        gate.set()
        thread.join(RESCUE)
    assert text.startswith("Waits:\n")
    assert "\n  described-thread waits in Event.wait() on <threading.Event at 0x" in text
    assert "Thread 'MainThread' (ident " in text
    assert "Thread 'described-thread' (ident " in text
    assert "described-thread" not in without


def test_a_block_that_ends_in_time_leaves_no_watchdog_and_restores_the_handler() -> None:
    before = signal.getsignal(SIGNAL)
    started = time.monotonic()
    with HangGuard(RESCUE) as guard:
        assert guard.interrupts
        assert signal.getsignal(SIGNAL) is not before
        assert any(t.name == WATCHDOG_THREAD_NAME for t in threading.enumerate())
    assert time.monotonic() - started < RESCUE  # the watchdog was cancelled, not timed out
    assert signal.getsignal(SIGNAL) is before
    assert not any(t.name == WATCHDOG_THREAD_NAME for t in threading.enumerate())
    assert guard.reports == []


def test_guards_in_sequence_each_fail_their_own_block() -> None:
    first: concurrent.futures.Future[None] = concurrent.futures.Future()
    second: executor_impl.Future[None] = executor_impl.Future()
    assert repr(first) in hang_report(first.result)
    assert repr(second) in hang_report(second.result)


def test_an_inner_guard_fires_inside_an_outer_one_that_then_ends_in_time() -> None:
    future: executor_impl.Future[None] = executor_impl.Future()
    with HangGuard(RESCUE, "outer") as outer:
        report = hang_report(future.result, "inner")
    assert "; inner\n" in report
    assert outer.reports == []


def test_an_outer_guard_fires_through_an_inner_one() -> None:
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    inner = HangGuard(RESCUE, "inner")
    with pytest.raises(FuturesHangError) as info, HangGuard(BOUND, "outer"), inner:
        future.result()
    assert "; outer\n" in str(info.value)
    assert inner.reports == []


def test_a_swallowed_interrupt_still_fails_the_block_when_it_ends() -> None:
    future: executor_impl.Future[None] = executor_impl.Future()

    def swallowing() -> None:
        try:
            future.result()
        except FuturesHangError:
            pass  # code under test that swallows everything

    with pytest.raises(FuturesHangError) as info, HangGuard(BOUND) as guard:
        swallowing()
    assert str(info.value) == guard.reports[0]


def test_a_signal_still_pending_as_the_block_ends_is_consumed_not_delivered_later() -> None:
    guard = HangGuard(RESCUE)

    def fire_as_the_block_ends() -> None:
        # As if the watchdog fired just as the block finished: the signal is sent while it is
        # blocked, so it is still pending in the kernel when the guard exits.
        assert guard._fire()
        assert SIGNAL in signal.sigpending()

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {SIGNAL})
    try:
        with pytest.raises(FuturesHangError) as info, guard:
            fire_as_the_block_ends()
        assert SIGNAL not in signal.sigpending()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    assert str(info.value) == guard.reports[0]  # raised by __exit__, not by the handler


def test_off_the_main_thread_the_guard_only_reports() -> None:
    future: executor_impl.Future[None] = executor_impl.Future()
    reported = threading.Event()
    reports: list[str] = []
    outcome: list[object] = []

    def on_report(report: str) -> None:
        reports.append(report)
        reported.set()

    def body() -> None:
        try:
            with HangGuard(BOUND, "elsewhere", on_report=on_report) as guard:
                outcome.append(guard.interrupts)
                future.result(RESCUE)
        except FuturesHangError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=body, name="guarded-elsewhere")
    thread.start()
    try:
        assert reported.wait(RESCUE)
    finally:
        future.set_result(None)  # the block ends late: the guard fails it on exit
        thread.join(RESCUE)
    assert outcome[0] is False
    assert isinstance(outcome[1], FuturesHangError)
    assert str(outcome[1]) == reports[0]
    assert "report only" in reports[0]
    assert "guarded-elsewhere waits in Future.result()" in reports[0]


class Sink:
    """A stand-in for ``sys.stderr`` that says when something was written to it."""

    def __init__(self) -> None:
        self.text = ""
        self.written = threading.Event()

    def write(self, text: str) -> int:
        self.text += text
        self.written.set()
        return len(text)

    def flush(self) -> None:
        pass


def test_without_on_report_a_guard_that_cannot_interrupt_writes_to_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    sink = Sink()
    monkeypatch.setattr(sys, "stderr", sink)
    errors: list[BaseException] = []

    def body() -> None:
        try:
            with HangGuard(BOUND, "to stderr"):
                future.result(RESCUE)
        except FuturesHangError as exc:
            errors.append(exc)

    thread = threading.Thread(target=body, name="guarded-quietly")
    thread.start()
    try:
        assert sink.written.wait(RESCUE)
    finally:
        future.set_result(None)
        thread.join(RESCUE)
    assert len(errors) == 1
    assert sink.text == f"\n{errors[0]}\n"


def test_a_guard_firing_as_it_is_entered_or_exited_still_cleans_up() -> None:
    # A bound far below the time __enter__ and __exit__ take makes the watchdog fire in the
    # middle of them: whatever is raised, and wherever, no watchdog or handler may outlive it.
    outcomes = set()
    for _ in range(200):
        try:
            with HangGuard(1e-6):
                pass
        except FuturesHangError:
            outcomes.add("failed")
        else:
            outcomes.add("passed")
    assert not any(t.name == WATCHDOG_THREAD_NAME for t in threading.enumerate())
    assert outcomes  # and the autouse fixture checks the handler and stray signals


@pytest.mark.parametrize("bound", [0, -1.0, float("inf"), float("nan"), "1"])
def test_the_bound_must_be_a_positive_finite_number(bound: Any) -> None:
    with pytest.raises(ValueError, match="positive finite number of seconds"):
        HangGuard(bound)


def test_a_guard_guards_one_block() -> None:
    guard = HangGuard(RESCUE)
    with guard:
        pass
    with pytest.raises(RuntimeError, match="one block"), guard:
        pass


# -- the leak check ----------------------------------------------------------------------------


@contextlib.contextmanager
def child_process(*extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """A child Python that runs until its stdin is closed, which happens on leaving."""
    process = subprocess.Popen([*CHILD, *extra], stdin=subprocess.PIPE)
    try:
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(RESCUE)


def test_a_thread_left_running_is_named() -> None:
    gate = threading.Event()
    try:
        with LeakCheck(grace=BOUND) as leaks:
            thread = blocked_thread("leaky-thread", gate)
    finally:
        gate.set()
        thread.join(RESCUE)
    expected = (
        "thread 'leaky-thread' (started during the region, daemon) "
        "still alive 0.2 s after the region ended"
    )
    assert leaks.problems == [expected]


def test_threads_from_before_and_service_threads_are_not_reported() -> None:
    gate = threading.Event()
    threads = [blocked_thread("older-thread", gate)]
    try:
        with LeakCheck(grace=BOUND, ignore_thread_prefixes=["my-service"]) as leaks:
            names = ("pytest-futures-controls", WATCHDOG_THREAD_NAME, "my-service-1")
            threads.extend(blocked_thread(name, gate) for name in names)
    finally:
        gate.set()
        for thread in threads:
            thread.join(RESCUE)
    assert leaks.problems == []


def test_a_thread_that_ends_within_the_grace_is_not_reported() -> None:
    gate = threading.Event()
    with LeakCheck(grace=RESCUE) as leaks:
        thread = blocked_thread("ending-thread", gate)
        gate.set()  # it ends while the check waits for it
    assert leaks.problems == []
    assert not thread.is_alive()


def test_a_child_process_left_running_is_named() -> None:
    leaks = LeakCheck(grace=BOUND)
    leaks.start()
    with child_process() as process:
        problems = leaks.check()
    expected = (
        f"child process {process.pid} ({' '.join(CHILD)}) started during the region, "
        "still running 0.2 s after it ended"
    )
    assert problems == [expected]


def test_child_processes_from_before_and_service_processes_are_not_reported() -> None:
    with child_process():
        leaks = LeakCheck(grace=BOUND, ignore_process_markers=["my-helper"])
        leaks.start()
        with child_process("my-helper"):
            problems = leaks.check()
    assert problems == []


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "proc-polling"])
def test_a_child_that_exits_within_the_grace_is_not_reported_even_unreaped(
    pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pidfd:
        monkeypatch.delattr("os.pidfd_open", raising=False)
    leaks = LeakCheck(grace=RESCUE)
    leaks.start()
    with child_process() as process:
        assert process.stdin is not None
        process.stdin.close()  # it exits, and stays a zombie until wait()
        assert leaks.check() == []
        assert process.wait(RESCUE) == 0


def test_check_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        LeakCheck().check()


# -- unclosed executors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        concurrent.futures.ThreadPoolExecutor,
        executor_impl.ThreadPoolExecutor,
        concurrent.futures.ProcessPoolExecutor,
        executor_impl.ProcessPoolExecutor,
    ],
    ids=["stdlib-thread", "impl-thread", "stdlib-process", "impl-process"],
)
def test_an_executor_not_shut_down_is_reported_until_it_is(
    make: Callable[..., concurrent.futures.Executor],
) -> None:
    executor = make(max_workers=1)
    try:
        assert is_shut_down(executor) is False
        assert unclosed_executors([executor]) == [
            f"executor {type(executor).__name__} at {id(executor):#x} was not shut down"
        ]
    finally:
        executor.shutdown()
    assert is_shut_down(executor) is True
    assert unclosed_executors([executor]) == []


def test_an_executor_it_cannot_judge_is_not_reported() -> None:
    assert is_shut_down(object()) is None
    assert unclosed_executors([object()]) == []


# -- engine, not adapter -----------------------------------------------------------------------


# --------------------------------------------------------------------------- debuggers


def test_no_debugger_is_attached_until_a_session_is_announced_and_after_it_is_left() -> None:
    assert not debugger_attached()
    debugger_entered()
    try:
        assert debugger_attached()
    finally:
        debugger_left()
    assert not debugger_attached()
    debugger_left()  # one too many: ignored, not a negative count
    debugger_entered()
    debugger_left()
    assert not debugger_attached()


def test_a_thread_stopped_inside_a_debuggers_code_is_seen() -> None:
    """A frame of ``bdb`` (pdb's base) on a thread's stack: the thread waits in a debugger."""
    inside, leave = threading.Event(), threading.Event()
    in_bdb: dict[str, Any] = {"__name__": "bdb", "inside": inside, "leave": leave}
    exec(
        compile("def interaction():\n    inside.set()\n    leave.wait(30)\n", "bdb", "exec"), in_bdb
    )
    stopped = threading.Thread(target=in_bdb["interaction"])
    stopped.start()
    try:
        assert inside.wait(RESCUE)
        assert debugger_attached(stopped.ident)
        assert not debugger_attached()  # this thread is not in a debugger
        assert eval("attached()", {"__name__": "pdb", "attached": debugger_attached})
    finally:
        leave.set()
        stopped.join(RESCUE)


def test_a_guard_does_not_fire_while_a_debugger_session_is_announced() -> None:
    reports: list[str] = []
    debugger_entered()
    try:
        with HangGuard(BOUND, on_report=reports.append):
            assert not threading.Event().wait(BOUND * 5)  # five bounds at the prompt
    finally:
        debugger_left()
    assert reports == []


def test_importing_the_guards_imports_neither_pytest_nor_hypothesis() -> None:
    code = (
        "import sys, pytest_futures_plugin.guards; "
        "print(sorted(m for m in ('pytest', '_pytest', 'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=RESCUE
    )
    assert out.stdout.strip() == "[]"
