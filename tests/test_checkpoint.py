"""Checkpoints are written whole or not at all, resume takes the newest complete one and
names those it skips, a changed group mapping is refused, and the metric files are cut
back to the resumed step (pure file logic; the integration tests resume real runs)."""

import json

import pytest

from conf.loader import ConfigError, load_config
from orchestrator.checkpoint import (check_mapping, group_mapping, latest_checkpoint,
                                     resume_point, save_checkpoint)
from orchestrator.metrics import DummyWandb, MetricsLogger


def write_learner(folder):
    (folder / "model").mkdir()
    (folder / "model" / "config.json").write_text("{}")
    (folder / "learner.json").write_text('{"version": 1, "world_size": 1}')
    (folder / "optimizer-rank0.pt").write_bytes(b"state")


def state(step: int, mapping: dict | None = None) -> dict:
    return {"step": step, "queue": {"version": step + 1},
            "mapping": mapping or {}, "faults": {"restarts": 0}}


def test_a_crash_while_writing_leaves_no_checkpoint_that_looks_whole(tmp_path, capsys):
    save_checkpoint(tmp_path, state(1), write_learner, keep=2)

    def crash(folder):
        write_learner(folder)
        raise OSError("node lost")

    with pytest.raises(OSError):
        save_checkpoint(tmp_path, state(3), crash, keep=2)
    assert [p.name for p in (tmp_path / "checkpoints").glob("step*")] == ["step000001"]
    resume = latest_checkpoint(tmp_path)
    assert resume.step == 1 and resume.version == 2
    assert "skipped 1 checkpoint(s) whose writing was cut short" in capsys.readouterr().out
    save_checkpoint(tmp_path, state(3), write_learner, keep=2)  # cleans the partial up
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step000001", "step000003"]


def test_resume_skips_a_cut_state_and_says_so(tmp_path, capsys):
    for step in (1, 3, 5):
        save_checkpoint(tmp_path, state(step), write_learner, keep=3)
    newest = tmp_path / "checkpoints" / "step000005" / "state.json"
    newest.write_text(newest.read_text()[:20])
    (tmp_path / "checkpoints" / "step000003" / "optimizer-rank0.pt").unlink()
    resume, in_place = resume_point(str(tmp_path))
    assert (resume.step, in_place) == (1, tmp_path)
    out = capsys.readouterr().out
    assert "skipped incomplete checkpoint" in out and "step000005 (state.json unreadable" in out
    assert "step000003 (missing optimizer-rank*.pt)" in out
    # a checkpoint folder given itself: that one, and the run starts in a new directory
    resume, in_place = resume_point(str(tmp_path / "checkpoints" / "step000001"))
    assert (resume.step, in_place) == (1, None)
    with pytest.raises(ConfigError, match="incomplete checkpoint"):
        resume_point(str(tmp_path / "checkpoints" / "step000005"))
    with pytest.raises(ConfigError, match="neither a run directory"):
        resume_point(str(tmp_path / "nothing"))


def test_saving_after_a_rollback_replaces_the_undone_checkpoints(tmp_path):
    for step in (1, 3, 5):
        save_checkpoint(tmp_path, state(step), write_learner, keep=5)
    save_checkpoint(tmp_path, state(2), write_learner, keep=5)  # went on from step 1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step000001", "step000002"]


def test_resume_with_another_group_mapping_is_a_config_error(tmp_path):
    data = tmp_path / "train.parquet"
    data.write_bytes(b"questions")
    cfg = load_config("conf/tiny.yaml")
    save_checkpoint(tmp_path, state(1, group_mapping(cfg, str(data))), write_learner, 2)
    resume = latest_checkpoint(tmp_path)
    check_mapping(resume, group_mapping(cfg, str(data)))  # the same: accepted
    changed = load_config("conf/tiny.yaml", ["trainer.groups_per_step=4", "trainer.seed=3"])
    with pytest.raises(ConfigError) as err:
        check_mapping(resume, group_mapping(changed, str(data)))
    assert "trainer.groups_per_step=4 (the checkpoint has 8)" in str(err.value)
    assert "trainer.seed=3" in str(err.value) and "rollout.group_size" not in str(err.value)
    data.write_bytes(b"other questions")
    with pytest.raises(ConfigError, match="data.train_path: other training data"):
        check_mapping(resume, group_mapping(cfg, str(data)))


def test_the_metric_files_keep_each_step_once_after_a_rewind(tmp_path):
    logger = MetricsLogger(tmp_path, DummyWandb())
    for step in range(5):
        logger.log({"step": step, "loss": float(step)}, step)
        logger.batches.write(json.dumps({"step": step, "groups": [[step, 0]]}) + "\n")
    logger.rewind(2)  # steps 3 and 4 are undone
    for step in (3, 4):
        logger.log({"step": step, "loss": 10.0 + step}, step)
    logger.close()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in rows] == [(0, 0.0), (1, 1.0), (2, 2.0),
                                                      (3, 13.0), (4, 14.0)]
    # a driver that died mid-line: continuing in the directory drops the cut line too
    with open(tmp_path / "batches.jsonl", "a") as out:
        out.write('{"step": 5, "gro')
    MetricsLogger(tmp_path, DummyWandb(), keep_through=1).close()
    steps = [json.loads(x)["step"] for x in (tmp_path / "batches.jsonl").read_text()
             .splitlines()]
    assert steps == [0, 1]


def test_the_checkpoint_a_guard_rollback_may_need_is_kept_past_keep(tmp_path):
    for step in (1, 3, 5, 7, 9):  # a guard that dates trouble up to 5 steps back
        save_checkpoint(tmp_path, state(step), write_learner, keep=1, hold_after=step - 5)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    # the newest <= step 4 and all after it: a rollback from step 10 may need any of them
    assert kept == ["step000003", "step000005", "step000007", "step000009"]
    assert latest_checkpoint(tmp_path, before=9).step == 7
    assert latest_checkpoint(tmp_path, before=3) is None
    save_checkpoint(tmp_path, state(11), write_learner, keep=1)  # no hold: only the newest
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step000011"]


def test_a_rollback_sets_the_undone_steps_aside_marked_with_its_number(tmp_path):
    logger = MetricsLogger(tmp_path, DummyWandb())
    for step in range(5):
        logger.log({"step": step, "loss": float(step)}, step)
        logger.batches.write(json.dumps({"step": step, "groups": [[step, 0]]}) + "\n")
    logger.rewind(2, rollback=1)
    assert [r["step"] for r in logger.rows()] == [0, 1, 2]
    logger.log({"step": 3, "loss": 13.0}, 3)
    logger.close()
    undone = [json.loads(x) for x in (tmp_path / "metrics.undone.jsonl").read_text()
              .splitlines()]
    assert [(r["step"], r["loss"], r["rollback"]) for r in undone] == [(3, 3.0, 1),
                                                                        (4, 4.0, 1)]
    batches = (tmp_path / "batches.undone.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in batches] == [3, 4]
