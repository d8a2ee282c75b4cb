"""bench/rollout_overhead.py on a real engine, shortened: the three paths play the same
workload (the benchmark refuses to compare different ones) and every figure is measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

pytestmark = pytest.mark.integration


def test_the_rollout_overhead_benchmark_plays_one_workload_on_every_path(tiny_assets,
                                                                         tmp_path):
    import rollout_overhead

    out = tmp_path / "overhead.json"
    data = rollout_overhead.main(["--steps", "1", "--episodes", "4", "--turns", "2",
                                  "--tokens", "4", "--out", str(out)])
    assert set(data["results"]) == {"raw", "raw+logprobs", "project"}
    for path in data["results"].values():
        assert path["tokens"] == 4 * 2 * 4 and path["turns"] == 4 * 2
        assert path["wall_s"] > 0 and path["tokens_per_s"] > 0
    assert all(ratio > 0 for ratio in data["ratios"].values())
    assert json.loads(out.read_text())["ratios"] == data["ratios"]
