"""The noise curriculum: probability that a search gets noisy documents at a step.

ZeroSearch's exponential schedule at global step i of m:
    p(i) = p_s + (b^(i/m) - 1) / (b - 1) * (p_e - p_s),  and p = p_e once i >= m.
``linear`` replaces the fraction by i/m and ``constant`` serves p_e throughout.

The step of a search is the policy version its group was admitted at, so the probability
is a pure function of what the search request carries, computed where the search is made
(``NoiseSchedule``): nothing is sent to the workers per step and nothing is checkpointed.
Each search draws u ~ U(0, 1) and is served noisy when u <= p. The draw is a hash of the
run seed and the search's key (group, sample, turn), not a shared random stream, so it
does not depend on which of many concurrent episodes asks first: a run replays from its
seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from conf.schema import CurriculumConf


def exponential_fraction(step: int, total_steps: int, base: float) -> float:
    return (base ** (step / total_steps) - 1.0) / (base - 1.0)


def linear_fraction(step: int, total_steps: int, base: float) -> float:
    return step / total_steps


def constant_fraction(step: int, total_steps: int, base: float) -> float:
    return 1.0


SCHEDULES = {"exponential": exponential_fraction, "linear": linear_fraction,
             "constant": constant_fraction}


def noise_probability(step: int, total_steps: int, start: float, end: float, base: float,
                      schedule: str = "exponential") -> float:
    if total_steps <= 0 or step >= total_steps:
        return end
    return start + SCHEDULES[schedule](step, total_steps, base) * (end - start)


def noise_draw(seed: int, key: str) -> float:
    """u in [0, 1), a fixed function of (seed, key)."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def is_noisy(probability: float, seed: int, key: str) -> bool:
    return probability > 0.0 and noise_draw(seed, key) <= probability


@dataclass(frozen=True)
class NoiseSchedule:
    """p(step) of one run; the default is no noise at all (evaluation, real engines)."""

    schedule: str = "constant"
    start: float = 0.0
    end: float = 0.0
    base: float = 4.0
    total_steps: int = 0

    @classmethod
    def of(cls, conf: CurriculumConf, total_steps: int) -> "NoiseSchedule":
        """From a CurriculumConf; its `steps` (0 = the run's `total_steps`) spans the rise."""
        return cls(conf.schedule, conf.start, conf.end, conf.base, conf.steps or total_steps)

    def __call__(self, step: int) -> float:
        return noise_probability(step, self.total_steps, self.start, self.end, self.base,
                                 self.schedule)
