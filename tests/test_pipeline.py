"""``simsearch pipeline`` end to end on a local Ray cluster (shortened): every stage is
built or found in the cache, RL runs against the fine-tuned simulator, the held-out
questions are scored before and after with BM25 and with the simulator, the report lands,
and a rerun finds every stage, the RL run included, already built."""

import json

import pytest

from orchestrator import cli

pytestmark = pytest.mark.integration

STEPS = 4


def test_the_pipeline_reports_and_a_rerun_builds_nothing(ray_cluster, tiny_assets, tmp_path,
                                                         capsys):
    args = ["pipeline", "conf/tiny.yaml", f"trainer.run_dir={tmp_path}",
            f"trainer.total_steps={STEPS}", "eval.every=2", "eval.max_questions=24",
            "trainer.seed=0"]
    assert cli.main(args) == 0
    first = capsys.readouterr().out
    (run_dir,) = [p for p in tmp_path.glob("pipeline-*") if p.is_dir()]
    assert "stage pipeline: built" in first and "stage simulator-sft:" in first
    report = json.loads((run_dir / "report.json").read_text())
    assert report["steps"] == STEPS and report["training_search"] == "simulator"
    for backend in ("bm25", "simulator"):
        row = report["held_out"][backend]["all"]
        assert row["questions"] == 24
        assert 0.0 <= row["start_em"] <= 1.0 and 0.0 <= row["final_em"] <= 1.0
        assert row["gain_em"] == pytest.approx(row["final_em"] - row["start_em"])
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert "start/eval/all/em" in rows[0] and "start/eval_simulator/all/em" in rows[0]
    assert [r["step"] for r in rows if "eval/all/em" in r] == [1, 3]
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"

    assert cli.main(args) == 0
    again = capsys.readouterr().out
    assert "stage pipeline: cached" in again and "built in" not in again
    assert f"{report['held_out']['bm25']['all']['final_em']:9.3f}" in again
