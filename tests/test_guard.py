"""The collapse guard's signals (orchestrator.guard) on hand-built metrics and on the
default pipeline's healthy run (tests/data/pipeline_metrics.jsonl: its 100 steps, the keys
the guard reads)."""

import json
from pathlib import Path

import pytest

from conf.schema import GuardConf
from orchestrator.guard import check

CONF = GuardConf()
HEALTHY = {"reward/mean": 0.4, "learner/entropy": 0.25, "learner/loss": 0.01,
           "learner/grad_norm": 0.4, "episode/end_answer": 0.85,
           "episode/end_turn_tokens": 0.1, "learner/logprob_diff": 0.01}


def run(steps: int, change=None, start: int = 0) -> list[dict]:
    """`steps` rows of HEALTHY metrics; from step `start` on, change(step) updates them."""
    rows = []
    for step in range(steps):
        row = {**HEALTHY, "step": step}
        if change is not None and step >= start:
            row.update(change(step))
        rows.append(row)
    return rows


def verdicts(rows: list[dict]) -> list:
    """The verdict after each step, as the driver takes them."""
    return [check(rows[:n], CONF) for n in range(1, len(rows) + 1)]


def test_the_default_pipelines_healthy_run_fires_nothing():
    path = Path(__file__).parent / "data" / "pipeline_metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 100
    assert all(v.healthy for v in verdicts(rows))
    assert set(check(rows, CONF).values) == {"nonfinite", "reward", "entropy", "no_answer",
                                            "truncated", "logprob_diff"}


def test_a_steady_run_fires_nothing():
    assert all(v.healthy for v in verdicts(run(60)))


@pytest.mark.parametrize("key", ["learner/loss", "learner/grad_norm"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nonfinite_loss_or_gradient_fires_at_once(key, bad):
    rows = run(3, lambda step: {key: bad}, start=2)  # before the window fills
    verdict = check(rows, CONF)
    assert set(verdict.fired) == {"nonfinite"} and verdict.first_bad_step == 2
    assert key in verdict.fired["nonfinite"] and verdict.values["nonfinite"] == 1.0
    assert check(rows[:2], CONF).healthy


def test_a_reward_collapse_fires_after_its_patience_and_dates_its_start():
    rows = run(60, lambda step: {"reward/mean": 0.02}, start=30)
    fired = [i for i, v in enumerate(verdicts(rows)) if "reward" in v.fired]
    # the 10-step average falls under 0.3 x 0.4 once 8 of its 10 steps are low (step 37);
    # it fires 10 steps later
    assert fired[0] == 46 and fired == list(range(46, 60))
    verdict = check(rows[:47], CONF)
    assert verdict.first_bad_step == 28  # the first step of the first low average's window
    assert verdict.values["reward"] < 0.3
    # a dip that recovers within the patience fires nothing
    dip = run(60, lambda step: {"reward/mean": 0.0 if step < 40 else 0.4}, start=30)
    assert not any("reward" in v.fired for v in verdicts(dip))


def test_a_run_that_never_had_a_reward_is_no_collapse():
    rows = run(40, lambda step: {"reward/mean": 0.0})
    assert all(v.healthy for v in verdicts(rows))


@pytest.mark.parametrize("entropy", [0.01, 2.0])
def test_entropy_vanishing_or_blowing_up_fires(entropy):
    rows = run(40, lambda step: {"learner/entropy": entropy}, start=20)
    verdict = check(rows, CONF)
    assert set(verdict.fired) == {"entropy"}
    assert 11 <= verdict.first_bad_step <= 20  # within the first window that crossed
    assert not (CONF.entropy_low <= verdict.values["entropy"] <= CONF.entropy_high)


@pytest.mark.parametrize("signal,key,bad", [
    ("no_answer", "episode/end_answer", 0.05),
    ("truncated", "episode/end_turn_tokens", 0.9),
    ("logprob_diff", "learner/logprob_diff", 0.8),
])
def test_a_format_breakdown_or_a_train_inference_mismatch_fires(signal, key, bad):
    rows = run(40, lambda step: {key: bad}, start=25)
    verdict = check(rows, CONF)
    assert set(verdict.fired) == {signal}
    assert 16 <= verdict.first_bad_step <= 25
    assert signal in verdict.fired[signal]
    assert check(rows[:25], CONF).healthy


def test_signals_other_than_nonfinite_wait_for_the_window():
    rows = run(9, lambda step: {"learner/entropy": 5.0, "episode/end_answer": 0.0})
    assert all(v.healthy for v in verdicts(rows))
    assert set(check(rows, CONF).values) == {"nonfinite"}


def test_a_rollback_scales_the_learning_rate_and_applies_its_overrides():
    from conf.loader import load_config
    from orchestrator.guard_actions import on_rollback

    cfg = load_config(overrides=["learner.lr=1e-3", "guard.on_rollback.lr_scale=0.25",
                                 'guard.on_rollback.overrides=["learner.kl_coef=0.01",'
                                 '"rollout.episode.temperature=0.9"]'])
    after = on_rollback(on_rollback(cfg))
    assert after.learner.lr == pytest.approx(1e-3 / 16)
    assert (after.learner.kl_coef, after.rollout.episode.temperature) == (0.01, 0.9)
    assert (cfg.learner.kl_coef, cfg.learner.lr) == (0.0, 1e-3)


@pytest.mark.parametrize("override, named", [
    ("trainer.total_steps=5", "a rollback can change keys of rollout"),
    ("rollout.group_size=2", "except rollout.group_size"),
    ("learner.lr=2.0", "allowed range"),
    ("learner.no_such_key=1", "unknown config key 'learner.no_such_key'"),
])
def test_a_rollback_override_a_rollback_cannot_apply_is_refused_at_load(override, named):
    from conf.loader import ConfigError, load_config

    with pytest.raises(ConfigError, match="guard.on_rollback.overrides") as err:
        load_config(overrides=[f'guard.on_rollback.overrides=["{override}"]'])
    assert named in str(err.value)
