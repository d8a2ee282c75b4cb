"""Place the actors: Ray options and resources come from config, never from a class.

``connect_ray`` joins a cluster (config or RAY_ADDRESS) or starts an embedded local one
(``ray_connection``: for a block, shut down after it if started here);
``start_system`` starts the trajectory queue, the simulator pool (a Ray Serve app), the
learner and the rollout workers (supervised: ``orchestrator.supervisor``), and waits until
every engine is up; ``stop_system`` stops them all, dead or alive.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from actors.errors import RunStopped
from actors.search import with_corpus
from conf.schema import Assets, Config, LearnerConf, SimulatorConf

SIMULATOR_APP = "simulator"
SIMULATOR_DEPLOYMENT = "SimulatorServer"


@dataclass(frozen=True)
class Parts:
    """The classes the actors run; None = the real ones (vLLM engines, the torch learner).
    Benchmarks put timed stand-ins here (bench/standins.py); no config reaches it."""

    rollout_worker: type | None = None
    learner: type | None = None
    simulator: type | None = None


@dataclass
class System:
    queue: object
    learner: object
    rollout: object  # the supervised rollout workers (orchestrator.supervisor)
    simulator: object  # a Serve DeploymentHandle, None when no search goes to the pool
    push_weights: object  # push_weights(v): engines to the learner's weights as version v
    shutdown_serve: bool = False  # this run started Serve on a cluster that outlives it
    # (the fields fill in as start_system starts each part)

    @property
    def workers(self) -> list:
        return self.rollout.workers


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


def connect_ray(cfg: Config, roles: tuple[str, ...]) -> bool:
    """Join trainer.ray_address or RAY_ADDRESS, checking that its nodes can place the
    actors of `roles` (preflight.check_cluster); otherwise start a local cluster offering
    the custom resources of embedded_resources. True if this call started it."""
    import ray

    from orchestrator.preflight import check_cluster

    address = cfg.trainer.ray_address or os.environ.get("RAY_ADDRESS", "")
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
        try:
            check_cluster(cfg, roles)
        except BaseException:
            ray.shutdown()
            raise
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


def simulator_app(sim: SimulatorConf, model_path: str, seed: int, server: type | None = None):
    """The simulator pool as a bound Serve deployment of `server` (SimulatorServer if None),
    options from config."""
    from ray import serve

    from actors.simulator import SimulatorServer

    scale = sim.autoscaling
    actor = actor_options(sim.num_cpus, sim.num_gpus, sim.resource)
    _warn_if_resource_missing(sim.resource)
    # no access log line per search: thousands a second at scale, each one relayed to the
    # driver (bench/scale.py measured the CPU it took)
    options = {"ray_actor_options": actor, "logging_config": {"enable_access_log": False},
               "max_ongoing_requests": max(1, int(scale.target_ongoing_requests * 4))}
    if scale.min_replicas == scale.max_replicas:
        options["num_replicas"] = scale.max_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": scale.min_replicas, "max_replicas": scale.max_replicas,
            "target_ongoing_requests": scale.target_ongoing_requests,
            "upscale_delay_s": scale.upscale_delay_s,
            "downscale_delay_s": scale.downscale_delay_s}
    return serve.deployment(server or SimulatorServer, name=SIMULATOR_DEPLOYMENT,
                            **options).bind(sim, model_path, seed)


def start_simulator(sim: SimulatorConf, model_path: str, seed: int,
                    app_name: str = SIMULATOR_APP, server: type | None = None,
                    wait: bool = True):
    """Deploy the pool (no HTTP) and return its handle: once its replicas run, or at once
    without `wait` (then wait_for_simulator before the first search)."""
    from ray import serve

    serve.start(proxy_location="Disabled")
    handle = deploy_app(simulator_app(sim, model_path, seed, server), app_name, None)
    if wait:
        wait_for_simulator(sim, app_name)
    return handle


def wait_for_simulator(sim: SimulatorConf, app_name: str = SIMULATOR_APP) -> None:
    """Return once the pool's replicas run, within simulator.start_timeout_s."""
    needs = actor_options(sim.num_cpus, sim.num_gpus, sim.resource)
    wait_for_app(app_name, sim.start_timeout_s, "simulator.start_timeout_s",
                 f"a replica needs {needs}; the cluster has {offered_resources()}")


def deploy_app(app, app_name: str, route_prefix: str | None):
    """Deploy a Serve app and return its handle at once: serve.run waits without a bound
    (for nodes that may never come), so its non-blocking form deploys and wait_for_app
    bounds the wait."""
    from ray import serve

    return serve._run(app, _blocking=False, name=app_name, route_prefix=route_prefix)


def run_app(app, app_name: str, route_prefix: str | None, timeout_s: float, hint: str = ""):
    """Deploy a Serve app and return its handle once it runs, waiting at most timeout_s
    (simulator.start_timeout_s)."""
    handle = deploy_app(app, app_name, route_prefix)
    wait_for_app(app_name, timeout_s, "simulator.start_timeout_s", hint)
    return handle


def offered_resources() -> dict[str, float]:
    """The cluster's CPUs, GPUs and custom resources (not memory or node ids)."""
    import ray

    return {name: amount for name, amount in ray.cluster_resources().items()
            if not name.startswith("node:") and "memory" not in name}


def wait_for_app(app_name: str, timeout_s: float, key: str, hint: str = "") -> None:
    """Return once the Serve app runs; RunStopped naming what it waits for (Serve's own
    account: replicas not scheduled for lack of resources, an engine still loading) when
    timeout_s passes, or why it failed."""
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while True:
        app = serve.status().applications.get(app_name)
        status = getattr(app, "status", "")
        if status == "RUNNING":
            return
        if status == "DEPLOY_FAILED" or time.monotonic() > deadline:
            waiting = "; ".join(filter(None, [getattr(app, "message", "")] + [
                f"{name}: {getattr(d.status, 'value', d.status)} {d.message}".strip()
                for name, d in (getattr(app, "deployments", None) or {}).items()]))
            what = ("failed to start" if status == "DEPLOY_FAILED" else
                    f"did not start within {key}={timeout_s:g} s")
            raise RunStopped(f"the Serve app '{app_name}' {what}: {waiting or status}"
                             + (f"; {hint}" if hint else ""))
        time.sleep(1.0)


def simulator_replicas(app_name: str = SIMULATOR_APP) -> int:
    """Running replicas of the simulator pool (0 when it is not deployed)."""
    from ray import serve

    app = serve.status().applications.get(app_name)
    deployment = app.deployments.get(SIMULATOR_DEPLOYMENT) if app else None
    return deployment.replica_states.get("RUNNING", 0) if deployment else 0


def start_learner(conf: LearnerConf, policy_path: str, weights_dir: str, seed: int,
                  resume_dir: str, timeout_s: float, temperature: float = 1.0,
                  cls: type | None = None):
    """One Learner actor (of class `cls`, Learner if None), or a LearnerGroup of
    learner.num_workers FSDP2 ranks; temperature: the rollouts' sampling temperature."""
    import ray

    from learner.group import LearnerGroup

    if cls is None:
        from learner.learner import Learner as cls
    ranks = conf.num_workers
    options = actor_options(conf.num_cpus, conf.num_gpus, conf.resource)
    actors = [ray.remote(cls).options(**options).remote(
        conf, policy_path, weights_dir, seed, resume_dir, rank, ranks, temperature)
        for rank in range(ranks)]
    if ranks == 1:
        return actors[0]
    master = ray.get(actors[0].node_address.remote(), timeout=timeout_s)
    ray.get([actor.join.remote(master) for actor in actors], timeout=timeout_s)
    return LearnerGroup(actors)


def start_system(cfg: Config, assets: Assets, run_dir: Path, resume=None, faults=None,
                 previous: System | None = None, parts: Parts = Parts()) -> System:
    """Start every actor (their classes from `parts`); with `resume` (a checkpoint.Resume)
    from that checkpoint. The simulator pool of a `previous` system of the run (stopped but
    for its pool) is kept; `faults` counts the run's worker restarts (a fresh count if
    None). What started is stopped again if a part fails to start."""
    import ray

    from actors.queue import TrajectoryQueue

    queue = ray.remote(TrajectoryQueue).options(num_cpus=0).remote(
        cfg.trainer.groups_per_step, cfg.queue.max_staleness,
        cfg.rollout.max_group_failures, cfg.queue.bound)
    system = System(queue, None, None, None, None)
    if previous is not None:
        system.simulator, system.shutdown_serve = previous.simulator, previous.shutdown_serve
    try:
        _start_parts(cfg, assets, run_dir, resume, faults, system, parts)
    except BaseException:
        stop_system(system)
        raise
    return system


def _start_parts(cfg: Config, assets: Assets, run_dir: Path, resume, faults,
                 system: System, parts: Parts) -> None:
    import ray

    from orchestrator.metrics import Faults
    from orchestrator.supervisor import WorkerSupervisor
    from orchestrator.weight_sync import WeightPusher, resolve_weight_sync

    timeout = cfg.trainer.step_timeout_s
    lrn, ro = cfg.learner, cfg.rollout
    nccl = resolve_weight_sync(lrn.weight_sync, lrn.num_gpus, ro.num_gpus) == "nccl"
    if resume is not None:
        ray.get(system.queue.load_state_dict.remote(resume.queue), timeout=timeout)
    new_pool = system.simulator is None and uses_simulator(cfg)
    if new_pool:  # its replicas' engines start while the learner's and workers' do
        joined = cfg.trainer.ray_address or os.environ.get("RAY_ADDRESS")
        system.shutdown_serve = bool(joined) and not serve_running()
        system.simulator = start_simulator(cfg.simulator, assets.simulator_path,
                                           cfg.trainer.seed, server=parts.simulator,
                                           wait=False)
    system.learner = start_learner(lrn, assets.policy_path, str(run_dir / "weights"),
                                   cfg.trainer.seed, str(resume.path) if resume else "",
                                   timeout, ro.episode.temperature, parts.learner)
    start = (resume.model_path, resume.version) if resume else (assets.policy_path, 0)
    pusher = system.push_weights = WeightPusher(system.learner, None, timeout, *start)
    spawn = worker_spawner(cfg, assets, system.queue, system.simulator, nccl,
                           parts.rollout_worker)
    system.rollout = WorkerSupervisor(spawn, system.queue, ro, timeout, faults or Faults(),
                                      start, assets.policy_path, pusher.on_disk)
    pusher.rollout, system.rollout.on_replace = system.rollout, pusher.to_disk
    if new_pool:
        wait_for_simulator(cfg.simulator)  # before any worker plays (and searches)
    system.rollout.wait_started()
    if nccl:
        pusher.open_nccl(cfg, strict=lrn.weight_sync == "nccl")


def uses_simulator(cfg: Config) -> bool:
    """Whether training (or its periodic evaluation) searches the simulator pool."""
    return "simulator" in (cfg.search.backend,
                           cfg.eval.search.backend if cfg.eval.every else "")


def roles(cfg: Config) -> tuple[str, ...]:
    """The kinds of actor a training run places."""
    return ("rollout", "learner") + (("simulator",) if uses_simulator(cfg) else ())


def worker_spawner(cfg: Config, assets: Assets, queue, simulator, nccl: bool,
                   cls: type | None = None) -> Callable:
    """spawn(index, worker_id, model_path, version): one rollout worker actor of class
    `cls` (RolloutWorker if None), its options from config (so a replacement lands on the
    same kind of node)."""
    import ray

    if cls is None:
        from actors.rollout_worker import RolloutWorker as cls

    from actors.curriculum import NoiseSchedule

    ro = cfg.rollout
    options = actor_options(ro.num_cpus, ro.num_gpus, ro.resource)
    search = with_corpus(cfg.search, assets.corpus_path)
    noise = NoiseSchedule.of(cfg.curriculum, cfg.trainer.total_steps)

    def spawn(index: int, worker_id: str, model_path: str, version: int):
        return ray.remote(cls).options(**options).remote(
            worker_id, index, ro, model_path, assets.train_path, ro.reward,
            cfg.trainer.seed, queue, search, cfg.simulator, simulator,
            cfg.queue.admit_timeout_s, version, nccl, noise)

    return spawn


def serve_running() -> bool:
    """Whether Ray Serve's controller runs on the connected cluster."""
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        return True
    except ValueError:
        return False


def stop_system(system: System, keep_simulator: bool = False) -> list[str]:
    """Stop every actor of the system, the simulator pool too unless keep_simulator, even
    when some are already dead or hung; returns (and prints) what could not be stopped."""
    import ray

    problems: list[str] = []

    def attempt(what: str, action) -> None:
        try:
            action()
        except Exception as err:
            problems.append(f"{what} ({type(err).__name__}: {str(err)[:200]})")

    if system.simulator is not None and not keep_simulator:
        attempt("deleting the simulator pool",
                lambda: stop_app(SIMULATOR_APP, system.shutdown_serve))
    # killed rather than asked to stop: nothing of theirs outlives them, and a hung or dead
    # actor is ended the same way
    workers = system.rollout.actors() if system.rollout is not None else []
    learners = getattr(system.learner, "actors", [system.learner])
    for actor in [a for a in (*workers, *learners, system.queue) if a is not None]:
        attempt(f"killing {actor}", lambda: ray.kill(actor, no_restart=True))
    if problems:
        print("simsearch: while stopping, could not finish: " + "; ".join(problems),
              flush=True)
    return problems


@contextmanager
def ray_connection(cfg: Config, roles: tuple[str, ...]) -> Iterator[bool]:
    """connect_ray for the block's length (yields whether it started Ray); a cluster it
    started is shut down after the block, Serve first if it runs."""
    import ray
    from ray import serve

    started = connect_ray(cfg, roles)
    try:
        yield started
    finally:
        if started:
            if serve_running():
                serve.shutdown()
            ray.shutdown()


def stop_app(app_name: str, shutdown_serve: bool = False) -> None:
    """Delete a Serve app; with shutdown_serve, shut Serve down too if no other app is left
    on it."""
    from ray import serve

    serve.delete(app_name)
    if shutdown_serve and not serve.status().applications:
        serve.shutdown()
