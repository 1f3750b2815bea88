"""The comparison table of issue 15: the same programs under pytest-futures and its two
Python peers, frontrun and interleave-test, each policy of each tool in a process of its own.

The programs are the race programs of ``tests/scheduler/races.py`` (the ones
``bench_search.py`` runs), in their racy versions:

- ``waiting``, ``waiting-itself``: the seed tutorial's two deadlocks (two pool tasks waiting on
  each other's futures; a task of a pool of one waiting on a task it submitted there), on
  executor_impl's pool; ``waiting-stdlib``, ``itself-stdlib``: the same on the stdlib's (the
  tutorial's own);
- ``lost-threads``, ``lost-pool``, ``lost-stdlib``: a done callback lost by a check-then-append
  outside the lock, between two plain threads, or the caller and a worker of executor_impl's
  pool or of the stdlib's;
- ``plus-equals``: ``counter += 1`` from two threads;
- ``rate``, ``rate-impl``: no race, 3 tasks on a pool of 2 workers (the stdlib's, executor_impl's),
  run ``--rate-schedules`` times: schedules per second.

The policies: pytest-futures ``random``, ``pct`` (depth 3) and ``systematic`` (preemption
bound 2, fine-grained points on the programs' file for ``plus-equals``); frontrun ``dpor`` (its
default, preemption bound 2) and ``random`` (opcode schedules); interleave-test ``random``,
``pct`` and ``dfs`` (at most 2 preemptions). Each tool is driven the way its documentation
shows: interleave-test runs the program as its model (it patches ``threading`` in the run);
frontrun takes shared state and the threads to explore, so the threads of ``lost-threads`` and
``plus-equals`` are its workers, and each other program is one worker that runs it (a failure
raised in it breaks the invariant).

Each cell runs ``--runs`` times (seed offsets for the seeded policies) with a budget of
``--limit`` schedules, in a fresh process bounded by ``--timeout`` seconds: a cell that does not
end in time is killed and shown as ``hung``. Shown: the median schedules to the first failure
(or ``missed in N``), the median seconds, and the first lines of what the tool reported. A peer
that is not installed (both need Python 3.13 here: ``pip install frontrun==0.7.0
interleave-test==0.1.0``) is skipped with a note::

    python bench/bench_peers.py [--runs 3] [--limit 500] [--timeout 60] [--rate-schedules 200]
                                [--tool NAME]... [--program NAME]... [--json PATH]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import concurrent.futures._base
import concurrent.futures.thread
import contextlib
import importlib
import importlib.metadata
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import executor_impl  # noqa: E402
from bench.bench_search import MODULES, failure, fine, what_it_says  # noqa: E402
from pytest_futures_plugin.scheduler import PCT, Policy, RandomPolicy, Scheduler  # noqa: E402
from pytest_futures_plugin.scheduler.search import explore  # noqa: E402
from tests.scheduler import races  # noqa: E402

STDLIB_POOL = concurrent.futures.ThreadPoolExecutor
RACY: dict[str, Callable[[bool], races.Program]] = {
    "waiting": races.waiting_on_each_other,
    "waiting-itself": races.waiting_on_itself,
    "waiting-stdlib": lambda racy: races.waiting_on_each_other(racy, STDLIB_POOL),
    "itself-stdlib": lambda racy: races.waiting_on_itself(racy, STDLIB_POOL),
    "lost-threads": races.lost_on_threads,
    "lost-pool": races.lost_on_the_pool,
    "lost-stdlib": races.lost_on_the_stdlib_pool,
    "plus-equals": races.two_increments,
}
RATE: dict[str, Callable[[], races.Program]] = {
    "rate": lambda: races.three_tasks(STDLIB_POOL),
    "rate-impl": lambda: races.three_tasks(executor_impl.ThreadPoolExecutor),
}
PROGRAMS = [*RACY, *RATE]
TOOLS: dict[str, tuple[str, ...]] = {
    "pytest-futures": ("random", "pct", "systematic"),
    "frontrun": ("dpor", "random"),
    "interleave-test": ("random", "pct", "dfs"),
}
PEERS = {"frontrun": "frontrun", "interleave-test": "interleave_test"}  # tool: module
MEASURED = {"frontrun": ("0.7.0", "3.10"), "interleave-test": ("0.1.0", "3.12")}
"""The versions the table of issue 15 was measured with, and the Python each needs."""
BOUND = 2  # preemptions, for every systematic policy
SCHEDULE_TIMEOUT = 10.0  # seconds a peer may spend on one schedule before it calls it a hang
MARK = "CELL-RESULT "


# -- one cell, in its own process -----------------------------------------------------------


def cell(tool: str, policy: str, program: str, seed: int, limit: int) -> dict[str, Any]:
    """Run *program* under *tool*'s *policy*: ``found`` (True, False, or None when the tool
    could not say), ``schedules`` it ran, ``seconds``, and ``report``: the lines it printed."""
    run = {"pytest-futures": ours, "frontrun": frontrun, "interleave-test": interleave}[tool]
    started = time.perf_counter()
    result = run(policy, program, seed, limit)
    result["seconds"] = time.perf_counter() - started
    return result


def ours(policy: str, program: str, seed: int, limit: int) -> dict[str, Any]:
    if program in RATE:
        stdlib = (concurrent.futures.thread, concurrent.futures._base)
        modules = MODULES if program == "rate-impl" else stdlib
        for n in range(limit):
            Scheduler(RandomPolicy(seed + n), modules=modules).run(RATE[program]())
        return {"found": False, "schedules": limit, "report": []}
    make = RACY[program]
    with fine(program == "plus-equals"):
        if policy == "systematic":
            search = explore(
                make(True),
                preemption_bound=BOUND,
                max_schedules=limit,
                modules=MODULES,
                raise_on_failure=False,
            )
            found = search.failure is not None
            said = what_it_says(search.report()) if found else [search.report()]
            return {"found": found, "schedules": search.schedules, "report": said}
        policies: dict[str, Callable[[int], Policy]] = {
            "random": RandomPolicy,
            "pct": lambda s: PCT(s, depth=3),
        }
        for n in range(1, limit + 1):
            message = failure(make(True), policies[policy](seed + n))
            if message is not None:
                return {"found": True, "schedules": n, "report": message.splitlines()[:8]}
    return {"found": False, "schedules": limit, "report": []}


class _Shared:
    """frontrun's shared state for a program run by one worker: the failure it raised."""

    def __init__(self) -> None:
        self.error: str | None = None


def _run_catching(program: races.Program) -> Callable[[_Shared], None]:
    def worker(state: _Shared) -> None:
        try:
            program()
        except Exception as error:
            state.error = f"{type(error).__name__}: {error}"

    return worker


def _frontrun_shape(program: str) -> dict[str, Any]:
    """frontrun's setup, workers and invariant for *program*."""
    if program == "lost-threads":
        return {
            "setup": lambda: (races.Box(True), []),
            "workers": [
                lambda s: s[0].add_done_callback(lambda: s[1].append(1)),
                lambda s: s[0].set_done(),
            ],
            "invariant": lambda s: s[1] == [1],
        }
    if program == "plus-equals":

        def setup() -> None:
            races.counter = 0

        return {
            "setup": setup,
            "workers": [lambda _: races.increment(), lambda _: races.increment()],
            "invariant": lambda _: races.counter == 2,
        }
    make = RATE[program] if program in RATE else lambda: RACY[program](True)
    return {
        "setup": _Shared,
        "workers": [_run_catching(make())],
        "invariant": lambda s: s.error is None,
    }


def frontrun(policy: str, program: str, seed: int, limit: int) -> dict[str, Any]:
    tool: Any = importlib.import_module("frontrun")
    budget = (
        {"max_attempts": limit, "seed": seed}
        if policy == "random"
        else {"max_executions": limit, "preemption_bound": BOUND}
    )
    if program in RATE and policy == "dpor":
        budget["stop_on_first"] = False  # no failure to stop at: every execution counts
    result = tool.explore(
        **_frontrun_shape(program),
        strategy=policy,
        reproduce_on_failure=0,
        timeout_per_run=SCHEDULE_TIMEOUT,
        **budget,
    )
    said = [line for line in (result.explanation or "").splitlines() if line.strip()]
    holds = result.property_holds  # True: a pass; False: a failure found; None: inconclusive
    if holds is None:
        reason = result.inconclusive_reason or ""
        said = [f"inconclusive: {reason}", *(line for line in said if line != reason)]
    found = None if holds is None else not holds
    return {"found": found, "schedules": result.num_explored, "report": said[:10]}


def interleave(policy: str, program: str, seed: int, limit: int) -> dict[str, Any]:
    tool: Any = importlib.import_module("interleave_test")
    model = RATE[program]() if program in RATE else RACY[program](True)
    result = tool.explore(
        model,
        iterations=limit,
        seed=seed,
        strategy=policy,
        max_preemptions=BOUND,
        timeout=SCHEDULE_TIMEOUT,
        raise_on_failure=False,
    )
    if result.failure is None:
        return {"found": False, "schedules": result.schedules_run, "report": []}
    lines = result.failure.format(max_steps=3).splitlines()
    said = [line for line in lines if line.strip() and not line.startswith(("reproduce", "rerun"))]
    trace = [line for line in said if line.startswith(("Traceback", "  File"))]
    said = [line for line in said if line not in trace]
    return {
        "found": True,
        "kind": result.failure.kind,  # exception, deadlock or hang (its per-schedule timeout)
        "schedules": result.failure.iteration + 1,
        "report": said[:12],
    }


# -- the table, in the parent ---------------------------------------------------------------


def installed(tool: str) -> str | None:
    """The version of peer *tool* if it can be imported here, else None."""
    if tool not in PEERS:
        return importlib.metadata.version("pytest-futures")
    try:
        importlib.import_module(PEERS[tool])
    except ImportError:
        return None
    return importlib.metadata.version(tool)


def command(tool: str, policy: str, program: str, seed: int, limit: int) -> list[str]:
    this = [sys.executable, str(Path(__file__).resolve())]
    args = ["--cell", tool, policy, program, "--seed", str(seed), "--limit", str(limit)]
    if tool == "frontrun":  # frontrun explores only under its command-line wrapper
        return [sys.executable, "-m", "frontrun.cli", *this, *args]
    return [*this, *args]


def run_cell(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run one cell's process; its result, or ``hung`` when it did not end in *timeout* s
    (the process group it started is killed then; a result it printed first is kept)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    hung = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    wall = time.perf_counter() - started
    lines = [line for line in out.splitlines() if line.startswith(MARK)]
    if lines:
        result: dict[str, Any] = json.loads(lines[-1][len(MARK) :])
        result["exited"] = not hung
    elif hung:
        result = {"found": None, "schedules": None, "report": [], "hung": True, "exited": False}
    else:
        tail = (err or out).strip().splitlines()[-3:]
        result = {"found": None, "schedules": None, "report": ["error: ", *tail], "exited": True}
    result["wall"] = wall
    return result


def summary(results: list[dict[str, Any]], limit: int, timeout: float, rate: bool) -> str:
    """One cell of the table: the medians over the runs, and what went wrong in any."""
    if any(r.get("hung") for r in results):
        return f"hung (killed after {timeout:g} s)"
    seconds = statistics.median(r["seconds"] for r in results if "seconds" in r)
    exits = "" if all(r["exited"] for r in results) else f"; process did not exit in {timeout:g} s"
    kinds = sorted({r["kind"] for r in results if r.get("kind", "exception") != "exception"})
    called = f" as a {'/'.join(kinds)}" if kinds else ""
    if rate:
        failed = [r for r in results if r["found"]]
        if failed:  # a program with no bug: a tool's false report
            return f"failed{called} on schedule {failed[0]['schedules']} ({seconds:.1f} s){exits}"
        rates = [r["schedules"] / r["seconds"] for r in results]
        return f"{statistics.median(rates):,.0f}/s ({min(rates):,.0f}-{max(rates):,.0f}){exits}"
    if any(r["found"] is None for r in results):
        return f"inconclusive after {seconds:.1f} s{exits}"
    if all(r["found"] is False for r in results):
        n = statistics.median(r["schedules"] for r in results)
        return f"missed in {n:g} schedules ({seconds:.2f} s){exits}"
    counts = [r["schedules"] if r["found"] else limit + 1 for r in results]
    n = statistics.median(counts)
    shown = f"{n:g}" if n <= limit else f">{limit}"
    spread = f", {min(counts)}-{max(counts)}" if len(set(counts)) > 1 else ""
    return f"found{called} after {shown}{spread} ({seconds:.2f} s){exits}"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (seed offsets)")
    parser.add_argument("--limit", type=int, default=500, help="schedules per run at most")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per run at most")
    parser.add_argument("--rate-schedules", type=int, default=200, help="schedules per rate run")
    parser.add_argument("--tool", action="append", choices=list(TOOLS), help="default: all")
    parser.add_argument("--program", action="append", choices=PROGRAMS, help="default: all")
    parser.add_argument("--json", help="write every run's result as JSON to this path")
    parser.add_argument("--cell", nargs=3, metavar=("TOOL", "POLICY", "PROGRAM"), help="internal")
    parser.add_argument("--seed", type=int, default=0, help="internal: the cell's seed")
    args = parser.parse_args()
    if args.runs < 1 or args.limit < 1 or args.rate_schedules < 1 or args.timeout <= 0:
        parser.error(
            "--runs, --limit and --rate-schedules must be >= 1 and --timeout > 0: "
            f"{args.runs}, {args.limit}, {args.rate_schedules}, {args.timeout}"
        )
    if args.cell:
        tool, policy, program = args.cell
        result = cell(tool, policy, program, args.seed, args.limit)
        print(MARK + json.dumps(result), flush=True)
        # A peer may leave threads blocked for ever (a deadlock it did not report), which
        # would hold the interpreter's exit: the result is out, so leave at once.
        os._exit(0)
    print(f"Python {platform.python_version()}; median of {args.runs} runs per cell; {load()}")
    tools: dict[str, str] = {}
    for tool in args.tool or TOOLS:
        version = installed(tool)
        if version is None:
            wanted, python = MEASURED[tool]
            print(
                f"{tool}: not installed here (pip install {tool}=={wanted}; it needs Python "
                f">= {python}): skipped"
            )
            continue
        if tool in MEASURED and version != MEASURED[tool][0]:
            print(f"{tool}: {version} here; the issue's table was measured on {MEASURED[tool][0]}")
        tools[tool] = version
    print("tools: " + ", ".join(f"{tool} {version}" for tool, version in tools.items()))
    figures: dict[str, Any] = {"python": platform.python_version(), "load": [], "cells": {}}
    reports: list[str] = []
    for program in args.program or PROGRAMS:
        rate = program in RATE
        limit = args.rate_schedules if rate else args.limit
        print(f"\n{program}" + (f" ({limit} schedules per run)" if rate else ""))
        for tool in tools:
            for policy in TOOLS[tool]:
                if rate and policy not in ("random", "dpor"):
                    continue  # the rate of random schedules (frontrun's DPOR: its only one)
                results = []
                for run in range(args.runs):
                    seed = run * 100_000
                    argv = command(tool, policy, program, seed, limit)
                    results.append(run_cell(argv, args.timeout))
                figures["load"].append(os.getloadavg()[0])
                text = summary(results, limit, args.timeout, rate)
                print(f"  {tool + ' ' + policy:28s} {text}")
                figures["cells"][f"{program} {tool} {policy}"] = results
                said: list[str] = next((r["report"] for r in results if r.get("report")), [])
                if said and not rate:
                    reports.append(f"{program}, {tool} {policy}:")
                    reports += [f"    {line[:160]}" for line in said]
    if reports:
        print("\nwhat each tool reported (the first run that reported something)")
        print("\n".join(reports))
    print(f"\n{load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
