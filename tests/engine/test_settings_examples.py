"""``--futures-examples``: the share of the examples a backend slow to start or stop declares,
or every example; named in the matrix's meta."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_futures_plugin import settings

pytest.importorskip("futurist")


def read(**options: Any) -> settings.Settings:
    values = {"futures_executor": ["futurist-thread,thread"], **options}
    return settings.read(values.get, lambda name: None, environ={})


def test_a_declared_share_is_kept_and_named_in_the_meta() -> None:
    chosen = read()
    futurist, ours = chosen.backends
    assert 0 < futurist.examples < 1
    assert futurist.examples_reason
    assert ours.examples == 1
    declared = {"share": futurist.examples, "reason": futurist.examples_reason}
    assert chosen.matrix.meta["examples"] == {"futurist-thread": declared}


def test_full_runs_every_example() -> None:
    chosen = read(futures_examples="full")
    assert [backend.examples for backend in chosen.backends] == [1, 1]
    assert "examples" not in chosen.matrix.meta


def test_a_bad_value_names_itself_and_where_it_came_from() -> None:
    with pytest.raises(settings.SettingsError, match="--futures-examples='most'"):
        read(futures_examples="most")
    with pytest.raises(settings.SettingsError, match="PYTEST_FUTURES_EXAMPLES='x'"):
        settings.read(
            {"futures_executor": ["thread"]}.get, lambda name: None, {settings.ENV_EXAMPLES: "x"}
        )
