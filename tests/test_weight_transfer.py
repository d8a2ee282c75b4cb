"""The logic of NCCL weight transfer that runs without GPUs: which transport a run takes,
the weight source vLLM reads (names, dtypes and shapes agree with what it yields, under
the checkpoint's names), and the client that gives each engine its own NCCL rank. The
transfer itself is in tests/test_gpu.py (needs two GPUs); the CPU fallback to disk is in
test_e2e.py."""

import pytest
import torch
from safetensors import safe_open

from conf.loader import ConfigError
from learner.weight_transfer import CastSource, EngineClient
from orchestrator.weight_sync import resolve_weight_sync


@pytest.mark.parametrize("mode, learner_gpus, rollout_gpus, expected", [
    ("auto", 0, 0, "disk"), ("auto", 1, 0, "disk"), ("auto", 0, 1, "disk"),
    ("auto", 1, 1, "nccl"), ("disk", 1, 1, "disk"), ("nccl", 1, 0.5, "nccl")])
def test_the_transport_a_run_takes(mode, learner_gpus, rollout_gpus, expected):
    assert resolve_weight_sync(mode, learner_gpus, rollout_gpus) == expected


def test_nccl_without_gpus_is_a_config_error_naming_the_keys():
    with pytest.raises(ConfigError, match="learner.weight_sync=nccl.*num_gpus"):
        resolve_weight_sync("nccl", 0, 1)


@pytest.mark.parametrize("dtype", [torch.bfloat16, None])
def test_the_source_declares_what_it_yields_under_checkpoint_names(tiny_assets, dtype):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_assets.policy, dtype=torch.float32)
    source = CastSource(model, dtype)
    meta = source.metadata()
    sent = list(source)
    assert [m.name for m in meta] == [name for name, _ in sent]
    assert [(m.dtype, m.shape) for m in meta] == [(t.dtype, tuple(t.shape)) for _, t in sent]
    assert {m.dtype for m in meta} == {dtype or torch.float32}
    with safe_open(str(tiny_assets.policy / "model.safetensors"), "pt") as saved:
        assert {m.name for m in meta} == set(saved.keys())
        name, tensor = sent[0]
        assert torch.equal(tensor, saved.get_tensor(name).to(tensor.dtype))


class StandInWorker:
    def __init__(self):
        self.calls = []

    def init_weight_transfer(self, info):
        self.calls.append(("init", info["rank_offset"], info["world_size"]))

    def start_weight_update(self):
        self.calls.append(("start",))

    def update_weights(self, info):
        self.calls.append(("update", tuple(info["names"])))

    def finish_weight_update(self, version):
        self.calls.append(("finish", version))

    def log(self):
        return self.calls


@pytest.mark.integration
def test_the_client_gives_each_engine_its_own_rank_and_the_version(ray_cluster):
    workers = [ray_cluster.remote(num_cpus=0)(StandInWorker).remote() for _ in range(3)]
    client = EngineClient(workers, timeout_s=60)
    client.init_weight_transfer_engine({"rank_offset": 1, "world_size": 4})
    client.version = 7
    client.start_weight_update()
    client.update_weights({"names": ["a", "b"], "dtype_names": [], "shapes": []})
    client.finish_weight_update("ignored: the run's version wins")
    logs = ray_cluster.get([w.log.remote() for w in workers], timeout=60)
    for i, calls in enumerate(logs):
        assert calls == [("init", 1 + i, 4), ("start",), ("update", ("a", "b")),
                         ("finish", 7)]
