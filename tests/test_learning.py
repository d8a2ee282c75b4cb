"""RL on the tiny world: short asynchronous GRPO runs, the warm-started policy's exact
match on held-out questions scored with BM25 over the corpus before and after (real Ray,
real vLLM, real Ray Serve, real BM25).

- Against the simulated search engine (the method, a shortened ``simsearch pipeline``):
  the simulator's documents must teach searches that work with the real retriever. With
  this test's settings (40 steps, 60 questions), seeds 0-4: held-out EM with BM25 0.250
  -> 0.417, 0.317, 0.383, 0.300, 0.350 (gains 0.167, 0.067, 0.133, 0.050, 0.100).
- Against BM25 itself: the signal that every change to rollouts, the queue, the losses or
  the weight sync must keep. Seed 0: 0.250 -> 0.350 (seeds 0-4 on the previous stages, at
  learning rate 5e-4: 0.167 -> 0.300-0.317).

The stages' weights depend on the CPU (see the README). On a second machine (AMD EPYC,
AVX-512) both start at 0.533; with trainer.seed 0-4 the BM25 test gained 5, 9, 8, 10 and
9 questions of 60, the simulator test 6, 6, 7, 8 and 4 (seed 0 in earlier runs: 5 and
2; the asynchronous run's order of rollouts varies with timing). The BM25 threshold (4
questions of 60) sits below the smallest gain seen. The simulator's (2) does not: in full
CI runs on that machine seed 0 gained 5, 2 and -1, so that test fails about one run in
three there; 40 steps against the tiny simulator do not lift EM far enough above noise.
"""

import json

import pytest

from orchestrator import cli

pytestmark = pytest.mark.integration

QUESTIONS = 60


def held_out_em(run_dir, steps: int, *overrides: str) -> tuple[float, float]:
    """Held-out EM with BM25 before the first and after the last of `steps` RL steps."""
    assert cli.main(["train", "conf/tiny.yaml", f"trainer.run_dir={run_dir}",
                     f"trainer.total_steps={steps}", f"eval.every={steps}",
                     f"eval.max_questions={QUESTIONS}", "eval.search.backend=bm25",
                     "trainer.seed=0", "trainer.checkpoint_every=0", *overrides]) == 0
    (run,) = run_dir.iterdir()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    (final,) = [r["eval/all/em"] for r in rows if "eval/all/em" in r]
    return rows[0]["start/eval/all/em"], final


def questions_gained(start: float, final: float) -> int:
    """Held-out questions answered after minus before (EM is a fraction of QUESTIONS; the
    count avoids float rounding at the threshold: 34/60 - 32/60 < 2/60)."""
    return round((final - start) * QUESTIONS)


def test_rl_against_the_simulator_raises_held_out_exact_match_with_bm25(
        ray_cluster, tiny_assets, tmp_path):
    start, final = held_out_em(tmp_path, 40, "search.backend=simulator")
    assert questions_gained(start, final) >= 2, f"held-out EM with BM25 {start:.3f} -> {final:.3f}"


def test_rl_against_bm25_raises_held_out_exact_match(ray_cluster, tiny_assets, tmp_path):
    start, final = held_out_em(tmp_path, 30, "search.backend=bm25")
    assert questions_gained(start, final) >= 4, f"held-out EM {start:.3f} -> {final:.3f}"
