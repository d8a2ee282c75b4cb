"""bench/sim_vs_real.py cannot silently compare nothing: its assembly of runs into the
table (per setting, mean and spread over seeds, the claims as differences) on hand-built
metrics, and a shortened real run of two settings (the default simulator and BM25), one
seed, two steps, whose every figure comes from the runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from report_sim_vs_real import assemble  # noqa: E402


def fake_run(setting: str, seed: int, start: float, final: float) -> dict:
    rows = [{"step": 0, "start/eval/all/em": start, "start/eval/a/em": start,
             "episode/search_calls_mean": 1.0, "simulator/tokens_per_query": 50.0},
            {"step": 1, "episode/search_calls_mean": 2.0, "simulator/tokens_per_query": 70.0,
             "eval/all/em": final, "eval/a/em": final, "eval/all/searches": 1.5,
             "eval_simulator/all/em": final / 2, "eval_simulator/a/em": final / 2}]
    return {"setting": setting, "seed": seed, "command": f"cmd {setting} {seed}",
            "run_dir": "x", "episodes_per_step": 4, "simulated": setting == "simulator",
            "rows": rows, "simulator_eval": None if setting == "simulator" else
            {"all": {"em": 0.1}, "a": {"em": 0.1}}}


def test_runs_are_assembled_per_setting_with_spread_and_claims():
    runs = [fake_run("simulator", 0, 0.5, 0.7), fake_run("simulator", 1, 0.5, 0.9),
            fake_run("bm25", 0, 0.5, 0.6)]
    result = assemble(runs, {"simulator": "sim", "bm25": "real"})
    sim, bm25 = result["settings"]["simulator"], result["settings"]["bm25"]
    assert sim["seeds"] == [0, 1] and sim["description"] == "sim"
    assert sim["bm25"]["all"]["final"]["mean"] == pytest.approx(0.8)
    assert sim["bm25"]["all"]["final"]["sd"] == pytest.approx(0.1414, abs=1e-3)
    assert sim["bm25"]["all"]["gain"]["mean"] == pytest.approx(0.3)
    assert sim["simulator"]["all"]["mean"] == pytest.approx(0.4)  # its own second eval
    assert bm25["simulator"]["all"]["mean"] == pytest.approx(0.1)  # simsearch eval's
    assert sim["curve"] == {"steps": [0, 2], "mean": [0.5, pytest.approx(0.8)],
                           "min": [0.5, 0.7], "max": [0.5, 0.9]}
    assert sim["simulator_calls_per_step"] == pytest.approx(6.0)  # (1 + 2) / 2 x 4
    assert sim["simulated_tokens_per_step"] == pytest.approx((4 * 50 + 8 * 70) / 2)
    assert bm25["simulator_calls_per_step"] == 0.0
    (claim,) = result["claims"]
    assert claim["setting"] == "simulator" and claim["baseline"] == "bm25"
    assert claim["difference"] == pytest.approx(0.2) and not claim["within_spread"]
    with pytest.raises(ValueError, match="no runs"):
        assemble([], {})


@pytest.mark.integration
def test_a_shortened_benchmark_compares_two_real_settings(ray_cluster, tiny_assets,
                                                          tmp_path, capsys):
    import sim_vs_real

    out = tmp_path / "svr.json"
    result = sim_vs_real.main(["--settings", "simulator,bm25", "--seeds", "0", "--steps",
                               "2", "--out", str(out), f"trainer.run_dir={tmp_path}",
                               "eval.max_questions=16"])
    assert json.loads(out.read_text())["claims"] == result["claims"]
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    sim, bm25 = (result["settings"][name] for name in ("simulator", "bm25"))
    for s in (sim, bm25):
        assert s["bm25"]["all"]["final"]["n"] == 1 and s["curve"]["steps"] == [0, 1, 2]
        assert 0.0 <= s["simulator"]["all"]["mean"] <= 1.0
        assert s["searches_per_question"] > 0
    assert sim["bm25"]["all"]["start"] == bm25["bm25"]["all"]["start"]  # one warm start
    assert sim["simulator_calls_per_step"] > 0 and sim["simulated_tokens_per_step"] > 0
    assert bm25["simulator_calls_per_step"] == 0.0
    assert "search.backend=bm25" in bm25["command"]
    (run,) = [r for r in result["runs"] if r["setting"] == "bm25"]
    assert (Path(run["run_dir"]) / "eval-simulator.json").exists()
    table = capsys.readouterr().out
    assert "the simulator matches the real engine: simulator - bm25 =" in table
