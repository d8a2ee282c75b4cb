"""``simsearch sft-simulator``: fine-tune a controllable simulator on the config's paths
(the tiny world's stages by default); the steps are ``learner.simulator_sft``'s."""

from __future__ import annotations

from pathlib import Path

from conf.schema import Config


def output_dir(cfg: Config) -> Path:
    if cfg.sft.output_dir:
        return Path(cfg.sft.output_dir)
    from orchestrator.train import make_run_dir

    return make_run_dir(cfg.trainer.run_dir) / "sft-simulator"


def sft_simulator(cfg: Config) -> Path:
    """Collect, label, fine-tune; returns the checkpoint folder."""
    from learner.simulator_sft import build_simulator, check_backend
    from tinyworld.assets import resolve_assets

    check_backend(cfg.sft)
    return build_simulator(cfg, resolve_assets(cfg, tuned_simulator=False), output_dir(cfg))
