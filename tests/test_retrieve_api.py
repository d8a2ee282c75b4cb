"""The Search-R1 /retrieve request check and response shape (pure; the served endpoint is
exercised over HTTP in test_search_backends)."""

import json

import pytest

from actors.retrieve_api import (RequestError, parse_retrieve_request, retrieve_response)
from conf.schema import ServeConf

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
