"""InterpreterPoolExecutor (Python 3.14's ``concurrent.futures.InterpreterPoolExecutor``).

executor_impl does not provide it, on any Python (README, "Deliberate differences"): asking
for it raises ``AttributeError`` that says why, as the stdlib before 3.14 raises a plain one;
``hasattr`` is a clean probe for code that uses it where it exists.
"""

from __future__ import annotations

import concurrent.futures

import pytest

import executor_impl


def test_executor_impl_has_no_interpreter_pool_and_its_error_says_why() -> None:
    assert not hasattr(executor_impl, "InterpreterPoolExecutor")
    with pytest.raises(AttributeError, match=r"'InterpreterPoolExecutor'.*Deliberate differences"):
        executor_impl.InterpreterPoolExecutor  # noqa: B018 - the lookup is the test
    assert "InterpreterPoolExecutor" not in executor_impl.__all__


def test_an_unknown_name_still_raises_the_plain_attribute_error() -> None:
    with pytest.raises(
        AttributeError, match=r"^module 'executor_impl' has no attribute 'nothing'$"
    ):
        executor_impl.nothing  # noqa: B018


def test_where_the_stdlib_has_no_interpreter_pool_its_probe_agrees() -> None:
    """The stdlib (3.14+) lists the name only where ``_interpreters`` exists; before 3.14,
    neither has it, so a probe by ``hasattr`` gives the same answer for both."""
    if hasattr(concurrent.futures, "InterpreterPoolExecutor"):
        pytest.skip("this stdlib has InterpreterPoolExecutor; executor_impl deliberately not")
    assert "InterpreterPoolExecutor" not in concurrent.futures.__all__
