"""The config loader: every shipped YAML loads; bad input names the key and what it allows."""

import subprocess
import sys

import pytest

from conf.loader import ConfigError, load_config, shipped_configs


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: p.name)
def test_every_shipped_yaml_loads(path):
    cfg = load_config(path)
    assert cfg.trainer.total_steps >= 1


def test_overrides_apply():
    cfg = load_config(None, ["trainer.total_steps=3", "rollout.episode.max_turns=7"])
    assert (cfg.trainer.total_steps, cfg.rollout.episode.max_turns) == (3, 7)


@pytest.mark.parametrize("override, words", [
    ("trainer.bogus=1", ["trainer.bogus", "total_steps"]),
    ("nosuch.key=1", ["nosuch", "trainer"]),
    ("rollout.engine.foo=1", ["rollout.engine.foo", "model_path"]),
    ("trainer.total_steps=abc", ["trainer.total_steps", "Integer"]),
    ("trainer.total_steps=0", ["trainer.total_steps", "[1,"]),
    ("rollout.reward=bleu", ["rollout.reward", "em, f1, ssrl, search_r1_format"]),
    ("learner.reward=f1", ["learner.reward", "rollout.reward"]),
    ("rollout.engine.dtype=int3", ["rollout.engine.dtype", "float32"]),
    ("curriculum.end=1.5", ["curriculum.end", "[0.0, 1.0]"]),
    ("no_equals_sign", ["no_equals_sign", "section.key=value"]),
    ("learner.mini_batches=5", ["learner.mini_batches", "trainer.groups_per_step=4"]),
])
def test_bad_values_name_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    for word in words:
        assert word in str(err.value)


def test_bad_yaml_key_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("learner:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learner.learning_rate"):
        load_config(path)


def test_cli_stops_before_starting_anything():
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "train",
                           "queue.max_staleness=-1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "queue.max_staleness" in proc.stderr and "allowed range" in proc.stderr


def test_commands_stop_on_values_they_check_themselves(tmp_path, capsys):
    from orchestrator import cli

    assert cli.main(["train", f"trainer.resume_from={tmp_path}"]) == 2
    assert "trainer.resume_from" in capsys.readouterr().err
    assert cli.main(["sft-simulator", "sft.search.backend=self"]) == 2
    assert "sft.search.backend='self'" in capsys.readouterr().err
