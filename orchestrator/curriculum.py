"""The noise curriculum: probability that a search gets noisy documents at a step.

ZeroSearch's exponential schedule at global step i of m:
    p(i) = p_s + (b^(i/m) - 1) / (b - 1) * (p_e - p_s),  and p = p_e once i >= m.
``linear`` replaces the fraction by i/m and ``constant`` serves p_e throughout.

Each search draws u ~ U(0, 1) and is served noisy when u <= p. The draw is a hash of the
run seed and the search's key (group, sample, turn), not a shared random stream, so it
does not depend on which of many concurrent episodes asks first: a run replays from its
seed, and the curriculum's whole state is its step (``state_dict``), which a checkpoint
keeps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


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


@dataclass
class Curriculum:
    """The schedule of one run, advanced by the driver once per step."""

    schedule: str
    start: float
    end: float
    base: float
    total_steps: int
    step: int = 0

    def probability(self) -> float:
        return noise_probability(self.step, self.total_steps, self.start, self.end,
                                 self.base, self.schedule)

    def advance(self, step: int) -> float:
        """Move to `step`; returns the noise probability there."""
        self.step = step
        return self.probability()

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
