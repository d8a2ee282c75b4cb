"""Asynchronous versus synchronous training on a long-tail workload, side by side.

The same tiny-model training twice, in one process: queue.max_staleness=0 (synchronous:
one batch admitted per policy version, the learner waits for all of it) and
queue.max_staleness=2 (asynchronous: workers run up to two versions ahead). The workload
is long-tailed on its own: at temperature 1.0 with up to 12 turns most episodes answer in
2-3 turns and a few wander for many more (the table shows mean and max turns), and in the
synchronous loop every step waits for its slowest episode. Reports trajectories/s over
the steps after the first (engine warm-up) and rollout-engine occupancy (mean running
requests over the episodes a worker may run at once), prints a table with the ratios and
writes JSON.

    python bench/async_vs_sync.py [--steps 8] [--out bench/results/async_vs_sync.json]
        [section.key=value ...]
"""

from __future__ import annotations

import tempfile

from common import arguments, launch, mean, train_rows, write_json

WORKLOAD = ["rollout.episode.max_turns=12", "rollout.episode.max_obs_tokens=1600",
            "rollout.episode.max_context_tokens=2000", "rollout.episode.temperature=1.0",
            "rollout.max_groups_per_worker=16", "trainer.groups_per_step=4",
            "learner.lr=1e-5", "trainer.checkpoint_every=0", "wandb.mode=disabled"]
SETTINGS = {"sync": 0, "async": 2}


def measure(staleness: int, steps: int, overrides: list[str], run_root: str) -> dict:
    cfg, timed = train_rows([*WORKLOAD, f"trainer.total_steps={steps}",
                             f"queue.max_staleness={staleness}", f"trainer.run_dir={run_root}",
                             *overrides])
    batch = cfg.trainer.groups_per_step * cfg.rollout.group_size
    return {
        "max_staleness": staleness,
        "trajectories_per_s": len(timed) * batch / sum(r["timing/step_s"] for r in timed),
        "occupancy": mean(timed, "rollout/occupancy"),
        "learner_idle_fraction": mean(timed, "idle/learner_fraction"),
        "turns_mean": mean(timed, "episode/turns_mean"),
        "turns_max": max(r["episode/turns_max"] for r in timed),
        "staleness_max": max(r["staleness/max"] for r in timed),
        "interrupted_turns": sum(r["rollout/interrupted_turns"] for r in timed),
        "steps_timed": len(timed),
    }


def main() -> None:
    args = arguments(__doc__, 8, "bench/results/async_vs_sync.json")
    run_root = tempfile.mkdtemp(prefix="async-vs-sync-")
    results = {name: measure(eta, args.steps, args.overrides, run_root)
               for name, eta in SETTINGS.items()}
    sync, fast = results["sync"], results["async"]
    print(f"\n{'setting':8} {'eta':>3} {'traj/s':>8} {'occupancy':>9} {'learner idle':>12} "
          f"{'turns mean':>10} {'turns max':>9} {'staleness max':>13}")
    for name, r in results.items():
        print(f"{name:8} {r['max_staleness']:3d} {r['trajectories_per_s']:8.2f} "
              f"{r['occupancy']:9.3f} {r['learner_idle_fraction']:12.3f} "
              f"{r['turns_mean']:10.2f} {r['turns_max']:9.0f} {r['staleness_max']:13.0f}")
    ratios = {"trajectories_per_s": fast["trajectories_per_s"] / sync["trajectories_per_s"],
              "occupancy": fast["occupancy"] / max(sync["occupancy"], 1e-9)}
    print(f"async / sync: {ratios['trajectories_per_s']:.2f}x trajectories/s, "
          f"{ratios['occupancy']:.2f}x occupancy")
    write_json(args.out, {"results": results, "ratios": ratios, "workload": WORKLOAD,
                          "steps": args.steps})


if __name__ == "__main__":
    launch(main)
