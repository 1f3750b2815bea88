"""executor_impl passes this interpreter's own concurrent.futures test suite.

CPython 3.9, 3.10 and 3.13 on this machine ship their tests for ``concurrent.futures``
(3.11 and 3.12 builds here were installed without them); where the suite is absent, the
test is skipped and says so.  ``run_suite.py`` runs it in a subprocess against executor_impl.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("run_suite.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("test.test_concurrent_futures") is None,
    reason="this interpreter was installed without its test suite (test.test_concurrent_futures)",
)
def test_executor_impl_passes_the_interpreters_own_suite() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    completed = subprocess.run(
        [sys.executable, str(RUNNER)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    summary = completed.stderr[-4000:]
    assert completed.returncode == 0, f"CPython's suite failed against executor_impl:\n{summary}"
    assert "\nOK" in completed.stderr, summary
