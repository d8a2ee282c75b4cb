"""The training driver: start the actors, then batch -> train -> publish -> sync, per step.

Rollout workers run on their own the whole time; the queue's admission control keeps them
at most `queue.max_staleness` versions ahead of the learner. A dead rollout worker is
replaced while the run goes on (``orchestrator.supervisor``); losing the learner or the
queue rebuilds the system from the last checkpoint, at most `trainer.max_restarts` times,
in the same run directory and W&B run. Checkpoints are written every
`trainer.checkpoint_every` steps; `trainer.resume_from` continues from one. The collapse
guard (``orchestrator.guard``) reads every step's metrics and warns, stops the run, or
rolls it back to the newest checkpoint before the trouble began (`guard.action`).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from actors.errors import RunStopped
from conf.schema import Config
from orchestrator.guard_actions import (GuardRollback, act, guard_hold, guard_rows,
                                        roll_back, watch)
from orchestrator.metrics import Faults
from orchestrator.wiring import Parts


@dataclass
class RunState:
    """What a run keeps across the systems it builds: its fault counts, the group mapping
    its checkpoints record, after_step(step, system), run after each step (tests and
    benchmarks inject faults there), and the actors' classes (wiring.Parts: benchmarks
    put timed stand-ins there)."""

    faults: Faults = field(default_factory=Faults)
    mapping: dict = field(default_factory=dict)
    after_step: Callable | None = None
    parts: Parts = field(default_factory=Parts)
    history: list[dict] = field(default_factory=list)  # the guard's rows of this timeline
    firing: set[str] = field(default_factory=set)  # the guard's signals firing now


def make_run_dir(parent: str) -> Path:
    run_dir = Path(parent) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True)
    return run_dir


def train(cfg: Config, run_dir: Path | None = None,
          after_step: Callable | None = None, parts: Parts | None = None) -> Path:
    """Train; the run folder is run_dir, else the run directory resumed in, else a new one
    under trainer.run_dir; parts: the actors' classes (wiring.Parts), the real ones if
    None."""
    from orchestrator import wiring
    from orchestrator.checkpoint import check_mapping, group_mapping, resume_point
    from orchestrator.metrics import MetricsLogger, start_wandb
    from tinyworld.assets import resolve_assets

    resume, in_place = resume_point(cfg.trainer.resume_from) if cfg.trainer.resume_from \
        else (None, None)
    with wiring.ray_connection(cfg, wiring.roles(cfg)):  # first: it checks the cluster
        assets = resolve_assets(cfg)  # after it: the tiny stages may take minutes to build
        state = RunState(Faults.from_state(resume.faults) if resume else Faults(),
                         group_mapping(cfg, assets.train_path), after_step, parts or Parts())
        if resume is not None:
            check_mapping(resume, state.mapping)
        run_dir = run_dir or in_place or make_run_dir(cfg.trainer.run_dir)
        keep = (resume.step if resume else -1) if run_dir == in_place else None
        logger = MetricsLogger(run_dir, start_wandb(cfg.wandb, run_dir, cfg), keep)
        try:
            last = run_with_restarts(cfg, assets, logger, resume, state)
        finally:
            logger.close()
    print(f"done: {cfg.trainer.total_steps} steps, reward {last.get('reward/mean', 0):.3f}, "
          f"em {last.get('em/mean', 0):.3f}, run dir {run_dir.resolve()}")
    return run_dir


def run_with_restarts(cfg: Config, assets, logger, resume, state: RunState) -> dict:
    """Build the system and run the loop; when the learner or the queue is lost, rebuild
    from the newest checkpoint (the simulator pool stays) and go on."""
    from orchestrator import wiring
    from orchestrator.checkpoint import latest_checkpoint
    from orchestrator.evaluate import periodic_evaluator
    from orchestrator.supervisor import SystemLost

    origin, system, limit = resume, None, cfg.trainer.max_restarts
    while True:
        system = wiring.start_system(cfg, assets, logger.run_dir, resume, state.faults,
                                     previous=system, parts=state.parts)
        state.history, state.firing = guard_rows(logger.rows()), set()
        evaluator = periodic_evaluator(cfg, assets, system.rollout) if cfg.eval.every \
            else None
        lost = rollback = None
        try:
            return run_loop(cfg, system, logger, resume, evaluator, state)
        except SystemLost as err:
            if state.faults.restarts >= limit:
                raise RunStopped(f"{err}; trainer.max_restarts={limit} restarts are "
                                 f"used") from None
            lost = err
        except GuardRollback as err:
            rollback = err
        finally:
            wiring.stop_system(system, keep_simulator=lost is not None or
                               rollback is not None)
        if rollback is not None:
            resume, cfg = roll_back(cfg, logger, state, rollback, origin)
            continue
        state.faults.restarts += 1
        print(f"simsearch: {lost}; the system is rebuilt from the newest checkpoint "
              f"(restart {state.faults.restarts}/{limit}){_remote_traceback(lost)}",
              flush=True)
        resume = latest_checkpoint(logger.run_dir) or origin
        if resume is None:
            print("simsearch: no checkpoint yet: the run starts over", flush=True)
        logger.rewind(resume.step if resume else -1)


def _remote_traceback(lost: Exception) -> str:
    """The actor's traceback when a call raised in it (not when the actor died)."""
    from ray.exceptions import RayTaskError

    return f"\n{lost.__cause__}" if isinstance(lost.__cause__, RayTaskError) else ""


def run_loop(cfg: Config, system, logger, resume=None, evaluator=None,
             state: RunState | None = None) -> dict[str, float]:
    """Run the steps left of trainer.total_steps on a started system (all of them, or
    those after the `resume` checkpoint); evaluator(step) adds eval metrics every
    eval.every steps. Returns the last step's metrics."""
    from tqdm import tqdm

    from actors.curriculum import NoiseSchedule

    tr, state = cfg.trainer, state or RunState()
    noise = NoiseSchedule.of(cfg.curriculum, tr.total_steps)
    first = resume.step + 1 if resume else 0
    metrics: dict[str, float] = {}
    start = {}  # the starting policy's scores, logged with the first step
    if evaluator is not None and resume is None:
        start = {f"start/{key}": value for key, value in evaluator(-1).items()}
    on_terminal = sys.stdout.isatty()
    for step in tqdm(range(first, tr.total_steps), desc="train", unit="step", initial=first,
                     total=tr.total_steps, disable=not on_terminal):
        metrics = one_step(cfg, system, logger, step, noise(step), state.faults)
        metrics.update(start if step == first else {})
        if not on_terminal:  # job logs and CI: one line per step instead of a progress bar
            print(step_line(step, tr.total_steps, metrics), flush=True)
        last = step == tr.total_steps - 1
        if evaluator is not None and ((step + 1) % cfg.eval.every == 0 or last):
            metrics.update(evaluator(step))
        verdict = watch(cfg, state, metrics, step, logger)
        logger.log(metrics, step)
        act(cfg, verdict, step)  # before a checkpoint: an unhealthy step is never kept
        if tr.checkpoint_every and ((step + 1) % tr.checkpoint_every == 0 or last):
            checkpoint(cfg, system, logger.run_dir, step, state)
        if state.after_step is not None:
            state.after_step(step, system)
    return metrics


def checkpoint(cfg: Config, system, run_dir: Path, step: int, state: RunState) -> None:
    """Checkpoint the state after `step`: learner, queue, mapping, faults."""
    from orchestrator.checkpoint import save_checkpoint
    from orchestrator.supervisor import call

    timeout = cfg.trainer.step_timeout_s
    saved = {"step": step,
             "queue": call(system.queue.state_dict.remote(), timeout, "the queue"),
             "mapping": state.mapping, "faults": state.faults.state_dict()}
    save_checkpoint(run_dir, saved, lambda folder: call(
        system.learner.save_checkpoint.remote(str(folder)), timeout, "the learner's "
        "checkpoint"), cfg.trainer.keep_checkpoints, hold_after=guard_hold(cfg, step))


def step_line(step: int, total: int, metrics: dict[str, float]) -> str:
    get = metrics.get
    return (f"step {step + 1}/{total}: reward {get('reward/mean', 0):.3f}, "
            f"em {get('em/mean', 0):.3f}, staleness max {get('staleness/max', 0):.0f}, "
            f"noise {get('curriculum/noise_prob', 0):.3f}, "
            f"{get('timing/step_s', 0):.1f} s")


def one_step(cfg: Config, system, logger, step: int, noise: float,
             faults: Faults) -> dict[str, float]:
    """Batch -> train -> publish -> sync for one step; returns its metrics. A lost rollout
    worker is replaced on the way; a lost learner or queue raises SystemLost."""
    from orchestrator.metrics import batch_metrics, rollout_metrics
    from orchestrator.supervisor import call
    from orchestrator.wiring import simulator_replicas

    timeout = cfg.trainer.step_timeout_s
    rollout, queue, learner = system.rollout, system.queue, system.learner
    t0 = time.monotonic()
    batch = rollout.wait(queue.get_batch.remote(step, timeout), timeout,
                         f"the queue's batch for step {step}")
    wait_s = time.monotonic() - t0
    logger.log_batch(step, batch)
    metrics = batch_metrics(batch, learner_version=step)
    metrics.update(call(learner.train_step.remote(batch), timeout, "the learner's step"))
    t_sync = time.monotonic()
    system.push_weights(step + 1)
    metrics["timing/weight_sync_s"] = time.monotonic() - t_sync
    call(queue.set_version.remote(step + 1), timeout, "the queue")
    metrics.update(call(queue.stats.remote(), timeout, "the queue"))
    faults.add(call(queue.drain_faults.remote(), timeout, "the queue"))
    step_s = time.monotonic() - t0
    metrics.update(rollout_metrics(rollout.call_all("drain_stats"), step_s))
    metrics.update(faults.metrics())
    metrics["simulator/replicas"] = simulator_replicas() if system.simulator else 0
    metrics.update({"step": step, "policy_version": step + 1, "timing/step_s": step_s,
                    "idle/learner_fraction": wait_s / max(step_s, 1e-9),
                    "curriculum/noise_prob": noise})
    return metrics
