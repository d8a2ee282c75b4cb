"""Fault recovery on the tiny default: a 30-step run during which one actor is killed every
few steps, a rollout worker, a simulator replica and the learner in turn.

Two rollout workers, a checkpoint every 5 steps. Faults go in through train's after_step
hook, between steps (the workers play on meanwhile, so a killed worker is mid-episode).
Reports steps completed, faults injected, restarts, seconds lost per fault (the wall time
from the end of the step before the fault to the end of the WINDOW-th step after it, less
WINDOW median step times), trajectories lost and trained twice (from batches.jsonl: must
both be 0); prints a table and writes JSON.

    python bench/faults.py [--steps 30] [--every 6] [--out bench/results/faults.json]
        [section.key=value ...]
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from common import arguments, launch, write_json

WINDOW = 3  # steps after a fault over which its cost is measured
KINDS = ("rollout_worker", "simulator_replica", "learner")
SETTINGS = ["rollout.num_workers=2", "trainer.checkpoint_every=5", "wandb.mode=disabled",
            "eval.every=0"]


def kill(kind: str, system) -> str:
    """Kill one actor of `kind`; returns what was killed."""
    import ray

    if kind == "rollout_worker":
        slot = system.rollout.slots[0]
        ray.kill(slot.actor, no_restart=True)
        return slot.worker_id
    if kind == "learner":
        ray.kill(system.learner, no_restart=True)
        return "learner"
    names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                   if a["name"].startswith("SERVE_REPLICA::simulator#"))
    ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)
    return names[0]


class Chaos:
    """after_step hook: a fault after every `every`-th step, kinds in turn; the end time
    of each step (its last run, after a restart redid it)."""

    def __init__(self, every: int, total: int):
        self.every, self.total = every, total
        self.faults: list[dict] = []
        self.ended: dict[int, float] = {}

    def __call__(self, step: int, system) -> None:
        self.ended[step] = time.monotonic()
        due = (step + 1) % self.every == 0 and step + 1 + WINDOW < self.total
        if due and all(f["step"] != step for f in self.faults):
            kind = KINDS[len(self.faults) % len(KINDS)]
            self.faults.append({"step": step, "kind": kind, "at": time.monotonic(),
                                "killed": kill(kind, system)})


def trained_groups(run_dir: Path) -> list[int]:
    rows = [json.loads(x) for x in (run_dir / "batches.jsonl").read_text().splitlines()]
    return [index for row in rows for index, _ in row["groups"]]


def summarise(cfg, run_dir: Path, chaos: Chaos) -> dict:
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    median = statistics.median(m["timing/step_s"] for m in metrics[1:])
    for fault in chaos.faults:
        step = fault.pop("step")
        span = chaos.ended[step + WINDOW] - fault.pop("at")
        fault.update(after_step=step + 1, seconds_lost=round(span - WINDOW * median, 1))
    groups = trained_groups(run_dir)
    per_step, size = cfg.trainer.groups_per_step, cfg.rollout.group_size
    settled = (len(metrics) - 1 - cfg.queue.max_staleness) * per_step  # all trained below
    last = metrics[-1]
    return {
        "steps_completed": len(metrics), "faults_injected": len(chaos.faults),
        "faults": chaos.faults, "median_step_s": round(median, 2),
        "trainer_restarts": last["trainer/restarts"],
        "worker_restarts": last["rollout/worker_restarts"],
        "failed_searches": sum(m["search/failed"] for m in metrics),
        "released_groups": last["rollout/released_groups"],
        "refused_puts": last["queue/refused_puts"],
        "trajectories_lost": size * len(set(range(settled)) - set(groups)),
        "trajectories_trained_twice": size * (len(groups) - len(set(groups))),
        "staleness_max": max(m["staleness/max"] for m in metrics),
    }


def main() -> None:
    from conf.loader import CONF_DIR, load_config
    from orchestrator.train import train

    args = arguments(__doc__, 30, "bench/results/faults.json",
                     ("--every", {"type": int, "default": 6}))
    cfg = load_config(CONF_DIR / "tiny.yaml", [*SETTINGS, f"trainer.total_steps={args.steps}",
                                               f"trainer.run_dir={tempfile.mkdtemp()}",
                                               *args.overrides])
    chaos = Chaos(args.every, args.steps)
    start = time.monotonic()
    run_dir = train(cfg, after_step=chaos)
    result = summarise(cfg, run_dir, chaos)
    result["wall_s"] = round(time.monotonic() - start, 1)
    print(f"\n{'step':>4} {'fault':18} {'seconds lost':>12}   (median step "
          f"{result['median_step_s']} s)")
    for fault in result["faults"]:
        print(f"{fault['after_step']:4d} {fault['kind']:18} {fault['seconds_lost']:12.1f}")
    print(f"steps {result['steps_completed']}, faults {result['faults_injected']}, "
          f"restarts: trainer {result['trainer_restarts']:.0f}, workers "
          f"{result['worker_restarts']:.0f}; failed searches {result['failed_searches']:.0f}; "
          f"trajectories lost {result['trajectories_lost']}, trained twice "
          f"{result['trajectories_trained_twice']}")
    write_json(args.out, {**result, "settings": SETTINGS, "every": args.every})


if __name__ == "__main__":
    launch(main)
