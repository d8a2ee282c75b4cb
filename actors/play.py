"""Play episodes of a policy checkpoint on a list of questions, in this process (no Ray).

Shared by ``simsearch eval`` and the collection step of ``simsearch sft-simulator``: one
vLLM engine with the policy, its turns generated as on a rollout worker (``actors.turns``,
seeded per episode key), any search backend, all episodes at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from actors.dataset import Question
from actors.episode import Limits, play_episodes, sample_keys
from actors.trajectory import Trajectory
from actors.turns import Turns
from conf.schema import EngineConf, EpisodeConf


@dataclass
class Played:
    question: Question
    key: str  # "q<index>/s<sample>"
    trajectory: Trajectory


async def play_questions(engine_conf: EngineConf, episode: EpisodeConf, policy_path: str,
                         seed: int, questions: list[Question], samples: int,
                         make_search: Callable) -> list[Played]:
    """`samples` episodes per question; make_search(generator, encode) gives the backend."""
    from actors.engine import start_engine

    keys = sample_keys(questions, samples, "q")
    engine = start_engine(engine_conf, policy_path, seed)
    try:
        trajs = await _play_on(engine, episode, seed, keys, make_search)
    finally:
        engine.shutdown()
        # This frame outlives the call (it stays referenced until the interpreter exits),
        # so it must not hold the engine: one freed at interpreter teardown runs vLLM's
        # AsyncLLM.__del__ after its module globals are gone ("Exception ignored in").
        del engine
    return [Played(q, key, t) for (q, key), t in zip(keys, trajs)]


async def _play_on(engine, episode: EpisodeConf, seed: int,
                   keys: list[tuple[Question, str]], make_search: Callable) -> list[Trajectory]:
    tokenizer = engine.get_tokenizer()
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)
    policy = Turns(engine, episode.temperature, seed)
    search = make_search(policy, encode)
    try:
        return await play_episodes(keys, policy, search, encode, Limits.of(episode))
    finally:
        await search.close()
