"""Executor backends: what ``--executor`` names, and how a test gets an executor and its API.

A :class:`Backend` is a name, a factory called like the stdlib's pool classes
(``factory(max_workers=..., **kwargs)``), the module-level API that goes with it
(:class:`FuturesAPI`: ``wait``, ``as_completed``, the exceptions, ...), probed
:class:`Capabilities`, and the deviations from ``concurrent.futures`` it documents.

Where backends come from (:func:`resolve`):

- the built-ins: ``thread`` and ``process`` (executor_impl), ``stdlib-thread`` and
  ``stdlib-process`` (``concurrent.futures``, the reference), and ``all`` for every one of them;
  ``deterministic``: executor_impl's ThreadPoolExecutor run under the deterministic scheduler
  (``scheduler.py``), and ``deterministic:MODULE:ATTR``: any thread-based executor written in
  Python under the same scheduler (the modules of ATTR's class and its bases, and
  ``concurrent.futures._base``, are controlled for each test);
- ``MODULE:ATTR``: any importable executor factory, e.g. ``concurrent.futures:ThreadPoolExecutor``
  or ``loky:ProcessPoolExecutor``. MODULE is also where the API is looked up; names it lacks fall
  back to ``concurrent.futures``. With a dotted ATTR (``mod:Namespace.Pool``) the API is looked
  up in ``Namespace`` first, so one module can hold several complete backends;
- the entry-point group ``pytest_futures.backends``: a third-party package registers
  ``name = "pkg.module:attr"`` where ``attr`` is a :class:`Backend`, a callable returning one,
  or an executor factory.

Nothing here imports pytest: errors are :class:`BackendError` (a ``ValueError``), which the
plugin turns into ``pytest.UsageError``.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import concurrent.futures.thread
import dataclasses
import functools
import importlib
import inspect
import multiprocessing
import os
import sys
from importlib import metadata
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable

from pytest_futures_plugin import LONG_WAIT
from pytest_futures_plugin.guards import process_wide

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from concurrent.futures import Executor
    from types import ModuleType

ENTRY_POINT_GROUP = "pytest_futures.backends"
"""The entry-point group through which other packages register backends."""

DEFAULT = "thread"
"""The backend used when ``--executor`` is not given."""

DEFAULT_MAX_WORKERS = 2
"""``max_workers`` of an :class:`ExecutorFactory`'s executors unless the caller says."""

PROBE_TIMEOUT = LONG_WAIT
"""Seconds a capability probe may take (starting a process pool on a loaded machine)."""


class BackendError(ValueError):
    """A backend name that cannot be used: unknown, not importable, or not a factory."""


# --------------------------------------------------------------------------- the API


_API_NAMES = (
    "Future",
    "Executor",
    "wait",
    "as_completed",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ALL_COMPLETED",
    "CancelledError",
    "TimeoutError",
    "InvalidStateError",
    "BrokenExecutor",
    "BrokenThreadPool",
    "BrokenProcessPool",
)


class FuturesAPI:
    """The module-level ``concurrent.futures`` API of one backend.

    Each name is taken from the backend's module, then from its ``thread``/``process``
    submodules (where the stdlib keeps ``BrokenThreadPool``/``BrokenProcessPool``), then from
    ``concurrent.futures``; :attr:`origins` says where each one came from.
    """

    Future: type[concurrent.futures.Future[Any]]
    Executor: type[concurrent.futures.Executor]
    wait: Callable[..., Any]
    as_completed: Callable[..., Iterator[concurrent.futures.Future[Any]]]
    FIRST_COMPLETED: str
    FIRST_EXCEPTION: str
    ALL_COMPLETED: str
    CancelledError: type[BaseException]
    TimeoutError: type[BaseException]
    InvalidStateError: type[BaseException]
    BrokenExecutor: type[BaseException]
    BrokenThreadPool: type[BaseException]
    BrokenProcessPool: type[BaseException]

    def __init__(self, module: ModuleType, namespace: object = None) -> None:
        self.module_name = module.__name__
        origins: dict[str, str] = {}
        search: list[Any] = [] if namespace is None else [namespace]
        search += [module, *_submodules(module), concurrent.futures]
        search += [concurrent.futures.thread, concurrent.futures.process]
        for name in _API_NAMES:
            for place in search:
                if hasattr(place, name):
                    setattr(self, name, getattr(place, name))
                    origins[name] = _name_of(place)
                    break
        self.origins: Mapping[str, str] = MappingProxyType(origins)

    def __repr__(self) -> str:
        return f"<FuturesAPI of {self.module_name}>"


def _name_of(place: object) -> str:
    """How :attr:`FuturesAPI.origins` names where a name came from: a module's or class's
    name, or the repr of a namespace object that has none."""
    name = getattr(place, "__qualname__", None) or getattr(place, "__name__", None)
    return str(name) if name else repr(place)


def _submodules(module: ModuleType) -> Iterator[ModuleType]:
    """The ``thread`` and ``process`` submodules of *module*, those that import."""
    for name in ("thread", "process"):
        try:
            yield importlib.import_module(f"{module.__name__}.{name}")
        except ImportError:
            continue


# --------------------------------------------------------------------------- capabilities


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a backend can do, found by trying it rather than by its name.

    ``processes``: tasks run in another process (probed by running ``os.getpid`` in it), so
    their arguments, results and exceptions must pickle and a worker can be killed.
    The others say whether the factory or ``shutdown`` accepts that keyword argument.
    """

    processes: bool
    cancel_futures: bool
    max_tasks_per_child: bool
    initializer: bool
    mp_context: bool


def _noop() -> None:
    """The initializer the probe tries (module-level, so that it pickles)."""


def _constructs_with(factory: Callable[..., Executor], keyword: str, value: Any) -> bool:
    """Whether ``factory(max_workers=1, keyword=value)`` makes an executor: tried, not read
    from a signature (a subclass taking ``**kwargs`` may pass them on to a pool that refuses
    them). The executor made is shut down at once; it never ran a task."""
    try:
        executor = factory(max_workers=1, **{keyword: value})
    except Exception:  # TypeError mostly; any refusal means the spec cannot assume it
        return False
    executor.shutdown(wait=True)
    return True


def _shuts_down_cancelling(executor: Executor) -> bool:
    """``executor.shutdown(wait=True, cancel_futures=True)``; False (after a plain
    ``shutdown(wait=True)``) if it refused the keyword with TypeError."""
    try:
        executor.shutdown(wait=True, cancel_futures=True)  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        executor.shutdown(wait=True)
        return False
    return True


def probe(factory: Callable[..., Executor]) -> Capabilities:
    """Start an executor from *factory*, run ``os.getpid`` in it, shut it down with
    ``cancel_futures=True``, and try constructing one with each optional keyword.

    Raises :class:`BackendError` if the executor cannot be made or cannot run that task
    within :data:`PROBE_TIMEOUT` seconds.
    """
    # Threads the executor's library starts for the whole process on first use (an event
    # loop, a profiler) are not the leak of whichever test probed first.
    with process_wide():
        return _probe(factory)


def _probe(factory: Callable[..., Executor]) -> Capabilities:
    try:
        executor = factory(max_workers=1)
    except Exception as error:
        raise BackendError(f"{_describe(factory)}(max_workers=1) raised {error!r}") from error
    try:
        pid = executor.submit(os.getpid).result(timeout=PROBE_TIMEOUT)
    except Exception as error:
        executor.shutdown(wait=False)
        raise BackendError(f"{_describe(factory)} could not run os.getpid: {error!r}") from error
    cancel_futures = _shuts_down_cancelling(executor)
    processes = pid != os.getpid()
    return Capabilities(
        processes=processes,
        cancel_futures=cancel_futures,
        max_tasks_per_child=_constructs_with(factory, "max_tasks_per_child", 1),
        initializer=_constructs_with(factory, "initializer", _noop),
        mp_context=_constructs_with(factory, "mp_context", multiprocessing.get_context()),
    )


def _describe(factory: Callable[..., Any]) -> str:
    module = getattr(factory, "__module__", "?")
    return f"{module}:{getattr(factory, '__qualname__', factory)!s}"


# --------------------------------------------------------------------------- backends


@dataclasses.dataclass(frozen=True)
class Backend:
    """One executor under test.

    ``name`` is how ``--executor`` spells it and the id tests are parametrised with;
    ``factory(max_workers=..., **kwargs)`` makes a fresh executor; ``api_module`` is the
    module whose ``wait``, ``as_completed`` and exceptions go with it; ``deviations`` maps a
    spec area, or one property of it (``AREA/PROPERTY``), to the documented reason this
    backend deliberately differs there.
    """

    name: str
    factory: Callable[..., Executor]
    api_module: str = "concurrent.futures"
    description: str = ""
    deviations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    api_namespace: object = None
    """Searched for API names before ``api_module``: the class or object that holds the
    factory when ``MODULE:ATTR`` has a dotted ATTR (``mod:Namespace.Pool``)."""
    controlled: tuple[str, ...] = ()
    """The modules the deterministic scheduler controls for each test of this backend; empty
    for a backend of real threads or processes."""
    examples: float = 1.0
    """The share of the Hypothesis profile's examples each spec machine runs on this backend
    (at least :data:`MIN_EXAMPLES`): below 1 for a backend whose every executor costs about a
    second to start or stop, so that its whole spec run stays within minutes. Declared, with
    ``examples_reason``, never measured (a run stays a function of its seed); shown under the
    conformance matrix; ``--futures-examples=full`` runs every example."""
    examples_reason: str = ""

    @property
    def deterministic(self) -> bool:
        """Whether this backend's executors run under the deterministic scheduler."""
        return bool(self.controlled)

    def make(self, **kwargs: Any) -> Executor:
        """A fresh executor: ``factory(**kwargs)``."""
        return self.factory(**kwargs)

    @functools.cached_property
    def api(self) -> FuturesAPI:
        """The module-level API of this backend (see :class:`FuturesAPI`)."""
        return FuturesAPI(importlib.import_module(self.api_module), self.api_namespace)

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        """The probed :class:`Capabilities` (the first access starts an executor once)."""
        return probe(self.factory)


MIN_EXAMPLES = 5
"""The fewest examples a spec machine runs on a backend that declares a share of them."""


def examples(backend: Backend, planned: int) -> int:
    """How many of *planned* examples a spec machine runs on *backend* (see
    :attr:`Backend.examples`)."""
    if backend.examples >= 1:
        return planned
    return min(planned, max(MIN_EXAMPLES, round(planned * backend.examples)))


def _builtins() -> dict[str, Backend]:
    # executor_impl needs only the stdlib and imports in milliseconds; imported here, not at
    # the top, so that loading the plugin in a project that never selects a backend costs
    # nothing.
    import executor_impl

    return {
        "thread": Backend(
            "thread",
            executor_impl.ThreadPoolExecutor,
            "executor_impl",
            "executor_impl's ThreadPoolExecutor",
        ),
        "process": Backend(
            "process",
            executor_impl.ProcessPoolExecutor,
            "executor_impl",
            "executor_impl's ProcessPoolExecutor",
        ),
        "stdlib-thread": Backend(
            "stdlib-thread",
            concurrent.futures.ThreadPoolExecutor,
            "concurrent.futures",
            "concurrent.futures.ThreadPoolExecutor (the reference)",
        ),
        "stdlib-process": Backend(
            "stdlib-process",
            concurrent.futures.ProcessPoolExecutor,
            "concurrent.futures",
            "concurrent.futures.ProcessPoolExecutor (the reference)",
        ),
        DETERMINISTIC: Backend(
            DETERMINISTIC,
            executor_impl.ThreadPoolExecutor,
            "executor_impl",
            "executor_impl's ThreadPoolExecutor under the deterministic scheduler",
            controlled=("executor_impl._sync",),
        ),
    }


DETERMINISTIC = "deterministic"

BUILTIN_NAMES = ("thread", "process", "stdlib-thread", "stdlib-process")
"""The built-in backends of real threads and processes, in the order ``all`` expands to
(``deterministic`` is selected by name)."""


def controlled_modules(factory: Callable[..., Any], module_name: str) -> tuple[str, ...]:
    """The modules to control so that *factory*'s executors run under the scheduler: its
    module, the modules of its class and of the bases of that class, and the stdlib's
    ``concurrent.futures._base`` (Future, wait, as_completed); executor_impl's seam for a
    subclass of executor_impl's pool."""
    classes = inspect.getmro(factory) if isinstance(factory, type) else ()
    names = [module_name]
    names.extend(c.__module__ for c in classes if c.__module__ not in ("builtins", "typing"))
    names.append("concurrent.futures._base")
    if any(name.startswith("executor_impl") for name in names):
        names.append("executor_impl._sync")
    return tuple(dict.fromkeys(names))


def in_processes(backend: Backend) -> bool:
    """Whether *backend*'s tasks run in other processes, as probed (``capabilities``).

    Probe before a deterministic scheduler's run starts (read ``backend.capabilities``), as
    the plugin's ``futures_scheduler`` fixture does: under a run the probe's own pool and
    futures would be controlled. Raises :class:`BackendError` naming the backend when it has
    not been probed yet and a run is on.
    """
    if "capabilities" not in vars(backend):
        from .scheduler import active

        if active() is not None:
            raise BackendError(
                f"--executor={backend.name}: whether its tasks run in other processes is "
                "probed by running one, which cannot be done under a running deterministic "
                "scheduler (the probe would be controlled too); read its capabilities "
                "before the run starts"
            )
    return backend.capabilities.processes


def _deterministic(value: str, base: Backend) -> Backend:
    """``deterministic:MODULE:ATTR``: the backend *base* under the scheduler."""
    return dataclasses.replace(
        base,
        name=value,
        description=f"{base.description} under the deterministic scheduler",
        controlled=controlled_modules(base.factory, base.api_module),
    )


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """The installed ``pytest_futures.backends`` entry points, by name (not loaded)."""
    if sys.version_info >= (3, 10):
        found: Iterable[metadata.EntryPoint] = metadata.entry_points(group=ENTRY_POINT_GROUP)
    else:  # 3.9: entry_points() takes no arguments and returns a dict by group
        found = metadata.entry_points().get(ENTRY_POINT_GROUP, ())
    return {entry.name: entry for entry in found}


def valid_values() -> list[str]:
    """What ``--executor`` accepts, for help texts and error messages."""
    from . import ecosystem

    names = [*BUILTIN_NAMES, DETERMINISTIC, "all", *sorted(_entry_points())]
    return [*names, "MODULE:ATTR", f"{DETERMINISTIC}:MODULE:ATTR", *ecosystem.NAMES]


def _usage(value: str, problem: str) -> BackendError:
    return BackendError(
        f"--executor={value}: {problem}; valid values are {', '.join(valid_values())} "
        "(MODULE:ATTR names an executor factory, e.g. concurrent.futures:ThreadPoolExecutor)"
    )


def _from_import(value: str) -> Backend:
    """The backend that ``MODULE:ATTR`` names (ATTR may be dotted)."""
    module_name, _, attr_path = value.partition(":")
    if not module_name or not attr_path or ":" in attr_path:
        raise _usage(value, "expected MODULE:ATTR")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise BackendError(
            f"--executor={value}: cannot import module {module_name!r}: "
            f"{type(error).__name__}: {error}"
        ) from error
    target: Any = module
    holder: Any = None
    for part in attr_path.split("."):
        holder = target
        try:
            target = getattr(target, part)
        except AttributeError:
            raise BackendError(
                f"--executor={value}: module {module_name!r} has no attribute {attr_path!r}"
            ) from None
    if not callable(target):
        raise BackendError(
            f"--executor={value}: {attr_path!r} is a {type(target).__name__}, not an "
            "executor factory (a class or function called like ThreadPoolExecutor)"
        )
    namespace = None if holder is module else holder
    description = f"{attr_path} from {module_name}"
    return Backend(value, target, module_name, description, api_namespace=namespace)


def _from_entry_point(name: str, entry: metadata.EntryPoint) -> Backend:
    try:
        loaded = entry.load()
    except Exception as error:
        raise BackendError(
            f"--executor={name}: the {ENTRY_POINT_GROUP} entry point {entry.value!r} "
            f"failed to load: {type(error).__name__}: {error}"
        ) from error
    if isinstance(loaded, Backend):
        return dataclasses.replace(loaded, name=name)
    if not callable(loaded):
        raise BackendError(f"--executor={name}: entry point {entry.value!r} is not a factory")
    if not isinstance(loaded, type) and not _takes_arguments(loaded):
        # A function of no arguments describes the backend; anything else is a factory.
        loaded = loaded()
        if not isinstance(loaded, Backend):
            raise BackendError(
                f"--executor={name}: entry point {entry.value!r} returned {loaded!r}, "
                "not a pytest_futures_plugin.backends.Backend"
            )
    if isinstance(loaded, Backend):
        return dataclasses.replace(loaded, name=name)
    module_name = entry.value.partition(":")[0]
    return Backend(name, loaded, module_name, f"entry point {entry.value}")


def _takes_arguments(function: Callable[..., Any]) -> bool:
    try:
        return bool(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return True


def resolve(values: Iterable[str]) -> list[Backend]:
    """The backends that *values* select, in order and without repeats.

    Each value is one ``--executor`` argument: a comma-separated list of names, each looked up
    with :func:`lookup` (so the same name always gives the same :class:`Backend`). Raises
    :class:`BackendError` naming the bad value and the valid ones.
    """
    selected: dict[str, Backend] = {}
    for value in values:
        for name in (name.strip() for name in value.split(",")):
            if not name:
                raise _usage(value, "empty backend name")
            for one in BUILTIN_NAMES if name == "all" else (name,):
                if one not in selected:
                    selected[one] = lookup(one)
    return list(selected.values())


@functools.cache
def lookup(name: str) -> Backend:
    """The one backend called *name* (a built-in, an entry point, ``MODULE:ATTR`` or
    ``deterministic:MODULE:ATTR``).

    Memoised: a name gives the same :class:`Backend` for the life of the process, so its
    capabilities are probed once however many tests ask. Raises :class:`BackendError` naming
    *name* and the valid values (``all`` and lists are not one backend: see :func:`resolve`).
    """
    if not name or name == "all" or "," in name:
        raise _usage(name, "expected the name of one backend")
    builtins = _builtins()
    if name in builtins:
        return builtins[name]
    entry_points = _entry_points()
    if name in entry_points:
        return _from_entry_point(name, entry_points[name])
    from . import ecosystem  # imports backends itself; the packages only once selected

    if name in ecosystem.NAMES:
        return ecosystem.backend(name)
    if name.startswith(f"{DETERMINISTIC}:"):
        return _deterministic(name, _from_import(name.partition(":")[2]))
    if ":" in name:
        return _from_import(name)
    raise _usage(name, f"unknown backend {name!r}")


# --------------------------------------------------------------------------- executors


class ExecutorFactory:
    """Makes executors of one backend for one test, and shuts every one of them down at the
    end of the test (cancelling what has not started, where ``shutdown`` can)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.executors: list[Executor] = []

    def __call__(self, **kwargs: Any) -> Executor:
        """A fresh executor: the backend's factory called with *kwargs*
        (``max_workers`` defaults to 2)."""
        kwargs.setdefault("max_workers", DEFAULT_MAX_WORKERS)
        executor = self.backend.make(**kwargs)
        self.executors.append(executor)
        return executor

    def close(self) -> None:
        """Shut every executor down, waiting for its workers."""
        while self.executors:
            executor = self.executors.pop()
            try:
                executor.shutdown(wait=True, cancel_futures=True)
            except TypeError:  # a backend whose shutdown has no cancel_futures
                executor.shutdown(wait=True)
