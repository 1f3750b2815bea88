"""An executor that hangs still gets a verdict: the whole specification ends on its own, with
FAIL cells naming what hung, well before any outer timeout.

Each case runs every spec on one executor of ``tests/specs/broken/hanging.py`` in a pytest
subprocess, with a short per-call bound (``--futures-spec-bound``), and checks the JSON report
and the wall time. Without per-call bounds and without stopping Hypothesis at the first hang,
these runs took longer than pytest-timeout allows (every shrink step re-ran the hang).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"

SPEC_BOUND = 2.0
"""Seconds per blocking call in these runs (the default is 10)."""

WALL_BOUND = 300.0
"""Seconds the whole specification may take on one hanging executor (about two minutes here
on a loaded two-core machine; the subprocess itself is killed at twice that)."""

HANGING = [
    "tests.specs.broken.hanging:WorkerDiesOnARaisingCallback",
    "tests.specs.broken.hanging:AsCompletedMissesDoneFutures.ThreadPoolExecutor",
    "tests.specs.broken.hanging:SwallowsBaseException",
]

HANG_DUMPS = set(HANGING[1:])
"""The executors whose FAILs include hung examples, each printed with the wait-for dump. The
pool whose worker dies is caught before any wait runs out: a raising callback that is never
logged, a cancelled call that still ran."""

DEADLOCK = "tests.specs.broken.callbacks:SubmitWaitsForShutdown.ThreadPoolExecutor"
"""``shutdown(wait=True)`` holds the lock that a done callback's ``submit()`` needs."""


@pytest.mark.slow
@pytest.mark.parametrize("factory", HANGING, ids=[f.rpartition(":")[2] for f in HANGING])
def test_a_hanging_executor_gets_fail_verdicts_in_bounded_time(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, factory: str
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    report = pytester.path / "report.json"
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        str(SPECS),
        f"--executor={factory}",
        "--futures-seed=1",
        f"--futures-spec-bound={SPEC_BOUND:g}",
        "--futures-hang-timeout=60",
        f"--futures-report={report}",
        "-p",
        "no:cacheprovider",
        timeout=2 * WALL_BOUND,
    )
    elapsed = time.monotonic() - started
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    assert elapsed < WALL_BOUND, f"the specs took {elapsed:.0f}s on {factory}"
    cells = json.loads(report.read_text())["cells"]
    assert any(cell["status"] == "FAIL" for cell in cells), cells
    result.stdout.fnmatch_lines(["*pytest-futures conformance*", "FAIL *"])
    if factory in HANG_DUMPS:
        result.stdout.fnmatch_lines(
            ["*The example hung*", "*What every thread waited on*", "*Waits:*", "*Threads (*"]
        )


def test_a_deadlocked_executor_fails_with_what_each_thread_waits_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool whose ``shutdown(wait=True)`` deadlocks with a done callback's ``submit()`` gets
    a FAIL within one bound, whose message shows the shutdown joining the worker that waits."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        str(SPECS / "test_callbacks.py"),
        "-k",
        "may_submit_while_shutdown_waits",
        f"--executor={DEADLOCK}",
        f"--futures-spec-bound={SPEC_BOUND:g}",
        "-p",
        "no:cacheprovider",
        timeout=WALL_BOUND,
    )
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*neither returned nor raised within*",
            "*Waits:*",
            "*shutdown(wait=True) waits in Thread.join() on thread*",
            "*Threads (*",
            "FAIL callbacks on *SubmitWaitsForShutdown*",
        ]
    )
    assert elapsed < 10 * SPEC_BOUND + 30, elapsed


def test_a_hung_example_is_not_shrunk_and_shows_what_waited(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The as_completed that misses done futures waits out the bound once: the failure is
    reported as a hang with the wait-for dump, not re-run by shrinking."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        str(SPECS / "test_waiting.py"),
        "-k",
        "bare_futures",
        f"--executor={HANGING[1]}",
        "--futures-seed=1",
        f"--futures-spec-bound={SPEC_BOUND:g}",
        "-p",
        "no:cacheprovider",
        timeout=WALL_BOUND,
    )
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*SpecHangError*",
            "*The example hung: it failed after*not shrunk, nor re-run. Its steps:",
            "*state = BareFutures()",
            "*state.*(*)",
            "*state.teardown()",
            "*What every thread waited on when it failed:",
            "*Threads (*",
        ]
    )
    # One bound for the hang, plus start-up: not one bound per shrink step.
    assert elapsed < 10 * SPEC_BOUND + 30, elapsed
