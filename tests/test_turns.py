"""The one turn generator (actors.turns) on a scripted engine: each turn's request carries a
seed fixed by the run's seed and the turn's key, and a weight update that aborts a turn
lets it resume under the new version with a seed of its own."""

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

from actors.turns import Turns


@dataclass
class Params:
    max_tokens: int
    temperature: float
    stop: list[str] | None
    logprobs: int | None
    seed: int | None
    prompt_logprobs: int | None
    delta: bool


@dataclass
class ScriptedEngine:
    """Answers each request with `tokens` tokens, one output each; holds before the last
    one while `hold` is set (so a test can abort a turn mid-way)."""

    tokens: int = 3
    hold: asyncio.Event | None = None
    seeds: list = field(default_factory=list)
    aborted: list = field(default_factory=list)
    params_type = Params

    async def generate(self, prompt, params, request_id):
        self.seeds.append(params.seed)
        for i in range(min(self.tokens, params.max_tokens)):
            if self.hold is not None and i == self.tokens - 1 and request_id not in \
                    self.aborted:
                await self.hold.wait()
            if request_id in self.aborted:
                yield self._output([], "abort")
                return
            last = i == min(self.tokens, params.max_tokens) - 1
            yield self._output([7], ("length" if params.max_tokens == i + 1 else "stop")
                               if last else None)

    async def abort(self, request_ids):
        self.aborted += request_ids
        if self.hold is not None:
            self.hold.set()

    @staticmethod
    def _output(ids, finish):
        out = SimpleNamespace(token_ids=ids, logprobs=[{7: SimpleNamespace(logprob=-0.5)}
                                                       for _ in ids],
                              text="x" * len(ids), finish_reason=finish)
        return SimpleNamespace(outputs=[out])


def test_a_turn_samples_with_a_seed_fixed_by_the_run_seed_and_its_key():
    def seeds(run_seed, keys):
        engine = ScriptedEngine()
        turns = Turns(engine, 1.0, run_seed)
        for key in keys:
            asyncio.run(turns.generate([1, 2], 8, key=key))
        return engine.seeds

    first = seeds(0, ["g1/s0/t0", "g1/s1/t0", "g1/s0/t1", ""])
    assert first == seeds(0, ["g1/s0/t0", "g1/s1/t0", "g1/s0/t1", ""])  # a rerun repeats
    assert len(set(first[:3])) == 3 and first[3] is None  # no key: the engine's stream
    assert all(0 <= s < 2 ** 31 for s in first[:3])
    assert seeds(1, ["g1/s0/t0"]) != first[:1]  # another run seed, other samples


def test_an_interrupted_turn_resumes_under_the_new_version_with_its_own_seed():
    async def main():
        engine = ScriptedEngine(tokens=3, hold=asyncio.Event())
        turns = Turns(engine, 1.0, seed=0, version=4)
        turn = asyncio.create_task(turns.generate([1], 8, key="g0/s0/t0"))
        while turns.generated_tokens < 2:  # the turn waits for its last token
            await asyncio.sleep(0)

        async def load():
            engine.hold = None  # the resumed request runs through

        await turns.update(load, version=5)
        return await turn, engine.seeds, turns

    out, seeds, turns = asyncio.run(main())
    assert out.versions == [4, 4, 5, 5, 5] and out.finish_reason == "stop"
    assert turns.interrupted == 1 and turns.version == 5 and turns.inflight == set()
    assert len(seeds) == 2 and seeds[0] != seeds[1]
    assert turns.drain()["generated_tokens"] == 5


def test_logprobs_come_without_their_tokens_text():
    """The engines' requests get logprob processors without a tokenizer (no decoded text
    per logprob), and the values still arrive."""
    import numpy as np
    from vllm import SamplingParams
    from vllm.v1.engine.logprobs import LogprobsProcessor
    from vllm.v1.outputs import LogprobsLists

    from actors.engine import logprobs_without_text

    logprobs_without_text()
    logprobs_without_text()  # a second engine in the process patches nothing twice
    params = SamplingParams(logprobs=0, flat_logprobs=True)
    processor = LogprobsProcessor.from_new_request(
        tokenizer=object(), request=SimpleNamespace(sampling_params=params))
    assert processor.tokenizer is None
    processor._update_sample_logprobs(LogprobsLists(
        np.array([[7]]), np.array([[-0.25]], dtype=np.float32), np.array([1]), None))
    assert processor.logprobs.logprobs == [-0.25]
    assert processor.logprobs.decoded_tokens == [None]
