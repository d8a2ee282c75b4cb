"""Place the actors: Ray options and resources come from config, never from a class.

``connect_ray`` joins a cluster (config or RAY_ADDRESS) or starts an embedded local one;
``start_system`` starts the trajectory queue, the simulator pool (a Ray Serve app), the
learner and the rollout workers, and waits until every engine is up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from conf.schema import Config

SIMULATOR_APP = "simulator"


@dataclass
class Assets:
    """Resolved paths of what the run loads."""

    train_path: str
    policy_path: str
    simulator_path: str


@dataclass
class System:
    queue: object
    learner: object
    workers: list
    simulator: object  # a Serve DeploymentHandle
    worker_runs: list  # ObjectRefs of RolloutWorker.run


def resolve_assets(cfg: Config) -> Assets:
    """Config paths, with the tiny world and models (built on first use) as defaults."""
    needs_tiny = not (cfg.data.train_path and cfg.rollout.engine.model_path
                      and cfg.simulator.engine.model_path)
    tiny = None
    if needs_tiny:
        from learner.tiny_models import ensure_tiny_assets

        tiny = ensure_tiny_assets(cfg.world.cache_dir, cfg.world.seed, cfg.world.num_people)
    return Assets(
        train_path=cfg.data.train_path or str(tiny.data / "train.parquet"),
        policy_path=cfg.rollout.engine.model_path or str(tiny.policy),
        simulator_path=cfg.simulator.engine.model_path or str(tiny.simulator),
    )


def connect_ray(address: str) -> bool:
    """Join `address` or RAY_ADDRESS; otherwise start a local cluster. True if started."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS", "")
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
        return False
    ray.init(include_dashboard=False, log_to_driver=True)
    return True


def start_simulator(cfg: Config, model_path: str):
    from ray import serve

    from actors.simulator import SimulatorServer

    sim = cfg.simulator
    scale = sim.autoscaling
    options = {"ray_actor_options": {"num_cpus": sim.num_cpus, "num_gpus": sim.num_gpus},
               "max_ongoing_requests": max(1, int(scale.target_ongoing_requests * 4))}
    if scale.min_replicas == scale.max_replicas:
        options["num_replicas"] = scale.max_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": scale.min_replicas, "max_replicas": scale.max_replicas,
            "target_ongoing_requests": scale.target_ongoing_requests,
            "upscale_delay_s": scale.upscale_delay_s,
            "downscale_delay_s": scale.downscale_delay_s}
    serve.start(proxy_location="Disabled")
    app = serve.deployment(SimulatorServer, name="SimulatorServer", **options).bind(
        sim, model_path, cfg.trainer.seed)
    return serve.run(app, name=SIMULATOR_APP, route_prefix=None)


def start_system(cfg: Config, assets: Assets, run_dir: Path) -> System:
    import ray

    from actors.queue import TrajectoryQueue
    from actors.rollout_worker import RolloutWorker
    from learner.learner import Learner

    timeout = cfg.trainer.step_timeout_s
    queue = ray.remote(TrajectoryQueue).options(num_cpus=0).remote(
        cfg.trainer.groups_per_step, cfg.queue.max_staleness)
    simulator = start_simulator(cfg, assets.simulator_path)
    learner = ray.remote(Learner).options(
        num_cpus=cfg.learner.num_cpus, num_gpus=cfg.learner.num_gpus).remote(
        cfg.learner, assets.policy_path, str(run_dir / "weights"), cfg.trainer.seed)
    ro = cfg.rollout
    workers = [ray.remote(RolloutWorker).options(num_cpus=ro.num_cpus, num_gpus=ro.num_gpus)
               .remote(i, ro, assets.policy_path, assets.train_path, cfg.learner.reward,
                       cfg.trainer.seed, queue, simulator, cfg.simulator,
                       cfg.queue.admit_timeout_s)
               for i in range(ro.num_workers)]
    ray.get([w.ready.remote() for w in workers], timeout=timeout)
    runs = [w.run.remote() for w in workers]
    return System(queue, learner, workers, simulator, runs)


def stop_system(system: System, timeout_s: float) -> None:
    import ray
    from ray import serve

    ray.get([w.stop.remote() for w in system.workers], timeout=timeout_s)
    ray.get(system.queue.close.remote(), timeout=timeout_s)
    ray.get(system.worker_runs, timeout=timeout_s)
    serve.delete(SIMULATOR_APP)
    for actor in [*system.workers, system.learner, system.queue]:
        ray.kill(actor)
