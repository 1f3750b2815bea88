"""The third-party known bugs' probes: each finds nothing on executor_impl's and the stdlib's
pools, and finds its bug on the executor it was found in (where that package is installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_futures_plugin import backends
from specs import _known_bugs, _known_bugs_ecosystem

ROOT = Path(__file__).resolve().parents[2]

THIRD_PARTY = sorted(
    key for key in _known_bugs.REGISTRY if key.startswith(("loky", "futurist", "dask"))
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
}


def test_every_third_party_bug_has_a_reproduction_and_a_home() -> None:
    assert sorted(FOUND_ON) == THIRD_PARTY
    for key in THIRD_PARTY:
        bug = _known_bugs.REGISTRY[key]
        assert not bug.cpython, key
        assert (ROOT / bug.url).is_file(), f"{key}: no reproduction at {bug.url}"
        assert bug.reason.startswith(f"{bug.url}: "), bug.reason


@pytest.mark.parametrize("name", ["thread", "stdlib-thread"])
@pytest.mark.parametrize("key", THIRD_PARTY)
def test_the_probe_finds_nothing_on_thread_pools(name: str, key: str) -> None:
    assert _known_bugs.REGISTRY[key].probe(backends.lookup(name)) is False


@pytest.mark.slow
@pytest.mark.parametrize("name", ["process", "stdlib-process"])
@pytest.mark.parametrize("key", THIRD_PARTY)
def test_the_probe_finds_nothing_on_process_pools(name: str, key: str) -> None:
    assert _known_bugs.REGISTRY[key].probe(backends.lookup(name)) is False


@pytest.mark.slow
@pytest.mark.parametrize("key", THIRD_PARTY)
def test_the_probe_finds_the_bug_where_it_was_found(key: str) -> None:
    name, package = FOUND_ON[key]
    pytest.importorskip(package)
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


def test_the_probes_are_registered_once() -> None:
    with pytest.raises(ValueError, match="registered already"):
        _known_bugs_ecosystem.register_all()
