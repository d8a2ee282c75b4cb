"""A run's model and data paths: the config's, or the tiny world's cached stages (built on
first use) for each one it leaves empty. The one place the driver, evaluation, the
simulator pool and the ``sft-simulator`` verb resolve them."""

from __future__ import annotations

from dataclasses import replace

from conf.schema import Assets, Config


def resolve_assets(cfg: Config, tuned_simulator: bool = True) -> Assets:
    """Config paths, with the tiny world's stages as defaults.

    The default simulator is the fine-tuned one (the simulator-SFT stage) when a search
    goes to it, tuned_simulator is set and simulator.prompt is sft, else the simulator
    base (prompt_only is the prompt of an un-tuned model); the default policy is
    the warm start, with self-written information in self-search mode."""
    from tinyworld.stages import ensure_tiny_assets, simulator_sft_stage

    if cfg.data.train_path and cfg.rollout.engine.model_path and \
            cfg.simulator.engine.model_path and cfg.search.bm25.corpus_path:
        return Assets(cfg.data.train_path, cfg.rollout.engine.model_path,
                      cfg.simulator.engine.model_path, cfg.search.bm25.corpus_path)
    tiny = ensure_tiny_assets(cfg.world, self_search=cfg.search.backend == "self")
    assets = Assets(
        train_path=cfg.data.train_path or str(tiny.data / "train.parquet"),
        policy_path=cfg.rollout.engine.model_path or str(tiny.policy),
        simulator_path=cfg.simulator.engine.model_path or str(tiny.simulator),
        corpus_path=cfg.search.bm25.corpus_path or str(tiny.data / "corpus.jsonl"),
    )
    uses_simulator = "simulator" in (cfg.search.backend, cfg.eval.search.backend)
    tuned = tuned_simulator and cfg.simulator.prompt == "sft"
    if not cfg.simulator.engine.model_path and tuned and uses_simulator:
        tuned = simulator_sft_stage(cfg, assets, tiny)
        assets = replace(assets, simulator_path=str(tuned))
    return assets
