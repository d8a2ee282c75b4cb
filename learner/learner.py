"""The central learner: a transformers causal LM, AdamW, one GRPO step per batch.

Runs as a Ray actor (options applied in ``orchestrator.wiring``). ``train_step`` takes the
queue's groups, computes group-normalised advantages and the clipped policy loss over
sampled tokens (gradients accumulated over micro-batches, weighted so the result is the
token mean over the whole batch), steps the optimizer and bumps the policy version.
``publish`` saves the weights as an HF checkpoint that the rollout engines reload.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from actors.trajectory import Trajectory
from conf.schema import LearnerConf
from learner.batching import micro_batches
from learner.losses import clipped_policy_loss, grpo_advantages, masked_mean, token_logprobs

KEEP_PUBLISHED = 2  # a worker may still be reading the previous checkpoint


class Learner:
    def __init__(self, conf: LearnerConf, model_path: str, weights_dir: str, seed: int):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(seed)
        self.conf = conf
        self.device = "cuda" if conf.num_gpus > 0 and torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(max(1, int(conf.num_cpus)))
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=torch.float32).to(self.device)
        self.model.train()
        self.pad_id = AutoTokenizer.from_pretrained(model_path).pad_token_id or 0
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=conf.lr,
                                           weight_decay=conf.weight_decay)
        self.weights_dir = Path(weights_dir)
        self.version = 0

    def train_step(self, groups: list[list[Trajectory]]) -> dict[str, float]:
        start = time.monotonic()
        trajs = [t for group in groups for t in group]
        rewards = torch.tensor([t.reward for t in trajs], dtype=torch.float32)  # (B,)
        group_ids = torch.tensor([t.group_index for t in trajs])  # (B,)
        advantages = grpo_advantages(rewards, group_ids)  # (B,)
        total_tokens = max(1, sum(t.num_sampled for t in trajs))
        self.optimizer.zero_grad(set_to_none=True)
        sums = {"loss": 0.0, "clip_frac": 0.0, "ratio_mean": 0.0, "logprob_diff": 0.0}
        for mb in micro_batches(trajs, advantages, self.conf.micro_batch_size, self.pad_id):
            mb = mb.to(self.device)
            logits = self.model(input_ids=mb.input_ids, attention_mask=mb.attention_mask).logits
            logprobs = token_logprobs(logits, mb.input_ids)  # (B, T)
            loss, stats = clipped_policy_loss(logprobs, mb.behavior_logprobs, mb.advantages,
                                              mb.loss_mask, self.conf.clip_eps)
            weight = mb.loss_mask.sum().item() / total_tokens
            (loss * weight).backward()
            diff = masked_mean((logprobs - mb.behavior_logprobs).abs(), mb.loss_mask)
            for key, value in (("loss", loss), ("logprob_diff", diff), *stats.items()):
                sums[key] += value.item() * weight
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.conf.max_grad_norm or float("inf"))
        self.optimizer.step()
        self.version += 1
        metrics = {f"learner/{k}": v for k, v in sums.items()}
        metrics.update({"learner/grad_norm": float(grad_norm),
                        "learner/advantage_abs_mean": advantages.abs().mean().item(),
                        "learner/train_tokens": float(total_tokens),
                        "timing/train_s": time.monotonic() - start})
        return metrics

    def publish(self) -> str:
        """Save the current weights for the engines; returns the checkpoint folder."""
        path = self.weights_dir / f"v{self.version:06d}"
        self.model.save_pretrained(path, safe_serialization=True)
        for old in sorted(self.weights_dir.glob("v*"))[:-KEEP_PUBLISHED]:
            shutil.rmtree(old, ignore_errors=True)
        return str(path)

    @torch.no_grad()
    def prompt_logprobs(self, token_ids: list[int]) -> list[float]:
        """The model's logprob of each token given those before it (0.0 for the first)."""
        ids = torch.tensor([token_ids], device=self.device)  # (1, T)
        return token_logprobs(self.model(input_ids=ids).logits, ids)[0].tolist()

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
