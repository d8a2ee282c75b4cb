"""GPU paths, skipped without CUDA GPUs: weights reach the vLLM engine by NCCL broadcast
through vLLM's weight-transfer API, in buckets, and the engine then samples from exactly
the learner's weights. The learner and the engine each need their own GPU (NCCL puts no
two ranks on one device), so this needs two."""

import pytest
import torch

from conf.loader import load_config
from orchestrator import wiring
from tinyworld.assets import resolve_assets
from orchestrator.metrics import DummyWandb, MetricsLogger
from orchestrator.train import make_run_dir, run_loop

pytestmark = [pytest.mark.integration, pytest.mark.gpu, pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")]

STEPS = 3


def test_nccl_weight_sync_makes_the_engine_sample_from_the_learners_weights(
        ray_cluster, tmp_path):
    cfg = load_config("conf/tiny.yaml", [
        f"trainer.total_steps={STEPS}", "learner.lr=1e-3", f"trainer.run_dir={tmp_path}",
        "learner.num_gpus=1", "rollout.num_gpus=1", "learner.weight_sync=nccl",
        "learner.sync_bucket_mb=1", "rollout.engine.gpu_memory_utilization=0.3"])
    run_dir = make_run_dir(cfg.trainer.run_dir)
    system = wiring.start_system(cfg, resolve_assets(cfg), run_dir)
    try:
        assert system.push_weights.mode == "nccl"
        logger = MetricsLogger(run_dir, DummyWandb())
        last = run_loop(cfg, system, logger)
        logger.close()
        probe = list(range(5, 200, 3))
        engine_lp, learner_lp = ray_cluster.get(
            [system.workers[0].prompt_logprobs.remote(probe),
             system.learner.prompt_logprobs.remote(probe)], timeout=300)
        version = ray_cluster.get(system.workers[0].__ray_call__.remote(
            lambda worker: worker.version), timeout=60)
    finally:
        wiring.stop_system(system)
    assert version == STEPS and last["policy_version"] == STEPS
    print(f"nccl weight sync: {last['timing/weight_sync_s']:.3f} s")
    assert torch.allclose(torch.tensor(engine_lp), torch.tensor(learner_lp), atol=1e-3)
