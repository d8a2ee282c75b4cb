"""The simulator's page cache on and off, side by side.

The same training of the tiny default against the simulator pool twice, in one process:
``search.cache_size=0`` (every search calls the simulator, as ZeroSearch samples each one)
and the cache on (identical requests share one call: a group's samples mostly send the
question as their query). Reports, per step after the first, the searches the episodes
make, the calls that reach the simulator, its p50 latency, the learner's time and the
step's time; prints a table with the ratios and writes JSON.

    python bench/page_cache.py [--steps 10] [--cache-size 4096]
        [--out bench/results/page_cache.json] [section.key=value ...]
"""

from __future__ import annotations

import tempfile

from common import arguments, launch, mean, train_rows, write_json

WORKLOAD = ["search.backend=simulator", "trainer.checkpoint_every=0", "wandb.mode=disabled",
            "eval.every=0"]


def measure(cache_size: int, steps: int, overrides: list[str], run_root: str) -> dict:
    cfg, rows = train_rows([*WORKLOAD, f"trainer.total_steps={steps}",
                            f"search.cache_size={cache_size}", f"trainer.run_dir={run_root}",
                            *overrides])
    batch = cfg.trainer.groups_per_step * cfg.rollout.group_size
    return {
        "cache_size": cache_size,
        "searches_per_step": batch * mean(rows, "episode/search_calls_mean"),
        "simulator_calls_per_step": mean(rows, "search/queries"),
        "cache_hits_per_step": mean(rows, "search/cache_hits"),
        "search_p50_s": mean(rows, "search/latency_p50_s"),
        "train_s": mean(rows, "timing/train_s"),
        "step_s": mean(rows, "timing/step_s"),
        "reward_mean": mean(rows, "reward/mean"),
        "steps_timed": len(rows),
    }


def main() -> None:
    args = arguments(__doc__, 10, "bench/results/page_cache.json",
                     ("--cache-size", {"type": int, "default": 4096}))
    run_root = tempfile.mkdtemp(prefix="page-cache-")
    results = {name: measure(size, args.steps, args.overrides, run_root)
               for name, size in (("off", 0), ("on", args.cache_size))}
    keys = ["searches_per_step", "simulator_calls_per_step", "cache_hits_per_step",
            "search_p50_s", "train_s", "step_s", "reward_mean"]
    print(f"\n{'cache':6} " + " ".join(f"{k:>24}" for k in keys))
    for name, r in results.items():
        print(f"{name:6} " + " ".join(f"{r[k]:24.3f}" for k in keys))
    off, on = results["off"], results["on"]
    ratios = {"simulator_calls_per_step": on["simulator_calls_per_step"]
              / max(off["simulator_calls_per_step"], 1e-9),
              "step_s": on["step_s"] / off["step_s"]}
    print(f"on / off: {ratios['simulator_calls_per_step']:.2f}x simulator calls per step, "
          f"{ratios['step_s']:.2f}x seconds per step")
    write_json(args.out, {"results": results, "ratios": ratios, "workload": WORKLOAD,
                          "steps": args.steps})


if __name__ == "__main__":
    launch(main)
