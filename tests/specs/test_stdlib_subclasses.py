"""A plain subclass of a stdlib pool gets exactly the stdlib's matrix, with no FAIL.

The subclasses (``tests/specs/subclasses.py``) change nothing, one of each pair takes
``*args, **kwargs``: known bugs are found by behaviour on them as on the stdlib (KNOWN-BUG, not
FAIL), and a capability is tried, not read from a signature that accepts any keyword. Each case
runs the whole specification in a pytest subprocess on the stdlib's pool and its subclasses, as
a user would with ``--executor=MODULE:ATTR``, and compares the JSON reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"

POOLS = {
    "stdlib-thread": (
        "tests.specs.subclasses:ThreadPool",
        "tests.specs.subclasses:ThreadPoolPassingOn",
    ),
    "stdlib-process": (
        "tests.specs.subclasses:ProcessPool",
        "tests.specs.subclasses:ProcessPoolPassingOn",
    ),
}


def _matrix(
    report: dict[str, Any], backend: str
) -> dict[str, tuple[str, list[str], dict[str, str]]]:
    """Each area's cell on *backend*: its status, its issues and each test's status (by the
    test's id without the backend)."""
    cells = {}
    for cell in report["cells"]:
        if cell["backend"] == backend:
            tests = {t["id"].replace(backend, "BACKEND"): t["status"] for t in cell["tests"]}
            cells[cell["area"]] = (cell["status"], cell["issues"], tests)
    return cells


@pytest.mark.slow
@pytest.mark.parametrize("stdlib", sorted(POOLS))
def test_a_plain_subclass_gets_the_stdlib_matrix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, stdlib: str
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        str(SPECS),
        f"--executor={','.join([stdlib, *POOLS[stdlib]])}",
        "--futures-seed=1",
        f"--futures-report={report}",
        "-p",
        "no:cacheprovider",
        timeout=900,
    )
    assert result.ret == 0, result.stdout.str()
    data = json.loads(report.read_text())
    expected = _matrix(data, stdlib)
    assert expected, f"no cell for {stdlib}"
    assert all(status != "FAIL" for status, _, _ in expected.values()), expected
    for subclass in POOLS[stdlib]:
        assert _matrix(data, subclass) == expected, subclass
