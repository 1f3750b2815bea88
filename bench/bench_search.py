"""Schedules to the first failure, per policy, and proofs up to a preemption bound.

The programs of issue 15 (``tests/scheduler/races.py``, which the search's tests run too),
each in a racy and a correct version:

- ``waiting``: two pool tasks waiting on each other's futures (the seed tutorial's first
  deadlock);
- ``waiting-itself``: a task of a pool of one waiting on a task it submitted there (the seed
  tutorial's second deadlock);
- ``waiting-stdlib``, ``itself-stdlib``: the same two on the stdlib's pool (the tutorial's);
- ``lost-threads``: a done callback lost by a check-then-append outside the lock, between two
  plain threads;
- ``lost-pool``, ``lost-stdlib``: the same race between the caller and a pool's worker
  (executor_impl's pool, the stdlib's);
- ``plus-equals``: ``counter += 1`` from two threads (no lock: found only with fine-grained
  scheduling points on the programs' file, which every policy here gets for it).

Each racy version runs under ``RandomPolicy``, ``PCT`` (depth 3) and the systematic search
(preemption bound 2) until its first failing schedule; the table gives the schedules it took
(the median over ``--runs`` seed offsets for the random policies; the search is
deterministic), then what the search's report of the failure says (its first line and the
conflicting accesses it names). Each correct version is then searched exhaustively up to the
bound, with the time it took. Last, each target of issue 15 with ``met`` or ``MISSED``::

    python bench/bench_search.py [--limit N] [--runs R] [--bound K] [--json PATH]

Targets (issue 15): the seed deadlocks found under every policy; the lost callback found by
the search within 50 schedules on threads and on the pools, ``+=`` within 20 with its
conflicting source lines named; correct versions proven clean to K=2 in under 2 s each.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import concurrent.futures._base
import concurrent.futures.thread
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor_impl import _sync
from pytest_futures_plugin.scheduler import PCT, Policy, RandomPolicy, Scheduler
from pytest_futures_plugin.scheduler._tracing import FineGrained
from pytest_futures_plugin.scheduler.search import explore
from tests.scheduler import races

STDLIB_POOL = concurrent.futures.ThreadPoolExecutor
PROGRAMS: dict[str, tuple[Callable[[bool], races.Program], bool]] = {
    "waiting": (races.waiting_on_each_other, False),
    "waiting-itself": (races.waiting_on_itself, False),
    "waiting-stdlib": (lambda racy: races.waiting_on_each_other(racy, STDLIB_POOL), False),
    "itself-stdlib": (lambda racy: races.waiting_on_itself(racy, STDLIB_POOL), False),
    "lost-threads": (races.lost_on_threads, False),
    "lost-pool": (races.lost_on_the_pool, False),
    "lost-stdlib": (races.lost_on_the_stdlib_pool, False),
    "plus-equals": (races.two_increments, True),  # fine-grained points on the programs' file
}
MODULES = (races, _sync, concurrent.futures.thread, concurrent.futures._base)


def failure(program: races.Program, policy: Policy) -> str | None:
    """Run *program* once under *policy*: the failure's message (its exception, or the
    threads it left blocked), or None when it passed."""
    scheduler = Scheduler(policy, modules=MODULES)
    try:
        scheduler.run(program)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    if scheduler.leftovers:
        return "threads left blocked at the end: " + "; ".join(scheduler.leftovers)
    return None


def first_failure(
    program: races.Program, make: Callable[[int], Policy], offset: int, limit: int
) -> int:
    for n in range(1, limit + 1):
        if failure(program, make(offset + n)) is not None:
            return n
    return limit + 1  # not found


def fine(enabled: bool) -> contextlib.AbstractContextManager[Any]:
    return FineGrained([races.__file__]) if enabled else contextlib.nullcontext()


SEED_DEADLOCKS = ("waiting", "waiting-itself", "waiting-stdlib", "itself-stdlib")
LOST_CALLBACKS = ("lost-threads", "lost-pool", "lost-stdlib")
TARGETS = {"lost": 50, "plus-equals": 20, "proof_seconds": 2.0}


def what_it_says(report: str) -> list[str]:
    """The lines of a failing search's report a reader looks at first: the failure (its
    first line), then the wait-for graph of a deadlock or the conflicting accesses of a race;
    not the schedule and its trace."""
    lines = report.splitlines()
    said = [lines[0]]
    for heading in ("Wait-for graph:", "conflicting accesses:"):
        if heading in lines:
            start = lines.index(heading)
            end = next(
                (n for n, line in enumerate(lines) if n > start and not line.startswith(" ")),
                len(lines),
            )
            said += lines[start:end]
            if end < len(lines) and lines[end].startswith("Cycle:"):
                said.append(lines[end])
    return said


def targets(figures: dict[str, Any], policies: list[str], bound: int, limit: int) -> list[str]:
    """Each target of issue 15, ``met`` or ``MISSED``, with the figure it was judged on."""

    def verdict(ok: bool) -> str:
        return "met   " if ok else "MISSED"

    lines = []
    for name in SEED_DEADLOCKS:
        found = {p: figures[name][p] for p in [*policies, "systematic"]}
        ok = all(n is not None and n <= limit for n in found.values())
        lines.append(f"{verdict(ok)} seed deadlock {name!r} found under every policy: {found}")
    for name in LOST_CALLBACKS:
        n = figures[name]["systematic"]
        ok = n is not None and n <= TARGETS["lost"]
        lines.append(f"{verdict(ok)} {name}: found by the search in {n} <= {TARGETS['lost']}")
    n = figures["plus-equals"]["systematic"]
    named = [
        line for line in figures["plus-equals"]["report"] if "read" in line and "wrote" in line
    ]
    ok = n is not None and n <= TARGETS["plus-equals"] and bool(named)
    lines.append(
        f"{verdict(ok)} plus-equals: found by the search in {n} <= {TARGETS['plus-equals']}, "
        f"the read and the write named: {named[0].strip() if named else 'no'}"
    )
    for name, row in figures.items():
        proof = row["proof"]
        ok = proof["exhausted"] and not proof["failed"]
        ok = ok and proof["seconds"] < TARGETS["proof_seconds"]
        lines.append(
            f"{verdict(ok)} {name} (correct) proven clean to K={bound} in "
            f"{proof['seconds']:.2f} s < {TARGETS['proof_seconds']:g} s"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=2000, help="schedules per random run")
    parser.add_argument("--runs", type=int, default=5, help="seed offsets per random policy")
    parser.add_argument("--bound", type=int, default=2, help="preemption bound")
    parser.add_argument("--json", help="write the figures as JSON to this path")
    args = parser.parse_args()
    if args.limit < 1 or args.runs < 1 or args.bound < 0:
        parser.error(
            f"--limit and --runs must be >= 1 and --bound >= 0: "
            f"--limit {args.limit}, --runs {args.runs}, --bound {args.bound}"
        )
    policies: dict[str, Callable[[int], Policy]] = {
        "random": RandomPolicy,
        "pct": lambda seed: PCT(seed, depth=3),
    }
    figures: dict[str, Any] = {}
    reports: dict[str, list[str]] = {}
    print(f"schedules to the first failure (random/pct: median of {args.runs} seed offsets)")
    print(f"{'program':14s} {'random':>8s} {'pct':>8s} {'systematic':>11s}   search time")
    for name, (make, grained) in PROGRAMS.items():
        row: dict[str, Any] = {}
        with fine(grained):
            for label, policy in policies.items():
                counts = [
                    first_failure(make(True), policy, run * 100_000, args.limit)
                    for run in range(args.runs)
                ]
                median = statistics.median(counts)
                row[label] = median if median <= args.limit else None
            started = time.perf_counter()
            found = explore(
                make(True), preemption_bound=args.bound, modules=MODULES, raise_on_failure=False
            )
            row["systematic"] = found.schedules if found.failure is not None else None
            row["search_seconds"] = time.perf_counter() - started
            row["report"] = what_it_says(found.report())
        cells = [
            f"{row[p]:>8g}" if row[p] is not None else f"{'>' + str(args.limit):>8s}"
            for p in policies
        ]
        systematic = "none" if row["systematic"] is None else str(row["systematic"])
        print(f"{name:14s} {' '.join(cells)} {systematic:>11s}   {row['search_seconds']:.3f} s")
        figures[name], reports[name] = row, row["report"]
    blind = explore(races.two_increments(True), preemption_bound=args.bound, modules=MODULES)
    print(f"plus-equals without fine-grained points: {blind.report()}")
    figures["plus-equals"]["without_fine_grained"] = blind.schedules
    print("\nwhat the search's report of each failure says")
    for name, said in reports.items():
        print(f"{name:14s} " + "\n               ".join(said))
    print(f"\ncorrect versions, searched to a preemption bound of {args.bound}")
    for name, (make, grained) in PROGRAMS.items():
        started = time.perf_counter()
        proof = explore(
            make(False),
            preemption_bound=args.bound,
            modules=MODULES,
            fine=[races.__file__] if grained else (),
            raise_on_failure=False,
        )
        seconds = time.perf_counter() - started
        print(f"{name:14s} {proof.report()}")
        figures[name]["proof"] = {
            "schedules": proof.schedules,
            "exhausted": proof.exhausted,
            "failed": proof.failure is not None,
            "seconds": seconds,
        }
    print("\ntargets of issue 15")
    verdicts = targets(figures, list(policies), args.bound, args.limit)
    print("\n".join(verdicts))
    figures["targets"] = verdicts
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
