"""Admission control and the staleness bound of the trajectory queue (logic, in-process;
the integration test runs the same class as a Ray actor)."""

import asyncio
import json
import random

import pytest

from actors.queue import TrajectoryQueue
from actors.trajectory import Trajectory


def traj(version: int) -> Trajectory:
    t = Trajectory.from_prompt([1])
    t.add_sampled([2, 3], [-0.1, -0.2], [version, version])
    return t


def test_admission_stops_at_eta_plus_one_batches():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=2, max_staleness=1)
        tickets = [await q.admit(0.05) for _ in range(4)]
        assert [t.index for t in tickets] == [0, 1, 2, 3]
        assert await q.admit(0.05) is None  # (eta + v + 1) * G = 4 reached
        await q.set_version(1)
        assert (await q.admit(0.05)).index == 4
    asyncio.run(scenario())


def test_batch_is_oldest_groups_and_waits_for_overdue():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=1, max_staleness=0)
        t0 = await q.admit(0.05)
        await q.set_version(1)
        t1 = await q.admit(0.05)
        await q.put(t1, [traj(1)])
        # group 0 (admitted at version 0) still runs: version 1 with eta 0 must wait for it
        with pytest.raises(asyncio.TimeoutError):
            await q.get_batch(1, 0.05)
        await q.put(t0, [traj(0)])
        batch = await q.get_batch(0, 0.05)
        assert batch[0][0].oldest_version == 0  # oldest first
    asyncio.run(scenario())


@pytest.mark.parametrize("eta", [0, 1, 3])
def test_staleness_never_exceeds_bound_under_slow_learner_and_long_tail(eta):
    """Workers with random (long-tailed) episode times, a slow learner: every trained
    trajectory satisfies learner_version - oldest token version <= eta."""
    rng = random.Random(eta)

    async def scenario():
        q = TrajectoryQueue(groups_per_batch=3, max_staleness=eta)
        state = {"version": 0, "stop": False}
        observed = []

        async def worker():
            while not state["stop"]:
                ticket = await q.admit(0.01)
                if ticket is None:
                    continue
                asyncio.create_task(episode(ticket))

        async def episode(ticket):
            versions = []
            for _ in range(rng.choice([1, 1, 2, 8])):  # a few very long episodes
                versions.append(state["version"])  # version sampling this turn
                await asyncio.sleep(rng.uniform(0, 0.004))
            t = Trajectory.from_prompt([0])
            for v in versions:
                t.add_sampled([1], [0.0], [v])
            await q.put(ticket, [t])

        workers = [asyncio.create_task(worker()) for _ in range(4)]
        for step in range(25):
            batch = await q.get_batch(step, 5.0)
            observed += [step - t.oldest_version for g in batch for t in g]
            await asyncio.sleep(0.01)  # slow learner
            state["version"] = step + 1
            await q.set_version(step + 1)
        state["stop"] = True
        await asyncio.gather(*workers)
        return observed

    observed = asyncio.run(scenario())
    assert len(observed) == 75 and max(observed) <= eta
    if eta:
        assert max(observed) >= 1  # asynchrony actually happened


def test_resume_issues_unconsumed_groups_again_and_skips_consumed_ones():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=2, max_staleness=1)
        tickets = [await q.admit(0.05) for _ in range(4)]
        # groups 0 and 2 finish first and form batch 0; 1 and 3 are still running
        await q.put(tickets[0], [traj(0)])
        await q.put(tickets[2], [traj(0)])
        assert len(await q.get_batch(0, 0.05)) == 2
        await q.set_version(1)
        state = json.loads(json.dumps(q.state_dict()))  # as a checkpoint stores it
        assert state == {"version": 1, "frontier": 1, "consumed_above": [2]}

        resumed = TrajectoryQueue(groups_per_batch=2, max_staleness=1)
        resumed.load_state_dict(state)
        again = [await resumed.admit(0.05) for _ in range(4)]
        # 1 and 3 were lost with the run: played again; 2 was consumed: skipped
        assert [t.index for t in again] == [1, 3, 4, 5]
        assert all(t.version == 1 for t in again)
        assert await resumed.admit(0.05) is None  # (eta + v + 1) * G = 6 groups admitted
    asyncio.run(scenario())
