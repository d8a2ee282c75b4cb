"""The learner over several processes: FSDP2 (``fully_shard``) on torch.distributed.

Each rank is one Learner actor. Every rank receives the whole batch, computes the same
advantages and token count, and trains on its own contiguous slice of trajectories; each
micro-batch's loss is weighted by its share of the batch's tokens, so the gradients summed
over ranks are exactly the single-process token mean. Ranks run the same number of
micro-batches (the short ones add zero-weight passes), because FSDP's collectives must
line up. gloo on CPU, nccl on GPU.
"""

from __future__ import annotations

import os


def init_process_group(rank: int, world_size: int, master: str, use_gpu: bool) -> None:
    import torch.distributed as dist

    if use_gpu:
        import torch

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if use_gpu else "gloo", init_method=f"tcp://{master}",
                            rank=rank, world_size=world_size)


def shard(model) -> None:
    """Shard each decoder layer, then the rest. FSDP averages gradients over ranks (gloo
    has no pre-scaled sum), so the learner scales each rank's loss by the world size."""
    from torch.distributed.fsdp import fully_shard

    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)


def rank_slice(count: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, end) of this rank's contiguous share of `count` items (sizes differ by <= 1)."""
    base, extra = divmod(count, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def micro_batch_count(count: int, world_size: int, micro_batch_size: int) -> int:
    """Micro-batches every rank runs: those of the largest share."""
    largest = -(-count // world_size)
    return max(1, -(-largest // micro_batch_size))


def full_state_dict(model) -> dict:
    """Unsharded weights on CPU, on rank 0 (empty elsewhere); every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                cpu_offload=True))


def all_reduce_sums(sums: dict[str, float]) -> dict[str, float]:
    """Sum per-rank statistics (every rank holds the same keys in the same order)."""
    import torch
    import torch.distributed as dist

    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(values)
    return dict(zip(keys, values.tolist()))


def local(tensor):
    """A DTensor's full value (a collective), a plain tensor as is."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
