"""The ecosystem's executors as named backends: loky, futurist and dask.distributed.

Each name below is a valid ``--executor`` value wherever its package is installed
(``pip install 'pytest-futures[ecosystem]'`` installs them all):

==================  =====================================================================
``loky``            ``loky.ProcessPoolExecutor``
``loky-reusable``   ``loky.get_reusable_executor`` (one executor shared until shut down)
``futurist-thread`` ``futurist.ThreadPoolExecutor``
``futurist-process````futurist.ProcessPoolExecutor``
``futurist-sync``   ``futurist.SynchronousExecutor`` (runs each call inside ``submit``)
``dask-thread``     ``Client.get_executor()`` on a ``LocalCluster`` of threads
``dask-process``    the same on a ``LocalCluster`` of worker processes
==================  =====================================================================

Every backend is the package's own executor, unwrapped, called like the stdlib's pool classes
(``factory(max_workers=..., **kwargs)``). Where a package's constructor differs, the factory
here translates ``max_workers`` and nothing else: ``futurist-sync`` has no workers, and the
dask backends start a ``LocalCluster`` whose threads are the workers. The dask executor is a
subclass of ``distributed``'s ``ClientExecutor`` that adds one thing: ``shutdown(wait=True)``
closes the client and the cluster it started (after the executor's own shutdown), so a test
leaks neither the cluster nor its threads or processes.

Each backend lists its **capabilities** as the upstream documentation describes them
(``tests/adapter`` checks that the probe finds the same) and its **deviations**: where the
documentation says the executor deliberately differs from ``concurrent.futures``, each with the
link. A deviation names exactly the property it changes (``AREA/PROPERTY``: a spec test's name
without ``test_``, or a property a spec's state machine checks, see ``specs/_deviations.py``),
so the other properties of that area still run strictly; only a deviation that takes away what
every test of an area relies on names the whole area. A test whose declared deviation shows
reports DEVIATION, not FAIL.

pebble is not here: its pools are not ``concurrent.futures`` executors. ``ProcessPool.submit``
takes a mandatory positional ``timeout`` before the call's arguments, ``map`` returns a future
of an iterator instead of an iterator, and there is no ``shutdown`` (``close``/``stop`` and
``join`` instead). Driving them through the specs would need an adapter that translates each of
those, and the specs would then test the adapter. A user may still try one with
``MODULE:ATTR`` pointing at an adapter of their own.

Nothing here imports pytest or the packages themselves until a backend is selected.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Callable

from .backends import Backend, BackendError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from concurrent.futures import Executor

    from .report import Matrix

EXTRA = "ecosystem"
"""The optional extra of pytest-futures that installs every package below."""


@dataclasses.dataclass(frozen=True)
class Declared:
    """The capabilities the upstream documentation gives a backend (see ``Capabilities``)."""

    processes: bool
    cancel_futures: bool
    max_tasks_per_child: bool
    initializer: bool
    mp_context: bool


@dataclasses.dataclass(frozen=True)
class Spec:
    """One ecosystem backend before its package is imported.

    ``package`` is the distribution pip installs (``extra`` the pytest-futures extra that
    brings it), ``module`` what is imported to check it is there, ``factory`` a
    ``"module:attr"`` of this module or of the package that makes executors, ``api_module``
    where ``wait``, ``as_completed`` and the exceptions go with it.
    """

    name: str
    package: str
    module: str
    factory: str
    api_module: str
    description: str
    docs: str
    declared: Declared
    deviations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    """Run once when the backend is selected (before any test): starts what the package
    keeps for the life of the interpreter, so that no test's leak check sees it appear."""
    examples: float = 1.0
    """The share of the profile's examples a spec machine runs (see ``Backend.examples``)."""
    examples_reason: str = ""

    @property
    def extra(self) -> str:
        return self.package

    def available(self) -> bool:
        """Whether the package is importable (without importing it)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def backend(self) -> Backend:
        """The :class:`Backend`; :class:`BackendError` naming the extra if the package is
        missing."""
        if not self.available():
            raise BackendError(
                f"--executor={self.name}: needs the {self.package!r} package, which is not "
                f"installed; install it with: pip install 'pytest-futures[{self.extra}]' "
                f"(or 'pytest-futures[{EXTRA}]' for every ecosystem backend; the extras "
                "install them on Python 3.10 and later)"
            )
        module_name, _, attr = self.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except Exception as error:
            raise BackendError(
                f"--executor={self.name}: importing {self.factory} failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        if self.prepare is not None:
            self.prepare()
        return Backend(
            self.name,
            factory,
            self.api_module,
            f"{self.description} ({self.docs})",
            deviations=dict(self.deviations),
            examples=self.examples,
            examples_reason=self.examples_reason,
        )


# --------------------------------------------------------------------------- factories


def futurist_synchronous(max_workers: int | None = None) -> Executor:
    """``futurist.SynchronousExecutor()``: it has no workers, so *max_workers* is ignored."""
    import futurist

    del max_workers
    executor: Executor = futurist.SynchronousExecutor()
    return executor


def dask_threads(max_workers: int | None = None) -> Executor:
    """``Client(LocalCluster(processes=False)).get_executor(pure=False)``: one worker with
    *max_workers* threads, in this process."""
    return _dask(max_workers, processes=False)


def dask_processes(max_workers: int | None = None) -> Executor:
    """``Client(LocalCluster(processes=True)).get_executor(pure=False)``: one worker process
    with *max_workers* threads."""
    return _dask(max_workers, processes=True)


_DASK_DEFAULT_WORKERS = 4
"""The threads of a dask backend's worker when ``max_workers`` is None."""


def _dask(max_workers: int | None, *, processes: bool) -> Executor:
    if max_workers is not None and max_workers <= 0:
        raise ValueError("max_workers must be greater than 0")  # the stdlib's words
    from distributed import Client, LocalCluster

    executor_class = _cluster_executor_class()
    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=max_workers or _DASK_DEFAULT_WORKERS,
        processes=processes,
        dashboard_address=None,
        # No dashboard, and the scheduler's HTTP server on a free port (by default it tries
        # 8787 and warns when another cluster has it).
        scheduler_kwargs={"dashboard_address": ":0"},
    )
    try:
        client = Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    # pure=False: dask's default (pure=True) runs two submits of the same call once, sharing
    # one result; an executor must run every call (https://distributed.dask.org/en/stable/api.html#distributed.Client.submit).
    executor: Executor = executor_class(client, cluster, pure=False)
    return executor


def prepare_dask() -> None:
    """Start distributed's process-wide offload thread (one worker, started on first use and
    never stopped): a cluster's first start would otherwise leave it running after the test."""
    from distributed import utils

    offload = getattr(utils, "_offload_executor", None)
    if offload is not None:
        offload.submit(int).result(timeout=_PREPARE_TIMEOUT)


_PREPARE_TIMEOUT = 60.0


_EXECUTOR_CLASS: list[type[Any]] = []


def _cluster_executor_class() -> type[Any]:
    """``ClientExecutor`` plus the closing of the client and cluster the backend started
    (defined on first use: ``distributed`` is imported only when a dask backend is)."""
    if _EXECUTOR_CLASS:
        return _EXECUTOR_CLASS[0]
    from distributed.cfexecutor import ClientExecutor

    class LocalClusterExecutor(ClientExecutor):  # type: ignore[misc]
        """dask's ``ClientExecutor`` on a ``LocalCluster`` it owns: ``shutdown(wait=True)``
        runs the executor's own shutdown, then closes the client and the cluster."""

        def __init__(self, client: Any, cluster: Any, **kwargs: Any) -> None:
            super().__init__(client, **kwargs)
            self.cluster = cluster

        def shutdown(self, wait: bool = True) -> None:
            super().shutdown(wait=wait)
            if wait:
                self.close_cluster()

        def close_cluster(self) -> None:
            """Close the client and the cluster (idempotent)."""
            client, cluster = self._client, self.cluster
            if client.status not in ("closed", "closing"):
                client.close()
            if cluster.status.name not in ("closed", "closing"):
                cluster.close()

    _EXECUTOR_CLASS.append(LocalClusterExecutor)
    return LocalClusterExecutor


# --------------------------------------------------------------------------- the backends

_LOKY_DOCS = "https://loky.readthedocs.io/en/stable/API.html"
_LOKY_REUSED = (
    "get_reusable_executor returns the one executor there is, resized, while it is not shut "
    "down or broken: two executors made in one test are one, sharing its workers "
    "(https://loky.readthedocs.io/en/stable/API.html#loky.get_reusable_executor)"
)
_SYNCHRONOUS = (
    "SynchronousExecutor runs each call in the caller's thread, inside submit(): no call is "
    "ever pending or running beside its caller, so one held at a gate blocks submit() itself "
    "(https://docs.openstack.org/futurist/latest/reference/index.html#futurist.SynchronousExecutor)"
)
_FUTURIST_DOCS = "https://docs.openstack.org/futurist/latest/reference/index.html"
_DASK_DOCS = "https://distributed.dask.org/en/stable/api.html#distributed.Client.get_executor"
_DASK_SHUTDOWN = (
    "https://github.com/dask/distributed/blob/main/distributed/cfexecutor.py "
    "(ClientExecutor.shutdown: 'If False then all running futures are cancelled immediately')"
)

_DASK_SERIALIZES = (
    "dask serializes each call (function, arguments) and its exception even on a cluster of "
    "threads, so an unpicklable argument fails the call and a call's exception comes back as "
    "a copy: "
    "https://distributed.dask.org/en/stable/serialization.html"
)
_DASK_AT_SUBMIT = (
    "the client serializes each call (function and arguments) inside submit(), so an "
    "unpicklable argument makes submit() raise (TypeError 'Could not serialize object') "
    "instead of failing the call's future: https://distributed.dask.org/en/stable/serialization.html"
)
_DASK_SHUTDOWN_DEVIATION = (
    "shutdown(wait=False) cancels the running calls' futures at once ('If False then all "
    f"running futures are cancelled immediately'): {_DASK_SHUTDOWN}"
)

_DASK_KILLED = (
    "a worker process that dies is restarted by its nanny and its call retried on another "
    "worker; after 'allowed-failures' deaths the call fails with KilledWorker, and the "
    "executor goes on -- there is no BrokenProcessPool: "
    "https://distributed.dask.org/en/stable/killed.html"
)

_NO_POOL = Declared(
    processes=False,
    cancel_futures=True,
    max_tasks_per_child=False,
    initializer=False,
    mp_context=False,
)

# loky's shutdown(wait=True, kill_workers=False) has no cancel_futures; its pools choose
# their start method through ``context``, not ``mp_context``.
_LOKY = Declared(
    processes=True,
    cancel_futures=False,
    max_tasks_per_child=False,
    initializer=True,
    mp_context=False,
)

_LOKY_START = "each executor starts its worker interpreters: 0.2-0.6 s to start and stop"

SPECS: tuple[Spec, ...] = (
    Spec(
        "loky",
        "loky",
        "loky",
        "loky:ProcessPoolExecutor",
        "loky",
        "loky.ProcessPoolExecutor",
        _LOKY_DOCS,
        _LOKY,
        examples=0.4,
        examples_reason=_LOKY_START,
    ),
    Spec(
        "loky-reusable",
        "loky",
        "loky",
        "loky:get_reusable_executor",
        "loky",
        "loky.get_reusable_executor",
        _LOKY_DOCS,
        _LOKY,
        {"waiting": _LOKY_REUSED},
        examples=0.4,
        examples_reason=_LOKY_START,
    ),
    Spec(
        "futurist-thread",
        "futurist",
        "futurist",
        "futurist:ThreadPoolExecutor",
        "futurist",
        "futurist.ThreadPoolExecutor",
        _FUTURIST_DOCS,
        _NO_POOL,
        examples=0.3,
        examples_reason="its shutdown(wait=True) takes 1 s: idle workers poll their queue "
        "once a second",
    ),
    Spec(
        "futurist-process",
        "futurist",
        "futurist",
        "futurist:ProcessPoolExecutor",
        "futurist",
        "futurist.ProcessPoolExecutor (a subclass of the stdlib's)",
        _FUTURIST_DOCS,
        Declared(
            processes=True,
            cancel_futures=True,
            max_tasks_per_child=False,
            initializer=False,
            mp_context=True,
        ),
    ),
    Spec(
        "futurist-sync",
        "futurist",
        "futurist",
        f"{__name__}:futurist_synchronous",
        "futurist",
        "futurist.SynchronousExecutor (runs each call inside submit)",
        _FUTURIST_DOCS,
        _NO_POOL,
        dict.fromkeys(
            ("callbacks", "cancellation", "map", "pool-sizing", "shutdown", "waiting"),
            _SYNCHRONOUS,
        ),
    ),
    Spec(
        "dask-thread",
        "distributed",
        "distributed",
        f"{__name__}:dask_threads",
        "concurrent.futures",
        "dask.distributed Client.get_executor() on a LocalCluster of threads",
        _DASK_DOCS,
        dataclasses.replace(_NO_POOL, cancel_futures=False),
        {
            "exceptions/calls_are_serialized": _DASK_SERIALIZES,
            "exceptions/submit_pickles_the_arguments": _DASK_AT_SUBMIT,
            "shutdown/wait_false_cancels_pending": _DASK_SHUTDOWN_DEVIATION,
        },
        prepare=prepare_dask,
    ),
    Spec(
        "dask-process",
        "distributed",
        "distributed",
        f"{__name__}:dask_processes",
        "concurrent.futures",
        "dask.distributed Client.get_executor() on a LocalCluster of worker processes",
        _DASK_DOCS,
        dataclasses.replace(_NO_POOL, cancel_futures=False, processes=True),
        {
            "exceptions/submit_pickles_the_arguments": _DASK_AT_SUBMIT,
            "shutdown/wait_false_cancels_pending": _DASK_SHUTDOWN_DEVIATION,
            "broken-pools/a_dead_worker_breaks_the_pool": _DASK_KILLED,
            "broken-pools/each_future_of_a_broken_pool_fails_with_its_own_exception": _DASK_KILLED,
        },
        prepare=prepare_dask,
        examples=0.2,
        examples_reason="each executor starts a LocalCluster of worker processes: 2-4 s to "
        "start and close",
    ),
)

NAMES: tuple[str, ...] = tuple(spec.name for spec in SPECS)
"""Every ecosystem backend's name, installed or not."""


def spec(name: str) -> Spec:
    """The :class:`Spec` called *name* (``KeyError`` if none)."""
    for candidate in SPECS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def available() -> list[str]:
    """The names of the ecosystem backends whose package is installed."""
    return [s.name for s in SPECS if s.available()]


def backend(name: str) -> Backend:
    """The ecosystem backend *name*; :class:`BackendError` if its package is missing."""
    return spec(name).backend()


# --------------------------------------------------------------------------- the matrix


def merge_reports(paths: Iterable[str | os.PathLike[str]]) -> Matrix:
    """One matrix from the ``--futures-report`` JSON files at *paths* (one run per backend)."""
    from .report import Matrix

    merged: Matrix | None = None
    for path in paths:
        with open(path, encoding="utf-8") as file:
            matrix = Matrix.from_json(json.load(file))
        merged = matrix if merged is None else merged.merge(matrix)
    if merged is None:
        raise ValueError("no reports to merge")
    return merged


# --------------------------------------------------------------------------- the document

BEGIN = "<!-- ecosystem matrix: begin (written by `nox -s ecosystem`; edit outside it) -->"
END = "<!-- ecosystem matrix: end -->"
"""The markers around the generated matrix in ``docs/ecosystem.md`` and the README."""

_UPSTREAM = "pytest_futures_plugin.upstream."
_COUNTS = ("PASS", "KNOWN-BUG", "DEVIATION", "SKIP", "FAIL")
_FIRST, _LAST = ["backend", "version"], ["/".join(_COUNTS), "wall (load)"]


def _cell_text(cell: Mapping[str, Any]) -> str:
    """A cell as the table shows it: its status, and for KNOWN-BUG the issues: a bug found by
    the specs (a reproduction of ours, no upstream report yet) is ``**found** NAME``."""
    status = str(cell["status"])
    if status != "KNOWN-BUG" or not cell.get("issues"):
        return status
    refs = [
        f"**found** {ref[len(_UPSTREAM) :]}" if ref.startswith(_UPSTREAM) else ref
        for ref in cell["issues"]
    ]
    return f"{status} {', '.join(refs)}"


def _version(name: str) -> str:
    """The installed version of an ecosystem backend's package ("" for any other backend)."""
    from importlib import metadata

    try:
        return f"{spec(name).package} {metadata.version(spec(name).package)}"
    except (KeyError, metadata.PackageNotFoundError):
        return ""


def report_rows(report: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """One row per backend of a ``--futures-report`` JSON: each area's cell, the counts of its
    tests, and the run's wall time and load when the report's meta has them (``wall_seconds``,
    ``load_average``: the ``ecosystem`` session adds them)."""
    meta = report.get("meta", {})
    wall = meta.get("wall_seconds")
    timing = f"{wall:.0f} s ({meta.get('load_average', '?')})" if wall is not None else "—"
    rows: dict[str, dict[str, str]] = {}
    for cell in report["cells"]:
        row = rows.setdefault(cell["backend"], {"backend": cell["backend"]})
        row[cell["area"]] = _cell_text(cell)
        for status in _COUNTS:
            row[status] = str(int(row.get(status, 0)) + int(cell["counts"].get(status, 0)))
    for name, row in rows.items():
        row.update(
            {"version": _version(name) or "—", _LAST[0]: " / ".join(row.pop(s) for s in _COUNTS)}
        )
        row[_LAST[1]] = timing
    return rows


def _split(line: str) -> list[str]:
    return [part.strip() for part in line.strip().strip("|").split("|")]


def update_document(path: str | os.PathLike[str], reports: Iterable[Mapping[str, Any]]) -> None:
    """Write the rows of *reports* into the matrix between :data:`BEGIN` and :data:`END` in the
    Markdown file *path*: a backend's row is replaced, the rows of backends not in *reports*
    are kept as they are. ValueError naming the file if it lacks the markers."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"{os.fspath(path)}: no {BEGIN!r} ... {END!r} block to write into")
    table = [line for line in text[start + len(BEGIN) : stop].splitlines() if line.startswith("|")]
    header = _split(table[0]) if table else []
    rows = {r[0]: dict(zip(header, r)) for r in map(_split, table[2:])}
    areas = [a for a in header if a not in _FIRST + _LAST]
    for report in reports:
        rows.update(report_rows(report))
        areas += sorted(a for a in report["areas"] if a not in areas)
    order = {name: n for n, name in enumerate(NAMES)}
    columns = [*_FIRST, *areas, *_LAST]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(rows[name].get(c, "—") for c in columns) + " |"
        for name in sorted(rows, key=lambda name: (order.get(name, len(order)), name))
    ]
    new = text[: start + len(BEGIN)] + "\n" + "\n".join(lines) + "\n" + text[stop:]
    with open(path, "w", encoding="utf-8") as file:
        file.write(new)


def main(argv: list[str] | None = None) -> int:
    """``python -m pytest_futures_plugin.ecosystem available`` prints the installed backends'
    names; ``... merge OUT.json IN.json...`` writes their merged matrix to OUT.json (and
    OUT.txt, the terminal matrix) and prints it; ``... document DOC.md[,DOC.md...]
    IN.json...`` writes their rows into each document's matrix (:func:`update_document`)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["available"]:
        print("\n".join(available()))
        return 0
    if len(args) >= 3 and args[0] == "merge":
        matrix = merge_reports(args[2:])
        matrix.write_json(args[1])
        text = "\n".join(matrix.render()) + "\n"
        with open(os.path.splitext(args[1])[0] + ".txt", "w", encoding="utf-8") as file:
            file.write(text)
        print(text, end="")
        return 0
    if len(args) >= 3 and args[0] == "document":
        reports = []
        for report in args[2:]:
            with open(report, encoding="utf-8") as file:
                reports.append(json.load(file))
        for document in args[1].split(","):
            update_document(document, reports)
        return 0
    print(
        f"usage: python -m {__name__} available | merge OUT.json IN.json... "
        "| document DOC.md[,DOC.md...] IN.json...",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
