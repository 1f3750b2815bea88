"""The conformance matrix as a user sees it: the terminal summary and ``--futures-report`` JSON,
built from the ``futures_area`` marker of executor-parametrised tests, also under xdist."""

from __future__ import annotations

import json

import pytest

SPECS = """
    import pytest

    pytestmark = pytest.mark.futures_area("waiting")

    def test_passes(executor_backend):
        pass

    @pytest.mark.xfail(reason="gh-136655: waiters not notified", strict=True)
    def test_known_bug(executor_backend):
        assert executor_backend == "never"

    def test_skips_on_threads(futures_backend):
        if not futures_backend.capabilities.processes:
            pytest.skip("needs worker processes")

    @pytest.mark.futures_area("map")
    def test_fails_on_stdlib_thread(executor_backend):
        assert executor_backend != "stdlib-thread", "map order broken"

    def test_not_a_spec():
        pass
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_matrix_has_one_cell_per_area_and_backend(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    pytester.makepyfile(SPECS)
    report = pytester.path / "out" / "report.json"
    result = run(pytester, "--executor=thread,stdlib-thread", f"--futures-report={report}", *xdist)
    result.assert_outcomes(passed=4, failed=1, xfailed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*= pytest-futures conformance =*",
            "pytest-futures conformance: 2 areas x 2 backends*",
            "area *thread *stdlib-thread",
            "waiting *KNOWN-BUG *KNOWN-BUG",
            "map *PASS *FAIL",
            "*FAIL map on stdlib-thread: 1 failing test*",
            "*test_fails_on_stdlib_thread[[]stdlib-thread[]]*map order broken*",
            "*KNOWN-BUG waiting on thread: gh-136655*",
        ]
    )
    data = json.loads(report.read_text())
    assert data["schema"] == "pytest-futures-report/1"
    assert data["backends"] == ["thread", "stdlib-thread"]
    cells = {(cell["area"], cell["backend"]): cell for cell in data["cells"]}
    assert cells["waiting", "thread"]["counts"] == {
        "PASS": 1,
        "FAIL": 0,
        "KNOWN-BUG": 1,
        "DEVIATION": 0,
        "SKIP": 1,
    }
    assert cells["map", "stdlib-thread"]["status"] == "FAIL"
    assert data["summary"]["conformant"] is False
    assert data["meta"]["backends"] == ["thread", "stdlib-thread"]


def test_no_matrix_without_spec_areas(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(executor): pass")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "pytest-futures conformance" not in result.stdout.str()


def test_a_backend_deviation_is_reported_as_such(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        mypool="""
        import concurrent.futures
        from pytest_futures_plugin.backends import Backend

        def backend():
            return Backend(
                "ignored",
                concurrent.futures.ThreadPoolExecutor,
                deviations={"map": "our map yields in completion order, by design"},
            )
        """,
        test_spec="""
        import pytest

        @pytest.mark.futures_area("map")
        def test_map_order(executor_backend):
            assert False, "completion order"
        """,
    )
    info = pytester.mkdir("mypool-1.0.dist-info")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypool\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest_futures.backends]\nmine = mypool:backend\n")
    result = run(pytester, "--executor=mine")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(
        ["map *DEVIATION", "*DEVIATION map on mine: our map yields in completion order*"]
    )


def test_a_deviation_of_one_property_leaves_the_other_tests_of_its_area_strict(
    pytester: pytest.Pytester,
) -> None:
    """``AREA/NAME`` (a test's name without ``test_``) expects the failure of that test only:
    another test of the same area that fails is a FAIL."""
    pytester.makepyfile(
        mypool="""
        import concurrent.futures
        from pytest_futures_plugin.backends import Backend

        def backend():
            return Backend(
                "ignored",
                concurrent.futures.ThreadPoolExecutor,
                deviations={"map/map_order": "our map yields in completion order, by design"},
            )
        """,
        test_spec="""
        import pytest

        pytestmark = pytest.mark.futures_area("map")

        def test_map_order(executor_backend):
            assert False, "completion order"

        def test_map_timeout(executor_backend):
            assert False, "no TimeoutError"
        """,
    )
    info = pytester.mkdir("mypool-1.0.dist-info")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypool\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest_futures.backends]\nmine = mypool:backend\n")
    result = run(pytester, "--executor=mine")
    result.assert_outcomes(xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["map *FAIL", "*test_map_timeout*no TimeoutError*"])
