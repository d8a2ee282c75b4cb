"""The noise curriculum against the ZeroSearch formula at several steps."""

import pytest

from orchestrator.curriculum import noise_probability


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),
    # mid-training with b=4: (4^0.5 - 1) / 3 * 0.5 = 1/6
    (50, 1 / 6),
    # (4^0.25 - 1) / 3 * 0.5 = (sqrt(2) - 1) / 6
    (25, (2 ** 0.5 - 1) / 6),
    (100, 0.5),
    (150, 0.5),
])
def test_exponential_schedule(step, expected):
    assert noise_probability(step, 100, 0.0, 0.5, 4.0) == pytest.approx(expected)


def test_start_offset():
    # p_s = 0.25: 0.25 + (1/3) * 0.25 at mid-training
    assert noise_probability(50, 100, 0.25, 0.5, 4.0) == pytest.approx(0.25 + 0.25 / 3)
