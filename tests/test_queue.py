"""Admission control and the staleness bound of the trajectory queue (logic, in-process;
the integration test runs the same class as a Ray actor)."""

import asyncio
import json
import random

import pytest

from actors.queue import GroupFailed, TrajectoryQueue
from actors.trajectory import Trajectory


def traj(version: int) -> Trajectory:
    t = Trajectory.from_prompt([1])
    t.add_sampled([2, 3], [-0.1, -0.2], [version, version])
    return t


def test_admission_stops_at_eta_plus_one_batches():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=2, max_staleness=1)
        tickets = [await q.admit("w", 0.05) for _ in range(4)]
        assert [t.index for t in tickets] == [0, 1, 2, 3]
        assert await q.admit("w", 0.05) is None  # (eta + v + 1) * G = 4 reached
        await q.set_version(1)
        assert (await q.admit("w", 0.05)).index == 4
    asyncio.run(scenario())


def test_batch_is_oldest_groups_and_waits_for_overdue():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=1, max_staleness=0)
        t0 = await q.admit("w", 0.05)
        await q.set_version(1)
        t1 = await q.admit("w", 0.05)
        await q.put(t1, [traj(1)], "w")
        # group 0 (admitted at version 0) still runs: version 1 with eta 0 must wait for it
        with pytest.raises(asyncio.TimeoutError):
            await q.get_batch(1, 0.05)
        await q.put(t0, [traj(0)], "w")
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
                ticket = await q.admit("w", 0.01)
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
            await q.put(ticket, [t], "w")

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


def test_admission_bound_never_waits_for_a_running_group_and_counts_late_ones():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=1, max_staleness=0, bound="admission")
        t0 = await q.admit("w", 0.05)
        await q.set_version(1)
        t1 = await q.admit("w", 0.05)
        await q.put(t1, [traj(1)], "w")
        # group 0 is due at step 0 and still runs: the strict bound would wait for it
        assert (await q.get_batch(1, 0.05))[0][0].oldest_version == 1
        assert q.stats()["queue/over_bound_groups"] == 0
        await q.set_version(2)
        t2 = await q.admit("w", 0.05)
        await q.put(t2, [traj(2)], "w")
        await q.put(t0, [traj(0)], "w")  # late: trained first in line, counted
        assert (await q.get_batch(2, 0.05))[0][0].oldest_version == 0
        assert q.stats()["queue/over_bound_groups"] == 1
        assert (await q.get_batch(3, 0.05))[0][0].oldest_version == 2  # no group lost
    asyncio.run(scenario())


def test_an_unknown_bound_names_the_allowed_values():
    with pytest.raises(ValueError, match="bound='loose': allowed values are strict, admission"):
        TrajectoryQueue(groups_per_batch=1, max_staleness=1, bound="loose")


@pytest.mark.parametrize("bound", ["strict", "admission"])
def test_one_long_episode_holds_steps_only_under_the_strict_bound(bound):
    """Three workers' groups take one tick, one group takes ten: under the strict bound the
    steps wait for it; under the admission bound they go on, and it is trained once, late."""
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=2, max_staleness=1, bound=bound)
        clock = {"tick": 0}
        trained: list[int] = []

        async def play(ticket):
            length = 10 if ticket.index == 1 else 1
            start = clock["tick"]
            while clock["tick"] < start + length:
                await asyncio.sleep(0.001)
            t = Trajectory.from_prompt([0])
            t.add_sampled([1], [0.0], [ticket.version])
            t.group_index = ticket.index
            await q.put(ticket, [t], "w")

        async def admit_loop():
            while True:
                ticket = await q.admit("w", 0.01)
                if ticket is not None:
                    asyncio.create_task(play(ticket))

        admitting = asyncio.create_task(admit_loop())
        ticks = []  # the tick at which each step's batch came
        for step in range(6):
            while True:
                try:
                    batch = await q.get_batch(step, 0.02)
                    break
                except asyncio.TimeoutError:
                    clock["tick"] += 1
            ticks.append(clock["tick"])
            trained += [g[0].group_index for g in batch]
            clock["tick"] += 1
            await q.set_version(step + 1)
        admitting.cancel()
        return trained, ticks, q.stats()["queue/over_bound_groups"]

    trained, ticks, late = asyncio.run(scenario())
    assert len(trained) == len(set(trained)) == 12 and 1 in trained
    if bound == "strict":  # step 1 waited for group 1 (due at it) until tick 10
        assert ticks[1] >= 10 and 1 in trained[:4] and late == 0
    else:  # a batch every two ticks; group 1 trained past its deadline, once
        assert ticks[1] <= 4 and late == 1


def test_resume_issues_unconsumed_groups_again_and_skips_consumed_ones():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=2, max_staleness=1)
        tickets = [await q.admit("w", 0.05) for _ in range(4)]
        # groups 0 and 2 finish first and form batch 0; 1 and 3 are still running
        await q.put(tickets[0], [traj(0)], "w")
        await q.put(tickets[2], [traj(0)], "w")
        assert len(await q.get_batch(0, 0.05)) == 2
        await q.set_version(1)
        state = json.loads(json.dumps(q.state_dict()))  # as a checkpoint stores it
        assert state == {"version": 1, "frontier": 1, "consumed_above": [2]}

        resumed = TrajectoryQueue(groups_per_batch=2, max_staleness=1)
        resumed.load_state_dict(state)
        again = [await resumed.admit("w", 0.05) for _ in range(4)]
        # 1 and 3 were lost with the run: played again; 2 was consumed: skipped
        assert [t.index for t in again] == [1, 3, 4, 5]
        assert all(t.version == 1 for t in again)
        assert await resumed.admit("w", 0.05) is None  # (eta + v + 1) * G = 6 groups admitted
    asyncio.run(scenario())


def test_a_put_is_refused_unless_its_lease_runs_under_that_worker():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=1, max_staleness=1)
        ticket = await q.admit("a", 0.05)
        assert not await q.put(ticket, [traj(0)], "b")  # another worker's put
        assert await q.put(ticket, [traj(0)], "a")
        assert not await q.put(ticket, [traj(0)], "a")  # a repeated put
        late = await q.admit("a", 0.05)
        assert await q.release("a") == [late.index]
        again = await q.admit("b", 0.05)
        assert (again.index, again.lease) == (late.index, late.lease + 1)
        assert not await q.put(late, [traj(0)], "a")  # the dead worker's late put
        assert await q.put(again, [traj(0)], "b")
        assert q.drain_faults() == {"failed_groups": 0, "released_groups": 1,
                                    "refused_puts": 3}
        assert q.drain_faults()["refused_puts"] == 0  # drained
        assert len(q.ready) == 2 and q.issued == 2  # nothing counted or kept twice
    asyncio.run(scenario())


def test_a_dead_workers_admission_still_waiting_gets_no_ticket():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=1, max_staleness=0)
        await q.admit("a", 0.05)  # the admission bound is reached
        pending = asyncio.ensure_future(q.admit("a", 5.0))  # sent before "a" died
        await asyncio.sleep(0.01)
        assert await q.release("a") == [0]
        assert await q.admit("b", 0.05) is not None  # group 0 again, to a live worker
        await q.set_version(1)  # admission opens: the stale call must not take a ticket
        assert await pending is None
        assert (await q.admit("b", 0.05)).index == 1
        assert list(q.held_by()) == ["b"]
    asyncio.run(scenario())


def test_a_failed_group_is_issued_again_first_at_the_new_version():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=2, max_staleness=1)
        tickets = [await q.admit("a", 0.05) for _ in range(4)]
        assert await q.admit("a", 0.05) is None  # the admission bound is reached
        assert await q.fail(tickets[1], "a", "question 7: 'who?'", "ValueError: boom")
        await q.set_version(1)
        again = await q.admit("b", 0.05)
        assert (again.index, again.version) == (1, 1)  # before the new index 4
        assert (await q.admit("b", 0.05)).index == 4
        assert q.stats()["queue/issued_groups"] == 5  # group 1 is counted once
    asyncio.run(scenario())


def test_a_group_failing_too_often_in_a_row_stops_the_run_naming_it():
    async def scenario():
        q = TrajectoryQueue(groups_per_batch=1, max_staleness=0, max_group_failures=2)
        ticket = await q.admit("a", 0.05)
        await q.fail(ticket, "a", "question 3: 'where?'", "RuntimeError: first")
        ticket = await q.admit("a", 0.05)
        await q.put(ticket, [traj(0)], "a")  # a success resets the count
        assert len(await q.get_batch(0, 0.05)) == 1
        await q.set_version(1)
        for error in ("RuntimeError: second", "RuntimeError: third"):
            ticket = await q.admit("a", 0.05)
            assert ticket.index == 1
            await q.fail(ticket, "a", "question 5: 'when?'", error)
        assert await q.admit("a", 0.05) is None
        with pytest.raises(GroupFailed, match=r"group 1 \(question 5: 'when\?'\) failed 2 "
                                              r"times in a row.*RuntimeError: third"):
            await q.get_batch(1, 0.05)
    asyncio.run(scenario())


@pytest.mark.parametrize("eta", [0, 2])
def test_failures_and_dead_workers_lose_and_repeat_no_group(eta):
    """Episodes that raise, workers that die holding groups, late puts of dead workers:
    every group index below the frontier is trained exactly once, within the bound."""
    rng = random.Random(10 + eta)

    async def scenario():
        q = TrajectoryQueue(groups_per_batch=3, max_staleness=eta, max_group_failures=10)
        state = {"version": 0, "stop": False}
        trained: list[int] = []
        staleness: list[int] = []

        async def worker(name: str):
            while not state["stop"]:
                ticket = await q.admit(name, 0.01)
                if ticket is None:
                    continue
                asyncio.create_task(episode(name, ticket))
                if name.endswith("dies") and rng.random() < 0.2:
                    # died holding at least this group: a replacement takes over, and the
                    # episode's late put under the dead worker's lease follows
                    await q.release(name)
                    asyncio.create_task(worker(f"{name}+"))
                    return

        async def episode(name: str, ticket):
            version = state["version"]
            await asyncio.sleep(rng.uniform(0, 0.004))
            if rng.random() < 0.1:
                await q.fail(ticket, name, "q", "boom")
                return
            t = Trajectory.from_prompt([0])
            t.add_sampled([1], [0.0], [version])
            t.group_index = ticket.index
            await q.put(ticket, [t], name)

        workers = [asyncio.create_task(worker(n)) for n in ("w0", "w1 dies", "w2 dies")]
        for step in range(30):
            batch = await q.get_batch(step, 5.0)
            trained += [g[0].group_index for g in batch]
            staleness += [step - t.oldest_version for g in batch for t in g]
            state["version"] = step + 1
            await q.set_version(step + 1)
        state["stop"] = True
        await asyncio.sleep(0.05)
        return trained, staleness, q.drain_faults()

    trained, staleness, faults = asyncio.run(scenario())
    assert len(trained) == len(set(trained)) == 90  # none twice
    frontier = next(i for i in range(91) if i not in set(trained))
    # none lost: at most (eta + 1) batches of groups are ever running or waiting
    assert frontier >= 90 - (eta + 1) * 3
    assert max(staleness) <= eta
    assert faults["failed_groups"] > 0 and faults["released_groups"] + faults[
        "refused_puts"] > 0  # the faults happened
