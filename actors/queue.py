"""The trajectory queue: admission control, whole groups, oldest first.

Runs as an async Ray actor between the rollout workers and the learner. Its bound is the
staleness bound eta, enforced without discarding anything:

- Admission: a worker may start group g (0-based ticket index) only while
  g < (eta + v + 1) * G, with v the latest published policy version and G the groups per
  train batch. So at most (eta + 1) * G groups are running or waiting at any time.
- Consumption: group g admitted at version v must be trained at a step <= v + eta (its
  deadline). The batch for step s is the G finished groups with the earliest deadlines,
  handed out only if every group left over (running or finished) can still meet its
  deadline: for each t, the groups due by t fit in the t - s batches after this one.
  Otherwise the learner waits for the running groups that are due. Since tokens are
  sampled at versions >= v, every trajectory trained on has s - (oldest token version)
  <= eta, and a slow episode is waited for rather than discarded.

eta = 0 is the synchronous baseline: one batch is admitted per version and the learner
waits for all of it.

With ``bound="admission"`` eta bounds admission only (the rule of AReaL, which ASearcher's
long-horizon agents train with): a step takes the G finished groups with the earliest
deadlines as soon as there are G, and never waits for a running group. A group that
finishes past its deadline is trained in a later batch, first in line, counted in
``queue/over_bound_groups`` (and its staleness in the learner's ``staleness/max``). One
long episode then no longer holds a step while every other engine waits.

Tickets are leases: the queue knows which worker holds each running ticket, and each issue
of a ticket carries a new lease number. A group whose episodes raised comes back through
``fail``; the tickets of a dead worker through ``release``. Either way the group is issued
again (same index, so the same question, to any worker) before any new one, at the version
of its new admission, so the staleness bound holds for it too; it is not counted twice
against the admission bound. A ``put`` under a lease that is no longer running under that
worker (given back, issued again, consumed) is refused and counted, never trained. A group
that fails ``max_group_failures`` times in a row stops the run (``get_batch`` raises
``GroupFailed`` naming it and the last error).

``state_dict`` keeps the version and which groups were consumed (a frontier below which all
were, plus the few above it); after ``load_state_dict`` tickets are issued again from the
frontier, skipping consumed ones, so the groups that were running or waiting at the
checkpoint are played again with the same questions.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from actors.errors import RunStopped
from actors.trajectory import Trajectory


class GroupFailed(RunStopped):
    """A group failed max_group_failures times in a row."""


@dataclass(frozen=True)
class Ticket:
    index: int  # global group index: also the position in the question stream
    version: int  # policy version when admitted
    lease: int = 0  # new at every issue: a put under an older lease is refused


BOUNDS = ("strict", "admission")


class TrajectoryQueue:
    def __init__(self, groups_per_batch: int, max_staleness: int,
                 max_group_failures: int = 3, bound: str = "strict"):
        if bound not in BOUNDS:
            raise ValueError(f"bound={bound!r}: allowed values are {', '.join(BOUNDS)}")
        self.groups_per_batch = groups_per_batch
        self.max_staleness = max_staleness
        self.bound = bound
        self.max_group_failures = max_group_failures
        self.version = 0
        self.issued = 0  # groups admitted, counted for the admission bound
        self.next_index = 0  # next ticket index (position in the question stream)
        self.consumed: set[int] = set()  # consumed ticket indices at or above the frontier
        self.frontier = 0  # every ticket index below it was consumed
        self.running: dict[int, tuple[Ticket, str]] = {}  # index -> (ticket, its worker)
        self.ready: dict[int, tuple[Ticket, list[Trajectory]]] = {}
        self.retry: set[int] = set()  # given back: issued again before any new index
        self.gone: set[str] = set()  # workers released as dead: never issued a ticket
        self.failures: Counter = Counter()  # failures in a row per index
        self.leases = 0
        self.fatal = ""  # why the run must stop, once a group failed too often
        self.faults: Counter = Counter()  # failed_groups, released_groups, refused_puts
        self.consumed_groups = 0
        self.over_bound = 0  # groups trained after their deadline (bound="admission")
        self.admission_waits = 0
        self.closed = False
        self.changed = asyncio.Condition()

    def _may_admit(self) -> bool:
        limit = (self.max_staleness + self.version + 1) * self.groups_per_batch
        return bool(self.retry) or self.issued < limit

    async def admit(self, worker: str, timeout_s: float) -> Ticket | None:
        """A ticket for `worker`'s next group, or None when closed, stopped or not
        admitted in time. Groups given back come first."""
        async with self.changed:
            if not self._may_admit() and not self.closed:
                self.admission_waits += 1
            try:
                await asyncio.wait_for(self.changed.wait_for(
                    lambda: self.closed or self.fatal or self._may_admit()), timeout_s)
            except asyncio.TimeoutError:
                return None
            if self.closed or self.fatal or worker in self.gone:  # a dead worker's call
                return None  # may still wait here after its release; it gets nothing
            self.leases += 1
            ticket = Ticket(self._next_index(), self.version, self.leases)
            self.running[ticket.index] = (ticket, worker)
            return ticket

    def _next_index(self) -> int:
        if self.retry:
            index = min(self.retry)
            self.retry.discard(index)
            return index
        while self.next_index in self.consumed:  # consumed before a resume
            self.next_index += 1
        self.next_index += 1
        self.issued += 1
        return self.next_index - 1

    def _holds(self, ticket: Ticket, worker: str) -> bool:
        return self.running.get(ticket.index) == (ticket, worker)

    async def put(self, ticket: Ticket, group: list[Trajectory], worker: str) -> bool:
        """Accept a finished group; False (refused, counted) unless `ticket` is running
        under `worker`."""
        async with self.changed:
            if not self._holds(ticket, worker):
                self.faults["refused_puts"] += 1
                return False
            del self.running[ticket.index]
            self.failures.pop(ticket.index, None)
            self.ready[ticket.index] = (ticket, group)
            self.changed.notify_all()
            return True

    async def fail(self, ticket: Ticket, worker: str, question: str, error: str) -> bool:
        """A group whose episodes raised: issued again, or, after max_group_failures in a
        row, the run stops. False if the lease was no longer `worker`'s."""
        async with self.changed:
            if not self._holds(ticket, worker):
                return False
            del self.running[ticket.index]
            self.faults["failed_groups"] += 1
            self.failures[ticket.index] += 1
            count = self.failures[ticket.index]
            if count >= self.max_group_failures:
                self.fatal = (f"group {ticket.index} ({question}) failed {count} times in a "
                              f"row (rollout.max_group_failures={self.max_group_failures}); "
                              f"last error: {error}")
            else:
                self.retry.add(ticket.index)
            self.changed.notify_all()
            return True

    async def release(self, worker: str) -> list[int]:
        """Give back every ticket `worker` holds (it died); returns their indices. The
        worker gets no ticket from now on."""
        async with self.changed:
            self.gone.add(worker)
            held = sorted(i for i, (_, holder) in self.running.items() if holder == worker)
            for index in held:
                del self.running[index]
            self.retry.update(held)
            self.faults["released_groups"] += len(held)
            self.changed.notify_all()
            return held

    def held_by(self) -> dict[str, list[int]]:
        """Running group indices per worker."""
        out: dict[str, list[int]] = {}
        for index, (_, worker) in sorted(self.running.items()):
            out.setdefault(worker, []).append(index)
        return out

    def _deadline(self, ticket: Ticket) -> int:
        return ticket.version + self.max_staleness

    def _pick(self, step: int) -> list[int] | None:
        """Indices of the batch for `step`, or None if it must wait for running groups."""
        order = sorted(self.ready, key=lambda i: (self._deadline(self.ready[i][0]), i))
        batch = order[:self.groups_per_batch]
        if len(batch) < self.groups_per_batch:
            return None
        if self.bound == "admission":
            return batch
        left = Counter(self._deadline(t) for t, _ in self.running.values())
        left.update(self._deadline(self.ready[i][0]) for i in order[len(batch):])
        # a group given back is issued again at the current version or later
        left[self.version + self.max_staleness] += len(self.retry)
        due = 0
        for deadline in sorted(left):
            due += left[deadline]
            if due > (deadline - step) * self.groups_per_batch:
                return None
        return batch

    async def get_batch(self, step: int, timeout_s: float) -> list[list[Trajectory]]:
        """The batch for learner step `step` (= the learner's policy version).

        Raises TimeoutError if it is not there in time (a stuck rollout never hangs the
        learner silently), GroupFailed once a group failed too often.
        """
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(
                lambda: self.fatal or self._pick(step) is not None), timeout_s)
            if self.fatal:
                raise GroupFailed(self.fatal)
            picked = self._pick(step)
            self.over_bound += sum(self._deadline(self.ready[i][0]) < step for i in picked)
            batch = [self.ready.pop(i)[1] for i in picked]
            self.consumed_groups += len(batch)
            self.consumed.update(picked)
            while self.frontier in self.consumed:
                self.consumed.discard(self.frontier)
                self.frontier += 1
            return batch

    async def set_version(self, version: int) -> None:
        async with self.changed:
            self.version = version
            self.changed.notify_all()

    def state_dict(self) -> dict:
        return {"version": self.version, "frontier": self.frontier,
                "consumed_above": sorted(self.consumed)}

    def load_state_dict(self, state: dict) -> None:
        """Continue after a checkpoint: unconsumed groups are issued again."""
        self.version = int(state["version"])
        self.frontier = self.next_index = int(state["frontier"])
        self.consumed = set(state["consumed_above"])
        self.issued = self.consumed_groups = self.frontier + len(self.consumed)

    async def close(self) -> None:
        async with self.changed:
            self.closed = True
            self.changed.notify_all()

    def stats(self) -> dict[str, float]:
        return {
            "queue/depth": len(self.ready),
            "queue/in_flight_groups": len(self.running),
            "queue/issued_groups": self.issued,
            "queue/consumed_groups": self.consumed_groups,
            "queue/admission_waits": self.admission_waits,
            "queue/retry_groups": len(self.retry),
            "queue/over_bound_groups": self.over_bound,
        }

    def drain_faults(self) -> dict[str, int]:
        """Groups failed, given back by dead workers and puts refused since the last call."""
        out = {key: self.faults[key] for key in ("failed_groups", "released_groups",
                                                 "refused_puts")}
        self.faults.clear()
        return out
