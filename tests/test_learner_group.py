"""The learner as a group of 2 Ray actors sharding the tiny policy with FSDP2 over gloo:
the same loss, gradients and updated weights as one process on the same batch."""

import pytest
import torch

from conf.schema import LearnerConf
from learner.learner import Learner
from orchestrator.wiring import start_learner
from tests.test_learner import batch

pytestmark = pytest.mark.integration


def test_two_gloo_ranks_match_one_process(ray_cluster, tiny_assets, tmp_path):
    groups = batch(str(tiny_assets.policy))
    groups[1] = groups[1][:2]  # 5 trajectories: ranks get 3 and 2, so one pads a pass
    conf = LearnerConf(lr=1e-3, micro_batch_size=2, num_cpus=0.5, kl_coef=0.05)
    single = Learner(conf, str(tiny_assets.policy), str(tmp_path / "one"), seed=0)
    one = single.train_step(groups)
    group = start_learner(LearnerConf(**{**conf.__dict__, "num_workers": 2}),
                          str(tiny_assets.policy), str(tmp_path / "two"), 0, "", 120)
    two = ray_cluster.get(group.train_step.remote(groups), timeout=120)
    grads = ray_cluster.get(group.gradients.remote(), timeout=120)
    weights = ray_cluster.get(group.weights.remote(), timeout=120)
    path = ray_cluster.get(group.publish.remote(), timeout=120)
    for actor in group.actors:
        ray_cluster.kill(actor)
    for key in ("learner/loss", "learner/entropy", "learner/kl", "learner/train_tokens"):
        assert two[key] == pytest.approx(one[key], rel=1e-5, abs=1e-7), key
    assert two["learner/grad_norm"] == pytest.approx(one["learner/grad_norm"], rel=1e-4)
    expected = single.gradients()
    assert grads.keys() == expected.keys() and len(grads) > 10
    for name, grad in expected.items():
        assert torch.allclose(grads[name], grad, rtol=1e-4, atol=1e-7), name
    for name, tensor in single.weights().items():
        assert torch.allclose(weights[name], tensor, rtol=1e-5, atol=1e-6), name
    assert (tmp_path / "two" / "v000001" / "model.safetensors").exists() and path
