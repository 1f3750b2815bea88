"""The third-party known bugs' probes: each finds nothing on executor_impl's and the stdlib's
pools, and finds its bug on the executor it was found in (where that package is installed)."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_futures_plugin import backends, report
from specs import _known_bugs, _known_bugs_ecosystem

ROOT = Path(__file__).resolve().parents[2]

THIRD_PARTY = sorted(
    key
    for key in _known_bugs.REGISTRY
    if key.startswith(("loky", "futurist", "dask", "executorlib"))
)

FOUND_ON = {
    "loky_unpicklable_exception": ("loky", "loky"),
    "futurist_shutdown_cancel_futures": ("futurist-thread", "futurist"),
    "futurist_shutdown_nowait_pending": ("futurist-thread", "futurist"),
    "futurist_callback_submit_deadlock": ("futurist-thread", "futurist"),
    "dask_running_never_true": ("dask-thread", "distributed"),
    "dask_cancel_running_returns_true": ("dask-thread", "distributed"),
    "dask_map_rejects_iterators": ("dask-thread", "distributed"),
    "dask_map_after_shutdown": ("dask-thread", "distributed"),
    "dask_cancelled_calls_still_start": ("dask-thread", "distributed"),
    "dask_map_timeout_overdue": ("dask-thread", "distributed"),
    "dask_base_exception_hangs": ("dask-thread", "distributed"),
    "dask_unpicklable_result_pending": ("dask-process", "distributed"),
    "executorlib_cancel_kills_scheduler": ("executorlib:SingleNodeExecutor", "executorlib"),
}

LEAVES_THREADS = frozenset({"executorlib_cancel_kills_scheduler"})
"""Bugs whose executor keeps a non-daemon thread alive for ever once the probe found them."""

RACY = sorted(_known_bugs_ecosystem.RACY)
"""Races: the spec that sees one decides (``specs/_seen.py``); no probe can show them."""

ON_DEMAND = [key for key in THIRD_PARTY if key not in RACY]


def test_every_third_party_bug_has_a_reproduction_and_a_home() -> None:
    assert sorted(FOUND_ON) == THIRD_PARTY
    for key in THIRD_PARTY:
        bug = _known_bugs.REGISTRY[key]
        assert not bug.cpython, key
        if bug.issue.startswith("https://github.com/"):  # an upstream issue reports it
            assert bug.url == bug.issue, key
            continue
        assert bug.issue == f"pytest_futures_plugin.upstream.{key}", bug.issue
        assert Path(bug.url).is_file(), f"{key}: no reproduction at {bug.url}"
        assert bug.reason.startswith(f"{bug.issue}: "), bug.reason
        assert bug.reason.endswith(f"({bug.url})"), bug.reason


def test_the_link_a_known_bug_cell_prints_is_a_runnable_reproduction() -> None:
    """The report names the reproduction's module (what ``issue_refs`` finds in the xfail
    reason): ``python -m`` finds it wherever pytest-futures is installed, and it is the very
    script under docs/upstream/."""
    for key in THIRD_PARTY:
        bug = _known_bugs.REGISTRY[key]
        if bug.issue.startswith("https://github.com/"):
            continue
        assert report.issue_refs(bug.reason) == [bug.issue], bug.reason
        spec = importlib.util.find_spec(bug.issue)
        assert spec is not None, bug.issue
        assert spec.origin is not None, bug.issue
        assert Path(spec.origin).samefile(ROOT / "docs" / "upstream" / f"{key}.py"), spec.origin


@pytest.mark.parametrize("name", ["thread", "stdlib-thread"])
@pytest.mark.parametrize("key", ON_DEMAND)
def test_the_probe_finds_nothing_on_thread_pools(name: str, key: str) -> None:
    assert _known_bugs.REGISTRY[key].probe(backends.lookup(name)) is False


@pytest.mark.parametrize("name", ["thread", "stdlib-thread"])
@pytest.mark.parametrize("key", RACY)
def test_a_race_applies_only_to_executors_built_from_its_package(name: str, key: str) -> None:
    assert _known_bugs.shows(backends.lookup(name), key) is False


@pytest.mark.slow
@pytest.mark.parametrize("name", ["process", "stdlib-process"])
@pytest.mark.parametrize("key", ON_DEMAND)
def test_the_probe_finds_nothing_on_process_pools(name: str, key: str) -> None:
    assert _known_bugs.REGISTRY[key].probe(backends.lookup(name)) is False


@pytest.mark.slow
@pytest.mark.parametrize("key", THIRD_PARTY)
def test_the_probe_finds_the_bug_where_it_was_found(key: str) -> None:
    name, package = FOUND_ON[key]
    pytest.importorskip(package)
    if key in LEAVES_THREADS:
        # The bug leaves a non-daemon thread waiting for ever, which would keep this
        # interpreter from exiting: probe in a fresh one that ends with os._exit.
        code = (
            "import os, sys\n"
            "from pytest_futures_plugin import backends\n"
            "from specs import _known_bugs\n"
            f"backend = backends.lookup({name!r})\n"
            f"print(_known_bugs.REGISTRY[{key!r}].probe(backend),"
            f" _known_bugs.shows(backend, {key!r}))\n"
            "sys.stdout.flush()\n"
            "os._exit(0)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
            cwd=ROOT,
        )
        assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr
        assert _known_bugs.REGISTRY[key].package == package
        return
    assert _known_bugs.REGISTRY[key].probe(backends.lookup(name)) is True
    assert _known_bugs.REGISTRY[key].package == package
    assert _known_bugs.shows(backends.lookup(name), key) is True


def test_an_executor_not_built_from_the_package_does_not_show_its_bug() -> None:
    """An executor of another package that behaves like a third-party bug has a bug of its
    own: the spec reports it as FAIL, not under that package's issue (the broken executor
    ``CancelOfRunning`` returns True from ``cancel()`` of a running call, as dask does)."""
    from tests.specs.broken.cancellation import CancelOfRunning

    backend = backends.Backend(
        "cancel-of-running", CancelOfRunning.ThreadPoolExecutor, "concurrent.futures", "broken"
    )
    assert _known_bugs.REGISTRY["dask_cancel_running_returns_true"].probe(backend) is True
    assert _known_bugs.shows(backend, "dask_cancel_running_returns_true") is False


class _StopsAtACancelledCall(concurrent.futures.Executor):
    """One worker thread that stops for good at the first cancelled call it takes, as
    executorlib's scheduler thread does: later calls never run."""

    def __init__(self, max_workers: int = 1) -> None:
        del max_workers
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name="stops-at-cancelled", daemon=True)
        self._worker.start()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._calls.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn, args, kwargs = call
            if not future.set_running_or_notify_cancel():
                return  # the bug
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        del cancel_futures
        self._calls.put(None)
        if wait:
            self._worker.join(_known_bugs.PROBE_BOUND)


def test_the_executorlib_probe_is_specific_and_its_bug_stays_executorlibs() -> None:
    """A pool of ours that stops at a cancelled call shows exactly what the probe looks for
    (the probe says True), yet it is not built from executorlib: its spec cell is FAIL, not
    executorlib's KNOWN-BUG."""
    backend = backends.Backend(
        "stops-at-cancelled", _StopsAtACancelledCall, "concurrent.futures", "broken"
    )
    assert _known_bugs.REGISTRY["executorlib_cancel_kills_scheduler"].probe(backend) is True
    assert _known_bugs.shows(backend, "executorlib_cancel_kills_scheduler") is False


def test_the_probes_are_registered_once() -> None:
    with pytest.raises(ValueError, match="registered already"):
        _known_bugs_ecosystem.register_all()
