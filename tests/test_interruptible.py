"""Interruptible generation on a real vLLM engine (no Ray): a weight update aborts the turn
in flight, the new weights load, and the turn resumes from its tokens. The result mixes
two policy versions, and every token's logprob is the one its own version gave it, which
fails if a token were lost, duplicated or misaligned at the resume point."""

import asyncio

import pytest
import torch

from actors.rollout_worker import RolloutWorker
from conf.schema import EpisodeConf, RolloutConf, SearchConf, SimulatorConf

pytestmark = pytest.mark.integration


async def interrupted_turn(worker: RolloutWorker, new_weights: str, prompt: list[int]):
    """A long turn, interrupted once ~10 tokens in; None if it ended before that."""
    turn = asyncio.create_task(worker.turns.generate(prompt, 300, stop=["<never>"]))
    while worker.turns.generated_tokens < 10 and not turn.done():
        await asyncio.sleep(0.005)
    if turn.done():
        return None
    await worker.load_weights(new_weights, worker.version + 1)
    return await turn


def sampling_worker(tiny_assets) -> RolloutWorker:
    """A rollout worker on the tiny policy, sampling at temperature 1, no Ray."""
    conf = RolloutConf(episode=EpisodeConf(temperature=1.0))
    return RolloutWorker("rollout-0", 0, conf, str(tiny_assets.policy),
                         str(tiny_assets.data / "train.parquet"), "em", 0, None,
                         SearchConf(backend="self"), SimulatorConf(), None, 5.0)


def test_an_interrupted_turn_resumes_under_the_new_weights(tiny_assets):
    async def scenario():
        worker = sampling_worker(tiny_assets)
        try:
            await worker.ready()
            prompt = worker.encode("Answer the given question. Question: where was")
            for attempt in range(5):  # an early end-of-sequence token leaves nothing to cut
                # the simulator has the policy's shapes: loading it visibly changes weights
                weights = tiny_assets.simulator if attempt % 2 == 0 else tiny_assets.policy
                out = await interrupted_turn(worker, str(weights), prompt)
                if out is not None and len(set(out.versions)) == 2:
                    break
            else:
                pytest.fail("the turn always ended before the interruption")
            rescored = await worker.prompt_logprobs(prompt + out.token_ids)
        finally:
            worker.engine.shutdown()
        return worker, out, rescored[len(prompt):]

    worker, out, new_logprobs = asyncio.run(scenario())
    assert worker.turns.interrupted >= 1
    assert len(out.token_ids) == len(out.logprobs) == len(out.versions)
    old, new = min(out.versions), max(out.versions)
    cut = out.versions.index(new)
    assert out.versions == [old] * cut + [new] * (len(out.versions) - cut)
    sampled = torch.tensor(out.logprobs)
    rescored = torch.tensor(new_logprobs)
    # tokens after the cut were sampled by the new weights: same logprobs as a rescoring
    assert torch.allclose(sampled[cut:], rescored[cut:], atol=1e-4)
    # those before it came from the old weights, which scored them differently
    assert not torch.allclose(sampled[:cut], rescored[:cut], atol=1e-4)


def test_a_weight_update_reaches_prefixes_the_engine_has_cached(tiny_assets):
    """The prompt's KV is cached by the first request; after new weights load, a request
    on the same prompt must not reuse the old weights' KV: its sampled tokens' logprobs
    equal those of the new weights computed by transformers from scratch. (The sample may
    end early: the tiny simulator may write end-of-text after a few tokens.)"""
    async def scenario():
        worker = sampling_worker(tiny_assets)
        try:
            await worker.ready()
            prompt = worker.encode("Answer the given question. " * 60)  # spans full blocks
            await worker.turns.generate(prompt, 8, ["<never>"])  # caches the prompt's KV
            await worker.load_weights(str(tiny_assets.simulator), worker.version + 1)
            return prompt, await worker.turns.generate(prompt, 8, stop=["<never>"])
        finally:
            worker.engine.shutdown()

    prompt, out = asyncio.run(scenario())
    expected = reference_logprobs(tiny_assets.simulator, prompt + out.token_ids)[len(prompt):]
    assert 1 <= len(out.token_ids) <= 8  # the first token already reads the prompt's KV
    assert torch.allclose(torch.tensor(out.logprobs), expected, atol=1e-3)


def test_prompt_logprobs_score_a_prefix_the_engine_has_cached(tiny_assets):
    """A turn sampled at temperature 0.7 reports its tokens' logprobs under logits / 0.7
    (what the learner divides by). Rescoring that sequence, whose prefix the turn has just
    cached, scores every token afresh (temperature 1): both equal what transformers
    computes from scratch, position by position."""
    async def scenario():
        worker = sampling_worker(tiny_assets)
        try:
            await worker.ready()
            prompt = worker.encode("Answer the given question. " * 60)  # spans full blocks
            # caches the prompt's KV
            out = await worker.turns.generate(prompt, 8, ["<never>"], temperature=0.7)
            ids = prompt + out.token_ids
            return prompt, out, await worker.prompt_logprobs(ids)
        finally:
            worker.engine.shutdown()

    prompt, out, rescored = asyncio.run(scenario())
    ids = prompt + out.token_ids
    assert len(rescored) == len(ids)
    assert torch.allclose(torch.tensor(rescored[1:]),
                          reference_logprobs(tiny_assets.policy, ids)[1:], atol=1e-3)
    tempered = reference_logprobs(tiny_assets.policy, ids, temperature=0.7)[len(prompt):]
    assert torch.allclose(torch.tensor(out.logprobs), tempered, atol=1e-3)


def reference_logprobs(model_dir, ids: list[int], temperature: float = 1.0) -> torch.Tensor:
    """Each token's logprob under the checkpoint at model_dir at a sampling temperature,
    computed by transformers (0.0 for the first token)."""
    from transformers import AutoModelForCausalLM

    from learner.losses import token_logprobs

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    batch = torch.tensor([ids])
    with torch.no_grad():
        return token_logprobs(model(input_ids=batch).logits / temperature, batch)[0]
