"""The central learner: a transformers causal LM, AdamW, policy-gradient steps per batch.

Runs as a Ray actor (options applied in ``orchestrator.wiring``). ``train_step`` takes the
queue's groups, computes advantages over the whole batch, splits its groups into
``learner.mini_batches`` parts and takes one optimizer step per part on the policy loss
over sampled tokens (gradients accumulated over micro-batches, weighted so the result is
the token mean over the part), then bumps the policy version. The algorithm (GRPO, decoupled
PPO, REINFORCE++) is picked by name from ``ALGORITHMS``; an optional k3 KL term pulls
towards the frozen initial policy; token entropy is logged. ``publish`` saves the weights
as an HF checkpoint that the rollout engines reload."""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from actors.trajectory import Trajectory
from conf.schema import LearnerConf
from learner.batching import mini_batch_bounds, micro_batches
from learner.distributed import (all_reduce_sums, full_state_dict, init_process_group, local,
                                 micro_batch_count, rank_slice, shard)
from learner.losses import (clipped_policy_loss, decoupled_ppo_loss, grpo_advantages, kl_k3,
                            masked_mean, reinforce_pp_advantages, token_entropy,
                            token_logprobs)

KEEP_PUBLISHED = 2  # a worker may still be reading the previous checkpoint


def _clipped(logprobs, mb, conf: LearnerConf):
    return clipped_policy_loss(logprobs, mb.behavior_logprobs, mb.advantages, mb.loss_mask,
                               conf.clip_eps)


def _decoupled(logprobs, mb, conf: LearnerConf):
    # The proximal policy is the one before the batch's first optimizer step: with one step
    # per batch its logprobs are this forward's, detached (no second forward pass); with
    # mini-batches they were computed before the first step (Learner._attach_proximal).
    proximal = logprobs.detach() if mb.proximal_logprobs is None else mb.proximal_logprobs
    return decoupled_ppo_loss(logprobs, proximal, mb.behavior_logprobs, mb.advantages,
                              mb.loss_mask, conf.clip_eps, conf.behavior_cap)


@dataclass(frozen=True)
class Algorithm:
    advantages: Callable  # (rewards, group_ids) -> advantages, both (B,)
    loss: Callable  # (logprobs, micro-batch, conf) -> (loss, stats)
    proximal: bool = False  # needs the pre-update policy's logprobs across mini-batches


ALGORITHMS = {
    "grpo": Algorithm(grpo_advantages, _clipped),
    "decoupled_ppo": Algorithm(grpo_advantages, _decoupled, proximal=True),
    "reinforce_pp": Algorithm(reinforce_pp_advantages, _clipped),
}


class Learner:
    def __init__(self, conf: LearnerConf, model_path: str, weights_dir: str, seed: int,
                 resume_dir: str = "", rank: int = 0, world_size: int = 1,
                 temperature: float = 1.0):
        """model_path: the initial policy (also the KL reference); resume_dir: a checkpoint
        written by save_checkpoint to continue from; rank/world_size: this actor's place in
        a learner group (world_size 1 = alone; a group's ranks then `join`); temperature:
        the rollouts' sampling temperature, which divides the logits so that logprobs are
        those of the distribution the tokens were drawn from (0, greedy, divides by 1)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(seed)
        self.conf = conf
        self.temperature = temperature if temperature > 0 else 1.0
        self.device = "cuda" if conf.num_gpus > 0 and torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(max(1, int(conf.num_cpus)))
        start = Path(resume_dir) / "model" if resume_dir else model_path
        self.model = AutoModelForCausalLM.from_pretrained(
            start, dtype=torch.float32).to(self.device)
        self.model.train()
        self.rank, self.world_size = rank, world_size
        self.reference = None
        if conf.kl_coef > 0:
            self.reference = AutoModelForCausalLM.from_pretrained(
                model_path, dtype=torch.float32).to(self.device).eval()
            self.reference.requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.weights_dir = Path(weights_dir)
        self.version = 0
        self.resume_dir = resume_dir
        self.optimizer = None
        if world_size == 1:
            self._finish_setup()

    def node_address(self) -> str:
        """host:port for a group's rendezvous (asked of rank 0)."""
        import socket

        import ray

        with socket.socket() as sock:
            sock.bind(("", 0))
            return f"{ray.util.get_node_ip_address()}:{sock.getsockname()[1]}"

    def join(self, master: str) -> None:
        """Join the group at master (host:port), shard the model with FSDP2, then build
        the optimizer over the shards."""
        init_process_group(self.rank, self.world_size, master, self.device == "cuda")
        shard(self.model)
        self._finish_setup()

    def _finish_setup(self) -> None:
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.conf.lr,
                                           weight_decay=self.conf.weight_decay)
        if self.resume_dir:
            self._load_training_state(Path(self.resume_dir))

    def save_checkpoint(self, path: str) -> None:
        """Model and tokenizer (an HF folder vLLM and eval load), optimizer (one file per
        rank: a group resumes with the same number of ranks), version."""
        out = Path(path)
        self._save_model(out / "model")
        if self.rank == 0:
            self.tokenizer.save_pretrained(out / "model")
            (out / "learner.json").write_text(json.dumps({"version": self.version,
                                                          "world_size": self.world_size}))
        torch.save(self.optimizer.state_dict(), out / f"optimizer-rank{self.rank}.pt")

    def _load_training_state(self, path: Path) -> None:
        saved = json.loads((path / "learner.json").read_text())
        if saved["world_size"] != self.world_size:
            raise ValueError(f"{path} was saved by {saved['world_size']} learner ranks; "
                             f"resume with learner.num_workers={saved['world_size']}")
        # weights_only: a checkpoint is data, never code. AdamW's state is tensors and
        # numbers (DTensors under FSDP2, which torch.distributed.tensor allow-lists).
        self.optimizer.load_state_dict(torch.load(path / f"optimizer-rank{self.rank}.pt",
                                                  map_location=self.device, weights_only=True))
        for group in self.optimizer.param_groups:  # the config's rate, not the saved one:
            group["lr"] = self.conf.lr  # a resume may change it, a guard rollback does
        self.version = saved["version"]

    def train_step(self, groups: list[list[Trajectory]]) -> dict[str, float]:
        """learner.mini_batches optimizer steps on the batch (this rank's slice of it, in a
        group); advantages come from the whole batch, the version rises by one."""
        start = time.monotonic()
        trajs = [t for group in groups for t in group]
        rewards = torch.tensor([t.reward for t in trajs], dtype=torch.float32)  # (B,)
        group_ids = torch.tensor([t.group_index for t in trajs])  # (B,)
        algorithm = ALGORITHMS[self.conf.algorithm]
        advantages = algorithm.advantages(rewards, group_ids)  # (B,)
        steps = [(self._my_micro_batches(trajs[a:b], advantages[a:b]),
                  max(1, sum(t.num_sampled for t in trajs[a:b])))
                 for a, b in mini_batch_bounds([len(g) for g in groups], self.conf.mini_batches)]
        if algorithm.proximal and len(steps) > 1:
            self._attach_proximal([mb for micro, _ in steps for mb, _ in micro])
        sums: dict[str, float] = defaultdict(float)
        norms = []
        for micro, tokens in steps:
            step_sums, grad_norm = self._optimizer_step(micro, tokens, algorithm.loss)
            for key, value in step_sums.items():
                sums[key] += value / len(steps)
            norms.append(grad_norm)
        self.version += 1
        metrics = {f"learner/{k}": v for k, v in sums.items()}
        metrics.update({"learner/grad_norm": sum(norms) / len(norms),
                        "learner/advantage_abs_mean": advantages.abs().mean().item(),
                        "learner/train_tokens": float(sum(t.num_sampled for t in trajs)),
                        "learner/lr": self.optimizer.param_groups[0]["lr"],
                        "timing/train_s": time.monotonic() - start})
        return metrics

    def _optimizer_step(self, micro, tokens: int, loss_fn) -> tuple[dict[str, float], float]:
        """Accumulate the micro-batches (each weighted by its share of the mini-batch's
        tokens, counted over every rank), clip, step; token-mean statistics and grad norm."""
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = defaultdict(float)
        for mb, counts in micro:
            weight = mb.loss_mask.sum().item() / tokens if counts else 0.0
            for key, value in self._accumulate(mb.to(self.device), loss_fn, weight).items():
                sums[key] += value * weight
        if self.world_size > 1:
            sums = all_reduce_sums(sums)
        grad_norm = local(torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.conf.max_grad_norm or float("inf")))
        self.optimizer.step()
        return sums, float(grad_norm)

    @torch.no_grad()
    def _attach_proximal(self, micro_batches) -> None:
        """Logprobs of the policy before the batch's first step, for decoupled PPO."""
        for mb in micro_batches:  # fillers repeat: every rank runs as many forwards (FSDP)
            input_ids = mb.input_ids.to(self.device)
            logits = self._logits(self.model, input_ids, mb.attention_mask.to(self.device))
            mb.proximal_logprobs = token_logprobs(logits, input_ids)

    def _my_micro_batches(self, trajs: list[Trajectory], advantages: torch.Tensor):
        """(micro-batch, counts) for this rank: its slice of the batch, then zero-weight
        passes up to the micro-batch count every rank runs (FSDP collectives line up)."""
        size = self.conf.micro_batch_size
        begin, end = rank_slice(len(trajs), self.rank, self.world_size)
        mine = micro_batches(trajs[begin:end], advantages[begin:end], size, self.pad_id)
        filler = micro_batches(trajs[:1], advantages[:1], size, self.pad_id)[0]
        needed = micro_batch_count(len(trajs), self.world_size, size)
        return [(mb, True) for mb in mine] + [(filler, False)] * (needed - len(mine))

    def _accumulate(self, mb, loss_fn, weight: float) -> dict[str, float]:
        """Forward and backward of one micro-batch (loss scaled by its token share)."""
        logits = self._logits(self.model, mb.input_ids, mb.attention_mask)
        logprobs = token_logprobs(logits, mb.input_ids)  # (B, T)
        loss, stats = loss_fn(logprobs, mb, self.conf)
        if self.reference is not None:
            with torch.no_grad():
                ref_logits = self._logits(self.reference, mb.input_ids, mb.attention_mask)
            kl = masked_mean(kl_k3(logprobs, token_logprobs(ref_logits, mb.input_ids)),
                             mb.loss_mask)
            loss = loss + self.conf.kl_coef * kl
            stats["kl"] = kl.detach()
        # x world size: FSDP averages gradients over ranks, the token mean needs their sum
        (loss * weight * self.world_size).backward()
        with torch.no_grad():
            stats["entropy"] = masked_mean(token_entropy(logits), mb.loss_mask)
            stats["logprob_diff"] = masked_mean((logprobs - mb.behavior_logprobs).abs(),
                                                mb.loss_mask)
        stats["loss"] = loss.detach()
        return {key: value.item() for key, value in stats.items()}

    def _logits(self, model, input_ids, attention_mask) -> torch.Tensor:
        """model's logits at the rollouts' sampling temperature."""
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits if self.temperature == 1.0 else logits / self.temperature

    def open_weight_transfer(self, master: str, workers: list, engine_dtype: str,
                             timeout_s: float) -> None:
        """Join the NCCL group with the engines (rank 0 opens it; every rank calls)."""
        from learner.weight_transfer import open_sender

        self.transfer = open_sender(self.model, self.rank, master, workers,
                                    self.conf.sync_bucket_mb, engine_dtype, timeout_s)

    def send_weights(self, version: int) -> None:
        """Broadcast the current weights to the engines, which then report `version`
        (every rank of a group calls: each parameter is gathered before it is sent)."""
        self.transfer.client.version = version
        self.transfer.send_weights()

    def publish(self) -> str:
        """Save the current weights for the engines; returns the checkpoint folder. The
        KEEP_PUBLISHED newest versions stay; folders of later versions (left by steps a
        restart from a checkpoint undid) go."""
        path = self.weights_dir / f"v{self.version:06d}"
        self._save_model(path)
        if self.rank == 0:
            kept = {f"v{self.version - back:06d}" for back in range(KEEP_PUBLISHED)}
            for old in self.weights_dir.glob("v*"):
                if old.name not in kept:
                    shutil.rmtree(old, ignore_errors=True)
        return str(path)

    def _save_model(self, path: Path) -> None:
        """An HF folder written by rank 0 (every rank takes part in gathering a group's)."""
        state = full_state_dict(self.model) if self.world_size > 1 else None
        if self.rank == 0:
            self.model.save_pretrained(path, state_dict=state, safe_serialization=True)

    @torch.no_grad()
    def prompt_logprobs(self, token_ids: list[int]) -> list[float]:
        """The model's logprob of each token given those before it (0.0 for the first)."""
        ids = torch.tensor([token_ids], device=self.device)  # (1, T)
        return token_logprobs(self.model(input_ids=ids).logits, ids)[0].tolist()

    def weights(self) -> dict[str, torch.Tensor]:
        """Unsharded weights on CPU (a group's on rank 0; every rank must call)."""
        if self.world_size > 1:
            return full_state_dict(self.model)
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def gradients(self) -> dict[str, torch.Tensor]:
        """Unsharded gradients of the last step (every rank of a group must call)."""
        return {name: local(p.grad).detach().cpu().clone()
                for name, p in self.model.named_parameters() if p.grad is not None}
