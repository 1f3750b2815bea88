"""Every spec area catches its deliberately broken executors (``tests/specs/broken/``).

Each case runs one spec module against one broken backend, given as ``MODULE:ATTR`` exactly as
a user would, in a pytest subprocess, and expects a failure in the conformance matrix. The
specs' passing on correct executors is shown by the main suite running them on every backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .broken import Broken, all_cases

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"

CASES = all_cases()


def test_every_spec_area_has_at_least_two_broken_executors() -> None:
    by_spec: dict[str, int] = {}
    for case in CASES:
        by_spec[case.spec] = by_spec.get(case.spec, 0) + 1
    areas = sorted(path.name for path in SPECS.glob("test_*.py"))
    assert {area: by_spec.get(area, 0) for area in areas if by_spec.get(area, 0) < 2} == {}


@pytest.mark.parametrize("case", CASES, ids=[case.factory.partition(":")[2] for case in CASES])
def test_the_spec_catches_the_broken_executor(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, case: Broken
) -> None:
    # Only broken executors run here: a lost future may fail after 5 s rather than 30.
    monkeypatch.setenv("PYTEST_FUTURES_SPEC_BOUND", "5")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = pytester.runpytest_subprocess(
        str(SPECS / case.spec),
        f"--executor={case.factory}",
        "--futures-seed=1",
        "-p",
        "no:cacheprovider",
        timeout=600,
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, f"{case.bug}: not caught\n{result.stdout.str()}"
    result.stdout.fnmatch_lines(["*FAIL*"])
