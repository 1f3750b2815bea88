"""Deviations declared per property: every key a built-in backend declares names something a
spec checks, and a declared property is checked as documented, others strictly."""

from __future__ import annotations

import importlib
import pkgutil
from types import SimpleNamespace
from typing import Any

import pytest

import specs
from pytest_futures_plugin import ecosystem
from specs import _deviations


def _spec_properties() -> tuple[set[str], set[str]]:
    """The spec areas, and every ``AREA/NAME`` of a spec test (NAME without ``test_``)."""
    areas: set[str] = set()
    tests: set[str] = set()
    for module_info in pkgutil.iter_modules(specs.__path__):
        if not module_info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"specs.{module_info.name}")
        area = module.pytestmark.args[0]
        areas.add(area)
        tests.update(f"{area}/{name[5:]}" for name in vars(module) if name.startswith("test_"))
    return areas, tests


def test_every_declared_deviation_names_an_area_a_test_or_a_checked_property() -> None:
    areas, tests = _spec_properties()
    known = areas | tests | set(_deviations.PROPERTIES)
    for spec in ecosystem.SPECS:
        unknown = sorted(set(spec.deviations) - known)
        assert not unknown, f"{spec.name} declares deviations no spec checks: {unknown}"


def test_dask_declares_its_deviations_per_property() -> None:
    for name in ("dask-thread", "dask-process"):
        assert all("/" in key for key in ecosystem.spec(name).deviations), name


def _backend(**deviations: str) -> Any:
    return SimpleNamespace(name="fake", deviations=deviations)


def test_declared_answers_for_a_checked_property_only() -> None:
    key = "shutdown/wait_false_cancels_pending"
    assert _deviations.declared(_backend(**{key: "documented"}), key) is True
    assert _deviations.declared(_backend(), key) is False
    with pytest.raises(KeyError, match="no spec property 'shutdown/typo'"):
        _deviations.declared(_backend(), "shutdown/typo")


def test_observed_refuses_an_undeclared_deviation() -> None:
    with pytest.raises(AssertionError, match="declares no deviation"):
        _deviations.observed(_backend(), "shutdown/wait_false_cancels_pending")
