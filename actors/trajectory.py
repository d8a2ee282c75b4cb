"""The trajectory record: a flat token list with per-token mask, logprob and policy version.

Prompt and observation tokens carry mask 0, logprob 0.0 and version -1; tokens the policy
sampled carry mask 1, the engine's logprob and the policy version that sampled them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NOT_SAMPLED = -1


@dataclass
class Trajectory:
    token_ids: list[int]
    loss_mask: list[int]
    logprobs: list[float]
    versions: list[int]
    prompt_len: int
    group_index: int = -1
    question_index: int = -1
    data_source: str = ""
    answers: list[str] = field(default_factory=list)
    response_text: str = ""
    answer: str | None = None
    reward: float = 0.0
    em: float = 0.0
    turns: int = 0
    search_calls: int = 0
    search_failures: int = 0
    noisy_searches: int = 0
    end_reason: str = ""
    generate_s: float = 0.0
    search_s: float = 0.0
    total_s: float = 0.0

    @classmethod
    def from_prompt(cls, prompt_ids: list[int]) -> Trajectory:
        n = len(prompt_ids)
        return cls(list(prompt_ids), [0] * n, [0.0] * n, [NOT_SAMPLED] * n, prompt_len=n)

    def add_sampled(self, token_ids: list[int], logprobs: list[float],
                    versions: list[int]) -> None:
        if not len(token_ids) == len(logprobs) == len(versions):
            raise ValueError(f"{len(token_ids)} sampled tokens but {len(logprobs)} logprobs "
                             f"and {len(versions)} versions")
        self.token_ids += token_ids
        self.loss_mask += [1] * len(token_ids)
        self.logprobs += logprobs
        self.versions += versions

    def add_observation(self, token_ids: list[int]) -> None:
        self.token_ids += token_ids
        self.loss_mask += [0] * len(token_ids)
        self.logprobs += [0.0] * len(token_ids)
        self.versions += [NOT_SAMPLED] * len(token_ids)

    @property
    def num_sampled(self) -> int:
        return sum(self.loss_mask)

    @property
    def oldest_version(self) -> int:
        sampled = [v for v in self.versions if v != NOT_SAMPLED]
        return min(sampled) if sampled else NOT_SAMPLED


@dataclass
class TurnOutput:
    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str  # "stop" (a stop string or EOS) or "length"
    versions: list[int]  # policy version per token: a turn interrupted by a weight update
    # carries the old version on the tokens before it and the new one after
