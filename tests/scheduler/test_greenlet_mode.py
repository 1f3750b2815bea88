"""``Scheduler(thread_mode="greenlet")``: managed threads as greenlets on the owner's OS
thread. The schedules, traces and deadlock reports must be those of OS threads; what the
program sees of its threads (ident, ``current_thread()``, locals made during the run,
context, join, excepthook) must be as for OS threads; a wait the scheduler does not control
must end the run with an error naming the object."""

from __future__ import annotations

import _thread
import contextvars
import re
import threading
from typing import Any, Callable

import pytest

import executor_impl
from executor_impl import _sync
from pytest_futures_plugin import scheduler as sch
from pytest_futures_plugin.scheduler import (
    DeadlockError,
    RandomPolicy,
    Scheduler,
    Scripted,
    UncontrolledBlockingError,
    _greenlets,
)

pytest.importorskip("greenlet")  # in the test extra; absent only where it cannot install


def fan_out() -> list[int]:
    with executor_impl.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(pow, 2, n) for n in range(3)]
        return [future.result() for future in futures]


def run_threads(*targets: Callable[[], Any], seed: int = 0, **options: Any) -> Scheduler:
    """Start a managed thread per target, then join each, in greenlet mode."""

    def program() -> None:
        threads = [sch.Thread(target=target, name=f"t{n}") for n, target in enumerate(targets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    scheduler = Scheduler(RandomPolicy(seed), thread_mode="greenlet", **options)
    scheduler.run(program)
    return scheduler


def test_greenlets_give_the_schedules_and_traces_of_os_threads() -> None:
    for seed in range(200):
        fresh = Scheduler(RandomPolicy(seed), modules=(_sync,), thread_mode="fresh")
        green = Scheduler(RandomPolicy(seed), modules=(_sync,), thread_mode="greenlet")
        assert fresh.run(fan_out) == green.run(fan_out) == [1, 2, 4]
        assert green.trace == fresh.trace, f"seed {seed}"
        assert green.schedule == fresh.schedule, f"seed {seed}"
        assert (green.steps, green.switches) == (fresh.steps, fresh.switches), f"seed {seed}"
    replayed = Scheduler(Scripted(fresh.schedule), modules=(_sync,), thread_mode="greenlet")
    replayed.run(fan_out)
    assert replayed.trace == fresh.trace


def each_waits_for_the_other() -> None:
    """Two tasks on two workers, each waiting for the other's future: a deadlock."""
    with executor_impl.ThreadPoolExecutor(max_workers=2) as pool:
        futures: list[Any] = []
        submitted = threading.Event()

        def task(other: int) -> None:
            submitted.wait()
            futures[other].result()

        futures += [pool.submit(task, 1), pool.submit(task, 0)]
        submitted.set()
        futures[0].result()


def test_a_deadlock_is_reported_with_the_text_of_os_threads() -> None:
    reports = []
    for mode in ("fresh", "greenlet"):
        scheduler = Scheduler(RandomPolicy(3), modules=(_sync, __name__), thread_mode=mode)
        with pytest.raises(DeadlockError) as caught:
            scheduler.run(each_waits_for_the_other)
        report = [str(caught.value), *caught.value.graph, *caught.value.cycle]
        reports.append([re.sub(r"ThreadPoolExecutor-\d+|0x[0-9a-f]+", "?", r) for r in report])
    assert reports[1] == reports[0]
    assert " at ?\n" not in reports[0][0], reports[0][0]
    assert "Cycle: " in reports[0][0], reports[0][0]


# Identity (ident, current_thread, native id, join): test_thread_reuse.py asks every mode.


def test_a_thread_local_made_during_the_run_is_per_managed_thread() -> None:
    made: list[Any] = []
    seen: list[object] = []

    def record() -> None:
        seen.append(getattr(made[0], "mark", None))
        made[0].mark = threading.current_thread().name

    def program() -> None:
        made.append(threading.local())
        made[0].mark = "owner"
        threads = [sch.Thread(target=record, name=f"t{n}") for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seen.append(made[0].mark)

    Scheduler(RandomPolicy(1), thread_mode="greenlet").run(program)
    assert seen == [None, None, None, "owner"]


def test_each_greenlet_starts_in_an_empty_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    def set_and_look() -> None:
        seen.append(var.get())
        var.set(threading.current_thread().name)

    var.set("set by the owner")
    run_threads(set_and_look, set_and_look, seed=2)
    assert seen == ["unset", "unset"]
    assert var.get() == "set by the owner"


def test_what_run_raises_goes_to_threading_excepthook(monkeypatch: pytest.MonkeyPatch) -> None:
    caught: list[tuple[type[BaseException] | None, str | None]] = []

    def hook(args: Any) -> None:
        caught.append((args.exc_type, args.thread.name if args.thread else None))

    monkeypatch.setattr(threading, "excepthook", hook)

    def fail() -> None:
        raise ValueError("in a managed thread")

    seen: list[str] = []
    run_threads(fail, lambda: seen.append(threading.current_thread().name))
    assert caught == [(ValueError, "t0")]
    assert seen == ["t1"]


def test_the_ident_functions_are_put_back_after_the_run() -> None:
    originals = (_thread.get_ident, threading.get_ident, threading.local)
    run_threads(lambda: None)
    assert (_thread.get_ident, threading.get_ident, threading.local) == originals


def test_without_greenlet_the_mode_is_refused_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_greenlets, "_greenlet", None)
    with pytest.raises(RuntimeError, match=r"needs the 'greenlet' package.*pytest-futures\["):
        Scheduler(thread_mode="greenlet")


def test_a_wait_on_an_event_made_before_the_run_fails_naming_it() -> None:
    old_event = threading.Event()  # made before the run: not controlled

    def wait_for_it() -> None:
        old_event.wait(30)  # bounded, in case the report never comes

    def program() -> None:
        thread = threading.Thread(target=wait_for_it, name="waiter")
        thread.start()
        thread.join()

    scheduler = Scheduler(RandomPolicy(0), modules=[__name__], thread_mode="greenlet")
    with pytest.raises(UncontrolledBlockingError, match=r"'waiter'.*`old_event` \(a threading.Ev"):
        scheduler.run(program)
    assert not old_event.is_set()


def test_a_real_lock_taken_across_threads_is_reported_by_the_watchdog(
    capfd: pytest.CaptureFixture[str],
) -> None:
    real_lock = _thread.allocate_lock()  # made before the run: not controlled
    real_lock.acquire()

    def blocked() -> None:
        # Waits in C, on the one OS thread: bounded, so that the run can end at all.
        if real_lock.acquire(timeout=2):
            real_lock.release()

    def program() -> None:
        thread = threading.Thread(target=blocked, name="stuck")
        thread.start()
        thread.join()

    scheduler = Scheduler(
        RandomPolicy(0), modules=[__name__], uncontrolled_timeout=0.5, thread_mode="greenlet"
    )
    try:
        with pytest.raises(UncontrolledBlockingError, match=r"thread 'stuck' ran for 0\.5s") as e:
            scheduler.run(program)
    finally:
        real_lock.release()
    assert "in blocked\n    if real_lock.acquire(timeout=2)" in str(e.value), "no stack"
    assert "its one OS thread waits in C" in capfd.readouterr().err


def driven_by_hand(mode: str) -> tuple[list[tuple[str, str]], list[int], list[str]]:
    """The owner steps the others, lets them run until quiescent, then restarts the run
    after a deadlock: the trace of each part."""
    log: list[int] = []
    traces: list[tuple[str, str]] = []
    with Scheduler(RandomPolicy(5), modules=[__name__, _sync], thread_mode=mode) as sched:
        lock, gate = threading.Lock(), threading.Event()

        def count() -> None:
            for n in range(3):
                with lock:
                    log.append(n)
            gate.wait()

        threads = [threading.Thread(target=count, name=f"counter-{n}") for n in range(2)]
        for thread in threads:
            thread.start()
        assert sched.step()
        sched.run_until_quiescent()
        gate.set()
        for thread in threads:
            thread.join()
        traces += sched.trace
        with pytest.raises(DeadlockError):
            each_waits_for_the_other()
        sched.restart(RandomPolicy(6))
        assert fan_out() == [1, 2, 4]
        traces += sched.trace
    return traces, log, sched.leftovers


def test_step_quiescence_and_restart_after_a_deadlock_as_with_os_threads() -> None:
    fresh, green = driven_by_hand("fresh"), driven_by_hand("greenlet")
    assert green[0] == fresh[0]
    assert green[1] == fresh[1]
    assert sorted(green[1]) == [0, 0, 1, 1, 2, 2]
    assert green[2] == fresh[2] == []


def test_a_signal_raised_in_a_managed_greenlet_ends_the_run_in_the_owner() -> None:
    seen: list[str] = []

    def interrupted() -> None:
        raise KeyboardInterrupt  # as a Ctrl-C lands in whichever greenlet runs

    def program() -> None:
        thread = sch.Thread(target=interrupted, name="hit")
        thread.start()
        thread.join()
        seen.append("the owner went on")

    with pytest.raises(KeyboardInterrupt):
        Scheduler(RandomPolicy(0), thread_mode="greenlet").run(program)
    assert seen == []
    run_threads(lambda: seen.append("a later run"))
    assert seen == ["a later run"]


def test_fine_grained_points_are_refused_by_name() -> None:
    from pytest_futures_plugin.scheduler._tracing import FineGrained

    with FineGrained([__file__]), pytest.raises(ValueError, match="cannot make fine-grained"):
        Scheduler(RandomPolicy(0), thread_mode="greenlet").run(lambda: None)
    sched = Scheduler(RandomPolicy(0), thread_mode="greenlet")
    with sched, pytest.raises(ValueError, match="cannot make fine-grained"):
        sched.explore(lambda: None, fine=[__name__])
