"""The ``scheduler`` and ``virtual_clock`` fixtures and the ``futures_scheduler`` marker, as a
user's test sees them: the options it takes, the errors it gives for bad ones, and time that
passes only when the test says so (or when every thread waits)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


def test_an_unknown_policy_is_a_usage_error_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.futures_scheduler(policy="round-robin")
        def test_it(scheduler):
            pass
        """
    )
    result = run(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            (
                "*futures_scheduler(policy='round-robin'): expected one of random, pct, fifo, "
                "systematic?:K? "
                "or a pytest_futures_plugin.scheduler.Policy*"
            )
        ]
    )


def test_an_unknown_marker_option_is_a_usage_error_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.futures_scheduler(max_stepz=10)
        def test_it(scheduler):
            pass
        """
    )
    result = run(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*futures_scheduler(...):*max_stepz*"])


def test_the_marker_chooses_pct_seeded_by_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_futures_plugin.scheduler import PCT

        @pytest.mark.futures_scheduler(policy="pct")
        def test_it(scheduler, futures_seed):
            assert isinstance(scheduler.policy, PCT)
            assert scheduler.stats()["policy"] == PCT(futures_seed).describe()
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_virtual_clock_advance_moves_every_clock_the_test_reads(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import time

        def test_it(virtual_clock):
            wall = virtual_clock.wall()
            start, start_ns = time.monotonic(), time.monotonic_ns()
            virtual_clock.advance(3600)
            assert time.monotonic() - start == 3600
            assert time.monotonic_ns() - start_ns == 3600 * 10**9
            assert virtual_clock.now() - start == 3600
            assert virtual_clock.wall() - wall == 3600  # time.time() under control
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_a_sleep_jumps_virtual_time_unless_autojump_is_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        import pytest

        def test_jumps(virtual_clock):
            start = time.monotonic()
            time.sleep(600)
            assert time.monotonic() - start == 600

        @pytest.mark.futures_scheduler(autojump=False)
        def test_does_not_jump(scheduler):
            time.sleep(600)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*every managed thread is blocked and virtual time does not jump (autojump off)*"]
    )


def test_a_deterministic_backend_that_does_not_import_is_a_usage_error_naming_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_it(executor):\n    pass\n")
    result = run(pytester, "--executor=deterministic:no_such_module_here:Pool")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*no_such_module_here*"])
