"""The scheduler's policies: which thread runs at a decision (a point where more than one can).

:class:`FIFO` (no preemption: the running thread goes on until it blocks, then the one that
waited longest), :class:`RandomPolicy` (seeded, uniform), :class:`PCT` (probabilistic
concurrency testing: random priorities with *depth* - 1 priority change points),
:class:`Scripted` (an explicit list of thread ids, e.g. a printed failing schedule),
:class:`Choices` (a function of the number of candidates, e.g. Hypothesis data, so that a
failing schedule shrinks; index 0 always means "the running thread goes on") and
:class:`Preemptions` (FIFO with listed preemptions and a time slice, for Hypothesis data).

A policy sees :class:`~._state.ManagedThread` records only, never the scheduler.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable

from ._state import ScheduleError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._state import ManagedThread

__all__ = [
    "FIFO",
    "PCT",
    "Choices",
    "OwnerFirst",
    "Policy",
    "Preemptions",
    "RandomPolicy",
    "Scripted",
]


class Policy:
    """Chooses which thread runs at a decision (a point where more than one thread can run).

    ``candidates[0]`` is the thread that ran last when it can go on; the others follow in
    the order they were started. Return an index into *candidates*.
    """

    def choose(self, candidates: Sequence[ManagedThread], decision: int) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


class FIFO(Policy):
    """No preemption: the running thread goes on; once it blocks, the thread that has waited
    longest since it last ran goes next."""

    def choose(self, candidates: Sequence[ManagedThread], decision: int) -> int:
        if candidates[0].running:
            return 0
        return min(range(len(candidates)), key=lambda i: candidates[i].last_ran)


class RandomPolicy(Policy):
    """A uniform choice at each decision, from a seeded generator."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._random = random.Random(seed)
        self._getrandbits = self._random.getrandbits

    def choose(self, candidates: Sequence[ManagedThread], decision: int) -> int:
        # random.Random.randrange(n), inlined (it is called at every decision): the draws
        # of its _randbelow_with_getrandbits, so that a seed gives the schedules it gave.
        n = len(candidates)
        bits = n.bit_length()
        index = self._getrandbits(bits)
        while index >= n:
            index = self._getrandbits(bits)
        return index

    def describe(self) -> str:
        return f"RandomPolicy(seed={self.seed})"


class PCT(Policy):
    """Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).

    Each thread gets a random priority when first seen; the highest-priority thread that can
    run runs. At *depth* - 1 decisions chosen at random among the first *horizon*, the running
    thread's priority drops below every other: a bug that needs *depth* ordering constraints
    is found with probability at least 1 / (threads * horizon ** (depth - 1)).
    """

    def __init__(self, seed: int = 0, *, depth: int = 3, horizon: int = 200) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, not {depth!r}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, not {horizon!r}")
        self.seed, self.depth, self.horizon = seed, depth, horizon
        self._random = random.Random(seed)
        self._priority: dict[int, float] = {}
        points = self._random.sample(range(horizon), min(depth - 1, horizon))
        self._change = {point: -1.0 - n for n, point in enumerate(sorted(points))}

    def choose(self, candidates: Sequence[ManagedThread], decision: int) -> int:
        for thread in candidates:
            if thread.tid not in self._priority:
                self._priority[thread.tid] = self._random.random()
        if decision in self._change and candidates[0].running:
            self._priority[candidates[0].tid] = self._change[decision]
        return max(range(len(candidates)), key=lambda i: self._priority[candidates[i].tid])

    def describe(self) -> str:
        return f"PCT(seed={self.seed}, depth={self.depth}, horizon={self.horizon})"


class Scripted(Policy):
    """Follows *script*, a list of thread ids (``"T1"``) or names, one per decision; once it
    runs out, *then* decides (FIFO by default). A script entry naming a thread that cannot run
    at its decision raises :class:`ScheduleError`.

    ``Scheduler.schedule`` is such a script: a failing schedule replays exactly.
    """

    def __init__(self, script: Iterable[str], then: Policy | None = None) -> None:
        self.script = list(script)
        self.then = then if then is not None else FIFO()

    def choose(self, candidates: Sequence[ManagedThread], decision: int) -> int:
        if decision >= len(self.script):
            return self.then.choose(candidates, decision)
        wanted = self.script[decision]
        for index, thread in enumerate(candidates):
            if wanted in (thread.tid_name, thread.name):
                return index
        can_run = ", ".join(f"{t.tid_name} ({t.name})" for t in candidates)
        raise ScheduleError(
            f"the script's decision {decision} is {wanted!r}, which cannot run then; "
            f"the threads that can: {can_run}"
        )

    def describe(self) -> str:
        return f"Scripted({self.script!r})"


class Choices(Policy):
    """Asks *choose(n)* for an index in ``range(n)`` at each decision: Hypothesis data, say,
    so that a failing schedule shrinks (towards 0: the running thread goes on)."""

    def __init__(self, choose: Callable[[int], int], name: str = "Choices") -> None:
        self._choose = choose
        self._name = name

    def choose(self, candidates: Sequence[ManagedThread], decision: int) -> int:
        index = self._choose(len(candidates))
        if not 0 <= index < len(candidates):
            raise ScheduleError(f"{self._name} chose {index!r} of {len(candidates)} threads")
        return index

    def describe(self) -> str:
        return self._name


class Preemptions(Policy):
    """FIFO, except where *preemptions* or *time_slice* say.

    *preemptions* is a list of ``(after, choice)`` pairs, each letting *after* decisions go by,
    then taking ``candidates[choice % n]`` at the next one (index 0 is the running thread when
    it can go on, so a *choice* of 1 or more switches away from it unless it wraps round).
    *time_slice*, when not 0, preempts a thread that has gone on at so many decisions in a row
    in favour of the other thread that has waited longest: a bug that needs a preemption a
    few steps after a thread resumes is then met each time that code runs, not only where a
    listed preemption happens to fall. Elsewhere FIFO decides: the running thread goes on
    until it blocks.

    Made for Hypothesis data (``st.lists(st.tuples(st.integers(0, G), st.integers(1, K)))``
    and ``st.integers(0, S)``): shrinking deletes pairs, lowers the numbers and turns the time
    slice off, so a failing interleaving shrinks to the fewest preemptions that still fail it,
    and reads as such in the printed program. ``taken`` lists the decisions at which a
    preemption was applied.
    """

    def __init__(self, preemptions: Iterable[tuple[int, int]], time_slice: int = 0) -> None:
        self.preemptions = [(int(after), int(choice)) for after, choice in preemptions]
        for after, choice in self.preemptions:
            if after < 0 or choice < 0:
                raise ValueError(
                    f"preemptions are (after >= 0, choice >= 0), not {(after, choice)}"
                )
        if time_slice < 0:
            raise ValueError(f"time_slice must be >= 0, not {time_slice!r}")
        self.time_slice = time_slice
        self.taken: list[int] = []
        self._fifo = FIFO()
        self._next = 0  # index of the next preemption
        self._due = self.preemptions[0][0] if self.preemptions else -1  # decisions to let go
        self._ran = 0  # decisions in a row at which the running thread went on

    def choose(self, candidates: Sequence[ManagedThread], decision: int) -> int:
        if self._next < len(self.preemptions):
            if self._due > 0:
                self._due -= 1
            else:
                choice = self.preemptions[self._next][1] % len(candidates)
                self._next += 1
                if self._next < len(self.preemptions):
                    self._due = self.preemptions[self._next][0]
                return self._taken(choice, decision)
        if not candidates[0].running:
            self._ran = 0
        elif self.time_slice:
            self._ran += 1
            if self._ran >= self.time_slice:
                others = range(1, len(candidates))
                return self._taken(min(others, key=lambda i: candidates[i].last_ran), decision)
        return self._fifo.choose(candidates, decision)

    def _taken(self, choice: int, decision: int) -> int:
        self.taken.append(decision)
        self._ran = 0
        return choice

    def describe(self) -> str:
        text = f"Preemptions({self.preemptions!r}, time_slice={self.time_slice})"
        return f"{text}, preempted at decisions {self.taken}" if self.taken else text


class OwnerFirst(Policy):
    """*policy*, except that *owner* is taken whenever it can run (``Scheduler.step``)."""

    def __init__(self, policy: Policy, owner: ManagedThread | None) -> None:
        self.policy = policy
        self.owner = owner

    def choose(self, candidates: Sequence[ManagedThread], decision: int) -> int:
        for index, candidate in enumerate(candidates):
            if candidate is self.owner:
                return index
        return self.policy.choose(candidates, decision)

    def describe(self) -> str:
        return self.policy.describe()
