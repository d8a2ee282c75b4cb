"""Driver of the fake multi-node test, run as its own process against a fake cluster
(`python -m tests.fake_cluster_driver GCS_ADDRESS RUN_DIR`): starts the real system (queue,
learner on a learner node, rollout worker on a policy node, simulator pool on simulator
nodes), searches the pool until Serve and the autoscaler give it a second simulator node,
stops and waits for that node to go, and prints a JSON report of what it saw."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

SIM_NODE_UP_S = 240
SIM_NODE_DOWN_S = 240


def nodes_offering(resource: str) -> set[str]:
    import ray

    return {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get(resource)}


def node_of(actor) -> str:
    import ray

    return ray.get(actor.__ray_call__.remote(
        lambda self: ray.get_runtime_context().get_node_id()), timeout=60)


def search_until(search, questions, done, deadline_s: float) -> tuple[int, Counter]:
    """Keep 16 searches for training questions in flight until done() or the deadline;
    returns the rounds run and the errors of the searches that failed, by kind."""
    from actors.search import SearchRequest

    async def load() -> tuple[int, Counter]:
        rounds, errors = 0, Counter()
        while not done() and time.monotonic() < deadline_s:
            batch = [questions[(16 * rounds + i) % len(questions)] for i in range(16)]
            batch = [SearchRequest(q.question, q.question, q.answers, f"load{rounds}/g{i}/s0/t0")
                     for i, q in enumerate(batch)]
            results = await asyncio.gather(*[search.search(r) for r in batch])
            errors.update(r.error.split(":")[0] for r in results if r.failed)
            rounds += 1
        return rounds, errors

    return asyncio.run(load())


def wait_for(condition, timeout_s: float) -> bool:
    """wait_until as a yes/no answer, for the report."""
    from tests.helpers import wait_until

    try:
        return bool(wait_until(condition, timeout_s, "the condition"))
    except AssertionError:
        return False


def main(gcs_address: str, run_dir: str) -> dict:
    from actors.dataset import load_questions
    from actors.search import SimulatedSearch
    from actors.simulator import pool_writer
    from conf.loader import load_config
    from orchestrator import wiring
    from tinyworld.assets import resolve_assets

    cfg = load_config("conf/tiny.yaml", [
        f"trainer.ray_address={gcs_address}", "rollout.resource=policy",
        "learner.resource=learner", "simulator.autoscaling.min_replicas=1",
        "simulator.autoscaling.max_replicas=2",
        "simulator.autoscaling.target_ongoing_requests=1",
        "simulator.autoscaling.upscale_delay_s=0.5",
        "simulator.autoscaling.downscale_delay_s=2"])
    wiring.connect_ray(cfg, wiring.roles(cfg))
    assets = resolve_assets(cfg)
    system = wiring.start_system(cfg, assets, Path(run_dir))
    actors = {"learner": system.learner, "policy": system.workers[0]}
    placed = {role: node_of(actor) for role, actor in actors.items()}
    report = {"placed_on_own_node": {role: placed[role] in nodes_offering(role)
                                     for role in actors},
              "simulator_nodes_at_start": len(nodes_offering("simulator"))}
    search = SimulatedSearch(pool_writer(system.simulator), cfg.search, seed=0)
    two = lambda: len(nodes_offering("simulator")) == 2 and wiring.simulator_replicas() == 2
    start = time.monotonic()
    questions = load_questions(assets.train_path)
    report["load_rounds"], errors = search_until(search, questions, two, start + SIM_NODE_UP_S)
    report["up_s"] = round(time.monotonic() - start, 1)
    report["simulator_nodes_under_load"] = len(nodes_offering("simulator"))
    report["failed_searches"] = search.stats.failures
    report["search_errors"] = dict(errors)
    start = time.monotonic()
    report["scaled_down"] = wait_for(lambda: len(nodes_offering("simulator")) == 1,
                                     SIM_NODE_DOWN_S)
    report["down_s"] = round(time.monotonic() - start, 1)
    report["simulator_nodes_when_idle"] = len(nodes_offering("simulator"))
    report["stayed"] = {role: node_of(actor) == placed[role] for role, actor in actors.items()}
    report["role_nodes_alive"] = {role: placed[role] in nodes_offering(role)
                                  for role in actors}
    wiring.stop_system(system)
    return report


if __name__ == "__main__":
    print("REPORT " + json.dumps(main(sys.argv[1], sys.argv[2])), flush=True)
