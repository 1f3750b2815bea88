"""The backends engine (``pytest_futures_plugin/backends.py``), in-process: what a name
resolves to, that a lookup is memoised, what a probe finds, and the ExecutorFactory."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import sys
import types
from typing import TYPE_CHECKING, Any

import pytest

import executor_impl
from pytest_futures_plugin import LONG_WAIT, backends
from pytest_futures_plugin.backends import (
    BUILTIN_NAMES,
    DEFAULT_MAX_WORKERS,
    Backend,
    BackendError,
    ExecutorFactory,
    lookup,
    probe,
    resolve,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def pools_module() -> Iterator[str]:
    """A module of its own, with a factory, a dotted factory and a non-factory."""
    name = "pools_for_backend_tests"
    module = types.ModuleType(name)
    module.make_pool = concurrent.futures.ThreadPoolExecutor  # type: ignore[attr-defined]

    class Namespace:  # one module, several complete backends
        Pool = concurrent.futures.ThreadPoolExecutor
        CancelledError = KeyError

    module.Namespace = Namespace  # type: ignore[attr-defined]
    module.instance = types.SimpleNamespace(  # type: ignore[attr-defined]
        Pool=concurrent.futures.ThreadPoolExecutor, CancelledError=KeyError
    )
    module.not_a_factory = 42  # type: ignore[attr-defined]
    sys.modules[name] = module
    yield name
    del sys.modules[name]
    lookup.cache_clear()  # names of this module must not outlive it


def test_all_expands_to_the_builtins_in_order_and_repeats_are_dropped() -> None:
    selected = resolve(["stdlib-thread", "all,thread", "deterministic"])
    assert [backend.name for backend in selected] == [
        "stdlib-thread",
        *(name for name in BUILTIN_NAMES if name != "stdlib-thread"),
        "deterministic",
    ]


def test_the_builtins_are_executor_impl_and_the_stdlib() -> None:
    assert lookup("thread").factory is executor_impl.ThreadPoolExecutor
    assert lookup("process").factory is executor_impl.ProcessPoolExecutor
    assert lookup("stdlib-thread").factory is concurrent.futures.ThreadPoolExecutor
    assert lookup("stdlib-process").factory is concurrent.futures.ProcessPoolExecutor
    assert lookup("thread").api.wait is executor_impl.wait
    assert not lookup("thread").deterministic
    assert lookup("deterministic").deterministic


def test_a_lookup_is_memoised_and_resolve_returns_the_same_backends() -> None:
    first = lookup("stdlib-thread")
    assert lookup("stdlib-thread") is first
    assert resolve(["stdlib-thread"]) == [first]
    assert resolve(["stdlib-thread"])[0] is first


def test_capabilities_are_probed_once_per_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def counting_probe(factory: Any) -> backends.Capabilities:
        calls.append(factory)
        return probe(factory)

    monkeypatch.setattr(backends, "probe", counting_probe)
    lookup.cache_clear()
    try:
        for _ in range(3):
            assert lookup("stdlib-thread").capabilities.processes is False
        assert calls == [concurrent.futures.ThreadPoolExecutor]
    finally:
        lookup.cache_clear()


def test_module_attr_names_a_factory_and_its_api_module(pools_module: str) -> None:
    backend = lookup(f"{pools_module}:make_pool")
    assert backend.factory is concurrent.futures.ThreadPoolExecutor
    assert backend.api_module == pools_module
    assert backend.api.wait is concurrent.futures.wait  # the module lacks it: the stdlib's


def test_a_dotted_attr_looks_the_api_up_in_its_namespace_first(pools_module: str) -> None:
    backend = lookup(f"{pools_module}:Namespace.Pool")
    assert backend.api.CancelledError is KeyError
    assert backend.api.origins["CancelledError"].endswith("Namespace")
    assert backend.api.origins["wait"] == "concurrent.futures"


def test_a_namespace_without_a_name_is_named_by_its_repr(pools_module: str) -> None:
    backend = lookup(f"{pools_module}:instance.Pool")
    assert backend.api.CancelledError is KeyError
    assert backend.api.origins["CancelledError"].startswith("namespace(Pool=")


def test_deterministic_module_attr_controls_the_factorys_modules(pools_module: str) -> None:
    backend = lookup(f"deterministic:{pools_module}:make_pool")
    assert backend.deterministic
    assert pools_module in backend.controlled
    assert "concurrent.futures._base" in backend.controlled


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "--executor=nope: unknown backend 'nope'; valid values are thread, process"),
        ("all", "--executor=all: expected the name of one backend"),
        ("thread,process", "--executor=thread,process: expected the name of one backend"),
        ("", "--executor=: expected the name of one backend"),
        ("no_such_module_here:Pool", "cannot import module 'no_such_module_here'"),
    ],
)
def test_a_bad_name_is_a_backend_error_naming_it(name: str, message: str) -> None:
    with pytest.raises(BackendError) as raised:
        lookup(name)
    assert message in str(raised.value)


def test_module_attr_errors_name_the_attribute(pools_module: str) -> None:
    with pytest.raises(BackendError, match="has no attribute 'missing'"):
        lookup(f"{pools_module}:missing")
    with pytest.raises(BackendError, match="'not_a_factory' is a int, not an executor factory"):
        lookup(f"{pools_module}:not_a_factory")


def test_an_empty_name_in_a_list_is_an_error_naming_the_list() -> None:
    with pytest.raises(BackendError, match="--executor=thread,,process: empty backend name"):
        resolve(["thread,,process"])


def test_a_probe_finds_threads_and_the_keywords_a_factory_takes() -> None:
    found = probe(concurrent.futures.ThreadPoolExecutor)
    assert found.processes is False
    assert found.cancel_futures is True
    assert found.initializer is True
    assert found.mp_context is False


def test_a_probe_of_a_process_pool_sees_another_process() -> None:
    found = probe(concurrent.futures.ProcessPoolExecutor)
    assert found.processes is True
    assert found.mp_context is True


def test_a_factory_that_fails_is_a_backend_error_naming_it() -> None:
    def broken(**kwargs: Any) -> concurrent.futures.Executor:
        raise RuntimeError("no pool today")

    with pytest.raises(BackendError, match=r"broken\(max_workers=1\) raised RuntimeError"):
        probe(broken)


def test_the_executor_factory_makes_executors_and_shuts_them_all_down() -> None:
    factory = ExecutorFactory(lookup("thread"))
    first, second = factory(), factory(max_workers=1)
    assert first.submit(os.getpid).result(LONG_WAIT) == os.getpid()
    assert first._max_workers == DEFAULT_MAX_WORKERS  # type: ignore[attr-defined]
    assert second._max_workers == 1  # type: ignore[attr-defined]
    factory.close()
    assert factory.executors == []
    for executor in (first, second):
        with pytest.raises(RuntimeError, match="shutdown"):
            executor.submit(os.getpid)


def test_the_executor_factory_shuts_down_a_pool_without_cancel_futures() -> None:
    closed: list[bool] = []

    class OldPool(concurrent.futures.ThreadPoolExecutor):
        def shutdown(self, wait: bool = True) -> None:  # type: ignore[override]
            closed.append(wait)
            super().shutdown(wait)

    factory = ExecutorFactory(Backend("old", OldPool))
    factory()
    factory.close()
    assert closed == [True]


def test_a_declared_share_of_examples_has_a_floor_and_never_adds_examples() -> None:
    full = backends.Backend("b", concurrent.futures.ThreadPoolExecutor)
    assert backends.examples(full, 40) == 40
    share = dataclasses.replace(full, examples=0.3)
    assert backends.examples(share, 40) == 12
    assert backends.examples(share, 10) == backends.MIN_EXAMPLES
    assert backends.examples(share, 3) == 3  # never more than planned
