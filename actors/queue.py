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

``state_dict`` keeps the version and which groups were consumed (a frontier below which all
were, plus the few above it); after ``load_state_dict`` tickets are issued again from the
frontier, skipping consumed ones, so the groups that were running or waiting at the
checkpoint are played again with the same questions.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from actors.trajectory import Trajectory


@dataclass(frozen=True)
class Ticket:
    index: int  # global group index: also the position in the question stream
    version: int  # policy version when admitted


class TrajectoryQueue:
    def __init__(self, groups_per_batch: int, max_staleness: int):
        self.groups_per_batch = groups_per_batch
        self.max_staleness = max_staleness
        self.version = 0
        self.issued = 0  # groups admitted, counted for the admission bound
        self.next_index = 0  # next ticket index (position in the question stream)
        self.consumed: set[int] = set()  # consumed ticket indices at or above the frontier
        self.frontier = 0  # every ticket index below it was consumed
        self.running: dict[int, Ticket] = {}
        self.ready: dict[int, tuple[Ticket, list[Trajectory]]] = {}
        self.consumed_groups = 0
        self.admission_waits = 0
        self.closed = False
        self.changed = asyncio.Condition()

    def _may_admit(self) -> bool:
        limit = (self.max_staleness + self.version + 1) * self.groups_per_batch
        return self.issued < limit

    async def admit(self, timeout_s: float) -> Ticket | None:
        """A ticket for the next group, or None when closed or not admitted in time."""
        async with self.changed:
            if not self._may_admit() and not self.closed:
                self.admission_waits += 1
            try:
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: self.closed or self._may_admit()),
                    timeout_s)
            except asyncio.TimeoutError:
                return None
            if self.closed:
                return None
            while self.next_index in self.consumed:  # consumed before a resume
                self.next_index += 1
            ticket = Ticket(self.next_index, self.version)
            self.next_index += 1
            self.issued += 1
            self.running[ticket.index] = ticket
            return ticket

    async def put(self, ticket: Ticket, group: list[Trajectory]) -> None:
        async with self.changed:
            self.running.pop(ticket.index, None)
            self.ready[ticket.index] = (ticket, group)
            self.changed.notify_all()

    def _deadline(self, ticket: Ticket) -> int:
        return ticket.version + self.max_staleness

    def _pick(self, step: int) -> list[int] | None:
        """Indices of the batch for `step`, or None if it must wait for running groups."""
        order = sorted(self.ready, key=lambda i: (self._deadline(self.ready[i][0]), i))
        batch = order[:self.groups_per_batch]
        if len(batch) < self.groups_per_batch:
            return None
        left = Counter(self._deadline(t) for t in self.running.values())
        left.update(self._deadline(self.ready[i][0]) for i in order[len(batch):])
        due = 0
        for deadline in sorted(left):
            due += left[deadline]
            if due > (deadline - step) * self.groups_per_batch:
                return None
        return batch

    async def get_batch(self, step: int, timeout_s: float) -> list[list[Trajectory]]:
        """The batch for learner step `step` (= the learner's policy version).

        Raises TimeoutError if it is not there in time (a stuck rollout never hangs the
        learner silently).
        """
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: self._pick(step) is not None), timeout_s)
            picked = self._pick(step)
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
        }
