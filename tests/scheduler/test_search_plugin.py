"""The systematic search as a user's test reaches it: the ``systematic[:K]`` policy, named by
the ``futures_scheduler`` marker or ``--futures-policy``, runs the test body under every
schedule up to the bound, under the ``scheduler`` fixture and ``--executor=deterministic``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

RACE = """
import threading
import pytest

counter = 0

def increment():
    global counter
    counter += 1

@pytest.mark.futures_scheduler(policy="systematic:2", fine=True)
def test_two_increments(scheduler):
    global counter
    counter = 0
    workers = [threading.Thread(target=increment) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counter == 2
"""

POOL = """
def test_a_task_on_the_pool(executor):
    assert executor.submit(abs, -1).result() == 1
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


def test_the_marker_finds_a_race_with_no_lock_and_names_its_lines(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_race=RACE)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    line = RACE.lstrip("\n").splitlines().index("    counter += 1") + 1
    where = f"test_race.py:{line} (increment)"
    result.stdout.fnmatch_lines(
        [
            (
                "*ExplorationFailed: schedule * of a systematic search (at most 2 preemptions) "
                "failed, with 1 preemption(s): AssertionError*"
            ),
            (
                f"*T1 read global counter at {where}; T2 wrote it at {where}; then T1 wrote it at "
                f"{where} (stale read)"
            ),
        ]
    )


def test_the_option_proves_a_test_on_the_deterministic_executor(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_pool=POOL)
    result = run(pytester, "--executor=deterministic", "--futures-policy=systematic:1", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["no failure in any schedule with at most 1 preemptions (* distinct schedules, *"]
    )


def test_a_bad_bound_is_a_usage_error_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pool=POOL)
    result = run(pytester, "--executor=deterministic", "--futures-policy=systematic:two")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*policy 'systematic:two': expected 'systematic' or*"])


def test_search_options_need_the_systematic_policy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.futures_scheduler(policy="pct", max_schedules=5)
        def test_it(scheduler):
            pass
        """
    )
    result = run(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["*futures_scheduler(policy='pct'): max_schedules: only with policy='systematic?:K?'*"]
    )
