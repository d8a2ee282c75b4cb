"""Weight sync's share of a training step, real and modelled.

- Real, tiny, disk: a short run of the CPU default (conf/tiny.yaml): the learner saves an
  HF checkpoint and every engine reloads it; timing/weight_sync_s over timing/step_s.
- Modelled, the GPU recipes: the 64-GPU layout of bench/scale.py (timed stand-ins, real
  control plane) with the push of a 3B and a 7B policy as an NCCL broadcast (bytes over
  bandwidth plus a cost per learner.sync_bucket_mb bucket), with and without
  interruptible generation, and its effect on the engines' busy fraction. These rows come
  from scale.py's weight_sync section: read from --scale-json when that file has them,
  else run here (about 20 minutes).

    python bench/weight_sync.py [--steps 10] [--scale-json bench/results/scale.json]
        [--out bench/results/weight_sync.json] [section.key=value ...]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import arguments, launch, train_rows, write_json

TARGET_SHARE = 0.05


def real_tiny(steps: int, overrides: list[str]) -> dict:
    cfg, rows = train_rows([f"trainer.total_steps={steps}", "trainer.checkpoint_every=0",
                            "wandb.mode=disabled",
                            f"trainer.run_dir={tempfile.mkdtemp(prefix='weight-sync-')}",
                            *overrides])
    sync = sum(r["timing/weight_sync_s"] for r in rows)
    step = sum(r["timing/step_s"] for r in rows)
    return {"setting": "tiny CPU default, disk", "weight_sync_s": sync / len(rows),
            "step_s": step / len(rows), "share": sync / step,
            "engine_busy": 1 - sum(r["idle/rollout_fraction"] for r in rows) / len(rows),
            "steps_timed": len(rows)}


def modelled(scale_json: Path) -> list[dict]:
    """scale.py's weight_sync rows (run now if the file lacks them)."""
    import scale

    data = json.loads(scale_json.read_text()) if scale_json.exists() else {}
    rows = data.get("results", {}).get("weight_sync")
    if not rows:
        rows = scale.main(["--sections", "weight_sync", "--out",
                           str(scale_json.parent)])["results"]["weight_sync"]
    conf = scale.ScaleConf()
    push = {m.name: scale.push_s(conf, m) for m in conf.models}
    return [{"setting": f"{r['model']} NCCL (modelled), {r['engines']} engines, interrupt "
                        f"{'on' if r['interrupt'] else 'off'}",
             "weight_sync_s": r["weight_sync_share"] * r["step_s"], "push_model_s": push.get(
                 r["model"], float("nan")), "step_s": r["step_s"],
             "share": r["weight_sync_share"], "engine_busy": r["engine_busy"],
             "steps_timed": r["steps_timed"]} for r in rows]


def main() -> None:
    args = arguments(__doc__, 10, "bench/results/weight_sync.json",
                     ("--scale-json", {"default": "bench/results/scale.json"}))
    rows = [real_tiny(args.steps, args.overrides), *modelled(Path(args.scale_json))]
    print(f"\n{'setting':52} {'sync s':>7} {'step s':>7} {'share %':>7} {'busy':>5}")
    for r in rows:
        print(f"{r['setting']:52} {r['weight_sync_s']:7.3f} {r['step_s']:7.2f} "
              f"{100 * r['share']:7.2f} {r['engine_busy']:5.2f}")
    print(f"target: weight sync <= {100 * TARGET_SHARE:.0f}% of a step")
    write_json(args.out, {"rows": rows, "target_share": TARGET_SHARE})


if __name__ == "__main__":
    launch(main)
