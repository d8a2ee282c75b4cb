"""Search backends' logic with scripted stand-ins: retries and timeouts, noise draws,
self-search masking, HTTP batching, BM25 on the tiny corpus, and the simulator's prompt
and output parsing. The same backends run against real servers in test_search_backends."""

import asyncio

import pytest

from actors.dataset import Question
from actors.episode import Limits, run_episode
from actors.trajectory import TurnOutput
from actors.retrievers import (Bm25Retriever, HttpRetriever, load_corpus,
                               parse_retrieve_response)
from actors.search import (SearchRequest, SearchStats, SelfSearch, SimulatedSearch,
                           call_with_retries)
from actors.simulator_prompt import EXAMPLES, parse_documents, request_prompt, simulator_prompt
from conf.schema import SearchConf, SimulatorConf
from actors.curriculum import NoiseSchedule, is_noisy
from tinyworld.world import write_world


def request(key="g0/s0/t0", query="q", step=0):
    return SearchRequest(query, "where?", ["Paris"], key, step=step)


def test_a_hanging_call_ends_as_a_recorded_failure():
    stats = SearchStats()
    calls = []

    async def hang():
        calls.append(1)
        await asyncio.Event().wait()  # never answers

    value, error = asyncio.run(call_with_retries(hang, 0.05, retries=2, stats=stats))
    assert value is None and "timed out" in error
    assert len(calls) == 3 and (stats.retried, stats.failures) == (2, 1)


class FlakyWriter:
    """Fails `failures` times, then writes documents; records the noisy flags it saw."""

    def __init__(self, failures=0, docs=("a doc",)):
        self.failures, self.docs, self.noisy = failures, list(docs), []

    async def __call__(self, query, question, answers, noisy, num_docs):
        self.noisy.append(noisy)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("replica died")
        return {"docs": self.docs[:num_docs], "tokens": 7}


def simulated(writer, retries=2):
    return SimulatedSearch(writer, SearchConf(topk=3, timeout_s=5, retries=retries), seed=3)


def test_a_failed_simulator_call_is_retried():
    search = simulated(FlakyWriter(failures=2))
    result = asyncio.run(search.search(request()))
    assert not result.failed and result.docs == [("", "a doc")]
    stats = search.stats.drain()
    assert (stats["retried"], stats["failures"], stats["tokens"]) == (2, 0, [7])
    assert search.stats.drain()["tokens"] == []  # drained


def test_a_simulated_title_reaches_the_policy_as_a_retriever_title():
    writer = FlakyWriter(docs=["(Title: Ana Lu) Ana Lu was born in Lima.", "an untitled doc"])
    result = asyncio.run(simulated(writer).search(request()))
    assert result.docs == [("Ana Lu", "Ana Lu was born in Lima."), ("", "an untitled doc")]


def test_garbage_output_is_retried_then_recorded():
    search = simulated(FlakyWriter(docs=[]), retries=1)
    result = asyncio.run(search.search(request()))
    assert result.failed and "no usable document" in result.error
    assert (search.stats.retried, search.stats.failures) == (1, 1)


def test_noise_follows_the_seeded_draw():
    writer = FlakyWriter()
    search = simulated(writer)
    search.noise = NoiseSchedule("linear", 0.0, 0.8, total_steps=10)  # p(5) = 0.4
    keys = [f"g{i}/s0/t0" for i in range(200)]
    results = [asyncio.run(search.search(request(k, step=5))) for k in keys]
    expected = [is_noisy(0.4, 3, k) for k in keys]
    assert [r.noisy for r in results] == writer.noisy == expected
    assert 40 < sum(expected) < 120
    # the same keys at the request's step 0 (p = 0) are never noisy
    assert not any(asyncio.run(search.search(request(k, step=0))).noisy for k in keys)


class CountingWriter(FlakyWriter):
    """Writes a numbered page per call, after a pause, so identical searches overlap."""

    def __init__(self, failures=0):
        super().__init__(failures)
        self.calls = 0

    async def __call__(self, query, question, answers, noisy, num_docs):
        await asyncio.sleep(0.01)
        await super().__call__(query, question, answers, noisy, num_docs)  # raises while failures remain
        self.calls += 1
        return {"docs": [f"page {self.calls} for {query}"], "tokens": 7}


def cached(writer, size=8, retries=0):
    conf = SearchConf(topk=3, timeout_s=5, retries=retries, cache_size=size)
    return SimulatedSearch(writer, conf, seed=3)


def test_identical_searches_share_one_simulator_call():
    writer = CountingWriter()
    search = cached(writer)

    async def play():
        same = [search.search(request(f"g0/s{i}/t0", "who")) for i in range(8)]
        return await asyncio.gather(*same, search.search(request("g0/s8/t0", "where")))

    results = asyncio.run(play())
    assert writer.calls == 2
    assert {r.docs[0][1] for r in results[:8]} == {"page 1 for who"}
    assert results[8].docs == [("", "page 2 for where")]
    stats = search.stats.drain()
    assert (stats["cache_hits"], len(stats["latencies"]), stats["usable_docs"]) == (7, 2, [1] * 9)


def test_the_cache_keeps_useful_and_noisy_pages_apart():
    writer = CountingWriter()
    search = cached(writer)
    search.noise = NoiseSchedule(end=0.5, total_steps=1)
    keys = [f"g0/s{i}/t0" for i in range(20)]
    results = [asyncio.run(search.search(request(k, "who"))) for k in keys]
    assert writer.calls == 2  # one useful page, one noisy page
    pages = {r.noisy: r.docs[0][1] for r in results}
    assert all(r.docs[0][1] == pages[r.noisy] for r in results) and len(set(pages.values())) == 2


def test_the_cache_evicts_the_least_recently_used_and_forgets_failures():
    writer = CountingWriter(failures=1)
    search = cached(writer, size=2)
    first = asyncio.run(search.search(request(query="a")))
    assert first.failed and writer.calls == 0
    for query in ["a", "b", "a", "c", "a", "b"]:  # b is evicted by c, a stays in use
        asyncio.run(search.search(request(query=query)))
    assert writer.calls == 4 and search.stats.cache_hits == 2


class WritingEngine:
    """A policy that searches, then writes its own information, then answers."""

    def __init__(self):
        self.turns = ["<search> capital </search>", " Paris is big </information>",
                      "<answer> Paris </answer>"]
        self.stops = []

    async def generate(self, token_ids, max_tokens, stop=None, key=""):
        self.stops.append(stop)
        text = self.turns.pop(0)
        ids = [ord(c) for c in text]
        return TurnOutput(ids, [-0.5] * len(ids), text, "stop", [1] * len(ids))


def test_self_search_writes_masked_information_from_the_policys_own_tokens():
    encode = lambda text: [1000 + ord(c) for c in text]
    engine = WritingEngine()
    search = SelfSearch(engine, encode, max_tokens=64)
    q = Question(0, "capital?", "prompt", ["Paris"], "test")
    limits = Limits(max_turns=3, max_turn_tokens=50, max_obs_tokens=500,
                    max_context_tokens=2000)
    traj = asyncio.run(run_episode([1, 2], q, engine, search, encode, limits, key="g0/s0"))
    assert engine.stops == [None, ["</information>"], None]
    written = [ord(c) for c in " Paris is big </information>"]
    observation = encode("\n\n<information>") + written + encode("\n\n")
    first = [ord(c) for c in "<search> capital </search>"]
    answer = [ord(c) for c in "<answer> Paris </answer>"]
    assert traj.token_ids == [1, 2] + first + observation + answer
    assert traj.loss_mask == ([0, 0] + [1] * len(first) + [0] * len(observation)
                              + [1] * len(answer))
    assert "<information> Paris is big </information>" in traj.response_text
    assert (traj.search_calls, traj.answer) == (1, "Paris")


def test_http_client_sends_concurrent_searches_in_one_request():
    retriever = HttpRetriever("http://unused", batch_window_s=0.05)
    posts = []

    async def fake_post(queries, topk):
        posts.append((list(queries), topk))
        return [[(q, f"doc {i}") for i in range(topk)] for q in queries]

    retriever.post = fake_post

    async def many():
        return await asyncio.gather(*[retriever(f"q{i}", 2) for i in range(5)])

    results = asyncio.run(many())
    assert posts == [([f"q{i}" for i in range(5)], 2)]
    assert results[3] == [("q3", "doc 0"), ("q3", "doc 1")]


def test_http_failure_reaches_every_waiting_search():
    retriever = HttpRetriever("http://unused", batch_window_s=0.01)

    async def broken(queries, topk):
        raise ConnectionError("refused")

    retriever.post = broken

    async def two():
        return await asyncio.gather(retriever("a", 1), retriever("b", 1),
                                    return_exceptions=True)

    assert all(isinstance(r, ConnectionError) for r in asyncio.run(two()))


def test_search_r1_response_shapes():
    scored = {"result": [[{"document": {"id": "1", "contents": "\"Paris\"\nCapital."},
                           "score": 3.2}], []]}
    bare = {"result": [[{"id": "1", "contents": "\"Paris\"\nCapital."}], []]}
    assert parse_retrieve_response(scored, 2) == parse_retrieve_response(bare, 2) == [
        [("Paris", "Capital.")], []]
    with pytest.raises(ValueError, match="expected 'result' with 3 lists"):
        parse_retrieve_response(scored, 3)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_world(out, seed=0, num_people=20)
    return out


def test_bm25_finds_the_document_of_the_person_asked_about(world):
    import pandas as pd

    retriever = Bm25Retriever(str(world / "corpus.jsonl"))
    rows = pd.read_parquet(world / "train.parquet").to_dict("records")[:12]
    for row in rows:
        name = row["question"].split(" of ")[-1].split(" was ")[-1].replace(" born?", "")
        name = name.rstrip("?")
        docs = asyncio.run(retriever(row["question"], 3))
        assert docs[0][0] == name, (row["question"], docs)
    assert asyncio.run(retriever("zzzz qqqq", 3)) == []


def test_a_malformed_corpus_line_names_file_and_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "0", "contents": "\\"A\\"\\ntext"}\n{"id": "1"}\n')
    with pytest.raises(ValueError, match=r"corpus.jsonl: line 2"):
        load_corpus(path)


def test_prompt_modes():
    sft_noisy = simulator_prompt("sft", "capital", "capital of France?", ["Paris"], True, 5, 30)
    assert "write 5 noisy documents" in sft_noisy and "whose answer is Paris" in sft_noisy
    assert sft_noisy.endswith("Query: capital\nNoisy output:\n")
    only_useful = simulator_prompt("prompt_only", "capital", "capital of France?", ["Paris"],
                                   False, 5, 30)
    assert EXAMPLES["useful"] in only_useful and "whose answer is Paris" in only_useful
    only_noisy = simulator_prompt("prompt_only", "capital", "capital of France?", ["Paris"],
                                  True, 5, 30)
    assert EXAMPLES["noisy"] in only_noisy
    assert "Paris" not in only_noisy and "France" not in only_noisy
    bare = simulator_prompt("sft", "capital", "", [], False, 3, 30)
    assert "The user is trying" not in bare
    with pytest.raises(ValueError, match="allowed"):
        simulator_prompt("chat", "q", "", [], False, 3, 30)



def test_a_simulator_without_the_question_sees_the_query_alone():
    told = request_prompt(SimulatorConf(doc_words=20), "capital", "capital of France?",
                          ["Paris"], False, 3)
    assert told == simulator_prompt("sft", "capital", "capital of France?", ["Paris"], False,
                                    3, 20)
    blind = request_prompt(SimulatorConf(with_question=False), "capital", "capital of France?",
                           ["Paris"], False, 3)
    assert "Paris" not in blind and "France" not in blind and "Query: capital" in blind


@pytest.mark.parametrize("text, expected", [
    ("Doc 1: a b\nDoc 2: c\nDoc 3: d\n", ["a b", "c", "d"]),  # regular
    ("Doc 1: a Doc 2: b", ["a", "b"]),  # merged on one line
    ("Doc 1: a\nDoc 2:\nDoc 3: c", ["a", "c"]),  # an empty document
    ("Doc 1: a\nDoc 2: b\nDoc 3: c\nDoc 4: d", ["a", "b", "c"]),  # extra, cut at k+1
    ("doc 1 : a\nDOC 2: b", ["a", "b"]),  # loose headers
    ("no headers at all", ["no headers at all"]),  # format ignored: one document
    ("   ", []),  # nothing usable
    ("Doc 1: a\nDoc 2: a\nDoc 3: b", ["a", "a", "b"]),  # a repeat stays: three documents
    ("Doc 1: (Title: A) a\nDoc 2: (Title: B)\nDoc 3: (Tit", ["(Title: A) a"]),  # no text, cut
])
def test_parse_documents_tolerates_bad_output(text, expected):
    assert parse_documents(text, 3) == expected
