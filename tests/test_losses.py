"""Losses and advantages against hand-worked numbers, plus gradient checks."""

import math

import pytest
import torch

from learner.losses import (clipped_policy_loss, decoupled_ppo_loss, grpo_advantages, kl_k3,
                            masked_mean, reinforce_pp_advantages, token_entropy,
                            token_logprobs)


def test_grpo_advantages_hand_worked():
    # group 0: rewards 1, 0 -> mean 0.5, sample std sqrt(0.5) = 0.7071 -> +-0.7071
    # group 1: rewards 1, 1, 1 -> std 0 -> advantages 0
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0])
    groups = torch.tensor([0, 0, 1, 1, 1])
    adv = grpo_advantages(rewards, groups)
    s = math.sqrt(0.5)
    assert adv.tolist() == pytest.approx([0.5 / s, -0.5 / s, 0, 0, 0], abs=1e-5)


def test_clipped_loss_hand_worked():
    # Two tokens in one trajectory with advantage +1, one masked token that must not count.
    # token 0: ratio e^0.5 = 1.6487 -> clipped to 1.2: max(-1.6487, -1.2) = -1.2
    # token 1: ratio e^-0.1 = 0.9048 -> inside clip:   max(-0.9048, -0.9048) = -0.9048
    # masked token: ratio e^3 would give -1.2 too but has mask 0
    logprobs = torch.tensor([[0.5, -0.1, 3.0]])
    old = torch.zeros(1, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, stats = clipped_policy_loss(logprobs, old, torch.tensor([1.0]), mask, clip_eps=0.2)
    assert loss.item() == pytest.approx((-1.2 - math.exp(-0.1)) / 2, abs=1e-6)
    assert stats["clip_frac"].item() == pytest.approx(0.5)
    # negative advantage: token 0 unclipped 1.6487 vs clipped 1.2 -> max 1.6487 (pessimistic)
    # token 1: 0.9048 vs clip(0.9048)=0.9048 -> 0.9048
    loss, _ = clipped_policy_loss(logprobs, old, torch.tensor([-1.0]), mask, clip_eps=0.2)
    assert loss.item() == pytest.approx((math.exp(0.5) + math.exp(-0.1)) / 2, abs=1e-6)


def test_clipped_loss_gradient_flows_only_through_unclipped_masked_tokens():
    logprobs = torch.tensor([[0.5, -0.1, 0.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, _ = clipped_policy_loss(logprobs, torch.zeros(1, 3), torch.tensor([1.0]), mask, 0.2)
    loss.backward()
    # d/dlp of -ratio/2 = -ratio/2 for the unclipped token; 0 for the clipped and masked ones
    assert logprobs.grad.tolist()[0] == pytest.approx([0.0, -math.exp(-0.1) / 2, 0.0])


def test_clipped_loss_gradcheck():
    torch.manual_seed(0)
    logprobs = (torch.randn(2, 4, dtype=torch.float64) * 0.05).requires_grad_()
    old = torch.zeros(2, 4, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 1]], dtype=torch.float64)
    adv = torch.tensor([0.7, -1.3], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda lp: clipped_policy_loss(lp, old, adv, mask, 0.2)[0], (logprobs,))


def test_token_logprobs_alignment():
    # vocab 2; logits favour token 1 at position 0 and token 0 at position 1
    logits = torch.tensor([[[0.0, math.log(3.0)], [math.log(3.0), 0.0], [0.0, 0.0]]])
    ids = torch.tensor([[0, 1, 0]])
    out = token_logprobs(logits, ids)
    # pos 0: no predecessor -> 0; pos 1: p(1 | pos0) = 3/4; pos 2: p(0 | pos1) = 3/4
    assert out.tolist()[0] == pytest.approx([0.0, math.log(0.75), math.log(0.75)])


def test_masked_mean_ignores_masked():
    assert masked_mean(torch.tensor([1.0, 100.0, 3.0]), torch.tensor([1.0, 0.0, 1.0])) == 2.0


def test_reinforce_pp_advantages_hand_worked():
    # group 0: rewards 1, 0 -> centred +0.5, -0.5; group 1: 1, 1, 0 -> mean 2/3 ->
    # centred 1/3, 1/3, -2/3. Batch of centred values has mean 0 and sample std
    # sqrt((0.25 + 0.25 + 1/9 + 1/9 + 4/9) / 4) = sqrt(7/24).
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    groups = torch.tensor([0, 0, 1, 1, 1])
    std = math.sqrt(7 / 24)
    expected = [0.5 / std, -0.5 / std, 1 / 3 / std, 1 / 3 / std, -2 / 3 / std]
    assert reinforce_pp_advantages(rewards, groups).tolist() == pytest.approx(expected,
                                                                              abs=1e-5)
    # a group with equal rewards contributes 0, whatever its level
    flat = reinforce_pp_advantages(torch.tensor([5.0, 5.0, 1.0, 0.0]),
                                   torch.tensor([0, 0, 1, 1]))
    assert flat[:2].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)


def test_decoupled_ppo_loss_hand_worked():
    # Three sampled tokens, advantage +1, proximal = current policy (ratio 1, no clip).
    # behaviour weights w = exp(prox - behav): e^0.5 = 1.6487, e^-1 = 0.3679, e^3 = 20.09
    # -> capped at 5. loss = mean(-w) = -(1.6487 + 0.3679 + 5) / 3.
    logprobs = torch.tensor([[-1.0, -2.0, -0.5]])
    behavior = torch.tensor([[-1.5, -1.0, -3.5]])
    mask = torch.ones(1, 3)
    loss, stats = decoupled_ppo_loss(logprobs, logprobs, behavior, torch.tensor([1.0]), mask,
                                     clip_eps=0.2, behavior_cap=5.0)
    assert loss.item() == pytest.approx(-(math.exp(0.5) + math.exp(-1) + 5.0) / 3, abs=1e-5)
    assert stats["behavior_capped_frac"].item() == pytest.approx(1 / 3)
    # clipping is against the proximal policy: pi / pi_prox = e^0.5 is clipped to 1.2
    # for A > 0, weighted by w = 1 (behaviour = proximal): loss = -1.2
    loss, stats = decoupled_ppo_loss(torch.tensor([[0.5]]), torch.zeros(1, 1),
                                     torch.zeros(1, 1), torch.tensor([1.0]),
                                     torch.ones(1, 1), clip_eps=0.2, behavior_cap=5.0)
    assert loss.item() == pytest.approx(-1.2) and stats["clip_frac"].item() == 1.0


def test_decoupled_ppo_gradient_is_the_weighted_policy_gradient():
    # With pi_prox = pi (one update per batch), d loss / d logp_t = -A * w_t / n.
    logprobs = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    behavior = torch.tensor([[-1.5, -1.0]])
    loss, _ = decoupled_ppo_loss(logprobs, logprobs.detach(), behavior, torch.tensor([2.0]),
                                 torch.ones(1, 2), clip_eps=0.2, behavior_cap=5.0)
    loss.backward()
    assert logprobs.grad.tolist()[0] == pytest.approx(
        [-2.0 * math.exp(0.5) / 2, -2.0 * math.exp(-1.0) / 2], abs=1e-5)


def test_kl_k3_hand_worked():
    # d = ref - logp: 0 -> 0; ln 2 -> 2 - ln 2 - 1 = 0.3069; -1 -> e^-1 + 1 - 1 = 0.3679
    logp = torch.tensor([[-1.0, -1.0 - math.log(2), 0.0]])
    ref = torch.tensor([[-1.0, -1.0, -1.0]])
    assert kl_k3(logp, ref).tolist()[0] == pytest.approx(
        [0.0, 1.0 - math.log(2), math.exp(-1)], abs=1e-6)
    assert (kl_k3(torch.randn(4, 5), torch.randn(4, 5)) >= 0).all()


def test_token_entropy_alignment():
    # position 1 is scored by a uniform distribution over 4 tokens (entropy ln 4); position
    # 2 by a one-hot-ish one (entropy ~0); position 0 has no predecessor.
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [50.0, 0.0, 0.0, 0.0], [0.0] * 4]])
    assert token_entropy(logits).tolist()[0] == pytest.approx([0.0, math.log(4), 0.0],
                                                              abs=1e-5)
