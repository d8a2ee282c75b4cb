"""Controllability of the simulator before and after ``simsearch sft-simulator``.

On the tiny world: fine-tune the tiny simulator on (query, documents) pairs collected with
BM25, then ask the base and the fine-tuned simulator for useful and for noisy documents on
training and on held-out questions. Reports, per model and split, the share of useful-mode
documents that contain the gold answer and the share of noisy-mode ones; the gap is the
control the mode keyword gives. Prints a table and writes JSON.

    python bench/simulator_controllability.py [--out bench/results/controllability.json]
        [section.key=value ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from actors.dataset import load_questions
    from conf.loader import CONF_DIR, load_config
    from learner.simulator_sft import controllability
    from orchestrator.sft_simulator import sft_simulator
    from tinyworld.assets import resolve_assets

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench/results/controllability.json")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="controllability-")
    cfg = load_config(CONF_DIR / "tiny.yaml", [f"sft.output_dir={workdir}", *args.overrides])
    assets = resolve_assets(cfg)
    checkpoint = sft_simulator(cfg)
    splits = {"train": load_questions(assets.train_path),
              "test": load_questions(Path(assets.train_path).with_name("test.parquet"))}
    rows = []
    for model, path in (("base", assets.simulator_path), ("sft", str(checkpoint))):
        for split, questions in splits.items():
            shares = asyncio.run(controllability(cfg.simulator, path, questions,
                                                 cfg.search.topk, cfg.trainer.seed))
            rows.append({"model": model, "split": split, "questions": len(questions),
                         **shares})
    print(f"\n{'model':6} {'split':6} {'questions':>9} {'useful docs':>11} "
          f"{'useful w/ answer':>16} {'noisy docs':>10} {'noisy w/ answer':>15} {'gap':>6}")
    for r in rows:
        print(f"{r['model']:6} {r['split']:6} {r['questions']:9d} {r['useful_docs']:11.0f} "
              f"{r['useful_with_answer']:16.3f} {r['noisy_docs']:10.0f} "
              f"{r['noisy_with_answer']:15.3f} "
              f"{r['useful_with_answer'] - r['noisy_with_answer']:6.3f}")
    summary = json.loads((checkpoint.parent / "summary.json").read_text())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sft": summary, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
