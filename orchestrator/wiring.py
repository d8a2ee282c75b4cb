"""Place the actors: Ray options and resources come from config, never from a class.

``connect_ray`` joins a cluster (config or RAY_ADDRESS) or starts an embedded local one;
``start_system`` starts the trajectory queue, the simulator pool (a Ray Serve app), the
learner and the rollout workers, and waits until every engine is up.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from conf.loader import ConfigError
from conf.schema import Config, LearnerConf, SearchConf, SimulatorConf

SIMULATOR_APP = "simulator"
SIMULATOR_DEPLOYMENT = "SimulatorServer"


@dataclass
class Assets:
    """Resolved paths of what the run loads."""

    train_path: str
    policy_path: str
    simulator_path: str
    corpus_path: str  # for the bm25 backend


@dataclass
class System:
    queue: object
    learner: object
    workers: list
    simulator: object  # a Serve DeploymentHandle, None when no search goes to the pool
    worker_runs: list  # ObjectRefs of RolloutWorker.run
    push_weights: Callable[[int], None]  # engines to the learner's weights, as version v


def resolve_assets(cfg: Config, tuned_simulator: bool = True) -> Assets:
    """Config paths, with the tiny world's cached stages (built on first use) as defaults.

    The default simulator is the fine-tuned one (the simulator-SFT stage) when a search
    goes to it and tuned_simulator is set, else the simulator base; the default policy is
    the warm start, with self-written information in self-search mode."""
    needs_tiny = not (cfg.data.train_path and cfg.rollout.engine.model_path
                      and cfg.simulator.engine.model_path and cfg.search.bm25.corpus_path)
    tiny, simulator = None, cfg.simulator.engine.model_path
    if needs_tiny:
        from orchestrator.stages import ensure_tiny_assets, simulator_sft_stage

        tiny = ensure_tiny_assets(cfg.world, self_search=cfg.search.backend == "self")
        uses_simulator = "simulator" in (cfg.search.backend, cfg.eval.search.backend)
        if not simulator and tuned_simulator and uses_simulator:
            simulator = str(simulator_sft_stage(cfg, tiny))
    return Assets(
        train_path=cfg.data.train_path or str(tiny.data / "train.parquet"),
        policy_path=cfg.rollout.engine.model_path or str(tiny.policy),
        simulator_path=simulator or str(tiny.simulator),
        corpus_path=cfg.search.bm25.corpus_path or str(tiny.data / "corpus.jsonl"),
    )


def with_corpus(conf: SearchConf, corpus_path: str) -> SearchConf:
    """The search section with the bm25 corpus resolved."""
    return replace(conf, bm25=replace(conf.bm25, corpus_path=corpus_path))


def embedded_resources(cfg: Config) -> dict[str, float]:
    """Custom resources an embedded local cluster offers: enough of each role's resource
    for all its actors (simulator: max_replicas), so one config runs locally and on a
    cluster whose node types carry those resources."""
    wanted = [(cfg.simulator.resource, cfg.simulator.autoscaling.max_replicas),
              (cfg.rollout.resource, cfg.rollout.num_workers),
              (cfg.learner.resource, cfg.learner.num_workers)]
    offered: dict[str, float] = {}
    for name, count in wanted:
        if name:
            offered[name] = offered.get(name, 0) + count
    return offered


def connect_ray(cfg: Config) -> bool:
    """Join trainer.ray_address or RAY_ADDRESS; otherwise start a local cluster offering
    the custom resources of embedded_resources. True if this call started it."""
    import ray

    address = cfg.trainer.ray_address or os.environ.get("RAY_ADDRESS", "")
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(include_dashboard=False, log_to_driver=True,
                 resources=embedded_resources(cfg))
    unwind_on_sigterm()
    return not address


_SIGTERM = threading.Event()  # set by unwind_on_sigterm's handler


def unwind_on_sigterm() -> None:
    """SIGTERM (`kill`, `timeout`, `ray job stop` until its grace period ends) stops the
    driver as Ctrl-C does, by a KeyboardInterrupt: its finally blocks stop the actors,
    close W&B and shut down the cluster it started. The handler that ray.init leaves ends
    the process on the spot, which skips all of that and leaves the embedded cluster's
    agents running."""
    import signal

    def interrupt(signum, frame):
        _SIGTERM.set()
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def stopped_by_sigterm() -> bool:
    """Whether a KeyboardInterrupt came from SIGTERM (Ray's waits re-raise it as a plain
    KeyboardInterrupt, so the exception itself cannot tell)."""
    return _SIGTERM.is_set()


def actor_options(num_cpus: float, num_gpus: float, resource: str) -> dict:
    """Ray actor options of one role, with one unit of its custom resource if set."""
    options = {"num_cpus": num_cpus, "num_gpus": num_gpus}
    if resource:
        options["resources"] = {resource: 1}
    return options


def _warn_if_resource_missing(resource: str) -> None:
    import ray

    if resource and resource not in ray.cluster_resources():
        print(f"simsearch: no node offers the custom resource '{resource}' yet; simulator "
              f"replicas wait until the autoscaler adds one (or set simulator.resource='' "
              f"or start nodes with --resources='{{\"{resource}\": N}}')", flush=True)


def simulator_app(sim: SimulatorConf, model_path: str, seed: int):
    """The simulator pool as a bound Serve deployment, options from config."""
    from ray import serve

    from actors.simulator import SimulatorServer

    scale = sim.autoscaling
    actor = actor_options(sim.num_cpus, sim.num_gpus, sim.resource)
    _warn_if_resource_missing(sim.resource)
    options = {"ray_actor_options": actor,
               "max_ongoing_requests": max(1, int(scale.target_ongoing_requests * 4))}
    if scale.min_replicas == scale.max_replicas:
        options["num_replicas"] = scale.max_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": scale.min_replicas, "max_replicas": scale.max_replicas,
            "target_ongoing_requests": scale.target_ongoing_requests,
            "upscale_delay_s": scale.upscale_delay_s,
            "downscale_delay_s": scale.downscale_delay_s}
    return serve.deployment(SimulatorServer, name=SIMULATOR_DEPLOYMENT, **options).bind(
        sim, model_path, seed)


def start_simulator(sim: SimulatorConf, model_path: str, seed: int,
                    app_name: str = SIMULATOR_APP):
    """Deploy the pool (no HTTP); returns its handle once its replicas run."""
    from ray import serve

    serve.start(proxy_location="Disabled")
    return serve.run(simulator_app(sim, model_path, seed), name=app_name, route_prefix=None)


def simulator_replicas(app_name: str = SIMULATOR_APP) -> int:
    """Running replicas of the simulator pool (0 when it is not deployed)."""
    from ray import serve

    app = serve.status().applications.get(app_name)
    deployment = app.deployments.get(SIMULATOR_DEPLOYMENT) if app else None
    return deployment.replica_states.get("RUNNING", 0) if deployment else 0


def start_learner(conf: LearnerConf, policy_path: str, weights_dir: str, seed: int,
                  resume_dir: str, timeout_s: float, temperature: float = 1.0):
    """One Learner actor, or a LearnerGroup of learner.num_workers FSDP2 ranks; temperature:
    the rollouts' sampling temperature."""
    import ray

    from learner.group import LearnerGroup
    from learner.learner import Learner

    ranks = conf.num_workers
    options = actor_options(conf.num_cpus, conf.num_gpus, conf.resource)
    actors = [ray.remote(Learner).options(**options).remote(
        conf, policy_path, weights_dir, seed, resume_dir, rank, ranks, temperature)
        for rank in range(ranks)]
    if ranks == 1:
        return actors[0]
    master = ray.get(actors[0].node_address.remote(), timeout=timeout_s)
    ray.get([actor.join.remote(master) for actor in actors], timeout=timeout_s)
    return LearnerGroup(actors)


def start_system(cfg: Config, assets: Assets, run_dir: Path, resume=None) -> System:
    """Start every actor; with `resume` (a checkpoint.Resume) from that checkpoint."""
    import ray

    from actors.queue import TrajectoryQueue
    from actors.rollout_worker import RolloutWorker

    timeout = cfg.trainer.step_timeout_s
    lrn, ro = cfg.learner, cfg.rollout
    nccl = resolve_weight_sync(lrn.weight_sync, lrn.num_gpus, ro.num_gpus) == "nccl"
    queue = ray.remote(TrajectoryQueue).options(num_cpus=0).remote(
        cfg.trainer.groups_per_step, cfg.queue.max_staleness)
    if resume is not None:
        ray.get(queue.load_state_dict.remote(resume.queue), timeout=timeout)
    simulator = None
    if "simulator" in (cfg.search.backend, cfg.eval.search.backend if cfg.eval.every else ""):
        simulator = start_simulator(cfg.simulator, assets.simulator_path, cfg.trainer.seed)
    search = with_corpus(cfg.search, assets.corpus_path)
    learner = start_learner(cfg.learner, assets.policy_path, str(run_dir / "weights"),
                            cfg.trainer.seed, str(resume.path) if resume else "", timeout,
                            cfg.rollout.episode.temperature)
    policy_path = resume.model_path if resume else assets.policy_path
    options = actor_options(ro.num_cpus, ro.num_gpus, ro.resource)
    workers = [ray.remote(RolloutWorker).options(**options).remote(
        i, ro, policy_path, assets.train_path, cfg.learner.reward, cfg.trainer.seed, queue,
        search, cfg.simulator, simulator, cfg.queue.admit_timeout_s,
        resume.version if resume else 0, nccl) for i in range(ro.num_workers)]
    ray.get([w.ready.remote() for w in workers], timeout=timeout)
    push = weight_pusher(cfg, learner, workers, nccl)
    runs = [w.run.remote() for w in workers]
    return System(queue, learner, workers, simulator, runs, push)


def resolve_weight_sync(mode: str, learner_gpus: float, rollout_gpus: float) -> str:
    """'nccl' or 'disk' for learner.weight_sync = auto|disk|nccl: auto takes NCCL when
    both the learner ranks and the rollout workers hold GPUs."""
    on_gpus = learner_gpus > 0 and rollout_gpus > 0
    if mode == "auto":
        return "nccl" if on_gpus else "disk"
    if mode == "nccl" and not on_gpus:
        raise ConfigError("learner.weight_sync=nccl needs learner.num_gpus > 0 and "
                          "rollout.num_gpus > 0 (NCCL runs between GPUs); use auto or disk")
    return mode


def weight_pusher(cfg: Config, learner, workers: list, nccl: bool) -> Callable[[int], None]:
    """push(version): by NCCL broadcast once the group is open, else by an HF checkpoint
    the engines reload. Under weight_sync=auto, a group that fails to open means disk."""
    import ray

    timeout = cfg.trainer.step_timeout_s

    def by_disk(version: int) -> None:
        path = ray.get(learner.publish.remote(), timeout=timeout)
        ray.get([w.load_weights.remote(path, version) for w in workers], timeout=timeout)

    def by_nccl(version: int) -> None:
        ray.get(learner.send_weights.remote(version), timeout=timeout)

    if not nccl:
        return by_disk
    try:
        rank0 = getattr(learner, "actors", [learner])[0]
        master = ray.get(rank0.node_address.remote(), timeout=timeout)
        ray.get(learner.open_weight_transfer.remote(
            master, workers, cfg.rollout.engine.dtype, timeout), timeout=timeout)
        return by_nccl
    except Exception as err:
        if cfg.learner.weight_sync == "nccl":
            raise
        print(f"simsearch: NCCL weight transfer did not start ({type(err).__name__}: "
              f"{err}); weights go to the engines by disk", flush=True)
        return by_disk


def stop_system(system: System, timeout_s: float) -> None:
    import ray
    from ray import serve

    ray.get([w.stop.remote() for w in system.workers], timeout=timeout_s)
    ray.get(system.queue.close.remote(), timeout=timeout_s)
    ray.get(system.worker_runs, timeout=timeout_s)
    if system.simulator is not None:
        serve.delete(SIMULATOR_APP)
    learners = getattr(system.learner, "actors", [system.learner])
    for actor in [*system.workers, *learners, system.queue]:
        ray.kill(actor)
