"""A forked child of a process that uses a ThreadPoolExecutor exits cleanly.

At exit the child tells every pool it inherited to stop, under that pool's lock.  If another
thread of the parent held that lock at the moment of the fork, the child would wait for it
for ever (the stdlib's own bpo-45021, for its module-level lock).  executor_impl re-creates
the locks of every pool in the child.
"""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

import executor_impl

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # 3.12+ warns that forking a multi-threaded process may deadlock the child: that is the
    # very situation under test.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


def _child() -> None:
    """Return at once: the child's interpreter exit is what is tested."""


def test_forked_child_exits_although_a_parent_thread_held_the_pool_lock() -> None:
    with executor_impl.ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(int, "7").result(timeout=10) == 7
        holding = threading.Event()
        release = threading.Event()

        def hold_the_pool_lock() -> None:
            # White-box: hold the lock submit() and shutdown() take, as a busy submitter
            # thread would at an unlucky moment.
            with pool._lock:
                holding.set()
                assert release.wait(timeout=30), "the test never released the pool lock"

        holder = threading.Thread(target=hold_the_pool_lock, name="lock-holder")
        holder.start()
        try:
            assert holding.wait(timeout=10), "lock-holder thread never took the pool lock"
            child = multiprocessing.get_context("fork").Process(target=_child)
            child.start()
            child.join(timeout=30)
            hung = child.is_alive()
            if hung:
                child.kill()
                child.join(timeout=10)
        finally:
            release.set()
            holder.join(timeout=10)
        assert not hung, "the forked child hung at exit on a lock held at fork time"
        assert child.exitcode == 0
        # The parent's pool is untouched by the child's reset.
        assert pool.submit(int, "8").result(timeout=10) == 8


def test_forked_child_can_use_an_inherited_pool() -> None:
    """The child's copy of the pool starts its own threads (the parent's are not there)."""
    with executor_impl.ThreadPoolExecutor(max_workers=2) as pool:
        assert pool.submit(int, "1").result(timeout=10) == 1
        ctx = multiprocessing.get_context("fork")
        results = ctx.SimpleQueue()

        def use_pool_in_child() -> None:
            results.put(pool.submit(pow, 2, 10).result(timeout=10))

        child = ctx.Process(target=use_pool_in_child)
        child.start()
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
            child.join(timeout=10)
            pytest.fail("the child hung using its copy of the pool")
        assert child.exitcode == 0
        assert results.get() == 1024
