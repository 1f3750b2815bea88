"""Managed threads run on OS threads kept from earlier schedules (``reuse_threads``, on by
default): each must look to the program like a thread of its own, started afresh, and the
schedules must be the very ones that fresh OS threads give."""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from typing import Any, Callable

import pytest

import executor_impl
from executor_impl import _sync
from pytest_futures_plugin import scheduler as sch
from pytest_futures_plugin.scheduler import RandomPolicy, Scheduler, Scripted, _threads

REUSE = pytest.mark.parametrize("reuse", [True, False], ids=["reused", "fresh"])


def fan_out() -> list[int]:
    with executor_impl.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(pow, 2, n) for n in range(3)]
        return [future.result() for future in futures]


def run_threads(reuse: bool, *targets: Callable[[], Any], seed: int = 0) -> Scheduler:
    """Start a managed thread per target, one after the other, and join each."""

    def program() -> None:
        threads = [sch.Thread(target=target, name=f"t{n}") for n, target in enumerate(targets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    scheduler = Scheduler(RandomPolicy(seed), reuse_threads=reuse)
    scheduler.run(program)
    return scheduler


def test_reused_and_fresh_threads_give_the_same_traces_and_schedules() -> None:
    for seed in range(15):
        runs = [
            Scheduler(RandomPolicy(seed), modules=(_sync,), reuse_threads=reuse)
            for reuse in (True, False, True)
        ]
        for scheduler in runs:
            assert scheduler.run(fan_out) == [1, 2, 4]
        assert runs[0].trace == runs[1].trace == runs[2].trace, f"seed {seed}"
        assert runs[0].schedule == runs[1].schedule == runs[2].schedule, f"seed {seed}"
    replayed = Scheduler(Scripted(runs[1].schedule), modules=(_sync,))
    replayed.run(fan_out)
    assert replayed.trace == runs[1].trace


def test_a_later_schedule_runs_its_threads_on_the_workers_of_an_earlier_one() -> None:
    first: list[int] = []
    second: list[int] = []
    run_threads(True, lambda: first.append(threading.get_native_id()))
    assert _threads.idle_workers() >= 1
    run_threads(True, lambda: second.append(threading.get_native_id()))
    assert second[0] == first[0], "the second schedule's thread got an OS thread of its own"


def test_fresh_threads_are_new_os_threads_each_time() -> None:
    seen: list[int] = []
    run_threads(True, lambda: seen.append(threading.get_native_id()))
    run_threads(False, lambda: seen.append(threading.get_native_id()))
    assert seen[1] != seen[0]


@REUSE
def test_a_managed_thread_is_its_own_thread_for_threading(reuse: bool) -> None:
    seen: dict[str, Any] = {}
    before = set(threading.enumerate())

    def look() -> None:
        me = threading.current_thread()
        seen.update(
            me=me,
            ident=threading.get_ident(),
            native_id=threading.get_native_id(),
            alive=me.is_alive(),
            listed=me in threading.enumerate(),
            name=me.name,
        )

    def program() -> None:
        thread = sch.Thread(target=look, name="looker")
        thread.start()
        seen["started_ident"] = thread.ident
        thread.join()
        seen["thread"], seen["alive_after"] = thread, thread.is_alive()

    Scheduler(RandomPolicy(0), reuse_threads=reuse).run(program)
    assert seen["me"] is seen["thread"]
    assert seen["ident"] == seen["started_ident"] == seen["thread"].ident
    assert seen["native_id"] == seen["thread"].native_id
    assert seen["alive"]
    assert seen["listed"]
    assert seen["name"] == "looker"
    assert seen["alive_after"] is False
    assert seen["thread"] not in threading.enumerate()
    assert set(threading.enumerate()) == before


def test_threads_of_one_schedule_never_share_an_os_thread() -> None:
    seen: list[tuple[int, object]] = []
    locals_: list[threading.local] = []

    def record() -> None:
        seen.append((threading.get_native_id(), getattr(locals_[0], "mark", None)))
        locals_[0].mark = threading.current_thread().name

    def program() -> None:
        locals_[:] = [threading.local()]  # made during the schedule
        for _ in range(4):  # each started once the last has finished
            thread = sch.Thread(target=record)
            thread.start()
            thread.join()

    for seed in range(3):  # the workers of the earlier seeds are idle by now
        seen.clear()
        Scheduler(RandomPolicy(seed)).run(program)
        assert len({native_id for native_id, _ in seen}) == 4, seen
        assert [mark for _, mark in seen] == [None] * 4, "a thread-local was not empty"


def test_without_reuse_a_thread_local_made_before_the_schedules_is_empty_in_each() -> None:
    # What reused workers do not give (see _threads): each thread a fresh OS thread.
    local = threading.local()
    seen: list[object] = []

    def record() -> None:
        seen.append(getattr(local, "mark", None))
        local.mark = "set"

    for seed in range(3):
        run_threads(False, record, record, seed=seed)
    assert seen == [None] * 6


@REUSE
def test_each_thread_starts_in_an_empty_context(reuse: bool) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    def set_and_look() -> None:
        seen.append(var.get())
        var.set("set by a managed thread")

    var.set("set by the owner")
    for seed in range(2):
        run_threads(reuse, set_and_look, seed=seed)
    assert seen == ["unset", "unset"]


@REUSE
def test_the_hook_of_threading_settrace_applies_in_each_thread(reuse: bool) -> None:
    def hook(frame: Any, event: str, arg: Any) -> None:
        return None

    seen: list[object] = []
    threading.settrace(hook)
    try:
        run_threads(reuse, lambda: seen.append(sys.gettrace()))
    finally:
        threading.settrace(None)  # type: ignore[arg-type]
    run_threads(reuse, lambda: seen.append(sys.gettrace()))
    assert seen == [hook, None]


@REUSE
def test_what_run_raises_goes_to_threading_excepthook(
    reuse: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    caught: list[tuple[type[BaseException] | None, str | None]] = []

    def hook(args: Any) -> None:
        caught.append((args.exc_type, args.thread.name if args.thread else None))

    monkeypatch.setattr(threading, "excepthook", hook)

    def fail() -> None:
        raise ValueError("in a managed thread")

    run_threads(reuse, fail)
    assert caught == [(ValueError, "t0")]
    # the worker goes on serving later schedules
    seen: list[str] = []
    run_threads(reuse, lambda: seen.append(threading.current_thread().name))
    assert seen == ["t0"]


def test_an_idle_worker_exits_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads, "IDLE_SECONDS", 0.05)
    seen: list[int] = []
    for seed in range(2):  # the first may end on a worker that waited with the old timeout
        run_threads(True, lambda: seen.append(threading.get_ident()), seed=seed)
    assert _threads.idle_workers() >= 1
    deadline = time.monotonic() + 10

    def gone() -> bool:
        return not _threads.idle_workers() and seen[1] not in sys._current_frames()

    while not gone() and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # the condition has no event of its own to wait on
    assert _threads.idle_workers() == 0, "idle workers still waiting after 10 s"
    assert seen[1] not in sys._current_frames(), "the worker's OS thread is still there"
