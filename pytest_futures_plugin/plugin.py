"""The pytest adapter of pytest-futures, loaded through the ``pytest11`` entry point ``futures``.

Everything with substance lives in engine modules that import neither pytest nor hypothesis
(:mod:`.backends`, :mod:`.controls`, :mod:`.guards`, :mod:`.report`); this module turns them
into options, fixtures, markers and the terminal report. Plugin state lives in
``config.stash``. Keep this module cheap to import: pytest loads it in every project where
pytest-futures is installed.

Option values are read in one place, the engine's :mod:`.settings`, with one precedence:
marker > command line > environment variable > ini file > default.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shlex
import types
import warnings
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable

import pytest

from . import backends as _backends
from . import deterministic as _deterministic
from . import settings as _settings_engine
from ._matrix_recorder import MatrixRecorder
from .backends import ExecutorFactory
from .deterministic import derive_seed

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator
    from concurrent.futures import Executor

    from .backends import Backend, FuturesAPI
    from .clock import VirtualClock
    from .controls import Controls
    from .guards import GuardedTest
    from .scheduler import Scheduler

_DISTRIBUTION = "pytest-futures"

LEAK_GRACE = 10.0
"""Seconds the threads and processes a test started get to exit after it ended."""


def _version() -> str:
    """The installed distribution's version, or ``"unknown"`` when run from a bare checkout."""
    try:
        return metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("futures", "pytest-futures (concurrent.futures executors)")
    for option in _settings_engine.OPTIONS:
        extra = {"action": option.action} if option.action else {}
        if option.metavar:
            extra["metavar"] = option.metavar
        group.addoption(option.flag, dest=option.dest, help=option.help, **extra)
        if option.ini:
            parser.addini(option.dest, option.ini, default=None)


_SETTINGS = pytest.StashKey[_settings_engine.Settings]()


def _settings(config: pytest.Config) -> _settings_engine.Settings:
    """This run's settings (:mod:`.settings`); a bad value is a ``pytest.UsageError``."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    worker_seed = None  # on an xdist worker, the controller's seed
    if workerinput is not None and "futures_seed" in workerinput:
        worker_seed = int(workerinput["futures_seed"])
    try:
        return _settings_engine.read(config.getoption, config.getini, os.environ, worker_seed)
    except _settings_engine.SettingsError as error:
        raise pytest.UsageError(str(error)) from None


def _export_spec_bound(config: pytest.Config, bound: float | None) -> None:
    """Hand the specs their bound (they read ``PYTEST_FUTURES_SPEC_BOUND`` when imported, so
    that they run from plain Hypothesis code too); restored when pytest ends."""
    if bound is None:
        return
    env = _settings_engine.ENV_SPEC_BOUND
    previous = os.environ.get(env)
    os.environ[env] = f"{bound:g}"

    def restore() -> None:
        if previous is None:
            os.environ.pop(env, None)
        else:
            os.environ[env] = previous

    config.add_cleanup(restore)


# --------------------------------------------------------------------------- configuration


def pytest_configure(config: pytest.Config) -> None:
    settings = _settings(config)
    config.stash[_SETTINGS] = settings
    _export_spec_bound(config, settings.spec_bound)
    for marker in _settings_engine.MARKERS:
        config.addinivalue_line("markers", marker)
    names = [backend.name for backend in settings.backends]
    config.pluginmanager.register(_backend_axis(names), "futures-backend-axis")
    config.pluginmanager.register(MatrixRecorder(settings.matrix), "futures-matrix")
    if config.getoption("futures_specs"):
        _add_the_specs(config)


def _add_the_specs(config: pytest.Config) -> None:
    """Collect the specification shipped as ``pytest_futures_plugin.specs`` (the repository's
    ``specs/``): alone when no paths were given, else next to them."""
    specs = importlib.import_module(f"{__package__}.specs")
    where = str(specs.__path__[0])
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args.append(where)
    else:
        config.args[:] = [where]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: give every worker the controller's seed, so that a test's seed does not
    depend on the worker that runs it."""
    node.workerinput["futures_seed"] = node.config.stash[_SETTINGS].seed


def pytest_report_header(config: pytest.Config) -> str:
    """Name the plugin, the backends and the seed, e.g.
    ``pytest-futures 0.1.0: executors thread, process; seed 1234``."""
    settings = config.stash[_SETTINGS]
    names = ", ".join(backend.name for backend in settings.backends)
    return (
        f"{_DISTRIBUTION} {_version()}: executors {names}; "
        f"seed {settings.seed} (--futures-seed={settings.seed} replays it)"
    )


def _backend_axis(names: list[str]) -> types.ModuleType:
    """A plugin object holding the ``futures_backend_name`` fixture, parametrised over *names*.

    A fixture of a registered plugin has the lowest precedence, so a project narrows or
    replaces the axis with its own ``futures_backend_name`` fixture in a conftest, or for one
    test with ``@pytest.mark.parametrize("futures_backend_name", [...])``, as anyio does.
    """

    @pytest.fixture(scope="module", params=names)
    def futures_backend_name(request: pytest.FixtureRequest) -> str:
        """The backend under test: one name from --executor (tests are parametrised)."""
        return str(request.param)

    # A module, like a conftest, is the plainest holder pytest collects fixtures from.
    axis = types.ModuleType(f"{__name__}.backend_axis")
    axis.futures_backend_name = futures_backend_name  # type: ignore[attr-defined]
    return axis


# --------------------------------------------------------------------------- fixtures


def _backend_named(config: pytest.Config, name: str) -> Backend:
    for backend in config.stash[_SETTINGS].backends:
        if backend.name == name:
            return backend
    try:
        return _backends.lookup(name)
    except _backends.BackendError as error:
        raise pytest.UsageError(f"futures_backend_name: {error}") from None


@pytest.fixture
def executor_backend(futures_backend_name: str) -> str:
    """Alias of ``futures_backend_name`` (a project's own ``executor_backend`` replaces it)."""
    return futures_backend_name


@pytest.fixture
def futures_backend(request: pytest.FixtureRequest, futures_backend_name: str) -> Backend:
    """The :class:`~pytest_futures_plugin.backends.Backend` that ``futures_backend_name`` names."""
    backend = _backend_named(request.config, futures_backend_name)
    # The test's own scheduler (it takes ``scheduler``/``virtual_clock``) manages the threads
    # of any thread-based backend: entered before the executor is made, left after it is shut.
    if backend.deterministic or "futures_scheduler" in request.fixturenames:
        if _backends.in_processes(backend):
            reason = (
                f"--executor={backend.name}: its tasks run in other processes; the "
                "deterministic scheduler controls the threads of this process only (the "
                "scheduler and virtual_clock fixtures need a thread-based backend)"
            )
            if backend.deterministic:
                raise pytest.UsageError(reason)
            pytest.skip(reason)
        # By our own name: a project may have a fixture of its own called ``scheduler``.
        scheduler: Scheduler = request.getfixturevalue("futures_scheduler")
        # Its module, its classes' and the stdlib's ``_base``: the test may use the stdlib's
        # wait()/as_completed() on any backend.
        found = _backends.controlled_modules(backend.factory, backend.api_module)
        scheduler.control(*dict.fromkeys((*backend.controlled, *found)))
    return backend


@pytest.fixture
def futures_scheduler(request: pytest.FixtureRequest, futures_seed: int) -> Iterator[Scheduler]:
    """The deterministic scheduler, running this test from here to its teardown: threads
    started through controlled modules run one at a time, ``time.sleep``/``monotonic`` are
    virtual, a deadlock raises ``DeadlockError`` with the wait-for graph. Seeded by
    ``futures_seed``; marker ``futures_scheduler(...)`` sets the policy and modules."""
    from .scheduler import Scheduler

    marker = request.node.get_closest_marker("futures_scheduler")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    spec = options.pop("policy", request.config.getoption("futures_policy") or "random")
    try:
        policy = _deterministic.policy_named(spec, futures_seed)
        search = _deterministic.search_options(spec, options, request.module.__name__)
    except ValueError as error:
        raise pytest.UsageError(f"futures_scheduler(policy={spec!r}): {error}") from None
    if search is not None:
        request.node.stash[_SEARCH] = search
    modules = [*_deterministic.task_modules(request.module), *options.pop("modules", ())]
    try:
        sched = Scheduler(policy, modules=modules, **options)
    except TypeError as error:
        raise pytest.UsageError(f"futures_scheduler(...): {error}") from None
    request.node.stash[_SCHEDULER] = sched
    sched.locations = search is None  # source lines in the schedule printed on a failure
    if "futures_backend" in request.fixturenames:  # probed before the run: see in_processes
        name = request.getfixturevalue("futures_backend_name")
        _backends.in_processes(_backend_named(request.config, name))
    with sched:
        yield sched
    if sched.leftovers:
        pytest.fail(
            "threads left blocked at the end of the test (aborted):\n  "
            + "\n  ".join(sched.leftovers),
            pytrace=False,
        )


@pytest.fixture
def futures_clock(futures_scheduler: Scheduler) -> VirtualClock:
    """The scheduler's virtual clock: ``now()``, ``advance(seconds)``, ``autojump``."""
    return futures_scheduler.clock


@pytest.fixture
def scheduler(futures_scheduler: Scheduler) -> Scheduler:
    """Alias of ``futures_scheduler`` (a project's own ``scheduler`` fixture replaces it)."""
    return futures_scheduler


@pytest.fixture
def virtual_clock(futures_clock: VirtualClock) -> VirtualClock:
    """Alias of ``futures_clock`` (a project's own ``virtual_clock`` fixture replaces it)."""
    return futures_clock


_SCHEDULER: pytest.StashKey[Scheduler] = pytest.StashKey()
_SEARCH: pytest.StashKey[dict[str, Any]] = pytest.StashKey()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Under a ``systematic`` policy: the test body, run under every schedule of the search
    (an ExplorationFailed, with the failing schedule and its trace, when one fails)."""
    options = pyfuncitem.stash.get(_SEARCH, None)
    if options is None:
        return None
    sched, function = pyfuncitem.stash[_SCHEDULER], pyfuncitem.obj
    report = _deterministic.search_test(sched, function, pyfuncitem.funcargs, options)
    pyfuncitem.add_report_section("call", "futures search", report)
    return True


@pytest.fixture
def futures_api(futures_backend: Backend) -> FuturesAPI:
    """The backend's module-level API: wait, as_completed, Future, the exceptions, ..."""
    return futures_backend.api


@pytest.fixture
def futures_seed(request: pytest.FixtureRequest) -> int:
    """This test's seed: derived from --futures-seed and the test id."""
    return derive_seed(request.config.stash[_SETTINGS].seed, request.node.nodeid)


@pytest.fixture
def futures_controls() -> Iterator[Controls]:
    """Gates, latches and recorders for tasks in threads or worker processes; all opened after."""
    from .controls import Controls

    with Controls() as controls:
        yield controls


@pytest.fixture
def futures_executor_factory(
    futures_backend: Backend, futures_controls: Controls
) -> Iterator[Callable[..., Executor]]:
    """Makes executors of the backend under test, ``factory(**kwargs)``; all shut down after."""
    factory = ExecutorFactory(futures_backend)
    yield factory
    # Open the test's gates first, so that shutting down never waits on a blocked task.
    futures_controls.release_all()
    factory.close()


@pytest.fixture
def futures_executor(
    request: pytest.FixtureRequest, futures_executor_factory: Callable[..., Executor]
) -> Executor:
    """A fresh executor of the backend under test (keyword arguments from the
    ``futures_executor`` marker), shut down after the test."""
    marker = request.node.get_closest_marker("futures_executor")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
    return futures_executor_factory(**kwargs)


@pytest.fixture
def executor_factory(
    futures_executor_factory: Callable[..., Executor],
) -> Callable[..., Executor]:
    """Alias of ``futures_executor_factory`` (a project's own fixture of this name wins)."""
    return futures_executor_factory


@pytest.fixture
def executor(futures_executor: Executor) -> Executor:
    """Alias of ``futures_executor`` (a project's own ``executor`` fixture replaces it)."""
    return futures_executor


# --------------------------------------------------------------------------- replay


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    excinfo = call.excinfo
    if excinfo is not None and type(excinfo.value).__name__ == "FuturesDeadlockError":
        report.longrepr = excinfo.exconly()  # the wait-for graph says it all: no frames
    if report.failed and _is_ours(item):
        report.sections.append(("pytest-futures replay", replay_command(item)))
    sched = item.stash.get(_SCHEDULER, None)
    if report.failed and sched is not None and report.when == "call":
        report.sections.append(("pytest-futures schedule", _deterministic.describe_schedule(sched)))
    return report


_OUR_FIXTURES = frozenset({"futures_backend_name", "futures_seed", "futures_scheduler"})


def _is_ours(item: pytest.Item) -> bool:
    """Whether *item* runs on a backend or a seed of ours (so a replay command means something)."""
    names = getattr(item, "fixturenames", ())
    return (
        bool(_OUR_FIXTURES.intersection(names))
        or item.get_closest_marker("futures_area") is not None
    )


def replay_command(item: pytest.Item) -> str:
    """The command line that reruns *item* with its backend and seed."""
    settings = item.config.stash[_SETTINGS]
    words = ["pytest", item.nodeid]
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("futures_backend_name") if callspec is not None else None
    if isinstance(backend, str):
        words.append(f"--executor={backend}")
    words.append(f"--futures-seed={settings.seed}")
    return shlex.join(words)


# --------------------------------------------------------------------------- the matrix


_FORK_WITH_THREADS = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)
"""Python 3.12+ warns at every fork of a process that has threads. A test on our backends has
some by design (the controls server, thread pools, the process pool's manager), and the process
backends fork by default on Linux; the children re-initialise what they inherit. Applied only
to executor-parametrised tests, so the warning still reaches a project's other tests."""


def _narrowed_by_the_old_name(item: pytest.Item) -> None:
    """A ``parametrize`` of ``executor_backend`` over backend names, on a test that also runs on
    the backend axis: before the axis was ``futures_backend_name`` that narrowed it; now it
    would silently run every value on every backend, so it is refused with the new name."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    value, axis = params.get("executor_backend"), params.get("futures_backend_name")
    if not isinstance(value, str) or not isinstance(axis, str) or value == axis:
        return
    marks = item.iter_markers("parametrize")
    if not any("executor_backend" in str(mark.args[0] if mark.args else "") for mark in marks):
        return
    try:
        _backends.lookup(value)
    except _backends.BackendError:
        return  # the project's own axis of that name, not one of our backends
    raise pytest.UsageError(
        f"{item.nodeid}: parametrize('executor_backend', [{value!r}, ...]) no longer narrows "
        "the backend axis (executor_backend is now an alias); parametrize "
        "'futures_backend_name' instead"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Let executor-parametrised tests fork with threads; label each spec test with its area
    and backend (``user_properties`` travel with the reports, also from pytest-xdist workers);
    expect a backend's declared deviations."""
    for item in items:
        if "futures_backend_name" in getattr(item, "fixturenames", ()):
            item.add_marker(_FORK_WITH_THREADS)
            _narrowed_by_the_old_name(item)
        marker = item.get_closest_marker("futures_area")
        if marker is None:
            continue
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("futures_backend_name") if callspec is not None else None
        if not isinstance(backend, str):
            continue
        area = str(marker.args[0]) if marker.args else str(marker.kwargs.get("name", ""))
        item.user_properties.append(("futures_area", area))
        item.user_properties.append(("futures_backend", backend))
        # Declared for the whole area, or for this test alone (AREA/NAME without "test_").
        declared = _backend_named(config, backend).deviations
        name = str(getattr(item, "originalname", item.name)).removeprefix("test_")
        deviation = declared.get(area) or declared.get(f"{area}/{name}")
        if deviation:
            item.user_properties.append(("futures_deviation", deviation))
            item.add_marker(pytest.mark.xfail(reason=f"deviation: {deviation}", strict=False))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    matrix = config.stash[_SETTINGS].matrix
    if _is_xdist_worker(config) or not matrix.cells():
        return
    terminalreporter.write_sep("=", "pytest-futures conformance")
    for line in matrix.render():
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    path = config.getoption("futures_report")
    if path and not _is_xdist_worker(config):
        config.stash[_SETTINGS].matrix.write_json(path)


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


# --------------------------------------------------------------------------- guards

_GUARDED: pytest.StashKey[GuardedTest] = pytest.StashKey()


def _guarded(item: pytest.Item) -> bool:
    return "futures_backend_name" in getattr(item, "fixturenames", ()) or any(
        item.get_closest_marker(name) for name in ("futures_hang_timeout", "futures_leak_check")
    )


def _bound(item: pytest.Item) -> float:
    marker = item.get_closest_marker("futures_hang_timeout")
    if marker is not None and marker.args:
        try:
            return _settings_engine.seconds(marker.args[0], f"{item.nodeid}: futures_hang_timeout")
        except _settings_engine.SettingsError as error:
            raise pytest.UsageError(str(error)) from None
    return item.config.stash[_SETTINGS].hang_timeout


def _phase(item: pytest.Item) -> contextlib.AbstractContextManager[object]:
    """The hang guard of one phase of *item*, or nothing when it is not ours or disabled."""
    guards = item.stash.get(_GUARDED, None)
    return guards.phase() if guards is not None else contextlib.nullcontext()


def _watches_deadlocks(item: pytest.Item, backend: str) -> str | None:
    """The context of *item*'s deadlock watcher, or None for no watcher: it watches on real
    threads only (a scheduler reports its own deadlocks), unless turned off."""
    if not item.config.stash[_SETTINGS].deadlock_watch:
        return None
    if "futures_scheduler" in getattr(item, "fixturenames", ()):
        return None
    if backend == "-":
        return ""
    return None if _backend_named(item.config, backend).deterministic else f"backend: {backend}"


def pytest_enter_pdb() -> None:
    """pytest opened a debugger (``breakpoint()``, ``--pdb``): the hang guards stand down."""
    from .guards import debugger_entered

    debugger_entered()


def pytest_leave_pdb() -> None:
    """The debugger was left (``continue``): the hang guards count a fresh bound from here."""
    from .guards import debugger_left

    debugger_left()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    if _guarded(item):
        from .guards import GuardedTest

        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("futures_backend_name", "-") if callspec is not None else "-"
        context = f"backend: {backend}; test: {item.nodeid}"
        item.stash[_GUARDED] = GuardedTest(
            item.nodeid,
            _bound(item),
            LEAK_GRACE,
            context,
            watch_deadlocks=_watches_deadlocks(item, backend),
        )
    with _phase(item), _executor_warnings(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _phase(item), _executor_warnings(item):
        return (yield)


@contextlib.contextmanager
def _executor_warnings(item: pytest.Item) -> Iterator[None]:
    """In each phase of a spec test (a fixture making the executor, the call, the teardown
    shutting it down), record the warnings emitted (by the executor under test) instead of
    letting the project's filters turn them into errors: they go to the test's cell of the
    matrix (``futures_warnings``), for the executor's author to read. Other tests keep the
    project's filters."""
    if item.get_closest_marker("futures_area") is None:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            lines = [
                f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
            ]
            if lines:
                item.user_properties.append(("futures_warnings", list(dict.fromkeys(lines))))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    guards = item.stash.get(_GUARDED, None)
    if guards is None:
        return (yield)
    guards.release_if_hung()
    try:
        with guards.phase(), _executor_warnings(item):
            result = yield
    finally:
        guards.release_if_hung()  # the teardown itself hung (a shutdown waiting on a worker)
        guards.stop_watching()
    guards.check_leaks()
    return result
