"""The central learner: a transformers causal LM, AdamW, one policy-gradient step per batch.

Runs as a Ray actor (options applied in ``orchestrator.wiring``). ``train_step`` takes the
queue's groups, computes advantages and the policy loss over sampled tokens (gradients
accumulated over micro-batches, weighted so the result is the token mean over the whole
batch), steps the optimizer and bumps the policy version. The algorithm (GRPO, decoupled
PPO, REINFORCE++) is picked by name from ``ALGORITHMS``; an optional k3 KL term pulls
towards the frozen initial policy; token entropy is logged. ``publish`` saves the weights
as an HF checkpoint that the rollout engines reload."""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

import torch

from actors.trajectory import Trajectory
from conf.schema import LearnerConf
from learner.batching import micro_batches
from learner.losses import (clipped_policy_loss, decoupled_ppo_loss, grpo_advantages, kl_k3,
                            masked_mean, reinforce_pp_advantages, token_entropy,
                            token_logprobs)

KEEP_PUBLISHED = 2  # a worker may still be reading the previous checkpoint


def _clipped(logprobs, mb, conf: LearnerConf):
    return clipped_policy_loss(logprobs, mb.behavior_logprobs, mb.advantages, mb.loss_mask,
                               conf.clip_eps)


def _decoupled(logprobs, mb, conf: LearnerConf):
    # One optimizer step per batch: the proximal policy is the current one, so its
    # logprobs are this forward's, detached (no second forward pass is needed).
    return decoupled_ppo_loss(logprobs, logprobs.detach(), mb.behavior_logprobs,
                              mb.advantages, mb.loss_mask, conf.clip_eps, conf.behavior_cap)


# algorithm name -> (advantage function, loss adapter)
ALGORITHMS = {
    "grpo": (grpo_advantages, _clipped),
    "decoupled_ppo": (grpo_advantages, _decoupled),
    "reinforce_pp": (reinforce_pp_advantages, _clipped),
}


class Learner:
    def __init__(self, conf: LearnerConf, model_path: str, weights_dir: str, seed: int,
                 resume_dir: str = ""):
        """model_path: the initial policy (also the KL reference); resume_dir: a checkpoint
        written by save_checkpoint to continue from."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(seed)
        self.conf = conf
        self.device = "cuda" if conf.num_gpus > 0 and torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(max(1, int(conf.num_cpus)))
        start = Path(resume_dir) / "model" if resume_dir else model_path
        self.model = AutoModelForCausalLM.from_pretrained(
            start, dtype=torch.float32).to(self.device)
        self.model.train()
        self.reference = None
        if conf.kl_coef > 0:
            self.reference = AutoModelForCausalLM.from_pretrained(
                model_path, dtype=torch.float32).to(self.device).eval()
            self.reference.requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=conf.lr,
                                           weight_decay=conf.weight_decay)
        self.weights_dir = Path(weights_dir)
        self.version = 0
        if resume_dir:
            self._load_training_state(Path(resume_dir))

    def save_checkpoint(self, path: str) -> None:
        """Model and tokenizer (an HF folder vLLM and eval load), optimizer, version."""
        out = Path(path)
        self.model.save_pretrained(out / "model", safe_serialization=True)
        self.tokenizer.save_pretrained(out / "model")
        torch.save(self.optimizer.state_dict(), out / "optimizer.pt")
        (out / "learner.json").write_text(json.dumps({"version": self.version}))

    def _load_training_state(self, path: Path) -> None:
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt",
                                                  map_location=self.device))
        self.version = json.loads((path / "learner.json").read_text())["version"]

    def train_step(self, groups: list[list[Trajectory]]) -> dict[str, float]:
        start = time.monotonic()
        trajs = [t for group in groups for t in group]
        rewards = torch.tensor([t.reward for t in trajs], dtype=torch.float32)  # (B,)
        group_ids = torch.tensor([t.group_index for t in trajs])  # (B,)
        advantage_fn, loss_fn = ALGORITHMS[self.conf.algorithm]
        advantages = advantage_fn(rewards, group_ids)  # (B,)
        total_tokens = max(1, sum(t.num_sampled for t in trajs))
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = defaultdict(float)
        for mb in micro_batches(trajs, advantages, self.conf.micro_batch_size, self.pad_id):
            weight = mb.loss_mask.sum().item() / total_tokens
            for key, value in self._accumulate(mb.to(self.device), loss_fn, weight).items():
                sums[key] += value * weight
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

    def _accumulate(self, mb, loss_fn, weight: float) -> dict[str, float]:
        """Forward and backward of one micro-batch (loss scaled by its token share)."""
        logits = self.model(input_ids=mb.input_ids, attention_mask=mb.attention_mask).logits
        logprobs = token_logprobs(logits, mb.input_ids)  # (B, T)
        loss, stats = loss_fn(logprobs, mb, self.conf)
        if self.reference is not None:
            with torch.no_grad():
                ref_logits = self.reference(input_ids=mb.input_ids,
                                            attention_mask=mb.attention_mask).logits
            kl = masked_mean(kl_k3(logprobs, token_logprobs(ref_logits, mb.input_ids)),
                             mb.loss_mask)
            loss = loss + self.conf.kl_coef * kl
            stats["kl"] = kl.detach()
        (loss * weight).backward()
        with torch.no_grad():
            stats["entropy"] = masked_mean(token_entropy(logits), mb.loss_mask)
            stats["logprob_diff"] = masked_mean((logprobs - mb.behavior_logprobs).abs(),
                                                mb.loss_mask)
        stats["loss"] = loss.detach()
        return {key: value.item() for key, value in stats.items()}

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
