"""The implementations a benchmark compares: loading them (``--impl MODULE``), checking that
they have the ``concurrent.futures`` API, and reaching their pool classes lazily."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import concurrent.futures as cf
    from collections.abc import Callable, Iterator, Sequence
    from types import ModuleType

#: The project root, put first on sys.path so that ``python3 bench/bench_*.py``
#: benchmarks the working tree's executor_impl rather than an installed copy.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The implementations compared by default, as (display name, module) pairs.
#: The first is the baseline every ratio divides by.  Add a pair here (or pass
#: ``--impl``) to bring in another module with the ``concurrent.futures`` API.
IMPLEMENTATIONS: list[tuple[str, str]] = [
    ("stdlib", "concurrent.futures"),
    ("executor_impl", "executor_impl"),
]

#: Names every implementation must have; scripts add theirs (main's *required*).
CORE_NAMES = ("Future", "wait", "as_completed", "ALL_COMPLETED")


class ImplError(Exception):
    """A module given as an implementation cannot be imported or lacks a name."""


@dataclass(frozen=True)
class Impl:
    """One implementation under test: its name and the API objects it exposes.

    The callables are typed as their ``concurrent.futures`` counterparts: a
    drop-in must accept the same arguments and return the same shapes.  An
    executor class the script did not require is looked up when first called
    (raising :class:`ImplError` if the module lacks it).
    """

    name: str
    module: ModuleType
    future_cls: Callable[[], cf.Future[Any]]
    thread_pool: Callable[..., cf.ThreadPoolExecutor]
    process_pool: Callable[..., cf.ProcessPoolExecutor]
    wait: Callable[..., tuple[set[cf.Future[Any]], set[cf.Future[Any]]]]
    as_completed: Callable[..., Iterator[cf.Future[Any]]]
    all_completed: str

    @property
    def origin(self) -> str:
        """Where the module was loaded from, for the report header."""
        return str(getattr(self.module, "__file__", None) or self.module.__name__)


def _executor_class(
    module: ModuleType, module_name: str, attr: str, required: Sequence[str]
) -> Callable[..., Any]:
    """Executor class *attr* of *module*, looked up now if *required*, else when called.

    (The stdlib imports ProcessPoolExecutor, and multiprocessing, on first access.)
    """
    if attr in required:
        return cast("Callable[..., Any]", getattr(module, attr))

    def deferred(*args: Any, **kwargs: Any) -> Any:
        cls = getattr(module, attr, None)
        if cls is None:
            raise ImplError(f"module {module_name!r} lacks {attr}")
        return cls(*args, **kwargs)

    return deferred


def load_impl(name: str, module_name: str, required: Sequence[str] = CORE_NAMES) -> Impl:
    """Import *module_name* and wrap it as an :class:`Impl` called *name*.

    Raises :class:`ImplError` naming the module and what went wrong when the
    import fails or a name from *required* (or :data:`CORE_NAMES`) is missing.
    """
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure disqualifies the module
        raise ImplError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    missing = [n for n in dict.fromkeys([*required, *CORE_NAMES]) if not hasattr(module, n)]
    if missing:
        raise ImplError(f"module {module_name!r} lacks {', '.join(missing)}")
    return Impl(
        name=name,
        module=module,
        future_cls=module.Future,
        thread_pool=_executor_class(module, module_name, "ThreadPoolExecutor", required),
        process_pool=_executor_class(module, module_name, "ProcessPoolExecutor", required),
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


def load_impls(
    extra: Sequence[str], required: Sequence[str] = CORE_NAMES
) -> tuple[list[Impl], list[str]]:
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
            impls.append(load_impl(name, module_name, required))
        except ImplError as exc:
            if i == 0:
                raise
            notes.append(f"skipped {name}: {exc}")
    for spec in extra:
        name, module_name = parse_impl_spec(spec)
        impls.append(load_impl(unique_name(name, [x.name for x in impls]), module_name, required))
    if len(impls) == 1:
        base_name, base_module = IMPLEMENTATIONS[0]
        impls.append(load_impl(unique_name(base_name, [base_name]), base_module, required))
        notes.append(f"A/A run: {base_name} against itself, ratios show the noise floor")
    return impls, notes
