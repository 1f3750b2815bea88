#!/usr/bin/env python3
"""Benchmark thread-pool executors against ``concurrent.futures`` in one run.

Every implementation is a module exposing the ``concurrent.futures`` names
(``Future``, ``ThreadPoolExecutor``, ``wait``, ``as_completed``,
``ALL_COMPLETED``).  The first one is the baseline (the stdlib); every other
one is reported as a ratio ``impl / baseline`` next to it, with a column that
says whether a higher or a lower number is better for that metric.

Drift control: for each metric the implementations run alternately (A B, B A,
A B, ...) and the table shows the median of ``--repeat`` runs.  Timed regions
run with the garbage collector collected and disabled.

Nothing may hang: every blocking call has a timeout, and each single
measurement is guarded by a ``faulthandler`` watchdog that dumps all stacks
and exits the process when it runs past ``--watchdog`` seconds.

Usage::

    python3 bench/bench_thread.py --quick
    python3 bench/bench_thread.py --repeat 7 --json results.json
    python3 bench/bench_thread.py --impl myname=some.module
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import concurrent.futures as cf
    from types import ModuleType

if sys.platform != "win32":
    import resource

#: The project root, put first on sys.path so that ``python3 bench/bench_thread.py``
#: benchmarks the working tree's executor_impl rather than an installed copy.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The implementations compared by default, as (display name, module) pairs.
#: The first is the baseline every ratio divides by.  Add a pair here (or pass
#: ``--impl``) to bring in another module with the ``concurrent.futures`` API.
IMPLEMENTATIONS: list[tuple[str, str]] = [
    ("stdlib", "concurrent.futures"),
    ("executor_impl", "executor_impl"),
]

#: The names a module must expose to be benchmarked.
REQUIRED_NAMES = ("Future", "ThreadPoolExecutor", "wait", "as_completed", "ALL_COMPLETED")

#: Bound on every single blocking call (result, wait, join, Event.wait).
TIMEOUT = 60.0

#: Ratios closer to 1 than this are reported as "same".
SAME_BAND = 0.05


# --------------------------------------------------------------------------
# Implementations


class ImplError(Exception):
    """A module given as an implementation cannot be imported or lacks a name."""


@dataclass(frozen=True)
class Impl:
    """One implementation under test: its name and the API objects it exposes.

    The callables are typed as their ``concurrent.futures`` counterparts: a
    drop-in must accept the same arguments and return the same shapes.
    """

    name: str
    module: ModuleType
    future_cls: Callable[[], cf.Future[Any]]
    thread_pool: Callable[..., cf.ThreadPoolExecutor]
    wait: Callable[..., tuple[set[cf.Future[Any]], set[cf.Future[Any]]]]
    as_completed: Callable[..., Iterator[cf.Future[Any]]]
    all_completed: str

    @property
    def origin(self) -> str:
        """Where the module was loaded from, for the report header."""
        return str(getattr(self.module, "__file__", None) or self.module.__name__)


def load_impl(name: str, module_name: str) -> Impl:
    """Import *module_name* and wrap it as an :class:`Impl` called *name*.

    Raises :class:`ImplError` naming the module and what went wrong when the
    import fails or a name from :data:`REQUIRED_NAMES` is missing.
    """
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure disqualifies the module
        raise ImplError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    missing = [n for n in REQUIRED_NAMES if not hasattr(module, n)]
    if missing:
        raise ImplError(f"module {module_name!r} lacks {', '.join(missing)}")
    return Impl(
        name=name,
        module=module,
        future_cls=module.Future,
        thread_pool=module.ThreadPoolExecutor,
        wait=module.wait,
        as_completed=module.as_completed,
        all_completed=str(module.ALL_COMPLETED),
    )


def parse_impl_spec(spec: str) -> tuple[str, str]:
    """Split an ``--impl`` value, ``MODULE`` or ``NAME=MODULE``, into (name, module)."""
    name, sep, module_name = spec.partition("=")
    if not sep:
        return spec, spec
    if not name or not module_name:
        raise ImplError(f"--impl {spec!r}: expected MODULE or NAME=MODULE")
    return name, module_name


def unique_name(name: str, taken: Sequence[str]) -> str:
    """Return *name*, suffixed with ``#2``, ``#3``... if it is already *taken*."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}#{n}"
    return candidate


# --------------------------------------------------------------------------
# Metrics and benchmarks


@dataclass(frozen=True)
class Sizes:
    """Problem sizes for one run (``--quick`` shrinks them all)."""

    tasks: int  # submit+result and map
    latency_iters: int  # timed round trips
    latency_warmup: int  # untimed round trips first
    futures: int  # as_completed, wait and the Future lifecycle
    pending: int  # tasks queued behind a blocked worker (memory)
    pool_cycles: int  # pool construct + shutdown cycles


FULL = Sizes(
    tasks=20_000,
    latency_iters=5_000,
    latency_warmup=500,
    futures=50_000,
    pending=20_000,
    pool_cycles=50,
)
QUICK = Sizes(
    tasks=2_000, latency_iters=500, latency_warmup=50, futures=5_000, pending=2_000, pool_cycles=10
)


@dataclass(frozen=True)
class Metric:
    """One line of the table: what is measured, its unit, which way is better."""

    key: str
    label: str
    unit: str
    higher_is_better: bool


Measure = Callable[[Impl, Sizes], "dict[str, float]"]


@dataclass(frozen=True)
class Benchmark:
    """A measurement function and the metrics each call of it returns."""

    name: str
    metrics: tuple[Metric, ...]
    measure: Measure


def _identity(x: int) -> int:
    return x


def _noop_callback(_f: cf.Future[Any]) -> None:
    pass


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


def warm_up(ex: cf.Executor, n: int = 200) -> None:
    """Run *n* trivial tasks so every worker thread exists before timing."""
    for f in [ex.submit(_identity, i) for i in range(n)]:
        f.result(timeout=TIMEOUT)


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


def bench_submit_result(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """Submit K trivial tasks to 4 workers, then ``result()`` each, in order."""
    k = sizes.tasks
    with impl.thread_pool(max_workers=4) as ex:
        warm_up(ex)
        with quiet_gc():
            sw0, cpu0, main0 = voluntary_switches(), time.process_time(), time.thread_time()
            t0 = time.perf_counter()
            fs = [ex.submit(_identity, i) for i in range(k)]
            total = 0
            for f in fs:
                total += f.result(timeout=TIMEOUT)
            t1 = time.perf_counter()
            main1, cpu1, sw1 = time.thread_time(), time.process_time(), voluntary_switches()
    assert total == k * (k - 1) // 2, f"{impl.name}: wrong sum of results {total}"
    return {
        "submit_rate": k / (t1 - t0),
        "submit_cpu": (cpu1 - cpu0) / k * 1e6,
        "submit_main_cpu": (main1 - main0) / k * 1e6,
        "submit_switches": (sw1 - sw0) / k,
    }


def bench_map(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``list(ex.map(fn, range(K)))`` with 4 workers."""
    k = sizes.tasks
    with impl.thread_pool(max_workers=4) as ex:
        warm_up(ex)
        with quiet_gc():
            t0 = time.perf_counter()
            out = list(ex.map(_identity, range(k), timeout=TIMEOUT))
            t1 = time.perf_counter()
    assert out == list(range(k)), f"{impl.name}: map returned wrong results"
    return {"map_rate": k / (t1 - t0)}


def bench_latency(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``ex.submit(fn).result()`` one at a time on a single warm worker."""
    n = sizes.latency_iters
    samples = [0] * n
    with impl.thread_pool(max_workers=1) as ex:
        for i in range(sizes.latency_warmup):
            ex.submit(_identity, i).result(timeout=TIMEOUT)
        with quiet_gc():
            for i in range(n):
                t0 = time.perf_counter_ns()
                ex.submit(_identity, i).result(timeout=TIMEOUT)
                samples[i] = time.perf_counter_ns() - t0
    samples.sort()
    return {
        "latency_p50": percentile(samples, 50) / 1e3,
        "latency_p99": percentile(samples, 99) / 1e3,
    }


def bench_as_completed_pending(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``as_completed`` over N futures that a helper thread completes meanwhile.

    One future is done up front so that the first ``next()`` returns only once
    as_completed has installed its waiter: the other N-1 are then guaranteed
    to complete while it is waiting, whatever the thread scheduling.
    """
    n = sizes.futures
    fs = [impl.future_cls() for _ in range(n)]
    errors: list[BaseException] = []

    def complete_rest() -> None:
        try:
            for i in range(1, n):
                fs[i].set_result(i)
        except BaseException as exc:  # re-raised by the main thread below
            errors.append(exc)

    helper = threading.Thread(target=complete_rest, name="bench-completer", daemon=True)
    with quiet_gc():
        t0 = time.perf_counter()
        fs[0].set_result(0)
        it = impl.as_completed(fs, timeout=TIMEOUT)
        next(it)
        helper.start()
        count = 1
        for _ in it:
            count += 1
        t1 = time.perf_counter()
    helper.join(TIMEOUT)
    assert not helper.is_alive(), "completer thread did not finish"
    assert not errors, f"{impl.name}: set_result raised {errors[0]!r}"
    assert count == n, f"{impl.name}: as_completed yielded {count} of {n}"
    return {"as_completed_pending": (t1 - t0) * 1e3}


def bench_as_completed_done(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``as_completed`` over N futures that are all done before the call."""
    n = sizes.futures
    fs = [impl.future_cls() for _ in range(n)]
    for i, f in enumerate(fs):
        f.set_result(i)
    with quiet_gc():
        t0 = time.perf_counter()
        count = 0
        for _ in impl.as_completed(fs, timeout=TIMEOUT):
            count += 1
        t1 = time.perf_counter()
    assert count == n, f"{impl.name}: as_completed yielded {count} of {n}"
    return {"as_completed_done": (t1 - t0) * 1e3}


def bench_wait_all(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``wait(fs, return_when=ALL_COMPLETED)`` over N done futures."""
    n = sizes.futures
    fs = [impl.future_cls() for _ in range(n)]
    for i, f in enumerate(fs):
        f.set_result(i)
    with quiet_gc():
        t0 = time.perf_counter()
        done, not_done = impl.wait(fs, timeout=TIMEOUT, return_when=impl.all_completed)
        t1 = time.perf_counter()
    assert not not_done, f"{impl.name}: wait left {len(not_done)} not done"
    assert len(done) == n, f"{impl.name}: wait returned {len(done)} of {n} done"
    return {"wait_all_done": (t1 - t0) * 1e3}


def bench_future_lifecycle(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """Per future: create, add a done-callback, ``set_result``, ``result()``."""
    n = sizes.futures
    with quiet_gc():
        t0 = time.perf_counter_ns()
        for i in range(n):
            f = impl.future_cls()
            f.add_done_callback(_noop_callback)
            f.set_result(i)
            f.result(timeout=TIMEOUT)
        t1 = time.perf_counter_ns()
    return {"future_lifecycle": (t1 - t0) / n}


def bench_pool_cycle(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """Construct a 4-worker pool, run one task, ``shutdown(wait=True)``."""
    n = sizes.pool_cycles
    samples: list[float] = []
    for _ in range(n):
        with quiet_gc():
            t0 = time.perf_counter_ns()
            ex = impl.thread_pool(max_workers=4)
            try:
                ex.submit(_identity, 1).result(timeout=TIMEOUT)
            finally:
                ex.shutdown(wait=True)
            samples.append(time.perf_counter_ns() - t0)
    return {"pool_cycle": statistics.median(samples) / 1e3}


def bench_memory(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """tracemalloc bytes per bare ``Future()`` and per queued, unstarted task.

    For the second number the pool's only worker is parked on an Event, so
    every submitted work item (future, callable, args) stays in the queue.
    Slots for the futures are allocated before the baseline is read, so the
    list itself is not counted.
    """
    n = sizes.pending
    slots: list[object] = [None] * n
    with quiet_gc(), tracing():
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            slots[i] = impl.future_cls()
        per_future = (tracemalloc.get_traced_memory()[0] - before) / n
    slots = [None] * n

    release = threading.Event()
    started = threading.Event()

    def blocker() -> None:
        started.set()
        if not release.wait(TIMEOUT):
            raise TimeoutError("blocker was never released")

    ex = impl.thread_pool(max_workers=1)
    try:
        gate = ex.submit(blocker)
        assert started.wait(TIMEOUT), f"{impl.name}: worker never started"
        with quiet_gc(), tracing():
            before = tracemalloc.get_traced_memory()[0]
            for i in range(n):
                slots[i] = ex.submit(_identity, 7)
            per_task = (tracemalloc.get_traced_memory()[0] - before) / n
        release.set()
        gate.result(timeout=TIMEOUT)
        futures = cast("list[cf.Future[Any]]", slots)
        _, not_done = impl.wait(futures, timeout=TIMEOUT, return_when=impl.all_completed)
        assert not not_done, f"{impl.name}: {len(not_done)} queued tasks never ran"
    finally:
        release.set()
        ex.shutdown(wait=True)
    return {"bytes_future": per_future, "bytes_pending_task": per_task}


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "submit",
        (
            Metric("submit_rate", "submit+result, 4 workers", "tasks/s", True),
            Metric("submit_cpu", "  process CPU per task", "us", False),
            Metric("submit_main_cpu", "  main-thread CPU per task", "us", False),
            Metric("submit_switches", "  voluntary context switches per task", "1", False),
        ),
        bench_submit_result,
    ),
    Benchmark(
        "map",
        (Metric("map_rate", "list(map(fn, range(K))), 4 workers", "items/s", True),),
        bench_map,
    ),
    Benchmark(
        "latency",
        (
            Metric("latency_p50", "submit().result() p50, 1 worker", "us", False),
            Metric("latency_p99", "submit().result() p99, 1 worker", "us", False),
        ),
        bench_latency,
    ),
    Benchmark(
        "as_completed",
        (Metric("as_completed_pending", "as_completed, completed meanwhile", "ms", False),),
        bench_as_completed_pending,
    ),
    Benchmark(
        "as_completed_done",
        (Metric("as_completed_done", "as_completed, all done before", "ms", False),),
        bench_as_completed_done,
    ),
    Benchmark(
        "wait",
        (Metric("wait_all_done", "wait(ALL_COMPLETED), all done", "ms", False),),
        bench_wait_all,
    ),
    Benchmark(
        "lifecycle",
        (Metric("future_lifecycle", "Future()+callback+set_result+result", "ns/op", False),),
        bench_future_lifecycle,
    ),
    Benchmark(
        "pool_cycle",
        (Metric("pool_cycle", "pool(4) create+1 task+shutdown", "us", False),),
        bench_pool_cycle,
    ),
    Benchmark(
        "memory",
        (
            Metric("bytes_future", "memory per bare Future()", "B", False),
            Metric("bytes_pending_task", "memory per queued task", "B", False),
        ),
        bench_memory,
    ),
)


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


def run_one(bench: Benchmark, impl: Impl, sizes: Sizes, watchdog: float) -> dict[str, float]:
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
    benches: Sequence[Benchmark], impls: Sequence[Impl], sizes: Sizes, repeat: int, watchdog: float
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
    """The results as a fixed-width text table, one line per metric."""
    base = impls[0].name
    others = [impl.name for impl in impls[1:]]
    header = ["metric", "unit", "better", *[impl.name for impl in impls]]
    left = [True, True, True] + [False] * len(impls)  # text left, numbers right
    for name in others:
        header += [f"{name}/{base}", f"{name} is"]
        left += [False, True]
    rows = [header]
    for res in results:
        m = res.metric
        row = [m.label, m.unit, "higher" if m.higher_is_better else "lower"]
        row += [fmt(res.median(impl.name)) for impl in impls]
        for name in others:
            ratio = ratio_of(res.median(name), res.median(base))
            row += [f"{ratio:.3f}", verdict(ratio, m.higher_is_better)]
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


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Compare thread-pool executors with concurrent.futures (ratios impl/stdlib)."
    )
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
        choices=[b.name for b in BENCHMARKS],
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


def load_impls(extra: Sequence[str]) -> tuple[list[Impl], list[str]]:
    """Load the default implementations plus *extra* ``--impl`` specs.

    A default that fails to load is skipped with a note; a requested one is an
    error.  With only the baseline left, the baseline is compared with itself
    (an A/A run, which shows the noise floor).
    """
    notes: list[str] = []
    impls: list[Impl] = []
    if PROJECT_ROOT not in sys.path:
        sys.path.insert(0, PROJECT_ROOT)
    for i, (name, module_name) in enumerate(IMPLEMENTATIONS):
        try:
            impls.append(load_impl(name, module_name))
        except ImplError as exc:
            if i == 0:
                raise
            notes.append(f"skipped {name}: {exc}")
    for spec in extra:
        name, module_name = parse_impl_spec(spec)
        impls.append(load_impl(unique_name(name, [x.name for x in impls]), module_name))
    if len(impls) == 1:
        base_name, base_module = IMPLEMENTATIONS[0]
        impls.append(load_impl(unique_name(base_name, [base_name]), base_module))
        notes.append(f"A/A run: {base_name} against itself, ratios show the noise floor")
    return impls, notes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, optionally write JSON; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repeat: int = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    if repeat < 1:
        parser.error(f"--repeat must be at least 1, got {repeat}")
    try:
        impls, notes = load_impls(args.impl)
    except ImplError as exc:
        parser.error(str(exc))
    benches = [b for b in BENCHMARKS if not args.bench or b.name in args.bench]

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
                    "samples": r.samples,
                }
                for r in results
            ],
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
