"""``simsearch eval`` on the tiny world's held-out questions with a real retriever (bm25)
and with the simulator pool (real vLLM, real Ray Serve): the same questions, two backends,
a JSON report per data_source."""

import json

import pytest

from orchestrator import cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("backend", ["bm25", "simulator"])
def test_eval_writes_a_report_per_data_source(ray_cluster, tiny_assets, tmp_path, capsys,
                                              backend):
    out = tmp_path / f"{backend}.json"
    assert cli.main(["eval", "conf/tiny.yaml", "eval.max_questions=12", "eval.samples=2",
                     "eval.temperature=1.0", f"eval.search.backend={backend}",
                     f"eval.output={out}", "simulator.num_cpus=0.1"]) == 0
    assert "pass@2" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["backend"] == backend and data["samples"] == 2
    report = data["report"]
    assert set(report) == {"all", "tinyworld_1hop", "tinyworld_2hop"}
    assert (report["all"]["questions"], report["all"]["episodes"]) == (12, 24)
    assert report["all"]["searches"] > 0  # the warm-started policy searches
    for row in report.values():
        assert 0.0 <= row["em"] <= row["pass_at_k"] <= 1.0
