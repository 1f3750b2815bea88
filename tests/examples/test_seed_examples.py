"""The two tutorials pytest-futures grew from, as tests that run on every backend.

Each test retells one scenario of the ``concurrent.futures`` tutorials (``map`` with thread
names, ``submit``/``result``, ``as_completed``, done callbacks, cancelling, task exceptions,
the context manager, the process pool and its breaking, fetching URLs) and asserts on what
the code can observe, never on printed text. The tutorials sleep so that an ordering is
likely; these tests hold tasks on gates and open them in the order the scenario needs, so the
ordering is certain, and every wait is bounded. They take the ``executor`` or
``executor_factory`` fixture, so ``--executor`` runs each of them on every selected backend.

The tutorials' two deadlock examples (tasks waiting on each other's futures) belong to the
hang guard's tests (real threads) and the deterministic scheduler's (a ``DeadlockError``
with the wait-for graph), not here.
"""

from __future__ import annotations

import dataclasses
import http.server
import os
import random
import signal
import socket
import threading
import urllib.error
from typing import TYPE_CHECKING, Any, Callable

import pytest

from . import _tasks

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Executor, Future

    from pytest_futures_plugin.backends import Backend, FuturesAPI
    from pytest_futures_plugin.controls import Controls, Latch

WAIT = 60.0
"""Seconds any wait that must succeed may take: only a bug (or a hang) waits so long."""


def test_map_yields_results_in_input_order_whichever_task_finishes_first(
    executor_factory: Callable[..., Executor],
    futures_backend: Backend,
    futures_controls: Controls,
) -> None:
    """``map`` over 5..1 on two workers: task 4 finishes before task 5, yet the results come
    back in input order, each naming the worker that ran it."""
    processes = futures_backend.capabilities.processes
    prefix = "seed-map"
    if processes:
        executor = executor_factory(max_workers=2)
    else:
        executor = executor_factory(max_workers=2, thread_name_prefix=prefix)
    numbers = [5, 4, 3, 2, 1]
    gates = {n: futures_controls.gate(f"task-{n}") for n in numbers}
    four_finished = futures_controls.latch(1, "task-4-finished")
    finished = [four_finished if n == 4 else None for n in numbers]

    results = executor.map(_tasks.whoami, numbers, gates.values(), finished, timeout=WAIT)
    gates[5].wait_inside(1)
    gates[4].wait_inside(1)  # both workers are busy, one with 5 and one with 4
    gates[4].release()
    four_finished.wait()  # 4 is done while 5 still waits
    for n in numbers:
        gates[n].release()  # first come, first served from here on

    outcome = list(results)
    assert [n for n, _, _ in outcome] == numbers
    first, second = outcome[0], outcome[1]
    assert first[1:] != second[1:], "5 and 4 ran at the same time, so on different workers"
    if processes:
        assert all(pid != os.getpid() for _, _, pid in outcome)
    else:
        assert all(name.startswith(f"{prefix}_") for _, name, _ in outcome)
        assert all(pid == os.getpid() for _, _, pid in outcome)
    assert len({(name, pid) for _, name, pid in outcome}) <= 2


@pytest.mark.futures_executor(max_workers=5)
def test_submit_returns_a_future_that_is_running_until_its_task_returns(
    executor: Executor, futures_controls: Controls
) -> None:
    """``submit`` returns at once; the future is running, not done, while the task is held;
    once the task returns, ``result()`` gives its value and the future is finished."""
    gate = futures_controls.gate()
    future = executor.submit(_tasks.tenth, 5, gate)
    gate.wait_inside(1)

    assert not future.done()
    assert future.running()
    assert "state=running" in repr(future)
    gate.release()
    assert future.result(timeout=WAIT) == 0.5
    assert future.done()
    assert not future.running()
    assert "state=finished returned float" in repr(future)


@pytest.mark.futures_executor(max_workers=5)
def test_as_completed_yields_futures_in_the_order_they_finish(
    executor: Executor, futures_api: FuturesAPI, futures_controls: Controls, futures_seed: int
) -> None:
    """Five tasks finish in an order drawn from the test's seed; ``as_completed`` yields their
    futures in exactly that order. Each task is let go only once the one before it was
    yielded, so no two can finish in the other order."""
    numbers = [5, 4, 3, 2, 1]
    order = list(numbers)
    random.Random(futures_seed).shuffle(order)
    gates = {n: futures_controls.gate(f"task-{n}") for n in numbers}
    futures = {executor.submit(_tasks.tenth_pair, n, gates[n]): n for n in numbers}

    yielded: list[int] = []
    gates[order[0]].release()
    for future in futures_api.as_completed(futures, timeout=WAIT):
        n = futures[future]
        yielded.append(n)
        assert future.result() == (n, n / 10)
        if len(yielded) < len(order):
            gates[order[len(yielded)]].release()
    assert yielded == order


class DoneReporter:
    """The tutorial's ``done`` callback, recording what it printed as ``(arg, what, detail)``
    and counting *calls* down, so that the test can wait for the callbacks to have run."""

    def __init__(self, calls: Latch) -> None:
        self.calls = calls
        self.reports: list[tuple[int, str, Any]] = []

    def __call__(self, fn: Future[Any]) -> None:
        arg: int = fn.arg  # type: ignore[attr-defined]
        if fn.cancelled():
            self.reports.append((arg, "canceled", None))
        elif fn.done():
            error = fn.exception()
            if error:
                self.reports.append((arg, "error returned", error))
            else:
                self.reports.append((arg, "value returned", fn.result()))
        self.calls.count_down()


def test_done_callback_sees_the_value_returned(
    executor: Executor, futures_controls: Controls
) -> None:
    """A callback added while the task runs is called once it returns, with the future, which
    carries the data the caller attached to it (``f.arg``)."""
    gate = futures_controls.gate()
    reporter = DoneReporter(futures_controls.latch(1))
    future = executor.submit(_tasks.tenth, 5, gate)
    future.arg = 5  # type: ignore[attr-defined]
    future.add_done_callback(reporter)
    gate.release()

    assert future.result(timeout=WAIT) == 0.5
    reporter.calls.wait(WAIT)  # callbacks may run just after result() returns
    assert reporter.reports == [(5, "value returned", 0.5)]


def test_done_callback_sees_the_error_raised(
    executor: Executor, futures_controls: Controls
) -> None:
    gate = futures_controls.gate()
    reporter = DoneReporter(futures_controls.latch(1))
    future = executor.submit(_tasks.reject, 5, gate)
    future.arg = 5  # type: ignore[attr-defined]
    future.add_done_callback(reporter)
    gate.release()

    reporter.calls.wait(WAIT)
    [(arg, what, error)] = reporter.reports
    assert (arg, what) == (5, "error returned")
    assert isinstance(error, ValueError)
    assert str(error) == "the value 5 is no good"


QUEUED = 8
"""Calls queued behind a busy worker so that the last one is certainly still pending:
process pools hand a few queued calls to busy workers ahead of time (marking them running),
but none of the built-in ones hands a single worker this many."""


def test_done_callback_sees_the_cancellation(
    executor_factory: Callable[..., Executor], futures_controls: Controls
) -> None:
    """Cancelling a queued call calls its callback at once, with a cancelled future."""
    executor = executor_factory(max_workers=1)
    gate = futures_controls.gate()
    busy = executor.submit(_tasks.tenth, 1, gate)
    gate.wait_inside(1)
    queued = [executor.submit(_tasks.tenth, n) for n in range(2, 2 + QUEUED)]
    reporter = DoneReporter(futures_controls.latch(1))
    last = queued[-1]
    last.arg = 9  # type: ignore[attr-defined]
    last.add_done_callback(reporter)

    assert last.cancel()
    reporter.calls.wait(WAIT)
    assert reporter.reports == [(9, "canceled", None)]
    gate.release()
    assert busy.result(timeout=WAIT) == 0.1


def test_cancel_stops_queued_tasks_but_not_running_ones(
    executor: Executor, futures_backend: Backend, futures_controls: Controls
) -> None:
    """Ten tasks on two workers, both busy; cancelling in reverse submission order succeeds
    for tasks that have not started, and each callback says whether its task was cancelled.

    A thread pool leaves every waiting call pending, so all eight cancel. A process pool
    already hands a few queued calls to its workers (they are running, though no worker has
    started them): only what holds everywhere is asserted there — a cancelled task never
    runs, every other one completes.
    """
    gate = futures_controls.gate()
    started = futures_controls.recorder()
    callbacks = futures_controls.latch(10)
    reports: dict[int, str] = {}

    def done(fn: Future[float]) -> None:
        reports[fn.arg] = "canceled" if fn.cancelled() else "not canceled"  # type: ignore[attr-defined]
        callbacks.count_down()

    tasks: list[tuple[int, Future[float]]] = []
    for n in range(10, 0, -1):
        future = executor.submit(_tasks.tenth, n, gate, started)
        future.arg = n  # type: ignore[attr-defined]
        future.add_done_callback(done)
        tasks.append((n, future))
    gate.wait_inside(2)  # both workers are busy: everything else is queued
    running = set(started.start_order)

    cancelled = set()
    for n, future in reversed(tasks):
        if future.cancel():
            cancelled.add(n)
    gate.release()
    callbacks.wait(WAIT)
    executor.shutdown(wait=True)

    assert len(running) == 2
    assert running.isdisjoint(cancelled)
    assert 1 in cancelled, "the last one submitted was still queued"
    if not futures_backend.capabilities.processes:
        assert cancelled == set(range(1, 11)) - running
    assert reports == {n: "canceled" if n in cancelled else "not canceled" for n in range(1, 11)}
    assert set(started.start_order) == set(range(1, 11)) - cancelled
    for n, future in tasks:
        assert future.cancelled() == (n in cancelled)
        if n not in cancelled:
            assert future.result(timeout=WAIT) == n / 10


def test_exception_returns_the_task_error_and_result_raises_it(executor: Executor) -> None:
    future = executor.submit(_tasks.reject, 5)

    error = future.exception(timeout=WAIT)
    assert isinstance(error, ValueError)
    assert str(error) == "the value 5 is no good"
    with pytest.raises(ValueError, match=r"^the value 5 is no good$"):
        future.result(timeout=WAIT)


def test_the_with_block_waits_for_every_submitted_task(
    executor: Executor, futures_controls: Controls
) -> None:
    """Leaving the ``with`` block shuts the pool down and waits: all four tasks have run."""
    recorder = futures_controls.recorder()
    with executor as ex:
        futures = [ex.submit(_tasks.note, recorder, n) for n in (1, 2, 3, 4)]

    assert all(future.done() for future in futures)
    assert sorted(recorder.events) == [1, 2, 3, 4]


def test_process_pool_map_runs_tasks_in_worker_processes(
    executor: Executor, futures_backend: Backend
) -> None:
    """``map`` gives ``(n, pid)`` in input order; the pids are the workers' on a process
    backend (at most two of them) and the test's own on a thread backend."""
    results = list(executor.map(_tasks.pid_of, range(5, 0, -1), timeout=WAIT))

    assert [n for n, _ in results] == [5, 4, 3, 2, 1]
    pids = {pid for _, pid in results}
    if futures_backend.capabilities.processes:
        assert os.getpid() not in pids
        assert len(pids) <= 2
    else:
        assert pids == {os.getpid()}


def test_a_killed_worker_breaks_the_process_pool(
    executor_factory: Callable[..., Executor],
    futures_backend: Backend,
    futures_api: FuturesAPI,
) -> None:
    """A worker killed by a signal breaks the pool: the next call fails with
    ``BrokenProcessPool``, raised by ``submit`` or by the future's ``result``, whichever comes
    after the pool noticed, and every later ``submit`` raises it.

    One worker, where the tutorial has two: with two, the survivor may run the next call
    before the pool noticed the death, and then that call succeeds.
    """
    if not futures_backend.capabilities.processes:
        pytest.skip("this backend runs tasks in threads of the test process: no worker to kill")
    executor = executor_factory(max_workers=1)
    pid = executor.submit(os.getpid).result(timeout=WAIT)
    assert pid != os.getpid()

    os.kill(pid, signal.SIGHUP)
    with pytest.raises(futures_api.BrokenProcessPool):
        executor.submit(os.getpid).result(timeout=WAIT)
    with pytest.raises(futures_api.BrokenProcessPool):
        executor.submit(os.getpid)


# --------------------------------------------------------------------------- fetching URLs


@dataclasses.dataclass(frozen=True)
class Site:
    """A local web server: *pages* (path -> body) at *base*; ``/broken`` answers 500;
    *refused* is a URL whose port refuses every connection."""

    base: str
    pages: dict[str, bytes]
    refused: str


def _page(path: str, size: int) -> bytes:
    return (path.encode() * (size // len(path) + 1))[:size]


PAGES = {
    "/foxnews": _page("/foxnews", 283_254),
    "/cnn": _page("/cnn", 1_024),
    "/wsj": _page("/wsj", 0),
    "/bbc": _page("/bbc", 70_001),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        if self.path == "/broken":
            self.send_error(500, "the page is broken, as the test intends")
        elif body is None:
            self.send_error(404)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test's output clean


@pytest.fixture
def local_site() -> Iterator[Site]:
    """Serve :data:`PAGES` on 127.0.0.1 from a thread, for the length of one test.

    A test takes it before its executor, so that under ``--executor=deterministic`` the
    server's thread starts before the scheduler does and stays a real thread (it blocks on
    its socket, which the scheduler does not control); the tasks' requests complete on their
    own.

    The refused URL's port is bound but never listens, so connecting to it is refused at
    once, and no other program can take that port meanwhile. (An unresolvable host name, as
    in the tutorial, would ask a DNS server, which may hang without a network.)
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = False  # so that server_close() joins the request threads
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="seed-example-http"
    )
    thread.start()
    closed = socket.socket()
    try:
        closed.bind(("127.0.0.1", 0))
        host, port = server.server_address[:2]
        refused_port = closed.getsockname()[1]
        yield Site(f"http://{host!s}:{port}", PAGES, f"http://127.0.0.1:{refused_port}/")
    finally:
        closed.close()
        server.shutdown()
        server.server_close()
        thread.join(WAIT)


@pytest.mark.futures_executor(max_workers=5)
def test_fetching_urls_reports_each_page_or_its_error(
    local_site: Site, executor: Executor, futures_api: FuturesAPI
) -> None:
    """Fetch every page, a page that fails with 500 and a host that refuses connections,
    iterating ``as_completed`` over a dict future -> URL: each good URL gives its page, each
    bad one its ``URLError`` (an ``HTTPError`` for the 500)."""
    urls = [local_site.base + path for path in local_site.pages]
    urls += [local_site.base + "/broken", local_site.refused]
    future_to_url = {executor.submit(_tasks.load_url, url, WAIT): url for url in urls}

    pages: dict[str, bytes] = {}
    errors: dict[str, BaseException] = {}
    for future in futures_api.as_completed(future_to_url, timeout=WAIT):
        url = future_to_url[future]
        error = future.exception()
        if error is None:
            pages[url] = future.result()
        else:
            errors[url] = error

    assert pages == {local_site.base + path: body for path, body in local_site.pages.items()}
    assert {url: len(body) for url, body in pages.items()} == {
        local_site.base + path: len(body) for path, body in PAGES.items()
    }
    assert set(errors) == {local_site.base + "/broken", local_site.refused}
    broken = errors[local_site.base + "/broken"]
    assert isinstance(broken, urllib.error.HTTPError)
    assert broken.code == 500
    refused = errors[local_site.refused]
    assert isinstance(refused, urllib.error.URLError)
    assert not isinstance(refused, urllib.error.HTTPError)
    assert isinstance(refused.reason, ConnectionRefusedError)
