"""Evaluation scores per data_source, pass@k over samples (pure)."""

import pytest

from actors.dataset import Question
from actors.trajectory import Trajectory
from orchestrator.evaluate import eval_report
from actors.play import Played


def played(index: int, source: str, gold: str, answer: str | None, turns=2, searches=1):
    traj = Trajectory.from_prompt([1])
    traj.answer, traj.turns, traj.search_calls = answer, turns, searches
    return Played(Question(index, "q", "p", [gold], source), f"q{index}/s0", traj)


def test_scores_per_source_and_pass_at_k():
    report = eval_report([
        played(0, "nq", "Paris", "paris"),        # right
        played(0, "nq", "Paris", "Lyon"),         # second sample of q0, wrong
        played(1, "nq", "red fox", "red"),        # wrong, F1 = 2 * (1 * 0.5) / 1.5 = 2/3
        played(1, "nq", "red fox", None, turns=4, searches=3),  # no answer: 0
        played(2, "hotpotqa", "Oslo", "the Oslo", turns=1, searches=0),  # right
    ])
    nq = report["nq"]
    assert (nq["questions"], nq["episodes"]) == (2, 4)
    assert nq["em"] == pytest.approx(1 / 4)
    assert nq["f1"] == pytest.approx((1 + 0 + 2 / 3 + 0) / 4)
    assert nq["pass_at_k"] == pytest.approx(1 / 2)  # q0 solved by one of its samples
    assert nq["turns"] == pytest.approx(10 / 4) and nq["searches"] == pytest.approx(6 / 4)
    assert report["hotpotqa"]["em"] == 1.0
    assert report["all"]["questions"] == 3 and report["all"]["em"] == pytest.approx(2 / 5)
    assert report["all"]["pass_at_k"] == pytest.approx(2 / 3)
