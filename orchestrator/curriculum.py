"""The noise curriculum: probability that a search gets noisy documents at a step.

ZeroSearch's exponential schedule at global step i of m:
    p(i) = p_s + (b^(i/m) - 1) / (b - 1) * (p_e - p_s),  and p = p_e once i >= m.
Each query draws u ~ U(0, 1) and is served noisy when u <= p.
"""

from __future__ import annotations


def noise_probability(step: int, total_steps: int, start: float, end: float,
                      base: float) -> float:
    if total_steps <= 0 or step >= total_steps:
        return end
    frac = (base ** (step / total_steps) - 1.0) / (base - 1.0)
    return start + frac * (end - start)
