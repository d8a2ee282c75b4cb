"""Weights from the learner to the rollout engines by NCCL broadcast, through vLLM's
weight-transfer API (GPU only).

The learner (rank 0 of its group sends; other FSDP2 ranks only join the all-gather of
each parameter) and every rollout engine form one NCCL group: learner rank 0 is NCCL rank
0, rollout worker i is NCCL rank 1 + i. Parameters go in packed buckets of
``learner.sync_bucket_mb`` (two buffers in flight), cast to the engines' dtype first. The
engines hold their version lock for the whole update (turns in flight are aborted and
resumed afterwards, as with a disk update), because vLLM moves a layer's parameters off
the device until its new weights arrive.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from vllm.distributed.weight_transfer.base import (ParamMeta, WeightSource,
                                                    materialize_full_tensor)

ENGINE_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16,
                 "float32": torch.float32}


class CastSource(WeightSource):
    """A module's parameters, cast to the engines' dtype (half the bytes of fp32 master
    weights on the wire). FSDP2 shards are gathered per parameter, every rank in the same
    order."""

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype | None):
        self.module, self.dtype = module, dtype

    def metadata(self) -> list[ParamMeta]:
        return [ParamMeta(name, self.dtype or p.dtype, tuple(p.shape))
                for name, p in self.module.named_parameters()]

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name, param in self.module.named_parameters():
            full = materialize_full_tensor(param.detach())
            yield name, full.to(self.dtype) if self.dtype is not None else full


class EngineClient:
    """vLLM's weight-sync client protocol over our rollout workers (Ray actors). Each
    worker gets its own NCCL rank (rank_offset 1 + i); `version` is what the engines
    report for the weights after `finish_weight_update`."""

    def __init__(self, workers: list, timeout_s: float):
        self.workers, self.timeout_s = workers, timeout_s
        self.version = 0

    def _wait(self, refs: list) -> None:
        import ray

        ray.get(refs, timeout=self.timeout_s)

    def _all(self, method: str, *args) -> None:
        self._wait([getattr(w, method).remote(*args) for w in self.workers])

    def init_weight_transfer_engine(self, init_info: dict) -> None:
        self._wait([w.init_weight_transfer.remote(dict(init_info, rank_offset=1 + i))
                    for i, w in enumerate(self.workers)])

    def start_weight_update(self) -> None:
        self._all("start_weight_update")

    def update_weights(self, update_info: dict) -> None:
        self._all("update_weights", update_info)

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self._all("finish_weight_update", self.version)


def open_sender(module: torch.nn.Module, rank: int, master: str, workers: list,
                bucket_mb: int, engine_dtype: str, timeout_s: float):
    """The learner side of the NCCL group (blocks until every engine has joined)."""
    from vllm.distributed.weight_transfer import WeightTransferTrainerFactory
    from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo

    host, port = master.rsplit(":", 1)
    info = NCCLTrainerInitInfo(master_address=host, master_port=int(port),
                               world_size=1 + len(workers), packed=True,
                               packed_buffer_size_bytes=bucket_mb << 20,
                               packed_num_buffers=2, rank=rank)
    client = EngineClient(workers, timeout_s)
    return WeightTransferTrainerFactory.trainer_init(
        info, client=client, source=CastSource(module, ENGINE_DTYPES.get(engine_dtype)))
