"""The Search-R1 /retrieve request check, response shape and the ingress's limits (body
cut while read, queries in flight, query length, Unicode) with a stand-in pool; the
served endpoint is exercised over HTTP in test_search_backends and test_retrieve_load."""

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from actors.retrieve_api import (RETRY_AFTER_S, RequestError, RetrieveAPI,
                                 parse_retrieve_request, retrieve_response)
from conf.schema import SearchConf, ServeConf

CONF = ServeConf(max_queries=4, max_body_bytes=400, max_query_chars=50,
                 max_pending_queries=6)


def parse(obj):
    return parse_retrieve_request(json.dumps(obj).encode(), CONF, default_topk=3)


def test_a_search_r1_request():
    req = parse({"queries": ["a", "b"], "topk": 2, "return_scores": True})
    assert (req.queries, req.topk, req.return_scores) == (["a", "b"], 2, True)
    assert parse({"queries": ["a"]}).topk == 3  # defaults


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "not JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"topk": 3}).encode(), 400, "'queries'"),
    (json.dumps({"queries": []}).encode(), 400, "non-empty list"),
    (json.dumps({"queries": "a"}).encode(), 400, "non-empty list"),
    (json.dumps({"queries": ["a", 3, " "]}).encode(), 400, r"bad at \[1, 2\]"),
    (json.dumps({"queries": ["a"], "topk": 0}).encode(), 400, "'topk'"),
    (json.dumps({"queries": ["a"], "topk": True}).encode(), 400, "'topk'"),
    (json.dumps({"queries": ["a"], "return_scores": "yes"}).encode(), 400, "return_scores"),
    (json.dumps({"queries": ["a"] * 5}).encode(), 413, "max_queries=4"),
    (json.dumps({"queries": ["x" * 500]}).encode(), 413, "max_body_bytes=400"),
])
def test_malformed_and_oversized_requests(body, status, words):
    with pytest.raises(RequestError, match=words) as err:
        parse_retrieve_request(body, CONF, default_topk=3)
    assert err.value.status == status


def test_response_shape():
    scored = retrieve_response(["q1", "q2"], [["d1", "d2"], ["d3"]], True)
    first = scored["result"][0][0]
    assert first == {"document": {"id": "sim-0", "contents": "\"q1\"\nd1"}, "score": 2.0}
    assert scored["result"][1] == [{"document": {"id": "sim-2", "contents": "\"q2\"\nd3"},
                                    "score": 1.0}]
    bare = retrieve_response(["q1"], [["d1"]], False)
    assert bare == {"result": [[{"id": "sim-0", "contents": "\"q1\"\nd1"}]]}
    titled = retrieve_response(["q1"], [["(Title: Ana) Ana was born in Lima."]], False)
    assert titled["result"][0][0]["contents"] == "\"Ana\"\nAna was born in Lima."


class Pool:
    """A stand-in for the simulator pool's handle: pages by query, or an error; with a
    gate, every call waits for it to open (queries held in flight)."""

    def __init__(self, pages: dict, gate: asyncio.Event | None = None):
        self.pages, self.calls, self.gate = pages, [], gate
        self.search = self

    async def remote(self, query, question, answers, noisy, num_docs):
        self.calls.append(query)
        if self.gate is not None:
            await self.gate.wait()
        page = self.pages.get(query, ["(Title: T) a page."])
        if isinstance(page, Exception):
            raise page
        return {"docs": page, "tokens": 1}


class Request:
    """A stand-in for starlette's Request: the body streams in chunks (a chunked upload
    when chunked, else with a content-length); `pulled` counts the chunks read."""

    def __init__(self, body: dict | bytes, chunk: int = 1 << 20, chunked: bool = False):
        self.body_bytes = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.chunk, self.pulled = chunk, 0
        self.method = "POST"
        self.headers = {} if chunked else {"content-length": str(len(self.body_bytes))}
        self.url = type("Url", (), {"path": "/retrieve"})()

    async def stream(self):
        for start in range(0, len(self.body_bytes), self.chunk):
            self.pulled += 1
            yield self.body_bytes[start:start + self.chunk]


def api_with(pool: Pool, conf: ServeConf = CONF) -> RetrieveAPI:
    return RetrieveAPI(pool, conf, SearchConf(retries=1, timeout_s=5.0))


def reply_of(response) -> tuple[int, dict]:
    return response.status_code, json.loads(response.body)


def served(pages: dict, queries: list[str]) -> tuple[int, dict, Pool]:
    pool = Pool(pages)
    response = asyncio.run(api_with(pool)(Request({"queries": queries})))
    return *reply_of(response), pool


def test_a_query_the_pool_cannot_answer_is_a_503_that_names_the_last_error():
    status, reply, pool = served({"a": ["(Title: A) a."], "b": [],
                                  "c": RuntimeError("replica died")}, ["a", "b"])
    assert status == 503 and "failed on 1 of 2 queries" in reply["error"]
    assert "EmptyOutput: no usable document" in reply["error"]
    assert pool.calls.count("b") == 2  # retried once (search.retries=1), then given up
    status, reply, _ = served({"c": RuntimeError("replica died")}, ["c"])
    assert status == 503 and "RuntimeError: replica died" in reply["error"]
    status, reply, _ = served({"a": ["(Title: A) a."]}, ["a"])
    assert status == 200 and reply["result"][0][0]["contents"] == "\"A\"\na."


# --- the body, cut while it is read -------------------------------------------------


def test_a_chunked_body_is_cut_as_soon_as_it_passes_max_body_bytes():
    # 400-byte limit, 100-byte chunks, no content-length: the 5th chunk passes the limit
    # (500 > 400), so the 10,000-byte body is read no further than that.
    request = Request(b"x" * 10_000, chunk=100, chunked=True)
    status, reply = reply_of(asyncio.run(api_with(Pool({}))(request)))
    assert status == 413 and "serve.max_body_bytes=400" in reply["error"]
    assert request.pulled == 5


def test_a_declared_oversized_body_is_refused_before_reading():
    request = Request(b"x" * 10_000, chunk=100)
    assert asyncio.run(api_with(Pool({}))(request)).status_code == 413
    assert request.pulled == 0


def test_a_chunked_body_within_the_limit_is_answered():
    request = Request({"queries": ["a", "b"]}, chunk=7, chunked=True)
    status, reply = reply_of(asyncio.run(api_with(Pool({}))(request)))
    assert status == 200 and len(reply["result"]) == 2


# --- queries in flight ----------------------------------------------------------------


def test_a_request_beyond_the_pending_bound_is_refused_at_once_with_retry_after():
    async def run():
        gate = asyncio.Event()
        pool = Pool({}, gate)
        api = api_with(pool)  # max_pending_queries=6
        first = asyncio.create_task(api(Request({"queries": ["a", "b", "c", "d"]})))
        while len(pool.calls) < 4:  # the 4 queries reach the pool and wait there
            await asyncio.sleep(0)
        assert api.pending.count == 4
        refused = await api(Request({"queries": ["e", "f", "g"]}))  # 4 + 3 > 6
        fits = asyncio.create_task(api(Request({"queries": ["h", "i"]})))  # 4 + 2 = 6
        while len(pool.calls) < 6:
            await asyncio.sleep(0)
        assert api.pending.count == 6
        gate.set()
        answered = [await first, await fits]
        return refused, answered, pool, api

    refused, answered, pool, api = asyncio.run(run())
    status, reply = reply_of(refused)
    assert status == 503 and refused.headers["retry-after"] == str(RETRY_AFTER_S)
    assert "serve.max_pending_queries=6" in reply["error"]
    assert not {"e", "f", "g"} & set(pool.calls)  # refused, not queued
    assert [r.status_code for r in answered] == [200, 200]
    assert api.pending.count == 0


def test_a_request_larger_than_the_pending_bound_is_admitted_only_when_idle():
    conf = ServeConf(max_queries=8, max_pending_queries=3)

    async def run():
        gate = asyncio.Event()
        api = api_with(Pool({}, gate), conf)
        small = asyncio.create_task(api(Request({"queries": ["a"]})))
        while api.pending.count < 1:
            await asyncio.sleep(0)
        busy = await api(Request({"queries": ["b"] * 4}))  # 4 > 3 while 1 is in flight
        gate.set()
        await small
        idle = await api(Request({"queries": ["c"] * 4}))  # nothing in flight: admitted
        return busy, idle, api

    busy, idle, api = asyncio.run(run())
    assert busy.status_code == 503 and idle.status_code == 200
    assert api.pending.count == 0


def test_pending_queries_are_released_on_errors_and_cancellations():
    async def run():
        failing = api_with(Pool({"a": RuntimeError("replica died")}))
        assert (await failing(Request({"queries": ["a", "b"]}))).status_code == 503
        assert failing.pending.count == 0
        pool = Pool({}, asyncio.Event())  # never opens: a client that hangs up
        api = api_with(pool)
        task = asyncio.create_task(api(Request({"queries": ["a", "b", "c"]})))
        while len(pool.calls) < 3:
            await asyncio.sleep(0)
        assert api.pending.count == 3
        task.cancel()  # Serve cancels the handler when the client disconnects
        with pytest.raises(asyncio.CancelledError):
            await task
        return api

    assert asyncio.run(run()).pending.count == 0


def test_the_pending_count_is_exact_under_many_concurrent_requests():
    # 60 requests of 1-4 queries against a bound of 6, the pool answering after a few
    # loop turns: never more than 6 queries at the pool, every request answered or
    # refused, and nothing left counted at the end.
    in_flight, most = 0, 0

    class CountingPool(Pool):
        async def remote(self, query, *args):
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            for _ in range(len(query)):
                await asyncio.sleep(0)
            in_flight -= 1
            return {"docs": ["a page."], "tokens": 1}

    async def run():
        api = api_with(CountingPool({}))
        sizes = [1 + i % 4 for i in range(60)]
        replies = await asyncio.gather(*[
            api(Request({"queries": ["q" * (1 + (i * 7) % 9)] * n}))
            for i, n in enumerate(sizes)])
        return api, [r.status_code for r in replies]

    api, statuses = asyncio.run(run())
    assert set(statuses) == {200, 503} and len(statuses) == 60
    assert most <= 6 and api.pending.count == 0


# --- query length and Unicode -----------------------------------------------------------


def test_a_query_over_max_query_chars_is_a_400_naming_the_key():
    with pytest.raises(RequestError, match=r"serve.max_query_chars=50 .*at \[1\]") as err:
        parse({"queries": ["a", "x" * 51]})
    assert err.value.status == 400
    assert parse({"queries": ["x" * 50]}).queries == ["x" * 50]


@pytest.mark.parametrize("body, index", [
    (b'{"queries": ["\\ud800"]}', 0),  # a lone high surrogate, as JSON may spell it
    (b'{"queries": ["ok", "a\\udfffb"]}', 1),  # a lone low surrogate
    (b'{"queries": ["\\ude00\\ud83d"]}', 0),  # a pair in the wrong order
])
def test_a_query_not_encodable_as_utf8_is_a_400_naming_its_index(body, index):
    with pytest.raises(RequestError, match=rf"valid Unicode.*at \[{index}\]") as err:
        parse_retrieve_request(body, CONF, default_topk=3)
    assert err.value.status == 400


@pytest.mark.parametrize("query", ["hello 😀 world", "😀", "\\ud83d\\ude00 escaped pair",
                                   "👨‍👩‍👧 family", "中文", "a\\u0000b", "\U0010ffff"])
def test_any_valid_unicode_query_is_answered(query):
    query = json.loads(f'"{query}"')  # JSON escapes resolved: a surrogate pair is one emoji
    status, reply, pool = served({}, [query])
    assert status == 200 and pool.calls == [query]
    assert reply["result"][0][0]["contents"] == '"T"\na page.'


def test_a_body_that_is_not_utf8_is_a_400():
    with pytest.raises(RequestError, match="not JSON") as err:
        parse_retrieve_request(b'{"queries": ["\xff\xfe\xfa"]}', CONF, default_topk=3)
    assert err.value.status == 400


# --- no input makes the parser raise anything but RequestError ---------------------------

# any text, and text with lone surrogates (st.text leaves those out, even when asked)
TEXT = st.text(min_size=1, max_size=55) | st.lists(
    st.characters() | st.characters(categories=["Cs"]), min_size=1, max_size=55).map("".join)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12)
# mostly well-formed requests, so that examples get past the syntax checks
REQUESTS = st.fixed_dictionaries(
    {"queries": st.lists(TEXT, min_size=1, max_size=5) | JSON_VALUES},
    optional={"topk": st.integers(-1, 51) | JSON_VALUES,
              "return_scores": st.booleans() | JSON_VALUES}) | JSON_VALUES
PROPERTY_CONF = ServeConf(max_queries=4, max_body_bytes=4096, max_query_chars=50)
FEW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parses_or_refuses(body: bytes) -> None:
    try:
        request = parse_retrieve_request(body, PROPERTY_CONF, default_topk=3)
    except RequestError as err:
        assert err.status in (400, 413)
        return
    assert 1 <= len(request.queries) <= PROPERTY_CONF.max_queries
    assert all(len(q) <= PROPERTY_CONF.max_query_chars and q.encode()
               for q in request.queries)


@FEW
@given(st.binary(max_size=500))
def test_no_bytes_make_the_parser_raise_anything_but_request_error(body):
    parses_or_refuses(body)


@FEW
@given(REQUESTS, st.sampled_from(["escaped", "utf-8", "utf-16", "utf-32"]))
def test_no_json_request_makes_the_parser_raise_anything_but_request_error(obj, spelling):
    # JSON built to reach past the syntax checks, in every encoding json.loads detects;
    # "escaped" spells every non-ASCII character as \\uXXXX (a lone surrogate then
    # reaches the parser as a str), the others write a surrogate's bytes as they are
    if spelling == "escaped":
        body = json.dumps(obj).encode()
    else:
        body = json.dumps(obj, ensure_ascii=False).encode(spelling, "surrogatepass")
    parses_or_refuses(body)


def test_deeply_nested_json_is_a_400_not_a_recursion_error():
    with pytest.raises(RequestError) as err:
        parse_retrieve_request(b"[" * 100_000, ServeConf(), default_topk=3)
    assert err.value.status == 400


def test_serve_simulator_warns_when_the_longest_query_may_not_fit_the_context():
    from conf.loader import CONF_DIR, load_config
    from orchestrator.serve_simulator import context_warning

    assert context_warning(load_config(CONF_DIR / "tiny.yaml")) == ""  # 256 characters fit
    warning = context_warning(load_config(CONF_DIR / "tiny.yaml",
                                          ["serve.max_query_chars=1000"]))
    assert "serve.max_query_chars=1000" in warning and "max_model_len=2048" in warning
