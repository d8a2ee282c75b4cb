"""Turn trajectories into padded tensors for the learner.

Trajectories are right-padded to the longest in a micro-batch; padding has mask 0, so it
never reaches the loss. The engine's logprobs ride along as the behaviour logprobs.
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

    def to(self, device) -> MicroBatch:
        return MicroBatch(*(t.to(device) for t in (
            self.input_ids, self.attention_mask, self.loss_mask, self.behavior_logprobs,
            self.advantages)))


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
    return [collate(trajs[i:i + size], advantages[i:i + size], pad_id)
            for i in range(0, len(trajs), size)]
