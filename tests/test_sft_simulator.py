"""``simsearch sft-simulator`` end to end on the tiny world: a real vLLM policy collects
documents from BM25, they are labelled and written, the tiny simulator is fine-tuned, and
the saved checkpoint is served by the simulator pool (real Ray Serve)."""

import asyncio
import json

import pytest

from actors.search import SearchRequest, SimulatedSearch
from actors.simulator import pool_writer
from conf.schema import SearchConf, SimulatorConf
from orchestrator import cli
from orchestrator.wiring import start_simulator

pytestmark = pytest.mark.integration


def test_sft_simulator_produces_a_checkpoint_the_pool_serves(ray_cluster, tiny_assets,
                                                             tmp_path, capsys):
    assert cli.main(["sft-simulator", "conf/tiny.yaml", f"sft.output_dir={tmp_path}",
                     "sft.questions=60", "sft.samples=1", "sft.steps=40"]) == 0
    assert str((tmp_path / "simulator").resolve()) in capsys.readouterr().out
    rows = [json.loads(x) for x in (tmp_path / "sft_simulator.jsonl").read_text().splitlines()]
    modes = [r["mode"] for r in rows]
    assert modes.count("useful") == modes.count("noisy") > 0  # balanced
    for row in rows:
        assert f"{row['mode']} documents" in row["prompt"]
        assert row["completion"].startswith("Doc 1: (Title: ")  # BM25's titles kept
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["loss_last"] < summary["loss_first"]  # the simulator learned something
    checkpoint = tmp_path / "simulator"
    assert (checkpoint / "config.json").exists() and (checkpoint / "tokenizer.json").exists()

    from ray import serve

    handle = start_simulator(SimulatorConf(max_tokens=48, num_cpus=0.1), str(checkpoint),
                             seed=0, app_name="pool-sft")
    try:
        search = SimulatedSearch(pool_writer(handle), SearchConf(topk=3), seed=0)

        async def ask():
            return await asyncio.gather(*[search.search(SearchRequest(
                r["query"], r["question"], r["answers"], f"g{i}/s0/t0"))
                for i, r in enumerate(rows[:6])])

        results = asyncio.run(ask())
    finally:
        serve.delete("pool-sft")
    assert all(not r.failed and r.docs for r in results)
