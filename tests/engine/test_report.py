"""The conformance report engine (pytest_futures_plugin/report.py), used directly.

As the design says: the terminal summary shows a matrix of spec area x backend, each cell PASS,
FAIL, KNOWN-BUG (strict xfail with an issue number), DEVIATION (documented deviation of a
third-party backend) or SKIP (capability absent); the same data can be written as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from pytest_futures_plugin.report import SCHEMA, Matrix, Status, classify, issue_refs

if TYPE_CHECKING:
    from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("outcome", "when", "xfail_reason", "deviation", "expected"),
    [
        pytest.param("failed", "setup", None, None, Status.FAIL, id="setup-error"),
        pytest.param("failed", "call", None, None, Status.FAIL, id="call-failed"),
        pytest.param("failed", "teardown", None, None, Status.FAIL, id="teardown-error"),
        pytest.param(
            "failed", "call", None, "declared", Status.FAIL, id="failed-despite-deviation"
        ),
        pytest.param("passed", "call", None, None, Status.PASS, id="passed"),
        pytest.param("passed", "call", "gh-1", None, Status.PASS, id="non-strict-xpass"),
        pytest.param("passed", "setup", None, None, None, id="setup-passed"),
        pytest.param("passed", "teardown", None, None, None, id="teardown-passed"),
        pytest.param("skipped", "setup", None, None, Status.SKIP, id="skip-mark"),
        pytest.param("skipped", "call", None, None, Status.SKIP, id="skip-in-body"),
        pytest.param(
            "skipped", "setup", None, "declared", Status.SKIP, id="skip-despite-deviation"
        ),
        pytest.param("skipped", "call", "gh-95166: old map", None, Status.KNOWN_BUG, id="xfail-gh"),
        pytest.param("skipped", "call", "reason: BPO-4242", None, Status.KNOWN_BUG, id="xfail-bpo"),
        pytest.param(
            "skipped",
            "setup",
            "https://github.com/joblib/loky/issues/7",
            None,
            Status.KNOWN_BUG,
            id="xfail-run-false-url",
        ),
        pytest.param("skipped", "call", "no fork", "no fork", Status.DEVIATION, id="deviation"),
        pytest.param("skipped", "call", "gh-7", "gh-7 no fork", Status.DEVIATION, id="cites-own"),
        pytest.param("skipped", "call", "gh-8", "gh-7 no fork", Status.KNOWN_BUG, id="other-issue"),
        pytest.param("skipped", "call", "flaky?", None, Status.FAIL, id="unexplained-xfail"),
        pytest.param("skipped", "call", "", None, Status.FAIL, id="xfail-without-reason"),
        pytest.param("skipped", "call", "why", "", Status.FAIL, id="empty-deviation"),
    ],
)
def test_classify_maps_each_phase_report_to_its_status(
    outcome: str,
    when: str,
    xfail_reason: str | None,
    deviation: str | None,
    expected: Status | None,
) -> None:
    assert classify(outcome, when=when, xfail_reason=xfail_reason, deviation=deviation) is expected


@pytest.mark.parametrize(
    ("outcome", "when", "bad"),
    [("xfailed", "call", "'xfailed'"), ("passed", "collect", "'collect'")],
)
def test_classify_names_an_unknown_outcome_or_phase(outcome: str, when: str, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        classify(outcome, when=when)


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("gh-12345: result() returns None", ["gh-12345"]),
        ("GH-109934 (thread) / gh-136655 (process), see gh-109934", ["gh-109934", "gh-136655"]),
        ("bpo-39205 and Bpo-1", ["bpo-39205", "bpo-1"]),
        (
            (
                "see https://github.com/python/cpython/issues/95166#c1 and "
                "https://github.com/joblib/loky/pull/42"
            ),
            ["gh-95166", "https://github.com/joblib/loky/pull/42"],
        ),
        (
            "gh-101267: shared (inherited from CPython; https://github.com/python/cpython/issues/101267)",
            ["gh-101267"],
        ),
        (
            (
                "pytest_futures_plugin.upstream.dask_map_after_shutdown: runs "
                "(/venv/site-packages/pytest_futures_plugin/upstream/dask_map_after_shutdown.py)"
            ),
            ["pytest_futures_plugin.upstream.dask_map_after_shutdown"],
        ),
        ("thegh-1, gh-12a, gh-, bpo 3, issue 7, github.com/a/b/tree/9", []),
        ("x.pytest_futures_plugin.upstream.a, pytest_futures_plugin.upstream., upstream.b", []),
        ("", []),
    ],
)
def test_issue_refs_finds_upstream_issues_in_order_without_repeats(
    text: str, refs: list[str]
) -> None:
    assert issue_refs(text) == refs


def test_status_prints_as_the_report_spells_it() -> None:
    assert [str(s) for s in Status] == ["PASS", "FAIL", "KNOWN-BUG", "DEVIATION", "SKIP"]
    assert f"{Status.KNOWN_BUG}" == "KNOWN-BUG"
    assert Status("KNOWN-BUG") is Status.KNOWN_BUG


# --------------------------------------------------------------------------- aggregation


SEVERITY_ORDER = [Status.FAIL, Status.KNOWN_BUG, Status.DEVIATION, Status.PASS, Status.SKIP]


@pytest.mark.parametrize("worst", SEVERITY_ORDER)
def test_a_cell_shows_its_most_severe_status(worst: Status) -> None:
    matrix = Matrix()
    milder = SEVERITY_ORDER[SEVERITY_ORDER.index(worst) :]
    for i, status in enumerate(reversed(milder)):
        matrix.record("future", "thread", status, test_id=f"t{i}")
    cell = matrix.cell("future", "thread")
    assert cell is not None
    assert cell.status is worst
    assert sum(cell.counts.values()) == len(milder)


def status_of(matrix: Matrix, area: str, backend: str) -> Status | None:
    """The status of the cell (*area*, *backend*), None when it has no results."""
    cell = matrix.cell(area, backend)
    return None if cell is None else cell.status


def test_a_cell_is_skip_only_when_every_test_skipped() -> None:
    matrix = Matrix()
    for i in range(3):
        matrix.record("future", "thread", Status.SKIP, test_id=f"s{i}")
    assert status_of(matrix, "future", "thread") is Status.SKIP
    matrix.record("future", "thread", Status.PASS, test_id="p")
    assert status_of(matrix, "future", "thread") is Status.PASS


def test_a_test_reporting_several_phases_counts_once_with_its_worst_status() -> None:
    matrix = Matrix()
    matrix.record("shutdown", "thread", Status.PASS, test_id="t")  # call
    matrix.record("shutdown", "thread", Status.FAIL, test_id="t", detail="leaked a thread")
    matrix.record("shutdown", "thread", Status.PASS, test_id="t")  # a later record cannot undo it
    cell = matrix.cell("shutdown", "thread")
    assert cell is not None
    assert [(r.test_id, r.status, r.detail) for r in cell.results] == [
        ("t", Status.FAIL, "leaked a thread")
    ]
    assert cell.counts[Status.FAIL] == 1
    assert cell.counts[Status.PASS] == 0
    assert not matrix.conformant


def test_a_cell_collects_the_issues_of_its_known_bugs() -> None:
    matrix = Matrix()
    matrix.record("future", "stdlib-thread", Status.KNOWN_BUG, test_id="a", detail="gh-2, gh-1")
    matrix.record("future", "stdlib-thread", Status.KNOWN_BUG, test_id="b", detail="gh-1 again")
    matrix.record("future", "stdlib-thread", Status.SKIP, test_id="c", detail="gh-3 not a bug")
    cell = matrix.cell("future", "stdlib-thread")
    assert cell is not None
    assert cell.issues == ["gh-2", "gh-1"]


def test_rows_and_columns_keep_the_given_order_then_first_seen_order() -> None:
    matrix = Matrix(backends=["process", "thread"], areas=["waiting"])
    matrix.record("future", "custom", Status.PASS, test_id="a")
    matrix.record("future", "thread", Status.PASS, test_id="b")
    matrix.record("shutdown", "process", Status.PASS, test_id="c")
    assert matrix.backends == ["process", "thread", "custom"]
    assert matrix.areas == ["waiting", "future", "shutdown"]
    assert matrix.cell("waiting", "thread") is None
    assert [(c.area, c.backend) for c in matrix.cells()] == [
        ("future", "thread"),
        ("future", "custom"),
        ("shutdown", "process"),
    ]


@pytest.mark.parametrize(
    ("area", "backend", "test_id"), [("", "thread", "t"), ("a", "", "t"), ("a", "thread", "")]
)
def test_record_refuses_an_empty_name(area: str, backend: str, test_id: str) -> None:
    with pytest.raises(ValueError, match="empty name"):
        Matrix().record(area, backend, Status.PASS, test_id=test_id)


# --------------------------------------------------------------------------- render


def small_matrix() -> Matrix:
    """Two areas on two backends, one cell of each of four statuses."""
    matrix = Matrix(backends=["thread", "stdlib-thread"], meta={"seed": 1234})
    matrix.record("future", "thread", Status.PASS, test_id="a")
    matrix.record(
        "future", "stdlib-thread", Status.KNOWN_BUG, test_id="b", detail="gh-132063: None"
    )
    matrix.record(
        "shutdown", "thread", Status.FAIL, test_id="c", detail="AssertionError: x\n  more"
    )
    matrix.record("shutdown", "stdlib-thread", Status.SKIP, test_id="d", detail="no fork")
    return matrix


def test_render_shows_a_title_an_aligned_table_and_footnotes() -> None:
    assert small_matrix().render() == [
        "pytest-futures conformance: 2 areas x 2 backends, 4 tests (1 PASS, 1 FAIL, 1 KNOWN-BUG, 1 SKIP)",
        "area      thread  stdlib-thread",
        "--------  ------  -------------",
        "future    PASS    KNOWN-BUG",
        "shutdown  FAIL    SKIP",
        "",
        "FAIL shutdown on thread: 1 failing test",
        "  c - AssertionError: x",
        "KNOWN-BUG future on stdlib-thread: gh-132063",
    ]


def test_render_marks_cells_without_results_and_explains_deviations() -> None:
    matrix = Matrix(backends=["thread", "mypkg:make_pool"])
    matrix.record("future", "thread", Status.PASS, test_id="a")
    matrix.record("waiting", "mypkg:make_pool", Status.DEVIATION, test_id="b", detail="no timeout")
    matrix.record("waiting", "mypkg:make_pool", Status.DEVIATION, test_id="c", detail="no timeout")
    matrix.record("waiting", "mypkg:make_pool", Status.DEVIATION, test_id="d", detail="no cancel")
    assert matrix.render()[1:] == [
        "area     thread  mypkg:make_pool",
        "-------  ------  ---------------",
        "future   PASS    -",
        "waiting  -       DEVIATION",
        "",
        "DEVIATION waiting on mypkg:make_pool: no timeout; no cancel",
    ]


def test_render_lists_a_bounded_number_of_failing_tests() -> None:
    matrix = Matrix()
    for i in range(7):
        matrix.record("map", "thread", Status.FAIL, test_id=f"test_map[{i}]")
    lines = matrix.render(max_ids=3)
    assert lines[lines.index("FAIL map on thread: 7 failing tests") :] == [
        "FAIL map on thread: 7 failing tests",
        "  test_map[0]",
        "  test_map[1]",
        "  test_map[2]",
        "  and 4 more",
    ]


def test_render_shortens_one_long_failure_detail_to_one_line() -> None:
    matrix = Matrix()
    matrix.record("map", "thread", Status.FAIL, test_id="t", detail="E" * 500 + "\nsecond line")
    line = matrix.render()[-1]
    assert line.startswith("  t - EEE")
    assert line.endswith("...")
    assert len(line) < 140


def test_render_replaces_long_backend_names_by_numbers_with_a_legend() -> None:
    backends = [
        "concurrent.futures:ThreadPoolExecutor",
        "deterministic:loky:ProcessPoolExecutor",
        "deterministic:mypkg.pool:make_pool",
    ]
    matrix = Matrix(backends=backends)
    for backend in backends:
        matrix.record("as_completed", backend, Status.PASS, test_id=backend)
    lines = matrix.render()
    assert lines[1:] == [
        "area          [1]   [2]   [3]",
        "------------  ----  ----  ----",
        "as_completed  PASS  PASS  PASS",
        "",
        "[1] concurrent.futures:ThreadPoolExecutor",
        "[2] deterministic:loky:ProcessPoolExecutor",
        "[3] deterministic:mypkg.pool:make_pool",
    ]
    assert matrix.render(width=200)[1].split() == ["area", *backends]


def test_render_of_an_empty_matrix_says_so() -> None:
    assert Matrix().render() == ["pytest-futures conformance: no results recorded"]


# --------------------------------------------------------------------------- JSON


def test_to_json_follows_the_versioned_schema() -> None:
    data = small_matrix().to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["schema"] == SCHEMA == "pytest-futures-report/1"
    assert data["backends"] == ["thread", "stdlib-thread"]
    assert data["areas"] == ["future", "shutdown"]
    assert data["cells"][1] == {
        "area": "future",
        "backend": "stdlib-thread",
        "status": "KNOWN-BUG",
        "counts": {"PASS": 0, "FAIL": 0, "KNOWN-BUG": 1, "DEVIATION": 0, "SKIP": 0},
        "issues": ["gh-132063"],
        "warnings": [],
        "tests": [{"id": "b", "status": "KNOWN-BUG", "detail": "gh-132063: None"}],
    }
    assert [(c["area"], c["backend"], c["status"]) for c in data["cells"]] == [
        ("future", "thread", "PASS"),
        ("future", "stdlib-thread", "KNOWN-BUG"),
        ("shutdown", "thread", "FAIL"),
        ("shutdown", "stdlib-thread", "SKIP"),
    ]
    assert data["summary"] == {
        "tests": 4,
        "counts": {"PASS": 1, "FAIL": 1, "KNOWN-BUG": 1, "DEVIATION": 0, "SKIP": 1},
        "cells": {"PASS": 1, "FAIL": 1, "KNOWN-BUG": 1, "DEVIATION": 0, "SKIP": 1},
        "conformant": False,
    }
    assert data["meta"]["seed"] == 1234
    assert data["meta"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert data["meta"]["platform"] == sys.platform


def test_from_json_round_trips() -> None:
    original = small_matrix()
    copy = Matrix.from_json(json.loads(json.dumps(original.to_json())))
    assert copy.to_json() == original.to_json()
    assert copy.render() == original.render()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "pytest-futures-report/2"}, "schema is 'pytest-futures-report/2'"),
        ({"backends": "thread"}, "'backends' must be a list of strings"),
        ({"meta": None}, "malformed"),
        ({"cells": [{"area": "a", "backend": "b", "tests": [{"id": "t"}]}]}, "status"),
        (
            {"cells": [{"area": "a", "backend": "b", "tests": [{"id": "t", "status": "OK"}]}]},
            "'OK'",
        ),
    ],
)
def test_from_json_refuses_other_data_naming_the_problem(
    change: dict[str, object], message: str
) -> None:
    data = {**small_matrix().to_json(), **change}
    with pytest.raises(ValueError, match=message):
        Matrix.from_json(data)


def test_merge_combines_runs_keeping_the_worst_status_of_each_test() -> None:
    py39 = Matrix(backends=["stdlib-thread"], meta={"python": "3.9.18"})
    py39.record("map", "stdlib-thread", Status.KNOWN_BUG, test_id="t", detail="gh-95166")
    py39.record("map", "stdlib-thread", Status.PASS, test_id="u")
    py313 = Matrix(backends=["thread", "stdlib-thread"], meta={"python": "3.13.1"})
    py313.record("map", "stdlib-thread", Status.PASS, test_id="t")
    py313.record("wait", "thread", Status.PASS, test_id="v")
    before = (py39.to_json(), py313.to_json())

    merged = py39.merge(py313)

    assert (py39.to_json(), py313.to_json()) == before
    assert merged.backends == ["stdlib-thread", "thread"]
    assert merged.areas == ["map", "wait"]
    cell = merged.cell("map", "stdlib-thread")
    assert cell is not None
    assert cell.status is Status.KNOWN_BUG
    assert cell.issues == ["gh-95166"]
    assert [r.test_id for r in cell.results] == ["t", "u"]
    assert [run["python"] for run in merged.meta["runs"]] == ["3.9.18", "3.13.1"]
    # Merging a merged report keeps one flat list of runs.
    again = merged.merge(Matrix(meta={"python": "3.12.0"}))
    assert [run["python"] for run in again.meta["runs"]] == ["3.9.18", "3.13.1", "3.12.0"]
    assert Matrix.from_json(again.to_json()).to_json() == again.to_json()


def test_write_json_creates_directories_and_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "nested" / "futures.json"
    Matrix().write_json(target)
    small_matrix().write_json(str(target))
    assert json.loads(target.read_text(encoding="utf-8")) == small_matrix().to_json()
    assert sorted(p.name for p in target.parent.iterdir()) == ["futures.json"]


def test_write_json_leaves_no_partial_file_when_it_fails(tmp_path: Path) -> None:
    # Renaming a file over a non-empty directory fails after the data was written.
    target = tmp_path / "futures.json"
    target.mkdir()
    (target / "keep").write_text("", encoding="utf-8")
    with pytest.raises(OSError):  # noqa: PT011 - the platform picks the OSError subclass
        small_matrix().write_json(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["futures.json"]
    assert [p.name for p in target.iterdir()] == ["keep"]


# --------------------------------------------------------------------------- engine


def test_importing_the_report_engine_imports_neither_pytest_nor_hypothesis() -> None:
    code = (
        "import sys, pytest_futures_plugin.report as r; "
        "r.Matrix().render(); "
        "bad = {'pytest', '_pytest', 'hypothesis'} & set(sys.modules); "
        "print('IMPORTED', sorted(bad)); sys.exit(bool(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_phase_without_status_adds_only_its_warnings_to_an_existing_cell() -> None:
    matrix = Matrix()
    matrix.record("map", "b", None, test_id="t1", warnings=["W: before any result"])
    assert matrix.cell("map", "b") is None  # no results: no cell
    matrix.record("map", "b", Status.PASS, test_id="t1")
    matrix.record("map", "b", None, test_id="t1", warnings=["ResourceWarning: at teardown"])
    cell = matrix.cell("map", "b")
    assert cell is not None
    assert [(r.test_id, r.status) for r in cell.results] == [("t1", Status.PASS)]
    assert cell.warnings == ["ResourceWarning: at teardown"]


def test_a_cell_lists_the_warnings_of_its_tests_once_each() -> None:
    matrix = Matrix(backends=["b"])
    matrix.record("map", "b", Status.PASS, test_id="t1", warnings=["ResourceWarning: x"])
    matrix.record("map", "b", Status.PASS, test_id="t2", warnings=["ResourceWarning: x", "W: y"])
    cell = matrix.cell("map", "b")
    assert cell is not None
    assert cell.warnings == ["ResourceWarning: x", "W: y"]
    assert matrix.cell("map", "b").status is Status.PASS  # type: ignore[union-attr]
    assert "WARNINGS map on b: 2" in matrix.render()
    again = Matrix.from_json(matrix.to_json())
    assert again.cell("map", "b").warnings == cell.warnings  # type: ignore[union-attr]


def test_a_backend_that_ran_a_share_of_the_examples_is_named_under_the_matrix() -> None:
    share = {"slow": {"share": 0.3, "reason": "its shutdown takes 1 s"}}
    matrix = Matrix(backends=["slow", "fast"], meta={"examples": share})
    matrix.record("waiting", "slow", Status.PASS, test_id="t1")
    matrix.record("waiting", "fast", Status.PASS, test_id="t2")
    expected = (
        "EXAMPLES on slow: each spec machine ran 30% of the profile's examples (its shutdown "
        "takes 1 s); --futures-examples=full runs them all"
    )
    assert matrix.render()[-1] == expected
    # Merged runs (pytest-xdist workers, report files) name it once.
    merged = Matrix.from_json(matrix.to_json()).merge(matrix)
    assert merged.render().count(expected) == 1
    assert not any("EXAMPLES" in line for line in Matrix(meta={}).render())
