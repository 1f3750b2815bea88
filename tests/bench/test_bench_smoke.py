"""Smoke test of bench/bench_thread.py: it runs and prints its table.

Benchmarks are not tests: nothing here looks at a timing or a ratio, only at the exit
status and the shape of the output.  Only the two fastest benchmarks run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_thread.py"
ARGS = ["--quick", "--bench", "lifecycle", "--bench", "map"]
LABELS = ["list(map(fn, range(K))), 4 workers", "Future()+callback+set_result+result"]


def test_bench_thread_quick_prints_a_table(tmp_path: Path) -> None:
    # From another directory: the script must find the harness and the project on its own.
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *ARGS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next((n for n, line in enumerate(lines) if line.startswith("metric ")), None)
    assert header is not None, proc.stdout
    assert "executor_impl/stdlib" in lines[header], proc.stdout
    assert set(lines[header + 1]) <= {"-", " "}, proc.stdout
    # One row per metric, in the benchmarks' order, each with a column for executor_impl.
    rows = lines[header + 2 : header + 2 + len(LABELS)]
    assert [row[: len(label)] for row, label in zip(rows, LABELS)] == LABELS, proc.stdout
