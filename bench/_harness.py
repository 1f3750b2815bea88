"""The harness shared by the benchmark scripts in ``bench/``.

A script defines its sizes (a dataclass) and its :class:`Benchmark` list and
hands them to :func:`main`.  Here (implementations are loaded by ``_impls.py``): timing
helpers, running each measurement under a ``faulthandler`` watchdog with the
implementations alternating (A B, B A, ...) against drift, the table of ratios
``impl / baseline`` (the first implementation, the stdlib) with verdicts, the
environment header and ``--json``.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from _typeshed import DataclassInstance

from bench._impls import (
    CORE_NAMES,
    Impl,
    ImplError,
    load_impls,
)

if sys.platform != "win32":
    import resource

#: Bound on every single blocking call (result, wait, join, Event.wait).
TIMEOUT = 60.0

#: Ratios closer to 1 than this are reported as "same".
SAME_BAND = 0.05

#: A script's problem sizes: a dataclass, one instance for full and one for --quick.
S = TypeVar("S", bound="DataclassInstance")


# --------------------------------------------------------------------------
# Metrics, benchmarks and timing helpers


@dataclass(frozen=True)
class Metric:
    """One line of the table: what is measured, its unit, which way is better.

    *target*: the ratio impl/baseline to reach, at least (higher is better) or
    at most (lower is better); e.g. ``3.0``, ``1 / 3``, ``1.0`` for "no slower".
    """

    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: float | None = None

    def target_cell(self, ratio: float) -> str:
        """The target column's cell for *ratio*, e.g. ``>=3x met`` (empty without a target)."""
        if self.target is None:
            return ""
        met = ratio >= self.target if self.higher_is_better else ratio <= self.target
        ok = "?" if not math.isfinite(ratio) or ratio <= 0 else "met" if met else "MISSED"
        return f"{'>=' if self.higher_is_better else '<='}{self.target:.3g}x {ok}"


@dataclass(frozen=True)
class Benchmark(Generic[S]):
    """A measurement ``measure(impl, sizes)`` and the metrics each call of it returns."""

    name: str
    metrics: tuple[Metric, ...]
    measure: Callable[[Impl, S], dict[str, float]]


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect, then keep the cyclic GC off for the body; restore its state after."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def tracing() -> Iterator[None]:
    """Run the body under tracemalloc (stopping it after unless it was already on)."""
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        yield
    finally:
        if not already:
            tracemalloc.stop()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile *q* (0-100) of an already sorted sequence."""
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def voluntary_switches() -> float:
    """Voluntary context switches of the process so far (NaN where unknown).

    A thread switches voluntarily when it blocks on a lock, so the count per
    task is a proxy for how many wake-ups the executor needs.
    """
    if sys.platform == "win32":
        return math.nan
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw)


# --------------------------------------------------------------------------
# Running and reporting


@dataclass
class Result:
    """All samples of one metric, per implementation."""

    metric: Metric
    samples: dict[str, list[float]]

    def median(self, impl_name: str) -> float:
        """The median sample of *impl_name*."""
        return statistics.median(self.samples[impl_name])


def run_one(bench: Benchmark[S], impl: Impl, sizes: S, watchdog: float) -> dict[str, float]:
    """Run one measurement under the watchdog and check it leaked no thread."""
    threads_before = threading.active_count()
    faulthandler.dump_traceback_later(watchdog, exit=True)
    try:
        values = bench.measure(impl, sizes)
    finally:
        faulthandler.cancel_dump_traceback_later()
    # Pools were shut down with wait=True, so their workers must be gone.
    leaked = threading.active_count() - threads_before
    if leaked > 0:
        print(f"warning: {impl.name}/{bench.name} left {leaked} thread(s) running", file=sys.stderr)
    return values


def run_all(
    benches: Sequence[Benchmark[S]], impls: Sequence[Impl], sizes: S, repeat: int, watchdog: float
) -> list[Result]:
    """Run every benchmark *repeat* times per implementation, alternating order."""
    results: list[Result] = []
    for bench in benches:
        samples: dict[str, dict[str, list[float]]] = {
            m.key: {impl.name: [] for impl in impls} for m in bench.metrics
        }
        t0 = time.perf_counter()
        for r in range(repeat):
            # Rotate the order every repeat (A B, B A, ...) so slow drift of
            # the machine (turbo, thermal, background load) hits all alike.
            shift = r % len(impls)
            for impl in list(impls[shift:]) + list(impls[:shift]):
                values = run_one(bench, impl, sizes, watchdog)
                for m in bench.metrics:
                    samples[m.key][impl.name].append(values[m.key])
        print(f"  {bench.name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        results.extend(Result(m, samples[m.key]) for m in bench.metrics)
    return results


def fmt(value: float) -> str:
    """Three significant digits, thousands separated, no exponent."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f}"


def verdict(ratio: float, higher_is_better: bool) -> str:
    """Describe *ratio* (impl/baseline) as how much better or worse the impl is."""
    if not math.isfinite(ratio) or ratio <= 0:
        return "?"
    gain = ratio if higher_is_better else 1.0 / ratio
    if abs(gain - 1.0) < SAME_BAND:
        return "same"
    return f"{gain:.2f}x better" if gain > 1 else f"{1 / gain:.2f}x worse"


def ratio_of(value: float, base: float) -> float:
    """``value / base``, or NaN when the baseline is zero."""
    return value / base if base else float("nan")


def render_table(results: Sequence[Result], impls: Sequence[Impl]) -> str:
    """The results as a fixed-width text table, one line per metric (and targets, if any)."""
    base = impls[0].name
    others = [impl.name for impl in impls[1:]]
    targets = any(res.metric.target is not None for res in results)  # add a target column
    header = ["metric", "unit", "better", *[impl.name for impl in impls]]
    left = [True, True, True] + [False] * len(impls)  # text left, numbers right
    for name in others:
        header += [f"{name}/{base}", *(["target"] if targets else []), f"{name} is"]
        left += [False, *([True] if targets else []), True]
    rows = [header]
    for res in results:
        m = res.metric
        row = [m.label, m.unit, "higher" if m.higher_is_better else "lower"]
        row += [fmt(res.median(impl.name)) for impl in impls]
        for name in others:
            ratio = ratio_of(res.median(name), res.median(base))
            row += [f"{ratio:.3f}", *([m.target_cell(ratio)] if targets else [])]
            row.append(verdict(ratio, m.higher_is_better))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if lt else c.rjust(w) for c, w, lt in zip(row, widths, left)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Interpreter, platform and CPU facts for the report header."""
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS / Windows
        usable = None
    try:
        load: list[float] | None = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "loadavg": load,
    }


# --------------------------------------------------------------------------
# Command line


def build_parser(description: str, bench_names: Sequence[str]) -> argparse.ArgumentParser:
    """The command line shared by every script; ``--bench`` chooses among *bench_names*."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run of a few seconds"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="runs per implementation and metric; the median is shown "
        "(default 5, or 3 with --quick)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write all samples as JSON to PATH")
    parser.add_argument(
        "--impl",
        action="append",
        default=[],
        metavar="[NAME=]MODULE",
        help="add a module with the concurrent.futures API (repeatable)",
    )
    parser.add_argument(
        "--bench",
        action="append",
        default=[],
        metavar="NAME",
        choices=list(bench_names),
        help="run only this benchmark (repeatable; default all)",
    )
    parser.add_argument(
        "--watchdog",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="dump stacks and exit if one measurement runs longer (default 300)",
    )
    return parser


def main(
    benchmarks: Sequence[Benchmark[S]],
    argv: Sequence[str] | None = None,
    *,
    description: str,
    full: S,
    quick: S,
    required: Sequence[str] = CORE_NAMES,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse *argv*, run *benchmarks*, print the table, optionally write JSON.

    *full* and *quick* are the problem sizes without and with ``--quick``;
    *required* names the module attributes the benchmarks use; *add_arguments*
    adds the script's options, and one whose ``dest`` is a field of the sizes
    overrides it unless ``None``.  Returns the exit code.
    """
    parser = build_parser(description, [b.name for b in benchmarks])
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    sizes = quick if args.quick else full
    given = {f.name: getattr(args, f.name, None) for f in fields(sizes)}
    sizes = replace(sizes, **{k: v for k, v in given.items() if v is not None})
    repeat: int = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    if repeat < 1:
        parser.error(f"--repeat must be at least 1, got {repeat}")
    try:
        impls, notes = load_impls(args.impl, required)
    except ImplError as exc:
        parser.error(str(exc))
    benches = [b for b in benchmarks if not args.bench or b.name in args.bench]

    env = environment()
    print(f"Python {env['python']} ({env['implementation']})")
    print(
        f"platform {env['platform']}, cpu_count {env['cpu_count']}, "
        f"usable {env['cpus_usable']}, loadavg {env['loadavg']}"
    )
    for impl in impls:
        print(f"  {impl.name}: {impl.origin}")
    for note in notes:
        print(f"  note: {note}")
    print(f"sizes {sizes}, repeat {repeat} (median shown), ratio = {impls[1].name}/{impls[0].name}")
    sys.stdout.flush()

    t0 = time.perf_counter()
    results = run_all(benches, impls, sizes, repeat, args.watchdog)
    elapsed = time.perf_counter() - t0
    print()
    print(render_table(results, impls))
    print(f"\n{elapsed:.1f}s total")

    if args.json:
        payload = {
            "environment": env,
            "sizes": asdict(sizes),
            "repeat": repeat,
            "baseline": impls[0].name,
            "impls": [
                {"name": i.name, "module": i.module.__name__, "origin": i.origin} for i in impls
            ],
            "notes": notes,
            "results": [
                {
                    "metric": r.metric.key,
                    "label": r.metric.label.strip(),
                    "unit": r.metric.unit,
                    "better": "higher" if r.metric.higher_is_better else "lower",
                    "median": {i.name: r.median(i.name) for i in impls},
                    "ratio": {
                        i.name: ratio_of(r.median(i.name), r.median(impls[0].name))
                        for i in impls[1:]
                    },
                    "target": r.metric.target,
                    "samples": r.samples,
                }
                for r in results
            ],
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
    return 0
