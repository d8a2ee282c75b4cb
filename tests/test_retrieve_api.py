"""The Search-R1 /retrieve request check and response shape (pure; the served endpoint is
exercised over HTTP in test_search_backends)."""

import asyncio
import json

import pytest

from actors.retrieve_api import (RequestError, RetrieveAPI, parse_retrieve_request,
                                 retrieve_response)
from conf.schema import SearchConf, ServeConf

CONF = ServeConf(max_queries=4, max_body_bytes=400)


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
    """A stand-in for the simulator pool's handle: pages by query, or an error."""

    def __init__(self, pages: dict):
        self.pages, self.calls = pages, []
        self.search = self

    async def remote(self, query, question, answers, noisy, num_docs):
        self.calls.append(query)
        page = self.pages[query]
        if isinstance(page, Exception):
            raise page
        return {"docs": page, "tokens": 1}


class Request:
    def __init__(self, body: dict):
        self.body_bytes = json.dumps(body).encode()
        self.method, self.headers = "POST", {"content-length": str(len(self.body_bytes))}
        self.url = type("Url", (), {"path": "/retrieve"})()

    async def body(self):
        return self.body_bytes


def served(pages: dict, queries: list[str]) -> tuple[int, dict, Pool]:
    pool = Pool(pages)
    api = RetrieveAPI(pool, CONF, SearchConf(retries=1, timeout_s=5.0))
    response = asyncio.run(api(Request({"queries": queries})))
    return response.status_code, json.loads(response.body), pool


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
