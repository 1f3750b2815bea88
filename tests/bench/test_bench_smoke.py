"""Smoke tests of the scripts in bench/: each runs and prints its table.

Benchmarks are not tests: nothing here looks at a timing or a ratio, only at the exit
status and the shape of the output.  Only the fastest benchmarks run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
PEER_NAMES = ("frontrun", "interleave-test")


def run_table(script: str, args: list[str], cwd: Path, timeout: float) -> tuple[str, list[str]]:
    """Run bench/*script* with *args* from *cwd*; return its stdout and its table's lines.

    The table is the header line (starting ``metric``), its rule, then one row per metric.
    """
    # From another directory: the script must find the harness and the project on its own.
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next((n for n, line in enumerate(lines) if line.startswith("metric ")), None)
    assert header is not None, proc.stdout
    assert set(lines[header + 1]) <= {"-", " "}, proc.stdout
    return proc.stdout, lines[header:]


def test_bench_thread_quick_prints_a_table(tmp_path: Path) -> None:
    labels = ["list(map(fn, range(K))), 4 workers", "Future()+callback+set_result+result"]
    out, table = run_table(
        "bench_thread.py", ["--quick", "--bench", "lifecycle", "--bench", "map"], tmp_path, 60
    )
    assert "executor_impl/stdlib" in table[0], out
    # One row per metric, in the benchmarks' order, each with a column for executor_impl.
    rows = table[2 : 2 + len(labels)]
    assert [row[: len(label)] for row, label in zip(rows, labels)] == labels, out


def test_bench_process_quick_spawn_prints_a_table(tmp_path: Path) -> None:
    # The spawn start method: the workers must import the task functions by module name,
    # through the sys.path the script set up, even though bench/ is not a package.
    labels = [
        "submit().result() p50, 1 worker",
        "submit().result() p99, 1 worker",
        "  CPU per round trip, parent + worker",
    ]
    out, table = run_table(
        "bench_process.py",
        ["--quick", "--repeat", "1", "--context", "spawn", "--bench", "latency"],
        tmp_path,
        120,
    )
    assert "context='spawn'" in out, out
    # executor_impl, or the stdlib against itself while executor_impl has no process pool.
    assert "/stdlib" in table[0], out
    assert "target" in table[0].split(), out
    rows = table[2 : 2 + len(labels)]
    assert [row[: len(label)] for row, label in zip(rows, labels)] == labels, out
    if sys.platform == "linux":
        # The workers' CPU is read from /proc: a row of real numbers, not nan.
        assert "nan" not in rows[2], out


def test_bench_search_prints_its_table_proofs_and_targets(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_search.py"), "--limit", "20", "--runs", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split()[0] for line in proc.stdout.splitlines() if line]
    for program in ("waiting", "lost-threads", "lost-pool", "plus-equals"):
        assert rows.count(program) >= 2, proc.stdout  # its row, then its proof
    targets = proc.stdout.split("targets of issue 15\n", 1)[-1].splitlines()
    # One verdict per target of issue 15: 4 seed deadlocks, 3 lost callbacks, '+=', 8 proofs.
    assert len(targets) == 16, proc.stdout
    assert all(line.startswith(("met ", "MISSED ")) for line in targets), proc.stdout


def test_bench_peers_runs_without_the_peers_and_says_so(tmp_path: Path) -> None:
    # The peers made unimportable (a None in sys.modules), whether installed or not.
    hide = (
        "import runpy, sys\n"
        "sys.modules['frontrun'] = sys.modules['interleave_test'] = None\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    args = ["--runs", "1", "--limit", "5", "--rate-schedules", "2", "--timeout", "60"]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            hide,
            str(BENCH / "bench_peers.py"),
            *args,
            *("--program", "lost-threads", "--program", "rate"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for peer in PEER_NAMES:
        assert f"{peer}: not installed here (pip install {peer}==" in proc.stdout, proc.stdout
    # One row per policy of pytest-futures for the race, then the rate's; none of a peer.
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("  ")]
    tools = [row[:2] for row in rows if row[0] in ("pytest-futures", *PEER_NAMES)]
    ours = [["pytest-futures", policy] for policy in ("random", "pct", "systematic", "random")]
    assert tools == ours, proc.stdout
    assert rows[2][2:4] == ["found", "after"], proc.stdout  # the search, within 5 schedules
