"""Turn trajectories into padded tensors for the learner.

Trajectories are right-padded to the longest in a micro-batch; padding has mask 0, so it
never reaches the loss. Micro-batches are cut from the trajectories sorted by length, so
each pads to a near length and little of the forward and backward work goes to padding.
The engine's logprobs ride along as the behaviour logprobs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from actors.trajectory import Trajectory


@dataclass
class MicroBatch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    loss_mask: torch.Tensor  # (B, T) float
    behavior_logprobs: torch.Tensor  # (B, T)
    advantages: torch.Tensor  # (B,)
    proximal_logprobs: torch.Tensor | None = None  # (B, T), set for decoupled PPO's later steps

    def to(self, device) -> MicroBatch:
        return MicroBatch(*(None if t is None else t.to(device) for t in (
            self.input_ids, self.attention_mask, self.loss_mask, self.behavior_logprobs,
            self.advantages, self.proximal_logprobs)))


def collate(trajs: list[Trajectory], advantages: torch.Tensor, pad_id: int) -> MicroBatch:
    width = max(len(t.token_ids) for t in trajs)
    n = len(trajs)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)  # (B, T)
    attention = torch.zeros((n, width), dtype=torch.long)  # (B, T)
    loss_mask = torch.zeros((n, width), dtype=torch.float32)  # (B, T)
    behavior = torch.zeros((n, width), dtype=torch.float32)  # (B, T)
    for i, t in enumerate(trajs):
        length = len(t.token_ids)
        input_ids[i, :length] = torch.tensor(t.token_ids)
        attention[i, :length] = 1
        loss_mask[i, :length] = torch.tensor(t.loss_mask, dtype=torch.float32)
        behavior[i, :length] = torch.tensor(t.logprobs, dtype=torch.float32)
    return MicroBatch(input_ids, attention, loss_mask, behavior, advantages)


def micro_batches(trajs: list[Trajectory], advantages: torch.Tensor, size: int,
                  pad_id: int) -> list[MicroBatch]:
    """Micro-batches of up to `size` trajectories of similar length, each with its own
    advantage; together they hold every trajectory once."""
    order = sorted(range(len(trajs)), key=lambda i: len(trajs[i].token_ids))
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    return [collate([trajs[i] for i in chunk], advantages[chunk], pad_id) for chunk in chunks]


def mini_batch_bounds(group_sizes: list[int], parts: int) -> list[tuple[int, int]]:
    """[start, end) trajectory ranges of `parts` mini-batches of whole groups (at most one
    per group; their group counts differ by <= 1), in batch order."""
    parts = max(1, min(parts, len(group_sizes)))
    offsets = [0]
    for size in group_sizes:
        offsets.append(offsets[-1] + size)
    cuts = [k * len(group_sizes) // parts for k in range(parts + 1)]
    return [(offsets[a], offsets[b]) for a, b in zip(cuts, cuts[1:])]
