"""The learning report from a run's metrics.jsonl: table numbers, JSON and the PNG."""

import json

from actors.dataset import Question
from orchestrator.report import answer_prior, summarize, write_report

BACKENDS = {"eval": "bm25", "eval_simulator": "simulator"}


def _row(step, reward, noise, evals=None, start=None):
    row = {"step": step, "reward/mean": reward, "em/mean": reward / 2,
           "curriculum/noise_prob": noise}
    for prefix, scores in (evals or {}).items():
        for source, (em, f1) in scores.items():
            row.update({f"{prefix}/{source}/em": em, f"{prefix}/{source}/f1": f1,
                        f"{prefix}/{source}/searches": 1.0,
                        f"{prefix}/{source}/questions": 10.0})
    for prefix, scores in (start or {}).items():
        for source, (em, f1) in scores.items():
            row.update({f"start/{prefix}/{source}/em": em, f"start/{prefix}/{source}/f1": f1,
                        f"start/{prefix}/{source}/searches": 0.5,
                        f"start/{prefix}/{source}/questions": 10.0})
    return row


def _rows():
    start = {"eval": {"all": (0.1, 0.2)}, "eval_simulator": {"all": (0.2, 0.3)}}
    middle = {"eval": {"all": (0.3, 0.4)}, "eval_simulator": {"all": (0.4, 0.5)}}
    final = {"eval": {"all": (0.5, 0.6)}, "eval_simulator": {"all": (0.7, 0.75)}}
    return [_row(0, 0.1, 0.0, start=start), _row(1, 0.2, 0.1, evals=middle),
            _row(2, 0.3, 0.2), _row(3, 0.6, 0.5, evals=final)]


def test_the_summary_compares_the_start_with_the_last_evaluation():
    summary = summarize(_rows(), BACKENDS)
    bm25 = summary["bm25"]["all"]
    assert (bm25["start_em"], bm25["final_em"]) == (0.1, 0.5)
    assert abs(bm25["gain_em"] - 0.4) < 1e-9
    assert (bm25["start_f1"], bm25["final_f1"], bm25["questions"]) == (0.2, 0.6, 10.0)
    assert abs(summary["simulator"]["all"]["gain_em"] - 0.5) < 1e-9


def test_the_report_writes_json_and_a_png(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    report = write_report(tmp_path, BACKENDS, {"seconds_total": 12.5})
    table = capsys.readouterr().out
    assert "bm25" in table and "+0.400" in table and "+0.500" in table
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["steps"] == 4 and saved["seconds_total"] == 12.5
    png = (tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def _q(question, answer, source="tinyworld_1hop"):
    return Question(0, question, question, [answer], source)


def test_the_answer_prior_answers_the_most_common_training_answer_of_a_question_s_shape():
    train = [_q("where was A born?", "Kami"), _q("where was B born?", "Kami"),
             _q("where was C born?", "Renpel"), _q("what is the job of A?", "Baker"),
             _q("in which country was A born?", "Sufinox", "tinyworld_2hop")]
    held_out = [_q("where was D born?", "Kami"), _q("where was E born?", "Renpel"),
                _q("what is the job of D?", "baker"), _q("who is F?", "F"),
                _q("in which country was D born?", "Beltarfi", "tinyworld_2hop")]
    prior = answer_prior(train, held_out)
    assert prior == {"all": 2 / 5, "tinyworld_1hop": 2 / 4, "tinyworld_2hop": 0.0}
    assert answer_prior(train, []) == {"all": 0.0}


def test_the_report_prints_the_answer_prior(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    write_report(tmp_path, BACKENDS, {"answer_prior": {"all": 0.125, "tinyworld_2hop": 0.375}})
    out = capsys.readouterr().out
    assert "answer prior (no search): all 0.125, tinyworld_2hop 0.375" in out
    assert json.loads((tmp_path / "report.json").read_text())["answer_prior"]["all"] == 0.125
