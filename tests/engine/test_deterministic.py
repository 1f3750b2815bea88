"""The engine module ``pytest_futures_plugin/deterministic.py``, in-process: the policy a name
chooses, the modules a test's tasks come from, the description of a failed schedule."""

from __future__ import annotations

import sys
import threading
import types

import pytest

from pytest_futures_plugin import scheduler as sch
from pytest_futures_plugin.deterministic import (
    POLICY_NAMES,
    RUNTIME_MODULES,
    TASK_HELPERS,
    describe_schedule,
    policy_named,
    preemption_bound,
    task_modules,
)


def test_each_name_chooses_its_policy_seeded() -> None:
    assert isinstance(policy_named("random", 1), sch.RandomPolicy)
    assert isinstance(policy_named("pct", 1), sch.PCT)
    assert isinstance(policy_named("fifo", 1), sch.FIFO)
    assert isinstance(policy_named("systematic:1", 1), sch.FIFO)  # until the search runs
    assert POLICY_NAMES == ("random", "pct", "fifo", "systematic[:K]")


@pytest.mark.parametrize(("spec", "bound"), [("systematic", 2), ("systematic:0", 0), ("pct", None)])
def test_a_systematic_name_gives_its_preemption_bound(spec: str, bound: int | None) -> None:
    assert preemption_bound(spec) == bound


def test_a_systematic_name_with_no_number_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="policy 'systematic:two': expected 'systematic' or"):
        preemption_bound("systematic:two")


def test_a_policy_object_is_taken_as_it_is() -> None:
    policy = sch.Scripted([])
    assert policy_named(policy, 1) is policy


@pytest.mark.parametrize("spec", ["round-robin", None, 3])
def test_anything_else_is_a_value_error_naming_it_and_the_valid_names(spec: object) -> None:
    with pytest.raises(
        ValueError, match=r"expected one of random, pct, fifo, systematic\[:K\] or a .*Policy"
    ) as e:
        policy_named(spec, 1)
    assert repr(spec) in str(e.value)


def test_the_task_modules_are_the_test_module_its_imported_siblings_and_our_helpers() -> None:
    package, sibling = "pkg_for_task_modules", "pkg_for_task_modules._tasks"
    sys.modules[sibling] = types.ModuleType(sibling)
    try:
        module = types.ModuleType(f"{package}.test_x")
        assert task_modules(module) == [
            f"{package}.test_x",
            sibling,
            *TASK_HELPERS,
            *RUNTIME_MODULES,
        ]
    finally:
        del sys.modules[sibling]
    assert task_modules(types.ModuleType("test_top_level")) == [
        "test_top_level",
        *TASK_HELPERS,
        *RUNTIME_MODULES,
    ]


def test_a_schedule_is_described_with_its_threads_decisions_and_last_points() -> None:
    with sch.Scheduler(sch.FIFO(), modules=[__name__]) as run:
        done = threading.Event()
        worker = threading.Thread(target=done.set, name="worker")
        worker.start()
        worker.join()
        assert done.is_set()
        text = describe_schedule(run, decisions=1, points=3)
    lines = text.splitlines()
    assert lines[0].startswith("policy FIFO, steps ")
    assert lines[1] == "threads: T0='MainThread', T1='worker'"
    assert len(run.schedule) == 2  # only the first is shown, then "..."
    assert lines[2] == f"decisions (Scripted(...) replays them): {run.schedule[0]} ..."
    assert lines[3] == "the last scheduling points:"
    assert len(lines[4:]) == 3
