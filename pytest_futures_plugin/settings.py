"""This run's settings: what ``--executor`` and friends resolve to, read once and validated in
one place, with one precedence: marker > command line > environment variable > ini file >
default.

An adapter hands :func:`read` its getters for options and ini values (pytest's
``config.getoption``/``config.getini``); errors are :class:`SettingsError` (a ``ValueError``)
naming the bad value and where it came from, which the pytest plugin turns into
``pytest.UsageError``. Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import dataclasses
import os
import random
from typing import TYPE_CHECKING, Any, Callable

from . import backends as _backends
from . import report as _report

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_HANG_TIMEOUT",
    "ENV_EXAMPLES",
    "ENV_EXECUTOR",
    "ENV_HANG",
    "ENV_SEED",
    "ENV_SPEC_BOUND",
    "ENV_WATCH",
    "MARKERS",
    "OPTIONS",
    "WATCH_BY_DEFAULT",
    "Option",
    "Settings",
    "SettingsError",
    "read",
    "seconds",
]

DEFAULT_HANG_TIMEOUT = 120.0
"""Seconds a phase of an executor test may take before the hang guard fails it: generous,
since only a hang takes so long, and below pytest-timeout's usual bounds."""

ENV_EXECUTOR = "PYTEST_FUTURES_EXECUTOR"
ENV_SEED = "PYTEST_FUTURES_SEED"
ENV_HANG = "PYTEST_FUTURES_HANG_TIMEOUT"
ENV_SPEC_BOUND = "PYTEST_FUTURES_SPEC_BOUND"
ENV_EXAMPLES = "PYTEST_FUTURES_EXAMPLES"

WATCH_BY_DEFAULT = True
"""Whether the deadlock watcher runs unless told: on every Python.  It reads no other thread's
stack (walking ``frame.f_back`` of another running thread can crash CPython 3.11, the CPython
gh-99110 family): the waits it looks at register themselves (``guards._waits``)."""
ENV_WATCH = "PYTEST_FUTURES_DEADLOCK_WATCH"


@dataclasses.dataclass(frozen=True)
class Option:
    """A command-line option of the plugin; *ini* is the help of its ini key (named like
    *dest*), if it has one; *action* replaces *metavar* for a flag."""

    flag: str
    dest: str
    help: str
    metavar: str = ""
    ini: str = ""
    action: str = ""


OPTIONS = (
    Option(
        "--executor",
        "futures_executor",
        "Backends that executor-parametrised tests and specs run on: "
        + ", ".join(_backends.valid_values())
        + f" (comma-separated, repeatable; default: {_backends.DEFAULT}; "
        "env PYTEST_FUTURES_EXECUTOR; ini futures_executor).",
        metavar="NAME[,NAME...]",
        ini="Default for --executor: comma-separated backend names.",
        action="append",
    ),
    Option(
        "--futures-seed",
        "futures_seed",
        "Base seed of this run (an integer, or 'random'); each test's seed derives from "
        "it and the test id. Default: random, printed in the header. "
        "env PYTEST_FUTURES_SEED.",
        metavar="N",
    ),
    Option(
        "--futures-hang-timeout",
        "futures_hang_timeout",
        "Fail an executor test whose setup, call or teardown takes longer, printing every "
        "thread's stack and the futures each waits on (0 disables; default "
        f"{DEFAULT_HANG_TIMEOUT:g}; marker futures_hang_timeout(seconds), "
        "env PYTEST_FUTURES_HANG_TIMEOUT, ini futures_hang_timeout).",
        metavar="SECONDS",
        ini="Default for --futures-hang-timeout (seconds).",
    ),
    Option(
        "--futures-policy",
        "futures_policy",
        "Policy of the `futures_scheduler` fixture (so of --executor=deterministic) when "
        "the test's futures_scheduler marker names none: random (default), pct, fifo, or "
        "systematic[:K], which runs the test body under every schedule with at most K "
        "preemptions (default 2), up to partial-order reduction.",
        metavar="NAME",
    ),
    Option(
        "--futures-spec-bound",
        "futures_spec_bound",
        "Seconds one blocking call of a spec may take before its example fails with a "
        "thread dump (and is not shrunk). Default 10; env PYTEST_FUTURES_SPEC_BOUND, "
        "ini futures_spec_bound.",
        metavar="SECONDS",
        ini="Default for --futures-spec-bound (seconds).",
    ),
    Option(
        "--futures-examples",
        "futures_examples",
        "How many examples each spec machine runs on a backend that declares a share of "
        "them because its executors are slow to start or stop (loky, futurist's thread "
        "pool): 'declared' (default; named under the matrix) or 'full' (the profile's "
        "count). env PYTEST_FUTURES_EXAMPLES.",
        metavar="declared|full",
    ),
    Option(
        "--futures-deadlock-watch",
        "futures_deadlock_watch",
        "Fail an executor test on real threads when its threads wait with no timeout "
        "on futures that can never complete, printing the wait-for graph (default on; "
        "env PYTEST_FUTURES_DEADLOCK_WATCH, ini futures_deadlock_watch).",
        metavar="on|off",
        ini="Default for --futures-deadlock-watch.",
    ),
    Option(
        "--futures-report",
        "futures_report",
        "Also write the conformance matrix (spec area x backend) as JSON to PATH.",
        metavar="PATH",
    ),
    Option(
        "--futures-specs",
        "futures_specs",
        "Run pytest-futures' executable specification (against the --executor backends) "
        "instead of, or with explicit paths in addition to, this project's tests.",
        action="store_true",
    ),
)
"""Every option, in the order ``--help`` lists them."""


MARKERS = (
    (
        "futures_executor(**kwargs): keyword arguments of the executor the `futures_executor` "
        f"fixture makes (default max_workers={_backends.DEFAULT_MAX_WORKERS})."
    ),
    "futures_hang_timeout(seconds): the hang guard's bound for this test (0 disables).",
    (
        "futures_leak_check: fail the test if it leaves threads or child processes behind "
        "(always on for executor-parametrised tests)."
    ),
    (
        "futures_area(name): the spec area a test belongs to: a row of the conformance "
        "matrix (pytest-futures)."
    ),
    (
        "futures_scheduler(policy='random', modules=(), max_steps=200000, autojump=True, "
        "uncontrolled_timeout=10.0): how the `futures_scheduler` fixture runs this test: the "
        "policy ('random', 'pct', 'fifo', 'systematic[:K]' or a "
        "pytest_futures_plugin.scheduler.Policy) and the modules it controls besides the "
        "test's own; with 'systematic', also max_schedules, max_seconds and fine (True: the "
        "test's module; or modules)."
    ),
)
"""The markers of the plugin, with their signatures, as ``--markers`` lists them."""


class SettingsError(ValueError):
    """A setting with a bad value; the message names the value and where it came from."""


@dataclasses.dataclass
class Settings:
    """This run's validated settings: what ``--executor`` and friends resolved to."""

    backends: list[_backends.Backend]
    seed: int
    matrix: _report.Matrix = dataclasses.field(default_factory=_report.Matrix)
    hang_timeout: float = DEFAULT_HANG_TIMEOUT
    spec_bound: float | None = None
    """The specs' bound per blocking call, if given (``--futures-spec-bound``); else theirs."""
    deadlock_watch: bool = True


def read(
    option: Callable[[str], Any],
    ini: Callable[[str], Any],
    environ: Mapping[str, str] = os.environ,
    worker_seed: int | None = None,
) -> Settings:
    """Read and validate every setting once: *option* and *ini* look a value up by its
    ``dest``/ini name; *worker_seed* is the seed a pytest-xdist controller handed its worker."""
    values: list[str] | None = option("futures_executor")
    source = "--executor"
    if not values and environ.get(ENV_EXECUTOR):
        values, source = [environ[ENV_EXECUTOR]], ENV_EXECUTOR
    if not values and ini("futures_executor"):
        values, source = [str(ini("futures_executor"))], "ini futures_executor"
    try:
        selected = _backends.resolve(values or [_backends.DEFAULT])
    except _backends.BackendError as error:
        raise SettingsError(f"{error} (from {source})") from None

    seed_text = option("futures_seed") or environ.get(ENV_SEED) or "random"
    if worker_seed is not None:
        seed = worker_seed
    elif seed_text == "random":
        seed = random.SystemRandom().randrange(2**32)
    else:
        try:
            seed = int(seed_text)
        except ValueError:
            raise SettingsError(
                f"--futures-seed={seed_text}: expected an integer or 'random'"
            ) from None
    if _full_examples(option, environ):
        selected = [dataclasses.replace(backend, examples=1.0) for backend in selected]
    shares = {
        backend.name: {"share": backend.examples, "reason": backend.examples_reason}
        for backend in selected
        if backend.examples < 1
    }
    meta: dict[str, Any] = {"seed": seed, "backends": [backend.name for backend in selected]}
    if shares:
        meta["examples"] = shares
    matrix = _report.Matrix(backends=[backend.name for backend in selected], meta=meta)
    return Settings(
        selected,
        seed,
        matrix,
        _hang_timeout(option, ini, environ),
        _spec_bound(option, ini, environ),
        _deadlock_watch(option, ini, environ),
    )


def _full_examples(option: Callable[[str], Any], environ: Mapping[str, str]) -> bool:
    """Whether ``--futures-examples`` (or its variable) asks for every example: ``full``, or
    ``declared`` (the default), validated."""
    for source, value in (
        ("--futures-examples", option("futures_examples")),
        (ENV_EXAMPLES, environ.get(ENV_EXAMPLES)),
    ):
        if value not in (None, ""):
            if str(value).lower() not in ("declared", "full"):
                raise SettingsError(f"{source}={value!r}: expected 'declared' or 'full'")
            return str(value).lower() == "full"
    return False


def _deadlock_watch(
    option: Callable[[str], Any], ini: Callable[[str], Any], environ: Mapping[str, str]
) -> bool:
    """Whether the deadlock watcher runs: ``on`` or ``off``, validated; by default
    :data:`WATCH_BY_DEFAULT`."""
    for source, value in (
        ("--futures-deadlock-watch", option("futures_deadlock_watch")),
        (ENV_WATCH, environ.get(ENV_WATCH)),
        ("ini futures_deadlock_watch", ini("futures_deadlock_watch")),
    ):
        if value not in (None, ""):
            if str(value).lower() not in ("on", "off"):
                raise SettingsError(f"{source}={value!r}: expected 'on' or 'off'")
            return str(value).lower() == "on"
    return WATCH_BY_DEFAULT


def _hang_timeout(
    option: Callable[[str], Any], ini: Callable[[str], Any], environ: Mapping[str, str]
) -> float:
    """The hang bound from the command line, the environment or the ini file, validated."""
    for source, value in (
        ("--futures-hang-timeout", option("futures_hang_timeout")),
        (ENV_HANG, environ.get(ENV_HANG)),
        ("ini futures_hang_timeout", ini("futures_hang_timeout")),
    ):
        if value not in (None, ""):
            return seconds(value, source)
    return DEFAULT_HANG_TIMEOUT


def _spec_bound(
    option: Callable[[str], Any], ini: Callable[[str], Any], environ: Mapping[str, str]
) -> float | None:
    """The specs' bound per blocking call from the command line, the environment or the ini
    file (a positive number of seconds), or None where none is given."""
    for source, value in (
        ("--futures-spec-bound", option("futures_spec_bound")),
        (ENV_SPEC_BOUND, environ.get(ENV_SPEC_BOUND)),
        ("ini futures_spec_bound", ini("futures_spec_bound")),
    ):
        if value not in (None, ""):
            bound = seconds(value, source)
            if not bound:
                raise SettingsError(f"{source}={value!r}: expected a number of seconds > 0")
            return bound
    return None


def seconds(value: object, source: str) -> float:
    """*value* as a number of seconds >= 0 (0 disables); :class:`SettingsError` naming
    *value* and *source* otherwise."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = -1.0
    if not 0 <= number < float("inf"):
        raise SettingsError(f"{source}={value!r}: expected a number of seconds >= 0 (0 disables)")
    return number
