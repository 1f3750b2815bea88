"""Managed threads run on spares, new OS threads started ahead of need (``thread_mode=
"prespawned"``), or on OS threads kept from earlier schedules (``"reused"``): each must look
to the program like a thread of its own, started afresh, and the schedules must be the very
ones that threading's own fresh OS threads (``"fresh"``, the default) give."""

from __future__ import annotations

import _thread
import contextvars
import sys
import threading
import time
from typing import Any, Callable

import pytest

import executor_impl
from executor_impl import _sync
from pytest_futures_plugin import scheduler as sch
from pytest_futures_plugin.scheduler import RandomPolicy, Scheduler, Scripted, _greenlets, _threads

MODES = pytest.mark.parametrize("mode", ["prespawned", "reused", "fresh"])
GREENLET = _greenlets.available()


def fan_out() -> list[int]:
    with executor_impl.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(pow, 2, n) for n in range(3)]
        return [future.result() for future in futures]


def run_threads(mode: str, *targets: Callable[[], Any], seed: int = 0) -> Scheduler:
    """Start a managed thread per target, one after the other, and join each."""

    def program() -> None:
        threads = [sch.Thread(target=target, name=f"t{n}") for n, target in enumerate(targets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    scheduler = Scheduler(RandomPolicy(seed), thread_mode=mode)
    scheduler.run(program)
    return scheduler


def test_every_thread_mode_gives_the_same_traces_and_schedules() -> None:
    modes = ("prespawned", "fresh", "reused", "prespawned", "reused")
    for seed in range(15):
        runs = [Scheduler(RandomPolicy(seed), modules=(_sync,), thread_mode=mode) for mode in modes]
        for scheduler in runs:
            assert scheduler.run(fan_out) == [1, 2, 4]
        for mode, scheduler in zip(modes, runs):
            assert scheduler.trace == runs[1].trace, f"seed {seed}, {mode}"
            assert scheduler.schedule == runs[1].schedule, f"seed {seed}, {mode}"
    replayed = Scheduler(Scripted(runs[1].schedule), modules=(_sync,))
    replayed.run(fan_out)
    assert replayed.trace == runs[1].trace


def test_a_later_schedule_runs_its_threads_on_the_workers_of_an_earlier_one() -> None:
    first: list[int] = []
    second: list[int] = []
    run_threads("reused", lambda: first.append(threading.get_native_id()))
    assert _threads.idle_workers() >= 1
    run_threads("reused", lambda: second.append(threading.get_native_id()))
    assert second[0] == first[0], "the second schedule's thread got an OS thread of its own"


def test_fresh_threads_are_new_os_threads_each_time() -> None:
    seen: list[int] = []
    run_threads("reused", lambda: seen.append(threading.get_native_id()))
    run_threads("fresh", lambda: seen.append(threading.get_native_id()))
    assert seen[1] != seen[0]


@pytest.mark.parametrize(
    "mode",
    [
        "prespawned",
        "reused",
        "fresh",
        pytest.param("greenlet", marks=pytest.mark.skipif(not GREENLET, reason="no greenlet")),
    ],
)
def test_a_managed_thread_is_its_own_thread_for_threading(mode: str) -> None:
    seen: dict[str, Any] = {}
    before = set(threading.enumerate())
    owner_ident = threading.get_ident()

    def look() -> None:
        me = threading.current_thread()
        seen.update(
            me=me,
            ident=threading.get_ident(),
            raw_ident=_thread.get_ident(),
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
        seen["owner_ident"] = threading.get_ident()

    Scheduler(RandomPolicy(0), thread_mode=mode).run(program)
    assert seen["me"] is seen["thread"]
    assert seen["ident"] == seen["raw_ident"] == seen["started_ident"] == seen["thread"].ident
    assert seen["ident"] != owner_ident
    assert seen["owner_ident"] == owner_ident == threading.get_ident()
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
        Scheduler(RandomPolicy(seed), thread_mode="reused").run(program)
        assert len({native_id for native_id, _ in seen}) == 4, seen
        assert [mark for _, mark in seen] == [None] * 4, "a thread-local was not empty"


_MODULE_LOCAL = threading.local()  # a module-level per-thread cache, made before any schedule


def marks_seen_in_later_schedules(mode: str) -> list[object]:
    """What each managed thread of 3 schedules finds in ``_MODULE_LOCAL`` before setting it."""
    seen: list[object] = []

    def record() -> None:
        seen.append(getattr(_MODULE_LOCAL, "mark", None))
        _MODULE_LOCAL.mark = "set by an earlier schedule"

    for seed in range(3):
        run_threads(mode, record, record, seed=seed)
    return seen


@pytest.mark.parametrize("mode", ["prespawned", "fresh"])
def test_a_thread_local_made_before_the_schedules_is_empty_in_each_thread(mode: str) -> None:
    assert marks_seen_in_later_schedules(mode) == [None] * 6


def test_reused_threads_see_what_an_earlier_schedule_put_in_a_thread_local() -> None:
    # The caveat of thread_mode="reused" (see _threads), shown: a later schedule's thread
    # runs on an OS thread whose value an earlier schedule set.
    seen = marks_seen_in_later_schedules("reused")
    assert "set by an earlier schedule" in seen[2:], seen


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # an OS thread's exit has no event of its own to wait on
    assert condition(), f"{what} after {seconds} s"


def test_each_thread_runs_on_a_new_os_thread_that_exits_after_it() -> None:
    before = _thread._count()
    seen: list[int] = []
    for seed in range(4):
        run_threads("prespawned", lambda: seen.append(threading.get_native_id()), seed=seed)
        assert _threads.spare_workers() + _threads._spares_starting >= 1, "no spare started"
    assert len(set(seen)) == 4, f"an OS thread ran two managed threads: {seen}"
    wait_for(
        lambda: _thread._count() <= before + _threads.SPARE_WORKERS,
        f"more OS threads than {before} + the spares: {_thread._count()}",
    )


def test_an_unused_spare_exits_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads, "IDLE_SECONDS", 0.05)
    run_threads("prespawned", lambda: None)
    wait_for(
        lambda: _threads.spare_workers() + _threads._spares_starting == 0,
        f"spares still waiting: {_threads.spare_workers()}",
    )


def test_a_bad_thread_mode_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'recycled'"):
        Scheduler(thread_mode="recycled")


@MODES
def test_each_thread_starts_in_an_empty_context(mode: str) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    def set_and_look() -> None:
        seen.append(var.get())
        var.set("set by a managed thread")

    var.set("set by the owner")
    for seed in range(2):
        run_threads(mode, set_and_look, seed=seed)
    assert seen == ["unset", "unset"]


@MODES
def test_the_hook_of_threading_settrace_applies_in_each_thread(mode: str) -> None:
    def hook(frame: Any, event: str, arg: Any) -> None:
        return None

    seen: list[object] = []
    threading.settrace(hook)
    try:
        run_threads(mode, lambda: seen.append(sys.gettrace()))
    finally:
        threading.settrace(None)  # type: ignore[arg-type]
    run_threads(mode, lambda: seen.append(sys.gettrace()))
    assert seen == [hook, None]


@MODES
def test_what_run_raises_goes_to_threading_excepthook(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    caught: list[tuple[type[BaseException] | None, str | None]] = []

    def hook(args: Any) -> None:
        caught.append((args.exc_type, args.thread.name if args.thread else None))

    monkeypatch.setattr(threading, "excepthook", hook)

    def fail() -> None:
        raise ValueError("in a managed thread")

    run_threads(mode, fail)
    assert caught == [(ValueError, "t0")]
    # the worker goes on serving later schedules
    seen: list[str] = []
    run_threads(mode, lambda: seen.append(threading.current_thread().name))
    assert seen == ["t0"]


def test_an_idle_worker_exits_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads, "IDLE_SECONDS", 0.05)
    seen: list[int] = []
    for seed in range(2):  # the first may end on a worker that waited with the old timeout
        run_threads("reused", lambda: seen.append(threading.get_ident()), seed=seed)
    assert _threads.idle_workers() >= 1
    deadline = time.monotonic() + 10

    def gone() -> bool:
        return not _threads.idle_workers() and seen[1] not in sys._current_frames()

    while not gone() and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # the condition has no event of its own to wait on
    assert _threads.idle_workers() == 0, "idle workers still waiting after 10 s"
    assert seen[1] not in sys._current_frames(), "the worker's OS thread is still there"
