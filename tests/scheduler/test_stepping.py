"""The owner thread driving a run by hand: ``Scheduler.run_until_quiescent()`` and
``Scheduler.step()`` (what the ``scheduler`` fixture offers a test); and a finished run
that lets go of everything."""

from __future__ import annotations

import concurrent.futures
import concurrent.futures._base
import concurrent.futures.thread
import gc
import threading
import time
import weakref
from typing import Any

import pytest

from pytest_futures_plugin.scheduler import FIFO, RandomPolicy, Scheduler


def counting(log: list[int], lock: Any, gate: Any, rounds: int) -> None:
    for n in range(rounds):
        with lock:
            log.append(n)
    gate.wait()


@pytest.mark.parametrize("policy", [FIFO(), RandomPolicy(3)], ids=["fifo", "random"])
def test_run_until_quiescent_runs_the_others_until_every_one_waits(policy: Any) -> None:
    log: list[int] = []
    with Scheduler(policy, modules=[__name__]) as sched:
        lock, gate = threading.Lock(), threading.Event()
        threads = [
            threading.Thread(target=counting, args=(log, lock, gate, 3), name=f"counter-{n}")
            for n in range(2)
        ]
        for thread in threads:
            thread.start()
        points = sched.run_until_quiescent()
        assert sorted(log) == [0, 0, 1, 1, 2, 2]
        assert points > 0
        assert all(t.state == "blocked" for t in sched.threads[1:]), sched.threads
        assert sched.run_until_quiescent() == 0  # nothing more can happen
        gate.set()
        for thread in threads:
            thread.join()
    assert not sched.leftovers


def test_run_until_quiescent_lets_no_virtual_time_pass() -> None:
    woke: list[float] = []

    def nap() -> None:
        time.sleep(30)
        woke.append(time.monotonic())

    with Scheduler(FIFO(), modules=[__name__]) as sched:
        start = time.monotonic()
        thread = threading.Thread(target=nap)
        thread.start()
        sched.run_until_quiescent()
        assert woke == []
        assert time.monotonic() == start
        thread.join()  # now the clock jumps
        assert woke == [start + 30]


def test_step_runs_one_other_thread_to_its_next_scheduling_point() -> None:
    log: list[int] = []
    with Scheduler(FIFO(), modules=[__name__]) as sched:
        lock, gate = threading.Lock(), threading.Event()
        thread = threading.Thread(target=counting, args=(log, lock, gate, 3))
        thread.start()
        seen = []
        for _ in range(100):
            if not sched.step():
                break
            seen.append(len(log))
        else:
            raise AssertionError(f"100 steps and the thread still runs: {log}")
        # Each step made at most one more call (a lock's acquire and release are two
        # points), every call was seen, and the thread now waits on the gate.
        assert all(b - a <= 1 for a, b in zip([0, *seen], seen)), seen
        assert log == [0, 1, 2]
        assert len(seen) >= 2 * len(log)
        assert sched.threads[1].state == "blocked"
        gate.set()
        thread.join()


def test_step_returns_false_when_no_other_thread_can_run() -> None:
    with Scheduler(FIFO(), modules=[__name__]) as sched:
        assert sched.step() is False
        assert sched.run_until_quiescent() == 0


def test_stepping_is_for_the_owner_thread_of_a_running_scheduler() -> None:
    sched = Scheduler(FIFO(), modules=[__name__])
    with pytest.raises(RuntimeError, match=r"step\(\) is for the owner thread"):
        sched.step()
    errors: list[BaseException] = []

    def try_to_step() -> None:
        try:
            sched.run_until_quiescent()
        except RuntimeError as error:
            errors.append(error)

    with sched:
        thread = threading.Thread(target=try_to_step)
        thread.start()
        thread.join()
    assert [str(e) for e in errors] == [
        "run_until_quiescent() is for the owner thread of a running scheduler"
    ]


def test_a_finished_run_keeps_nothing_alive() -> None:
    """The stdlib's pool files each worker under a weak key in a module-level dict, its work
    queue (a controlled primitive, which refers to the scheduler) as the value: unless the run
    lets go of its threads, that value keeps the key, and the whole run, alive for good."""

    def program() -> list[int]:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            return [f.result() for f in [pool.submit(pow, 2, n) for n in range(3)]]

    sched = Scheduler(
        RandomPolicy(1), modules=[concurrent.futures.thread, concurrent.futures._base]
    )
    assert sched.run(program) == [1, 2, 4]
    gone = weakref.ref(sched)
    del sched
    gc.collect()
    assert gone() is None, [type(r).__name__ for r in gc.get_referrers(gone())]
