"""Advantages and policy losses: pure functions of tensors and scalars.

Shapes: B trajectories, T tokens (the flat token list of each trajectory, right-padded).
``loss_mask`` is 1 on tokens the policy sampled and 0 on prompt, observations and padding.
Logprobs at position t are those of token t+1 given tokens <= t, already shifted by the
caller, so every tensor here is aligned on the token being scored.
"""

from __future__ import annotations

import torch


def grpo_advantages(rewards: torch.Tensor, group_ids: torch.Tensor,
                    eps: float = 1e-6) -> torch.Tensor:
    """Group-normalised advantages: (r - mean_group) / (std_group + eps).

    rewards, group_ids: (B,). A group whose rewards are all equal gets advantage 0.
    std is the unbiased sample std (as in the GRPO paper and its common implementations).
    """
    advantages = torch.zeros_like(rewards)
    for gid in torch.unique(group_ids):
        members = group_ids == gid
        r = rewards[members]
        std = r.std() if r.numel() > 1 else torch.zeros((), dtype=r.dtype)
        advantages[members] = (r - r.mean()) / (std + eps)
    return advantages


def reinforce_pp_advantages(rewards: torch.Tensor, group_ids: torch.Tensor,
                            eps: float = 1e-6) -> torch.Tensor:
    """REINFORCE++ with a group baseline: subtract the group mean, then normalise over the
    whole batch, (a - mean_batch) / (std_batch + eps).

    rewards, group_ids: (B,). Unlike GRPO, a group's spread is not divided by its own std,
    so groups with a small spread keep small advantages (less noise amplification).
    """
    centred = torch.zeros_like(rewards)
    for gid in torch.unique(group_ids):
        members = group_ids == gid
        centred[members] = rewards[members] - rewards[members].mean()
    std = centred.std() if centred.numel() > 1 else torch.zeros((), dtype=rewards.dtype)
    return (centred - centred.mean()) / (std + eps)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of values over positions where mask is 1 (token-level mean over the batch)."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def clip_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, clip_eps: float,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's per-token clipped surrogate and where the clip binds.

    ratio: (B, T); advantages: (B,) broadcast over tokens. Returns
    max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)) and the mask of tokens where the
    clipped term is the larger, both (B, T).
    """
    adv = advantages.unsqueeze(-1)  # (B, 1)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return torch.maximum(unclipped, clipped), clipped > unclipped


def clipped_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor,
                        advantages: torch.Tensor, loss_mask: torch.Tensor,
                        clip_eps: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate of ratio = pi / pi_old, token-mean over masked tokens.

    logprobs, old_logprobs, loss_mask: (B, T); advantages: (B,).
    Returns the loss and detached statistics (clip fraction, mean ratio).
    """
    ratio = torch.exp(logprobs - old_logprobs)  # (B, T)
    surrogate, clipped = clip_surrogate(ratio, advantages, clip_eps)
    stats = {
        "clip_frac": masked_mean(clipped.float(), loss_mask).detach(),
        "ratio_mean": masked_mean(ratio, loss_mask).detach(),
    }
    return masked_mean(surrogate, loss_mask), stats


def decoupled_ppo_loss(logprobs: torch.Tensor, proximal_logprobs: torch.Tensor,
                       behavior_logprobs: torch.Tensor, advantages: torch.Tensor,
                       loss_mask: torch.Tensor, clip_eps: float, behavior_cap: float,
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Decoupled PPO for off-policy data: clip against the proximal policy, correct for
    the behaviour policy that sampled the tokens.

    logprobs, proximal_logprobs, behavior_logprobs, loss_mask: (B, T); advantages: (B,).
    ratio r = pi / pi_prox is clipped as in PPO; each token's surrogate is weighted by the
    importance weight w = pi_prox / pi_behav, truncated at behavior_cap (no gradient):
        loss = mean_t w * max(-A r, -A clip(r, 1 - eps, 1 + eps)).
    """
    raw_weight = torch.exp(proximal_logprobs - behavior_logprobs).detach()  # (B, T)
    weight = raw_weight.clamp(max=behavior_cap)
    ratio = torch.exp(logprobs - proximal_logprobs)  # (B, T)
    surrogate, clipped = clip_surrogate(ratio, advantages, clip_eps)
    stats = {
        "clip_frac": masked_mean(clipped.float(), loss_mask).detach(),
        "ratio_mean": masked_mean(ratio, loss_mask).detach(),
        "behavior_weight_mean": masked_mean(weight, loss_mask),
        "behavior_capped_frac": masked_mean((raw_weight > behavior_cap).float(), loss_mask),
    }
    return masked_mean(weight * surrogate, loss_mask), stats


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi || pi_ref) estimate, the low-variance non-negative "k3":
    exp(d) - d - 1 with d = log pi_ref - log pi.  (B, T) -> (B, T)."""
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1.0


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each next-token distribution, aligned like token_logprobs: (B, T, V) ->
    (B, T), position t = entropy of the distribution that scored token t (0 at t = 0)."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V)
    entropy = -(logp.exp() * logp).sum(-1)  # (B, T-1)
    return torch.nn.functional.pad(entropy, (1, 0))


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Logprob of each next token: logits (B, T, V), input_ids (B, T) -> (B, T).

    Position t holds log p(input_ids[t] | input_ids[:t]); position 0 has no predecessor
    and is 0, so the result lines up with per-token masks of the same (B, T) shape.
    """
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V)
    picked = logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return torch.nn.functional.pad(picked, (1, 0))
