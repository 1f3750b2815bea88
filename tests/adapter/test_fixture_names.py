"""The plugin's fixtures have names that cannot collide: a project's own fixtures called
``scheduler``, ``executor``, ``executor_factory``, ``virtual_clock`` or ``executor_backend`` win
in that project, and the plugin, which only ever asks for its ``futures_``-prefixed fixtures,
keeps working."""

from __future__ import annotations

import pytest

PROJECT_FIXTURES = """
    import pytest

    @pytest.fixture
    def scheduler():
        return "the project's own job scheduler"

    @pytest.fixture
    def executor():
        return "the project's own executor"

    @pytest.fixture
    def executor_factory():
        return "the project's own executor factory"

    @pytest.fixture
    def virtual_clock():
        return "the project's own clock"
"""

USES_BOTH = """
    def test_own_fixtures_and_ours(
        scheduler, executor, executor_factory, virtual_clock, futures_executor, futures_api
    ):
        assert scheduler == "the project's own job scheduler"
        assert executor == "the project's own executor"
        assert executor_factory == "the project's own executor factory"
        assert virtual_clock == "the project's own clock"
        future = futures_executor.submit(pow, 2, 10)
        assert futures_api.wait([future], timeout=30).done == {future}
        assert future.result() == 1024
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


@pytest.mark.parametrize("backend", ["thread", "deterministic"])
def test_a_project_with_its_own_scheduler_executor_and_clock_fixtures_works(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makeconftest(PROJECT_FIXTURES)
    pytester.makepyfile(USES_BOTH)
    result = run(pytester, f"--executor={backend}")
    result.assert_outcomes(passed=1)


def test_the_prefixed_scheduler_and_clock_work_beside_the_projects_own(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(PROJECT_FIXTURES)
    pytester.makepyfile(
        """
        import time

        def test_virtual_time(scheduler, virtual_clock, futures_scheduler, futures_clock):
            assert scheduler == "the project's own job scheduler"
            assert virtual_clock == "the project's own clock"
            started = futures_clock.now()
            time.sleep(3600)
            assert futures_clock.now() - started == 3600
            assert futures_scheduler.clock is futures_clock
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)


def test_the_short_names_are_aliases_of_the_prefixed_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_aliases(scheduler, futures_scheduler, virtual_clock, futures_clock):
            assert scheduler is futures_scheduler
            assert virtual_clock is futures_clock

        def test_executor_aliases(
            executor_factory, futures_executor_factory, executor, futures_executor
        ):
            assert executor_factory is futures_executor_factory
            assert executor is futures_executor

        def test_backend_alias(executor_backend, futures_backend_name, futures_backend):
            assert executor_backend == futures_backend_name == futures_backend.name
        """
    )
    result = run(pytester, "--executor=thread,stdlib-thread")
    result.assert_outcomes(passed=5)  # the scheduler's aliases once, the others per backend


PROJECT_BACKEND_AXIS = """
    import pytest

    @pytest.fixture(params=["celery", "rq"])
    def executor_backend(request):
        return f"the project's own {request.param} backend"
"""

USES_ITS_OWN_AXIS_AND_OURS = """
    import time

    def test_own_axis_and_our_scheduler(
        executor_backend, futures_backend, futures_executor, futures_clock
    ):
        assert executor_backend.startswith("the project's own ")
        assert futures_backend.name in ("thread", "deterministic")
        started = futures_clock.now()
        assert futures_executor.submit(time.sleep, 60).result(timeout=120) is None
        assert futures_clock.now() - started >= 60
"""


@pytest.mark.parametrize("backend", ["thread", "deterministic"])
def test_a_project_with_its_own_executor_backend_fixture_keeps_the_scheduler_working(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makeconftest(PROJECT_BACKEND_AXIS)
    pytester.makepyfile(USES_ITS_OWN_AXIS_AND_OURS)
    result = run(pytester, "-v", f"--executor={backend}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [f"*[[]{backend}-celery[]] PASSED*", f"*[[]{backend}-rq[]] PASSED*"]
    )


def test_narrowing_with_the_old_axis_name_is_refused_with_the_new_one(
    pytester: pytest.Pytester,
) -> None:
    """Before the axis was ``futures_backend_name``, ``parametrize("executor_backend", ...)``
    narrowed it; now it would run each value on every backend, so it is a usage error naming
    the new name. A parametrize of the project's own values (not backends) stays its own."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("executor_backend", ["stdlib-thread"])
        def test_narrowed(executor_backend, executor):
            assert executor.submit(pow, 2, 3).result(timeout=10) == 8
        """
    )
    result = run(pytester, "--executor=thread,stdlib-thread")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "parametrize('executor_backend', ['stdlib-thread', ...]) no longer narrows" in str(
        result.stderr
    )
    assert "parametrize 'futures_backend_name' instead" in str(result.stderr)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("futures_backend_name", ["stdlib-thread"])
        def test_narrowed(futures_backend_name, executor):
            assert executor.submit(pow, 2, 3).result(timeout=10) == 8

        @pytest.mark.parametrize("executor_backend", ["celery"])
        def test_own(executor_backend, executor):
            assert executor_backend == "celery"
        """
    )
    run(pytester, "--executor=thread,stdlib-thread").assert_outcomes(passed=3)
