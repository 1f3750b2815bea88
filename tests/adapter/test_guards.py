"""The hang guard and the leak check, seen from outside: a hung or leaky test fails and says why.

The two deadlocks are the ones of the first seed tutorial: two tasks waiting on each other's
futures, and a task waiting on a future it submitted to its own one-worker pool. On real
executors the deadlock watcher reports them within seconds (``test_deadlocks.py``);
with it off, the hang guard does, with the futures each thread waits on.
"""

from __future__ import annotations

import pytest

DEADLOCKS = """
    import pytest
    from pytest_futures_plugin import tasks

    def wait_on(box, name, gate):
        gate.wait()
        return box[name].result()

    @pytest.mark.futures_executor(max_workers=2)
    def test_two_tasks_wait_on_each_other(executor, futures_controls):
        gate, box = futures_controls.gate(), {}
        box["a"] = executor.submit(wait_on, box, "b", gate)
        box["b"] = executor.submit(wait_on, box, "a", gate)
        gate.release()
        box["a"].result()

    @pytest.mark.futures_executor(max_workers=1)
    def test_a_task_waits_on_a_future_it_submitted_to_its_own_pool(executor):
        def wait_on_future():
            return executor.submit(pow, 5, 2).result()

        assert executor.submit(wait_on_future).result() == 25
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


@pytest.mark.parametrize("backend", ["thread", "stdlib-thread"])
def test_the_seed_deadlocks_are_reported_not_hung_on(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(DEADLOCKS)
    result = run(
        pytester,
        f"--executor={backend}",
        "--futures-hang-timeout=1",
        "--futures-deadlock-watch=off",  # the watcher's own tests: test_deadlocks.py
    )
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert out.count("FuturesHangError") >= 2
    result.stdout.fnmatch_lines(
        [
            f"*backend: {backend}; test: *test_two_tasks_wait_on_each_other*",
            "*MainThread waits in Future.result() on <Future at 0x* state=running>*",
            "*waits in Future.result() on <Future at 0x* state=running>*",
        ]
    )
    result.stdout.fnmatch_lines(
        [f"*backend: {backend}; test: *test_a_task_waits_on_a_future_it_submitted*"]
    )
    # the queued pow(5, 2) never started: the one worker waits on it
    result.stdout.fnmatch_lines(["*waits in Future.result() on <Future at 0x* state=pending>*"])


def test_the_marker_sets_the_bound_and_zero_disables_the_guard(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading, pytest

        @pytest.mark.futures_hang_timeout(0.5)
        def test_marked(executor):
            threading.Event().wait(30)

        @pytest.mark.futures_hang_timeout(0)
        def test_disabled(executor):
            assert threading.Event().wait(1.5) is False
        """
    )
    result = run(pytester, "--futures-hang-timeout=1000")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*FuturesHangError*0.5*"])


def test_a_bad_bound_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--futures-hang-timeout=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--futures-hang-timeout='soon': expected a number of seconds*"])


def test_a_thread_left_running_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading, pytest

        stop = threading.Event()

        def test_leaks(executor):
            threading.Thread(target=stop.wait, name="left-behind").start()

        def test_after():
            stop.set()
        """
    )
    result = run(pytester, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*leak check*", "*left-behind*"])


def test_an_executor_the_test_made_itself_and_left_open_is_a_leak(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import concurrent.futures, pytest

        @pytest.mark.futures_leak_check
        def test_forgets_shutdown():
            pool = concurrent.futures.ThreadPoolExecutor(1, "Forgotten")
            pool.submit(concurrent.futures.Future().exception, 12)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*leak check*", "*Forgotten*"])


SCRIPTED_PDB = """
    import io
    import os
    import pdb


    class ScriptedPdb(pdb.Pdb):
        '''A real pdb whose person types the commands of $SCRIPTED_PDB, one per line.'''

        def __init__(self, **kwargs):
            commands = os.environ["SCRIPTED_PDB"].replace(";", "\\n") + "\\n"
            super().__init__(
                stdin=io.StringIO(commands), stdout=io.StringIO(), nosigint=True, **kwargs
            )
"""

READING = "!__import__('threading').Event().wait(2.0)"
"""A person at the prompt, reading for 2 s (four hang bounds of 0.5 s) before going on."""


def test_the_guard_stands_down_while_pytest_has_a_debugger_open(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(scripted_pdb=SCRIPTED_PDB)
    pytester.makepyfile(
        """
        def test_debugged(executor):
            breakpoint()
            assert executor.submit(pow, 2, 3).result(timeout=30) == 8
        """
    )
    monkeypatch.setenv("SCRIPTED_PDB", f"{READING};continue")
    result = run(pytester, "--futures-hang-timeout=0.5", "--pdbcls=scripted_pdb:ScriptedPdb")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PDB set_trace*", "*PDB continue*"])


def test_the_guard_fires_again_once_the_debugger_is_left(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(scripted_pdb=SCRIPTED_PDB)
    pytester.makepyfile(
        """
        import threading

        def test_hangs_after_debugging(executor):
            breakpoint()
            threading.Event().wait(60)
        """
    )
    monkeypatch.setenv("SCRIPTED_PDB", "continue")
    result = run(pytester, "--futures-hang-timeout=0.5", "--pdbcls=scripted_pdb:ScriptedPdb")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*PDB continue*", "*FuturesHangError*bound 0.5 s*"])


def test_the_guard_stands_down_for_a_debugger_pytest_does_not_know_of(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A debugger started without pytest's help (as an IDE would) is seen by its trace
    function on the test's frames."""
    pytester.makepyfile(scripted_pdb=SCRIPTED_PDB)
    pytester.makepyfile(
        """
        from scripted_pdb import ScriptedPdb

        def test_debugged(executor):
            ScriptedPdb().set_trace()
            assert executor.submit(pow, 2, 3).result(timeout=30) == 8
        """
    )
    monkeypatch.setenv("SCRIPTED_PDB", f"{READING};continue")
    result = run(pytester, "--futures-hang-timeout=0.5")
    result.assert_outcomes(passed=1)
