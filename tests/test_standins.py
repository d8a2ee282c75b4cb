"""The benchmarks' timed stand-ins (bench/timed_engine.py, bench/standins.py) behave as the
engine and learner they stand for, so bench/scale.py cannot silently measure nothing: stop
strings, max_tokens and aborts as vLLM honours them, modelled step times, a seeded
long-tail draw, and the real episode loop and driver running on them."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from timed_engine import Draw, EngineModel, TimedEngine, Workload, turn_hazard  # noqa: E402

from actors.engine import generate, sampling_params, stream_turn  # noqa: E402
from actors.dataset import INSTRUCTION, Question  # noqa: E402
from actors.episode import STOP_STRINGS, Limits, run_episode  # noqa: E402
from actors.search import SearchResult  # noqa: E402
from actors.simulator_prompt import parse_documents  # noqa: E402
from actors.turns import Turns  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer_folder(tmp_path_factory) -> str:
    from tinyworld.models import build_tokenizer

    out = tmp_path_factory.mktemp("tok")
    build_tokenizer(["the city river of a name person lives works known in old new"] * 20,
                    out)
    return str(out)


def engine(folder: str, role: str = "policy", seed: int = 0, **model) -> TimedEngine:
    return TimedEngine(EngineModel(time_scale=0.01, **model), Workload(), folder, role, seed)


def prompt_of(eng: TimedEngine, observations: int = 0) -> list[int]:
    ids = eng.tokenizer.encode(INSTRUCTION.format(question="where does ada live?"))
    return ids + eng.tokenizer.encode("<information> x </information>") * observations


def test_a_turn_stops_at_its_stop_string_or_at_max_tokens(tokenizer_folder):
    async def main():
        eng = engine(tokenizer_folder)
        turns = [await stream_turn(eng, prompt_of(eng), 2048, 1.0, STOP_STRINGS)
                 for _ in range(20)]
        assert all(t.finish_reason == "stop" for t in turns)
        assert all(t.text.rstrip().endswith(("</search>", "</answer>")) for t in turns)
        assert all(len(t.token_ids) == len(t.logprobs) > 0 for t in turns)
        short = await stream_turn(eng, prompt_of(eng), 3, 1.0, STOP_STRINGS)
        assert (short.finish_reason, len(short.token_ids)) == ("length", 3)
        # a stop string earlier in the plan cuts the turn there
        cut = await stream_turn(eng, prompt_of(eng), 2048, 1.0, ["</think>"])
        assert cut.text.endswith("</think>") and cut.finish_reason == "stop"

    asyncio.run(main())


def test_the_simulator_writes_the_documents_its_stop_string_asks_for(tokenizer_folder):
    async def main():
        eng = engine(tokenizer_folder, "simulator")
        for count in (1, 3, 5):
            params = sampling_params(4096, 1.0, stop=[f"Doc {count + 1}:"], engine=eng)
            out = await generate(eng, [1, 2, 3], params)
            assert out.finish_reason == "stop" and out.text.endswith(f"Doc {count + 1}:")
            assert len(parse_documents(out.text, count)) == count

    asyncio.run(main())


def test_an_aborted_turn_resumes_where_it_stopped(tokenizer_folder):
    async def main():
        eng = TimedEngine(EngineModel(step_s=0.005, time_scale=1.0),
                          Workload(turn_tokens_min=30), tokenizer_folder, "policy", 3)
        inflight: set[str] = set()
        task = asyncio.create_task(stream_turn(eng, prompt_of(eng), 2048, 1.0, STOP_STRINGS,
                                               inflight))
        while not any(r.pos >= 4 for r in eng.running.values()):
            await asyncio.sleep(0.001)
        await eng.abort(list(inflight))
        first = await task
        assert first.finish_reason == "abort" and len(first.token_ids) >= 4
        rest = await stream_turn(eng, prompt_of(eng) + first.token_ids, 2048, 1.0,
                                 STOP_STRINGS)
        whole = first.text + rest.text
        assert whole.startswith("<think>") and whole.endswith(("</search>", "</answer>"))
        assert whole.count("<think>") == 1 and rest.finish_reason == "stop"

    asyncio.run(main())


def test_a_step_takes_its_modelled_time(tokenizer_folder):
    async def main():
        eng = TimedEngine(EngineModel(step_s=0.01, step_per_request_s=0.0,
                                      prefill_per_token_s=0.0, time_scale=1.0),
                          Workload(), tokenizer_folder, "policy", 0)
        start = time.monotonic()
        out = await stream_turn(eng, prompt_of(eng), 20, 1.0, ["never"])
        wall = time.monotonic() - start
        assert len(out.token_ids) == 20
        assert 0.2 <= wall < 0.6 and eng.drain_busy() == pytest.approx(0.2)

    asyncio.run(main())


def test_the_long_tail_draw_is_seeded_and_long_tailed():
    def turns(seed: int) -> list[int]:
        draw = Draw(Workload(), seed)
        return [draw.episode_turns() for _ in range(5000)]

    assert turns(1) == turns(1) and turns(1) != turns(2)
    counts = Counter(turns(1))
    share = sum(counts[t] for t in (2, 3, 4)) / 5000
    assert share > 0.5  # most episodes take 2-4 turns
    assert max(counts) >= 20 and max(counts) <= 64  # and a few far more
    hazard = turn_hazard(Workload())
    assert hazard[-1] == 1.0 and hazard[1] > hazard[20]  # the longer, the likelier to go on


def test_the_real_episode_loop_plays_on_the_stand_in(tokenizer_folder):
    eng = engine(tokenizer_folder, seed=5)
    encode = eng.tokenizer.encode

    class Search:
        async def search(self, request):
            return SearchResult([("", "a document")])

    turns = Turns(eng, 1.0, 0)  # a worker's: every episode's turns on one engine

    async def main():
        q = Question(0, "where?", INSTRUCTION.format(question="where?"), ["x"], "tiny")
        limits = Limits(64, 1024, 1 << 16, 1 << 17)
        return await asyncio.gather(*[run_episode(encode(q.prompt), q, turns, Search(),
                                                  encode, limits, f"e{i}")
                                      for i in range(40)])

    started = time.monotonic()
    trajs = asyncio.run(main())
    assert started < turns.sampled_at <= time.monotonic()  # what the health check reads
    assert all(t.end_reason == "answer" for t in trajs)
    assert all(t.search_calls == t.turns - 1 for t in trajs)
    assert len({t.turns for t in trajs}) > 2


def test_scaling_is_measured_from_a_run_with_as_many_engines_per_replica():
    from report_scale import figures

    def row(engines: int, per_s: float) -> dict:
        return {"engines": engines, "simulator_replicas": max(1, round(8 * engines / 32)),
                "trajectories_per_s": per_s, "engine_busy": 0.9, "bound": "admission"}

    # 1 and 2 engines get a whole replica each; from 4 engines on, 4 engines per replica
    runs = [row(1, 10.0), row(2, 18.0), row(4, 32.0), row(32, 230.4)]
    heads = figures({"scaling": runs}, (4, "admission"))
    assert heads["scaling_baseline_engines"] == {"admission": 4}
    assert heads["scaling_efficiency"]["admission"][32] == pytest.approx(0.9)
    # without a run at the largest one's ratio, the fewest engines: never itself
    heads = figures({"scaling": [row(1, 10.0), row(32, 230.4)]}, (4, "admission"))
    assert heads["scaling_baseline_engines"] == {"admission": 1}
    assert heads["scaling_efficiency"]["admission"][32] == pytest.approx(0.72)


@pytest.mark.integration
def test_the_scale_benchmark_measures_the_real_driver_on_stand_ins(ray_cluster, tmp_path):
    import scale

    data = scale.main(["--sections", "staleness,scaling", "--out", str(tmp_path),
                       "engines=2", "simulator_replicas=1", "steps=2", "staleness=[0,1]",
                       "interrupt=[true]", "scaling_engines=[1,2]", "groups_per_engine=2",
                       "time_scale=1"])
    stale = data["results"]["staleness"]
    # eta 0, and eta 1 under each queue.bound
    assert [(r["max_staleness"], r["bound"]) for r in stale] == [
        (1, "strict"), (1, "admission"), (0, "strict")]
    for r in stale + data["results"]["scaling"]:
        assert r["trajectories_per_s"] > 0 and 0 < r["engine_busy"] <= 1
        assert r["steps_timed"] == 2 and r["turns_mean"] >= 1
        assert r["cpu_ms_per_turn"]["workers"] > 0 and r["cpu_ms_per_turn"]["queue"] > 0
        if r["bound"] == "strict":  # the strict bound holds; the admission one is counted
            assert r["staleness_max"] <= r["max_staleness"] and r["over_bound_groups"] == 0
    assert data["figures"]["async_over_sync"] > 0
    efficiency = data["figures"]["scaling_efficiency"]
    assert {rule: set(e) for rule, e in efficiency.items()} == {
        "strict": {1, 2}, "admission": {1, 2}}
    assert (tmp_path / "scale.json").exists() and (tmp_path / "scale.png").stat().st_size
