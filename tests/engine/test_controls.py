"""The controls engine (``controls``, ``tasks``, ``faults``) on real executors: executor_impl's
and the stdlib's thread pools, and their process pools under every start method.

Every wait is bounded and event-driven; nothing sleeps. Tests write ``with pool, controls:``
so that the controls close (opening every gate) before the pool shuts down: a failing test
then never waits on a blocked task. The autouse ``nothing_leaks`` fixture fails a test that
leaves a thread or a child process behind (the control server's thread excepted).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures.thread import BrokenThreadPool
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

import executor_impl
from pytest_futures_plugin import LONG_WAIT, faults, tasks
from pytest_futures_plugin.controls import (
    SERVER_THREAD_NAME,
    ControlClosed,
    ControlError,
    Controls,
    ControlServer,
    ControlTimeout,
    Gate,
    Latch,
    Recorder,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Executor, Future

    PoolClass = Callable[..., Executor]

SHORT_TIMEOUT = 0.05
"""Seconds for a wait that the test expects to expire."""

FORK_WARNING = "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
"""3.12+ warns when a multi-threaded process forks; the control server alone makes the test
process multi-threaded, and the warning says nothing about the code under test."""

ignore_fork_warning = pytest.mark.filterwarnings(FORK_WARNING)

THREAD_POOLS = [
    pytest.param(executor_impl.ThreadPoolExecutor, id="impl-thread"),
    pytest.param(concurrent.futures.ThreadPoolExecutor, id="stdlib-thread"),
]
PROCESS_POOLS = [
    pytest.param(executor_impl.ProcessPoolExecutor, id="impl-process"),
    pytest.param(concurrent.futures.ProcessPoolExecutor, id="stdlib-process"),
]
START_METHODS = [
    pytest.param(method, id=method, marks=[ignore_fork_warning] if method == "fork" else [])
    for method in ("fork", "spawn", "forkserver")
    if method in multiprocessing.get_all_start_methods()
]


def process_pool(pool_class: PoolClass, method: str = "fork", **kwargs: Any) -> Executor:
    """A process pool of *pool_class* whose workers start by *method*, two unless told."""
    kwargs.setdefault("max_workers", 2)
    return pool_class(mp_context=multiprocessing.get_context(method), **kwargs)


# ------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module", autouse=True)
def session_processes() -> None:
    """Start what multiprocessing keeps for the rest of the run (forkserver, resource
    tracker) before any test counts its child processes."""
    multiprocessing.resource_tracker.ensure_running()
    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.forkserver.ensure_running()


@pytest.fixture(autouse=True)
def nothing_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread (other than a control server's) or a child process
    running ``LONG_WAIT`` seconds after it ended."""
    threads_before = set(threading.enumerate())
    children_before = child_pids()
    yield
    threads = [
        thread
        for thread in threading.enumerate()
        if thread not in threads_before and thread.name != SERVER_THREAD_NAME
    ]
    for thread in threads:
        thread.join(LONG_WAIT)
    multiprocessing.active_children()  # reaps the multiprocessing children that exited
    running = [pid for pid in child_pids() - children_before if not exits(pid, LONG_WAIT)]
    for pid in running:
        os.kill(pid, signal.SIGKILL)
    alive = [thread.name for thread in threads if thread.is_alive()]
    assert not alive, f"threads still alive {LONG_WAIT}s after the test: {alive}"
    assert not running, f"child processes still running {LONG_WAIT}s after the test: {running}"


def child_pids() -> set[int]:
    """The pids whose parent is this process (Linux: /proc; else multiprocessing's)."""
    try:
        entries = os.listdir("/proc")
    except FileNotFoundError:
        return {child.pid for child in multiprocessing.active_children() if child.pid}
    children = set()
    for entry in filter(str.isdigit, entries):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            children.add(int(entry))
    return children


def exits(pid: int, timeout: float) -> bool:
    """Whether process *pid* exits (or is a zombie) within *timeout* seconds, awaited
    through its pidfd where there is one."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):  # no pidfd: one look
        return pid not in child_pids()
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def server_threads() -> set[threading.Thread]:
    """The threads of this process's control servers."""
    return {thread for thread in threading.enumerate() if thread.name == SERVER_THREAD_NAME}


@pytest.fixture
def controls() -> Iterator[Controls]:
    """The test's controls, closed when it ends; waits fail after ``LONG_WAIT``."""
    with Controls(timeout=LONG_WAIT) as made:
        yield made


# ------------------------------------------------------------------------------------------
# Gates


@pytest.mark.parametrize("pool_class", THREAD_POOLS)
def test_a_gate_blocks_thread_tasks_until_released(
    pool_class: PoolClass, controls: Controls
) -> None:
    gate = controls.gate()
    with pool_class(max_workers=2) as pool, controls:
        futures = [pool.submit(tasks.block_on, gate, i) for i in range(2)]
        gate.wait_inside(2)
        assert gate.entered == 2
        assert not any(future.done() for future in futures)
        gate.release()
        assert [future.result(LONG_WAIT) for future in futures] == [0, 1]
        assert gate.released


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
def test_a_gate_blocks_process_tasks_until_released(
    pool_class: PoolClass, method: str, controls: Controls
) -> None:
    gate = controls.gate()
    with process_pool(pool_class, method) as pool, controls:
        assert pool.submit(tasks.get_pid).result(LONG_WAIT) != os.getpid()
        futures = [pool.submit(tasks.block_on, gate, i) for i in range(2)]
        gate.wait_inside(2)
        assert not any(future.done() for future in futures)
        gate.release()
        assert [future.result(LONG_WAIT) for future in futures] == [0, 1]
        assert gate.entered == 2


def test_wait_inside_counts_every_wait_that_began_blocked_or_not(controls: Controls) -> None:
    gate = controls.gate()
    with executor_impl.ThreadPoolExecutor(max_workers=2) as pool, controls:
        blocked = pool.submit(tasks.block_on, gate, "blocked")
        gate.wait_inside(1)
        gate.release()
        assert blocked.result(LONG_WAIT) == "blocked"
        later = [pool.submit(tasks.block_on, gate, i) for i in range(3)]
        assert [future.result(LONG_WAIT) for future in later] == [0, 1, 2]
        gate.wait_inside(4, timeout=0)
        assert gate.entered == 4


@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
@ignore_fork_warning
def test_a_released_gate_lets_later_waits_through_at_once(
    pool_class: PoolClass, controls: Controls
) -> None:
    gate = controls.gate()
    gate.release()
    gate.wait(timeout=0)
    with process_pool(pool_class) as pool, controls:
        # A timeout of 0: the worker's wait must succeed without waiting at all.
        futures = [pool.submit(tasks.block_on, gate, i, 0) for i in range(3)]
        assert [future.result(LONG_WAIT) for future in futures] == [0, 1, 2]
    assert gate.entered == 4


def test_a_wait_times_out_naming_the_gate_and_how_many_began(controls: Controls) -> None:
    gate = controls.gate("slow-gate")
    with pytest.raises(ControlTimeout, match=r"gate 'slow-gate': waited 0\.05s in vain for release\(\); 1 wait\(\) call\(s\) had begun"):  # fmt: skip
        gate.wait(timeout=SHORT_TIMEOUT)
    with pytest.raises(ControlTimeout, match=r"gate 'slow-gate': .* for 3 wait\(\) call\(s\) to begin; 1 wait\(\) call\(s\) had begun"):  # fmt: skip
        gate.wait_inside(3, timeout=SHORT_TIMEOUT)
    assert not gate.released


def test_gates_are_named_in_the_order_they_are_made(controls: Controls) -> None:
    assert [controls.gate().name, controls.gate().name, controls.latch(1).name] == [
        "gate-1",
        "gate-2",
        "latch-1",
    ]
    assert Gate("mine").name == "mine"


@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
@ignore_fork_warning
def test_a_wait_in_a_worker_times_out_naming_the_gate(
    pool_class: PoolClass, controls: Controls
) -> None:
    gate = controls.gate("never-opened")
    with process_pool(pool_class) as pool, controls:
        error = pool.submit(tasks.block_on, gate, None, SHORT_TIMEOUT).exception(LONG_WAIT)
    assert isinstance(error, ControlTimeout)
    assert "gate 'never-opened': waited 0.05s in vain for release()" in str(error)


# ------------------------------------------------------------------------------------------
# Closing


@ignore_fork_warning
def test_closing_the_controls_releases_tasks_blocked_in_threads_and_processes() -> None:
    controls = Controls(timeout=LONG_WAIT)
    gate, latch = controls.gate(), controls.latch(1)
    threads = executor_impl.ThreadPoolExecutor(max_workers=1)
    with threads, process_pool(executor_impl.ProcessPoolExecutor) as processes, controls:
        blocked: list[Future[Any]] = [threads.submit(tasks.block_on, gate, "thread")]
        blocked.append(processes.submit(tasks.block_on, gate, "process"))
        gate.wait_inside(2)
        controls.close()
        assert [future.result(LONG_WAIT) for future in blocked] == ["thread", "process"]
        # Once closed, a gate is open for tasks; waits on the test's side end at once.
        assert processes.submit(tasks.block_on, gate, "late").result(LONG_WAIT) == "late"
        with pytest.raises(ControlClosed, match="gate 'gate-1' is closed"):
            gate.wait_inside(5)
        with pytest.raises(ControlClosed, match="latch 'latch-1' is closed"):
            latch.wait()
        with pytest.raises(ControlClosed):
            controls.gate()


@ignore_fork_warning
def test_closing_the_server_releases_blocked_tasks_and_removes_its_socket() -> None:
    servers_before = server_threads()
    server = ControlServer()
    gate = Gate(timeout=LONG_WAIT, server=server)
    assert Path(server.address).exists()
    assert len(server_threads() - servers_before) == 1
    with process_pool(executor_impl.ProcessPoolExecutor, max_workers=1) as pool:
        blocked = pool.submit(tasks.block_on, gate, "released")
        try:
            gate.wait_inside(1)
        finally:
            server.close()
        assert blocked.result(LONG_WAIT) == "released"
        # The socket is gone: a gate is open for its tasks still, its reads fail.
        assert pool.submit(tasks.block_on, gate, "late").result(LONG_WAIT) == "late"
        with pytest.raises(ControlClosed, match="is closed"):
            pool.submit(getattr, gate, "entered").result(LONG_WAIT)
    assert not Path(server.address).parent.exists()
    assert server_threads() == servers_before
    with pytest.raises(ControlClosed):
        Gate(server=server)


@ignore_fork_warning
def test_a_forked_child_inheriting_a_gate_asks_the_server(controls: Controls) -> None:
    gate = controls.gate()
    child = multiprocessing.get_context("fork").Process(target=tasks.block_on, args=(gate,))
    child.start()
    try:
        gate.wait_inside(1)
        assert child.is_alive()
        gate.release()
    finally:
        child.join(LONG_WAIT)
    assert child.exitcode == 0


@ignore_fork_warning
def test_a_worker_killed_while_waiting_leaves_the_gate_working(controls: Controls) -> None:
    gate = controls.gate()
    context = multiprocessing.get_context("fork")
    doomed = context.Process(target=tasks.block_on, args=(gate,))
    doomed.start()
    gate.wait_inside(1)
    doomed.kill()
    doomed.join(LONG_WAIT)
    survivor = context.Process(target=tasks.block_on, args=(gate,))
    survivor.start()
    try:
        gate.wait_inside(2)
        gate.release()
    finally:
        survivor.join(LONG_WAIT)
    assert (doomed.exitcode, survivor.exitcode) == (-signal.SIGKILL, 0)


def test_a_control_back_in_its_own_process_takes_the_local_path(controls: Controls) -> None:
    gate = controls.gate()
    copy = pickle.loads(pickle.dumps(gate))
    assert "(local)" in repr(copy)
    copy.release()
    assert gate.released


@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
@ignore_fork_warning
def test_a_control_returned_by_a_worker_is_the_same_control(
    pool_class: PoolClass, controls: Controls
) -> None:
    recorder = controls.recorder()
    with process_pool(pool_class) as pool, controls:
        pool.submit(recorder.record, "in a worker").result(LONG_WAIT)
        returned = pool.submit(tasks.return_value, recorder).result(LONG_WAIT)
        returned.record("in the test")
        assert recorder.events == ["in a worker", "in the test"]


# ------------------------------------------------------------------------------------------
# Recorders and latches


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
def test_a_recorder_keeps_the_arrival_order_of_process_tasks(
    pool_class: PoolClass, method: str, controls: Controls
) -> None:
    recorder, gate = controls.recorder(), controls.gate()
    with process_pool(pool_class, method) as pool, controls:
        for label in ("a", "b"):  # one after the other: a's events arrive first
            pool.submit(tasks.record_start_finish, recorder, label).result(LONG_WAIT)
        recorder.record("test")
        blocked = [pool.submit(tasks.record_start_finish, recorder, i, i, gate) for i in (1, 2)]
        gate.wait_inside(2)
        assert recorder.events[:5] == [
            ("start", "a"),
            ("finish", "a"),
            ("start", "b"),
            ("finish", "b"),
            "test",
        ]
        assert sorted(recorder.start_order[2:]) == [1, 2]
        assert recorder.finish_order == ["a", "b"]
        gate.release()
        assert [future.result(LONG_WAIT) for future in blocked] == [1, 2]
        assert sorted(recorder.finish_order[2:]) == [1, 2]


@pytest.mark.parametrize("method", START_METHODS)
def test_a_latch_reaches_zero_when_every_process_task_counted_down(
    method: str, controls: Controls
) -> None:
    latch = controls.latch(3)
    with process_pool(executor_impl.ProcessPoolExecutor, method) as pool, controls:
        futures = [pool.submit(tasks.count_down, latch, i) for i in range(3)]
        latch.wait()
        assert latch.count == 0
        assert [future.result(LONG_WAIT) for future in futures] == [0, 1, 2]


def test_a_latch_wait_times_out_naming_the_latch_and_its_count(controls: Controls) -> None:
    latch = controls.latch(2, "workers")
    latch.count_down()
    with pytest.raises(ControlTimeout, match=r"latch 'workers': .* for a count of zero; the count is still 1 of 2"):  # fmt: skip
        latch.wait(timeout=SHORT_TIMEOUT)


@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
@ignore_fork_warning
def test_counting_a_latch_down_below_zero_raises_naming_it(
    pool_class: PoolClass, controls: Controls
) -> None:
    latch = Latch(0, "done")
    with pytest.raises(ControlError, match=r"latch 'done': count_down\(\) below zero"):
        latch.count_down()
    with process_pool(pool_class) as pool, controls:
        error = pool.submit(tasks.count_down, latch).exception(LONG_WAIT)
    assert isinstance(error, ControlError)
    assert "latch 'done': count_down() below zero" in str(error)


def test_a_recorder_records_from_threads_in_arrival_order(controls: Controls) -> None:
    recorder = Recorder()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool, controls:
        for i in range(3):
            pool.submit(tasks.record_start_finish, recorder, i).result(LONG_WAIT)
    assert recorder.start_order == recorder.finish_order == [0, 1, 2]


# ------------------------------------------------------------------------------------------
# Tasks and faults


@pytest.mark.parametrize("pool_class", THREAD_POOLS)
def test_thread_tasks_run_in_the_test_process(pool_class: PoolClass) -> None:
    with pool_class(max_workers=1, thread_name_prefix="Probe") as pool:
        assert pool.submit(tasks.get_pid).result(LONG_WAIT) == os.getpid()
        assert pool.submit(tasks.current_thread_name).result(LONG_WAIT).startswith("Probe")
        assert pool.submit(tasks.return_value, 7).result(LONG_WAIT) == 7
        error = pool.submit(tasks.raise_exception, KeyError("k")).exception(LONG_WAIT)
        assert isinstance(error, KeyError)
        refused = pool.submit(faults.crash_worker, os.getpid()).exception(LONG_WAIT)
        assert isinstance(refused, faults.FaultRefused)
        with pytest.raises(faults.FaultRefused, match="no worker process to kill"):
            faults.kill_worker(pool, LONG_WAIT)


@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
@ignore_fork_warning
def test_crash_worker_breaks_the_process_pool(pool_class: PoolClass) -> None:
    with process_pool(pool_class, max_workers=1) as pool:
        error = pool.submit(faults.crash_worker, os.getpid()).exception(LONG_WAIT)
        assert isinstance(error, BrokenProcessPool)
        with pytest.raises(BrokenProcessPool):
            pool.submit(tasks.return_value, 1)


@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
@ignore_fork_warning
def test_kill_worker_breaks_the_process_pool(pool_class: PoolClass) -> None:
    with process_pool(pool_class, max_workers=1) as pool:
        pid = faults.kill_worker(pool, LONG_WAIT)
        assert pid != os.getpid()
        assert exits(pid, LONG_WAIT)
        with pytest.raises(BrokenProcessPool):
            pool.submit(tasks.return_value, 1).result(LONG_WAIT)


@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
@ignore_fork_warning
def test_a_failing_initializer_breaks_the_process_pool(pool_class: PoolClass) -> None:
    with process_pool(pool_class, initializer=faults.failing_initializer, initargs=(1,)) as pool:
        error = pool.submit(tasks.return_value, 1).exception(LONG_WAIT)
    assert isinstance(error, BrokenProcessPool)


@pytest.mark.parametrize("pool_class", THREAD_POOLS)
def test_a_failing_initializer_breaks_the_thread_pool(pool_class: PoolClass) -> None:
    with pool_class(max_workers=1, initializer=faults.failing_initializer) as pool:
        error = pool.submit(tasks.return_value, 1).exception(LONG_WAIT)
    assert isinstance(error, BrokenThreadPool)
    with pytest.raises(faults.InitializerFailed, match=r"failing_initializer\(2,\) failed"):
        faults.failing_initializer(2)


@pytest.mark.parametrize(
    ("task", "args"),
    [
        pytest.param(tasks.return_value, (faults.Unpicklable("argument"),), id="argument"),
        pytest.param(faults.return_unpicklable, (), id="result"),
        pytest.param(faults.raise_unpicklable_error, (), id="exception"),
    ],
)
@pytest.mark.parametrize("pool_class", PROCESS_POOLS)
@ignore_fork_warning
def test_what_cannot_be_pickled_fails_only_its_own_future(
    pool_class: PoolClass, task: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    with process_pool(pool_class, max_workers=1) as pool:
        error = pool.submit(task, *args).exception(LONG_WAIT)
        assert isinstance(error, pickle.PicklingError)
        assert "cannot be pickled, as the test intends" in str(error)
        assert pool.submit(tasks.return_value, 1).result(LONG_WAIT) == 1


def test_unpicklable_values_say_so_when_pickled() -> None:
    with pytest.raises(pickle.PicklingError, match=r"Unpicklable\('x'\) cannot be pickled"):
        pickle.dumps(faults.Unpicklable("x"))
    with pytest.raises(pickle.PicklingError, match=r"UnpicklableError\('y'\) cannot be"):
        pickle.dumps(faults.UnpicklableError("y"))


def test_the_engine_imports_neither_pytest_nor_hypothesis() -> None:
    script = (
        "import sys\n"
        "import pytest_futures_plugin.controls, pytest_futures_plugin.tasks\n"
        "import pytest_futures_plugin.faults\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "               ('pytest', '_pytest', 'hypothesis', 'executor_impl'))\n"
        "print(heavy)\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "[]\n", "")
