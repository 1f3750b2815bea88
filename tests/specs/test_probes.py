"""The probes behind the specs' verdicts: capabilities are tried, not read from signatures,
and a known bug is decided by what the backend under test does, once per backend."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_futures_plugin import backends
from specs import _known_bugs
from tests.specs import subclasses

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]


def test_a_thread_pool_subclass_taking_kwargs_has_no_process_keywords() -> None:
    capabilities = backends.probe(subclasses.ThreadPoolPassingOn)
    assert capabilities == backends.probe(subclasses.ThreadPool)
    assert not capabilities.processes
    assert not capabilities.max_tasks_per_child
    assert not capabilities.mp_context
    assert capabilities.initializer
    assert capabilities.cancel_futures


@pytest.mark.slow
def test_a_process_pool_subclass_taking_kwargs_has_the_stdlib_capabilities() -> None:
    import concurrent.futures

    expected = backends.probe(concurrent.futures.ProcessPoolExecutor)
    assert backends.probe(subclasses.ProcessPoolPassingOn) == expected
    assert expected.processes
    assert expected.max_tasks_per_child


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Bugs registered by a test, removed (with their verdicts) afterwards."""
    keys: list[str] = []
    yield keys
    for key in keys:
        _known_bugs.REGISTRY.pop(key, None)
        for seen in [s for s in _known_bugs._SHOWN if s[1] == key]:
            del _known_bugs._SHOWN[seen]


def _backend(name: str) -> backends.Backend:
    return backends.Backend(name=name, factory=subclasses.ThreadPool)


def test_a_probe_runs_once_per_backend(registered: list[str]) -> None:
    calls: list[str] = []

    def probe(backend: backends.Backend) -> bool:
        calls.append(backend.name)
        return backend.name == "buggy"

    bug = _known_bugs.KnownBug(
        key="test-once",
        issue="https://github.com/example/pool/issues/7",
        summary="loses a call",
        probe=probe,
    )
    registered.append(_known_bugs.register(bug).key)
    for _ in range(3):
        assert _known_bugs.shows(_backend("buggy"), "test-once")
        assert not _known_bugs.shows(_backend("fine"), "test-once")
    assert calls == ["buggy", "fine"]
    reason = _known_bugs.xfail_reason(_backend("buggy"), ("test-once",))
    assert reason == "https://github.com/example/pool/issues/7: loses a call"
    assert _known_bugs.xfail_reason(_backend("fine"), ("test-once",)) is None


def test_a_probe_that_fails_means_the_spec_runs_strictly(registered: list[str]) -> None:
    def probe(backend: backends.Backend) -> bool:
        raise RuntimeError("the backend is too broken to try")

    bug = _known_bugs.KnownBug(key="test-raises", issue="gh-1", summary="s", probe=probe)
    registered.append(_known_bugs.register(bug).key)
    assert not _known_bugs.shows(_backend("x"), "test-raises")


def test_a_cpython_bug_links_its_issue_and_says_it_is_inherited() -> None:
    bug = _known_bugs.REGISTRY["gh-101267"]
    assert bug.cpython
    assert bug.url == "https://github.com/python/cpython/issues/101267"
    assert bug.reason.startswith("gh-101267: ")
    assert "inherited from CPython" in bug.reason


def test_bad_registrations_are_refused(registered: list[str]) -> None:
    with pytest.raises(ValueError, match="registered already"):
        _known_bugs.register(
            _known_bugs.KnownBug(key="gh-92001", issue="gh-92001", summary="s", probe=bool)
        )
    with pytest.raises(ValueError, match="give the url"):
        _known_bugs.KnownBug(key="k", issue="bpo-1", summary="s", probe=bool)
    with pytest.raises(KeyError, match="no known bug 'nope'"):
        _known_bugs.expects_known_bug("nope")


def test_a_known_bug_is_a_strict_xfail_only_where_the_backend_shows_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(
        test_third_party="""
        import pytest
        from specs._fixtures import futures_known_bugs
        from specs._known_bugs import KnownBug, expects_known_bug, register

        register(KnownBug(
            key="pool-7", issue="https://github.com/example/pool/issues/7",
            summary="drops calls", probe=lambda backend: backend.name == "stdlib-thread",
        ))
        pytestmark = pytest.mark.futures_area("demo")

        @expects_known_bug("pool-7")
        @pytest.mark.usefixtures("futures_known_bugs")
        def test_calls_run(futures_backend):
            assert futures_backend.name != "stdlib-thread"
        """
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--executor=thread,stdlib-thread", f"--futures-report={report}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, xfailed=1)
    cells = {c["backend"]: c for c in json.loads(report.read_text())["cells"]}
    assert cells["thread"]["status"] == "PASS"
    assert cells["stdlib-thread"]["status"] == "KNOWN-BUG"
    assert cells["stdlib-thread"]["issues"] == ["https://github.com/example/pool/issues/7"]


def test_a_warning_of_the_executor_is_reported_in_its_cell_not_raised(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(
        test_warns="""
        import warnings
        import pytest

        pytestmark = pytest.mark.futures_area("demo")

        def test_the_executor_warns(executor):
            executor.submit(warnings.warn, "the pool is old", ResourceWarning).result(10)
        """
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--executor=thread", f"--futures-report={report}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["WARNINGS demo on thread: 1", "  ResourceWarning: the pool is old*"]
    )
    (cell,) = json.loads(report.read_text())["cells"]
    assert cell["status"] == "PASS"
    assert cell["warnings"][0].startswith("ResourceWarning: the pool is old")


def test_a_warning_of_the_executor_in_setup_or_teardown_is_reported_in_its_cell(
    pytester: pytest.Pytester,
) -> None:
    """An executor that warns when it is made (in the ``executor`` fixture, the test's setup)
    or shut down (the fixtures' teardown) gets those warnings in its cell too, not an ERROR."""
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(
        warning_pool="""
        import concurrent.futures
        import warnings

        class Pool(concurrent.futures.ThreadPoolExecutor):
            def __init__(self, *args, **kwargs):
                warnings.warn("made with an old option", DeprecationWarning)
                super().__init__(*args, **kwargs)

            def shutdown(self, *args, **kwargs):
                warnings.warn("a handle left open", ResourceWarning)
                super().shutdown(*args, **kwargs)
        """,
        test_warns="""
        import pytest

        pytestmark = pytest.mark.futures_area("demo")

        def test_made_by_the_fixture(executor):
            assert executor.submit(abs, -3).result(10) == 3

        def test_left_to_the_factory(executor_factory):
            assert executor_factory().submit(abs, -4).result(10) == 4
        """,
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--executor=warning_pool:Pool",
        f"--futures-report={report}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "WARNINGS demo on warning_pool:Pool: 2",
            "  DeprecationWarning: made with an old option*",
            "  ResourceWarning: a handle left open*",
        ]
    )
    (cell,) = json.loads(report.read_text())["cells"]
    assert cell["status"] == "PASS"
    assert [w.split(" (")[0] for w in cell["warnings"]] == [
        "DeprecationWarning: made with an old option",
        "ResourceWarning: a handle left open",
    ]
