"""The noise curriculum: schedules against their formulas, seeded draws, a pure function
of the step (nothing to carry across a checkpoint)."""

import pytest

from actors.curriculum import NoiseSchedule, is_noisy, noise_probability
from conf.schema import CurriculumConf


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


@pytest.mark.parametrize("schedule, step, expected", [
    ("linear", 0, 0.1),
    ("linear", 25, 0.1 + 0.25 * 0.4),  # p_s + i/m * (p_e - p_s)
    ("linear", 75, 0.1 + 0.75 * 0.4),
    ("linear", 100, 0.5),
    ("constant", 0, 0.5),
    ("constant", 60, 0.5),
    ("exponential", 50, 0.1 + 0.4 / 3),  # (4^0.5 - 1) / 3 = 1/3 of the way
])
def test_schedules(schedule, step, expected):
    assert noise_probability(step, 100, 0.1, 0.5, 4.0, schedule) == pytest.approx(expected)


def draws(schedule: NoiseSchedule, seed: int, steps: range) -> list[bool]:
    return [is_noisy(schedule(step), seed, f"g{step}/s{s}/t{t}")
            for step in steps for s in range(4) for t in range(3)]


def test_draws_replay_from_the_seed_and_follow_the_probability():
    make = lambda: NoiseSchedule("exponential", 0.0, 0.5, 4.0, total_steps=40)
    first, again = draws(make(), 11, range(40)), draws(make(), 11, range(40))
    assert first == again
    assert first != draws(make(), 12, range(40))
    assert not any(first[:12])  # p(0) = 0: step 0 is never noisy
    # over many keys the noisy share approaches p
    many = [is_noisy(0.3, 5, f"k{i}") for i in range(20000)]
    assert abs(sum(many) / len(many) - 0.3) < 0.015


def test_a_resumed_run_draws_what_an_uninterrupted_one_does():
    schedule = NoiseSchedule("linear", 0.0, 0.5, 4.0, total_steps=40)
    resumed = NoiseSchedule("linear", 0.0, 0.5, 4.0, total_steps=40)  # rebuilt from config
    assert draws(schedule, 3, range(20)) + draws(resumed, 3, range(20, 40)) == draws(
        schedule, 3, range(40))


def test_the_schedule_comes_from_config_and_defaults_to_no_noise():
    conf = CurriculumConf(start=0.1, end=0.5, base=4.0, schedule="linear")
    assert NoiseSchedule.of(conf, total_steps=100)(25) == pytest.approx(0.2)
    assert NoiseSchedule.of(CurriculumConf(steps=10), total_steps=100)(10) == 0.5
    assert {NoiseSchedule()(step) for step in (0, 7, 10**6)} == {0.0}
