"""Every search backend answers a batch of queries against a real server or engine, and
``serve-simulator`` speaks Search-R1's ``POST /retrieve`` over HTTP (real Ray Serve with
its HTTP proxy, real vLLM)."""

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from actors.curriculum import NoiseSchedule
from actors.episode import Limits
from actors.search import SearchRequest, make_backend, BackendContext
from conf.schema import HttpConf, OpenAIConf, SearchConf, SimulatorConf
from tests.helpers import free_port, serve_simulator, vllm_openai_server

pytestmark = pytest.mark.integration

QUERIES = ["where was Kalo born", "profession of Vo Dan", "country of Mitar", "capital",
           "who is Fi", "tallest mountain"]


def batch(backend) -> list:
    async def run():
        try:
            return await asyncio.gather(*[backend.search(SearchRequest(
                q, q + "?", ["x"], f"g{i}/s0/t0")) for i, q in enumerate(QUERIES)])
        finally:
            await backend.close()

    return asyncio.run(run())


def post(url: str, body: bytes, method: str = "POST") -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture(scope="module")
def retrieve_url(tiny_assets, tmp_path_factory):
    """`simsearch serve-simulator` as a user runs it: its own Ray cluster, a free port."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    # the tiny simulator writes an unusable page now and then: more retries
    with serve_simulator(log, ("serve.max_queries=8", "search.retries=5")) as (url, _):
        yield url


def test_retrieve_answers_a_search_r1_request(retrieve_url):
    request = {"queries": ["where was Kalo born", "capital of Mitar"], "topk": 2,
               "return_scores": True}
    status, reply = post(retrieve_url, json.dumps(request).encode())
    assert status == 200 and len(reply["result"]) == 2, reply
    for hits in reply["result"]:
        assert 1 <= len(hits) <= 2
        for hit in hits:
            assert set(hit) == {"document", "score"} and isinstance(hit["score"], float)
            assert set(hit["document"]) == {"id", "contents"}
            assert hit["document"]["contents"].startswith('"')  # Search-R1 title line
    # defaults: topk and no scores; a query shaped like the simulator's (a bare word such
    # as "capital" got three unusable pages in a row from the tiny simulator, a 503, once)
    status, bare = post(retrieve_url, json.dumps({"queries": ["where was Kalo born"]}).encode())
    assert status == 200 and set(bare["result"][0][0]) == {"id", "contents"}, bare


@pytest.mark.parametrize("body, status", [
    (b"{broken", 400),
    (json.dumps({"queries": [1]}).encode(), 400),
    (json.dumps({"queries": ["a"], "topk": -1}).encode(), 400),
    (json.dumps({"queries": ["a"] * 9}).encode(), 413),  # serve.max_queries=8
    (json.dumps({"queries": ["a" * (2 << 20)]}).encode(), 413),  # over max_body_bytes
])
def test_retrieve_rejects_malformed_requests(retrieve_url, body, status):
    code, reply = post(retrieve_url, body)
    assert code == status and reply["error"]


def test_retrieve_wrong_method_and_path(retrieve_url):
    assert post(retrieve_url, b"", method="GET")[0] == 405
    assert post(retrieve_url.replace("/retrieve", "/search"), b"{}")[0] == 404


def test_http_backend_answers_a_batch(retrieve_url):
    backend = make_backend(SearchConf(backend="http", topk=2, http=HttpConf(url=retrieve_url)),
                           BackendContext(SimulatorConf(), seed=0))
    results = batch(backend)
    assert all(not r.failed and 1 <= len(r.docs) <= 2 for r in results)
    # the title line: the title the simulator wrote, else the query
    assert all(title for r in results for title, _ in r.docs)


def test_bm25_backend_answers_a_batch(tiny_assets):
    conf = SearchConf(backend="bm25", topk=3)
    conf.bm25.corpus_path = str(tiny_assets.data / "corpus.jsonl")
    results = batch(make_backend(conf, BackendContext(SimulatorConf(), seed=0)))
    assert not any(r.failed for r in results)
    assert all(len(r.docs) <= 3 for r in results) and len(results[0].docs) >= 1


@pytest.fixture(scope="module")
def openai_server(tiny_assets, tmp_path_factory):
    """vLLM's own OpenAI-compatible server with the tiny simulator, as ZeroSearch served."""
    log = tmp_path_factory.mktemp("openai") / "server.log"
    with vllm_openai_server(str(tiny_assets.simulator), log) as base:
        yield base


def test_openai_backend_answers_a_batch(openai_server):
    conf = SearchConf(backend="openai", topk=3,
                      openai=OpenAIConf(base_url=openai_server, model="tiny-sim"))
    backend = make_backend(conf, BackendContext(SimulatorConf(max_tokens=48), seed=0),
                           NoiseSchedule(end=0.5, total_steps=1))
    results = batch(backend)
    assert all(not r.failed and 1 <= len(r.docs) <= 3 for r in results), results
    assert all(t > 0 for t in backend.stats.tokens)


def test_openai_backend_records_a_refused_endpoint():
    conf = SearchConf(backend="openai", timeout_s=5, retries=1,
                      openai=OpenAIConf(base_url=f"http://127.0.0.1:{free_port()}/v1",
                                        model="m"))
    backend = make_backend(conf, BackendContext(SimulatorConf(), seed=0))
    results = batch(backend)
    assert all(r.failed for r in results) and "Connect" in results[0].error
    assert backend.stats.failures == len(QUERIES)


def test_self_backend_writes_information_with_the_policy(tiny_assets):
    from actors.dataset import load_questions
    from actors.engine import start_engine
    from actors.episode import run_episode
    from actors.turns import Turns
    from conf.schema import EngineConf

    async def play():
        engine = start_engine(EngineConf(), str(tiny_assets.policy), seed=0)
        try:
            tokenizer = engine.get_tokenizer()
            encode = lambda text: tokenizer.encode(text, add_special_tokens=False)
            policy = Turns(engine, temperature=1.0, seed=0)
            backend = make_backend(SearchConf(backend="self"), BackendContext(
                SimulatorConf(max_tokens=32), seed=0, generator=policy, encode=encode))
            questions = load_questions(tiny_assets.data / "train.parquet")[:8]
            limits = Limits(3, 32, 400, 800)
            trajs = await asyncio.gather(*[run_episode(
                encode(q.prompt), q, policy, backend, encode, limits, f"g{q.index}")
                for q in questions])
            return trajs, tokenizer, backend
        finally:
            engine.shutdown()

    trajs, tokenizer, backend = asyncio.run(play())
    searched = [t for t in trajs if t.search_calls]
    assert searched and len(backend.stats.tokens) == sum(t.search_calls for t in trajs)
    info_open = tokenizer.convert_tokens_to_ids("<information>")
    for traj in searched:
        at = traj.token_ids.index(info_open, traj.prompt_len)
        assert traj.loss_mask[at] == 0 and traj.logprobs[at] == 0.0
        # the self-written span up to </information> is masked like any observation
        end = traj.token_ids.index(tokenizer.convert_tokens_to_ids("</information>"), at)
        assert not any(traj.loss_mask[at:end + 1])
