"""Rollout worker supervision on a local Ray cluster, with stand-in worker actors (the
logic; tests/test_faults.py kills real engine workers in real runs): a dead worker is
replaced and its groups go back to the queue, the replacement catches up with the weights
published meanwhile, a dead engine is replaced at once and a hung one after three missed
checks, and the restart budget stops the run with a message."""

import asyncio

import pytest

from actors.engine import EngineDead
from actors.errors import RunStopped
from actors.queue import TrajectoryQueue
from conf.schema import RolloutConf
from orchestrator.metrics import Faults
from orchestrator.supervisor import WorkerSupervisor
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


class StandInWorker:
    """A rollout worker's interface without an engine; `health_mode` ok|dead|hung."""

    def __init__(self, worker_id: str, model_path: str, version: int):
        self.worker_id, self.model_path, self.version = worker_id, model_path, version
        self.health_mode, self.stopping = "ok", False

    async def ready(self) -> bool:
        return True

    async def run(self) -> None:
        while not self.stopping:
            await asyncio.sleep(0.05)

    async def health(self, timeout_s: float) -> None:
        if self.health_mode == "dead":
            raise EngineDead("the engine has died")
        if self.health_mode == "hung":
            await asyncio.sleep(3600)

    def load_weights(self, path: str, version: int) -> None:
        self.model_path, self.version = path, version

    def state(self) -> tuple[str, str, int]:
        return self.worker_id, self.model_path, self.version

    def set_health(self, mode: str) -> None:
        self.health_mode = mode

    def stop(self) -> None:
        self.stopping = True


@pytest.fixture
def supervised(ray_cluster):
    queue = ray_cluster.remote(TrajectoryQueue).options(num_cpus=0).remote(2, 1)
    weights = {"current": ("/weights/v0", 0)}

    def spawn(index, worker_id, path, version):
        return ray_cluster.remote(StandInWorker).options(num_cpus=0).remote(
            worker_id, path, version)

    def start(max_restarts: int) -> WorkerSupervisor:
        conf = RolloutConf(num_workers=2, health_check_s=0.5, max_restarts=max_restarts)
        rollout = WorkerSupervisor(spawn, queue, conf, 30, Faults(), ("/weights/v0", 0),
                                   "/policy", lambda: weights["current"])
        rollout.wait_started()
        return rollout

    yield start, queue, weights
    ray_cluster.kill(queue)


def states(ray, rollout) -> list:
    return ray.get([w.state.remote() for w in rollout.workers], timeout=30)


def test_a_dead_worker_is_replaced_and_its_groups_given_back(ray_cluster, supervised):
    start, queue, weights = supervised
    rollout = start(max_restarts=4)
    held = ray_cluster.get(queue.admit.remote("rollout-1", 1.0), timeout=30)
    weights["current"] = ("/weights/v3", 3)  # published while the replacement starts
    ray_cluster.kill(rollout.slots[1].actor, no_restart=True)
    wait_until(lambda: rollout.check() or rollout.slots[1].worker_id != "rollout-1", 30,
               "the dead worker to be noticed")
    rollout.wait_started()
    assert states(ray_cluster, rollout)[1] == ("rollout-1.1", "/weights/v3", 3)
    assert rollout.faults.worker_restarts == 1
    again = ray_cluster.get(queue.admit.remote("rollout-0", 1.0), timeout=30)
    assert (again.index, again.lease) == (held.index, held.lease + 1)  # played again


def test_a_dead_engine_is_replaced_at_once_and_a_hung_one_after_three_checks(
        ray_cluster, supervised):
    start, _, _ = supervised
    rollout = start(max_restarts=4)
    ray_cluster.get(rollout.slots[0].actor.set_health.remote("dead"), timeout=30)
    rollout.last_check = 0.0
    rollout.check()  # one health round
    assert rollout.slots[0].worker_id == "rollout-0.1"
    ray_cluster.get(rollout.slots[1].actor.set_health.remote("hung"), timeout=30)
    for missed in range(3):
        assert rollout.slots[1].worker_id == "rollout-1"
        rollout.last_check = 0.0
        rollout.check()
    assert rollout.slots[1].worker_id == "rollout-1.2"
    assert rollout.faults.worker_restarts == 2


def test_a_worker_lost_beyond_the_restart_budget_stops_the_run(ray_cluster, supervised):
    start, _, _ = supervised
    rollout = start(max_restarts=0)
    ray_cluster.kill(rollout.slots[0].actor, no_restart=True)
    with pytest.raises(RunStopped, match=r"rollout worker rollout-0 died .*"
                                         r"rollout.max_restarts=0"):
        wait_until(lambda: rollout.check(), 30, "the run to stop")


def test_a_batch_that_does_not_come_stops_the_run_naming_the_groups_held(ray_cluster,
                                                                         supervised):
    start, queue, _ = supervised
    rollout = start(max_restarts=4)
    ray_cluster.get(queue.admit.remote("rollout-0", 1.0), timeout=30)  # never delivered
    with pytest.raises(RunStopped, match=r"the queue's batch for step 0 did not come within "
                                         r"trainer.step_timeout_s=2 s; groups running per "
                                         r"worker: \{'rollout-0': \[0\]\}"):
        rollout.wait(queue.get_batch.remote(0, 2.0), 2.0, "the queue's batch for step 0")
