"""The training driver: start the actors, then batch -> train -> publish -> sync, per step.

Rollout workers run on their own the whole time; the queue's admission control keeps them
at most `queue.max_staleness` versions ahead of the learner. Checkpoints are written every
`trainer.checkpoint_every` steps; `trainer.resume_from` continues from one.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from conf.schema import Config


def make_run_dir(parent: str) -> Path:
    run_dir = Path(parent) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True)
    return run_dir


def train(cfg: Config, run_dir: Path | None = None) -> Path:
    """Train; the run folder is run_dir, or a new one under trainer.run_dir."""
    import ray

    from orchestrator import wiring
    from orchestrator.checkpoint import find_checkpoint
    from orchestrator.metrics import MetricsLogger, start_wandb

    resume = find_checkpoint(cfg.trainer.resume_from) if cfg.trainer.resume_from else None
    run_dir = run_dir or make_run_dir(cfg.trainer.run_dir)
    assets = wiring.resolve_assets(cfg)
    started_ray = wiring.connect_ray(cfg)
    system = wiring.start_system(cfg, assets, run_dir, resume)
    logger = MetricsLogger(run_dir, start_wandb(cfg.wandb, run_dir, cfg))
    evaluator = None
    if cfg.eval.every:
        from orchestrator.evaluate import periodic_evaluator

        evaluator = periodic_evaluator(cfg, assets, system.workers[0])
    try:
        last = run_loop(cfg, system, logger, resume, evaluator)
    finally:
        logger.close()
        wiring.stop_system(system, cfg.trainer.step_timeout_s)
        if started_ray:
            ray.shutdown()
    print(f"done: {cfg.trainer.total_steps} steps, reward {last.get('reward/mean', 0):.3f}, "
          f"em {last.get('em/mean', 0):.3f}, run dir {run_dir.resolve()}")
    return run_dir


def run_loop(cfg: Config, system, logger, resume=None, evaluator=None) -> dict[str, float]:
    """Run the steps left of trainer.total_steps on a started system (all of them, or
    those after the `resume` checkpoint); evaluator(step) adds eval metrics every
    eval.every steps. Returns the last step's metrics."""
    from tqdm import tqdm

    from orchestrator.checkpoint import save_checkpoint
    from orchestrator.curriculum import Curriculum

    cur, tr = cfg.curriculum, cfg.trainer
    curriculum = Curriculum(cur.schedule, cur.start, cur.end, cur.base,
                            cur.steps or tr.total_steps)
    if resume is not None:
        curriculum.load_state_dict(resume.curriculum)
    first = resume.step + 1 if resume else 0
    metrics: dict[str, float] = {}
    start = {}  # the starting policy's scores, logged with the first step
    if evaluator is not None and resume is None:
        start = {f"start/{key}": value for key, value in evaluator(-1).items()}
    on_terminal = sys.stdout.isatty()
    for step in tqdm(range(first, tr.total_steps), desc="train", unit="step", initial=first,
                     total=tr.total_steps, disable=not on_terminal):
        metrics = one_step(cfg, system, logger, step, curriculum.advance(step))
        metrics.update(start if step == first else {})
        if not on_terminal:  # job logs and CI: one line per step instead of a progress bar
            print(step_line(step, tr.total_steps, metrics), flush=True)
        last = step == tr.total_steps - 1
        if evaluator is not None and ((step + 1) % cfg.eval.every == 0 or last):
            metrics.update(evaluator(step))
        logger.log(metrics, step)
        if tr.checkpoint_every and ((step + 1) % tr.checkpoint_every == 0 or last):
            save_checkpoint(logger.run_dir, step, system.learner, system.queue, curriculum,
                            tr.keep_checkpoints, tr.step_timeout_s)
    return metrics


def step_line(step: int, total: int, metrics: dict[str, float]) -> str:
    get = metrics.get
    return (f"step {step + 1}/{total}: reward {get('reward/mean', 0):.3f}, "
            f"em {get('em/mean', 0):.3f}, staleness max {get('staleness/max', 0):.0f}, "
            f"noise {get('curriculum/noise_prob', 0):.3f}, "
            f"{get('timing/step_s', 0):.1f} s")


def one_step(cfg: Config, system, logger, step: int, noise: float) -> dict[str, float]:
    """Batch -> train -> publish -> sync for one step; returns its metrics."""
    import ray

    from orchestrator.metrics import batch_metrics, rollout_metrics
    from orchestrator.wiring import simulator_replicas

    timeout = cfg.trainer.step_timeout_s
    workers, queue, learner = system.workers, system.queue, system.learner
    t0 = time.monotonic()
    ray.get([w.set_noise_probability.remote(noise) for w in workers], timeout=timeout)
    batch = ray.get(queue.get_batch.remote(step, timeout), timeout=timeout)
    wait_s = time.monotonic() - t0
    logger.log_batch(step, batch)
    metrics = batch_metrics(batch, learner_version=step)
    metrics.update(ray.get(learner.train_step.remote(batch), timeout=timeout))
    t_sync = time.monotonic()
    system.push_weights(step + 1)
    metrics["timing/weight_sync_s"] = time.monotonic() - t_sync
    ray.get(queue.set_version.remote(step + 1), timeout=timeout)
    metrics.update(ray.get(queue.stats.remote(), timeout=timeout))
    step_s = time.monotonic() - t0
    stats = ray.get([w.drain_stats.remote() for w in workers], timeout=timeout)
    metrics.update(rollout_metrics(stats, step_s))
    metrics["simulator/replicas"] = simulator_replicas() if system.simulator else 0
    metrics.update({"step": step, "policy_version": step + 1, "timing/step_s": step_s,
                    "idle/learner_fraction": wait_s / max(step_s, 1e-9),
                    "curriculum/noise_prob": noise})
    return metrics
