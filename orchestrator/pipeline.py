"""``simsearch pipeline``: the whole method on the tiny world, each stage cached.

1. world, pretrain, warm-start, simulator SFT (``tinyworld.stages``);
2. RL against the training backend (the simulator, or the policy itself in self-search
   mode) with the noise curriculum, asynchronous, on a local Ray cluster; the held-out
   questions are scored before the first step, every ``eval.every`` steps and after the
   last, with ``eval.search`` (BM25 over the corpus: sim-to-real) and with training's
   own backend (``eval.every`` = 0 means five evaluations over the run);
3. the report: a table, ``report.json`` and ``curves.png`` in the run folder, with the
   held-out EM of answering without a search (``report.answer_prior``).

The RL run is a stage too: its folder, ``<trainer.run_dir>/pipeline-<hash of the whole
config and of the stages' folders>``, is reused when a finished run with the same config
on the same stages is there.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

from conf.schema import Config


def pipeline_config(cfg: Config) -> Config:
    """cfg with the held-out evaluation that the report needs switched on: both backends,
    eval.every steps (0 = five evaluations over the run)."""
    ev = cfg.eval
    every = ev.every or max(1, cfg.trainer.total_steps // 5)
    return replace(cfg, eval=replace(ev, every=every, also_training_search=True))


def pipeline(cfg: Config) -> Path:
    """Run the stages; returns the run folder holding report.json and curves.png."""
    from actors.dataset import load_questions
    from orchestrator.evaluate import eval_inputs
    from orchestrator.report import answer_prior, write_report
    from tinyworld.stages import cached_stage
    from orchestrator.train import train
    from tinyworld.assets import resolve_assets

    start = time.monotonic()
    cfg = pipeline_config(cfg)
    assets = resolve_assets(cfg)  # the cached build stages, each printed as built or found
    built_s = time.monotonic() - start
    run_dir = cached_stage(cfg.trainer.run_dir, "pipeline",
                           {"config": asdict(cfg), "assets": asdict(assets)},
                           lambda out: train(cfg, out))
    backends = {"eval": cfg.eval.search.backend, f"eval_{cfg.search.backend}":
                cfg.search.backend}
    total_s = time.monotonic() - start
    prior = answer_prior(load_questions(assets.train_path), eval_inputs(cfg, assets)[1])
    write_report(run_dir, backends, {"seconds_build": built_s, "seconds_total": total_s,
                                     "training_search": cfg.search.backend,
                                     "answer_prior": prior})
    print(f"pipeline: {total_s:.0f} s in all ({built_s:.0f} s building stages)")
    return run_dir
