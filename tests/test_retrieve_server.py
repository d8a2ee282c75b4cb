"""`simsearch serve-simulator` under abuse and load, over HTTP on 127.0.0.1 (real Ray Serve
with its HTTP proxy, real vLLM): any Unicode is answered or refused, never a 5xx; a chunked
body over serve.max_body_bytes is cut while it streams in; clients beyond
serve.max_pending_queries are answered or refused with Retry-After, each within a bound,
and the server stays up with bounded memory."""

import http.client
import json
import select
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import psutil
import pytest

from actors.retrieve_api import RETRY_AFTER_S
from tests.helpers import serve_simulator
from tests.test_search_backends import post

pytestmark = pytest.mark.integration

MAX_PENDING = 16  # two requests of 8 queries in flight; a third is refused


@pytest.fixture(scope="module")
def server(tiny_assets, tmp_path_factory):
    """(url, pid) of `simsearch serve-simulator` with a small bound on queries in flight."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serve_simulator(log, ("serve.max_queries=8",
                               f"serve.max_pending_queries={MAX_PENDING}",
                               "search.retries=5")) as (url, proc):
        yield url, proc.pid


def queries_body(queries: list[str]) -> bytes:
    return json.dumps({"queries": queries}).encode()


@pytest.mark.parametrize("body, status", [
    (queries_body(["hello 😀 world"]), 200),  # escaped as a surrogate pair in JSON
    (json.dumps({"queries": ["🎉 party", "中文"]}, ensure_ascii=False).encode(), 200),
    (b'{"queries": ["\\ud800"]}', 400),  # a lone surrogate: no UTF-8 spelling
    (b'{"queries": ["ok", "\\udfff tail"]}', 400),
    (queries_body(["x" * 100_000]), 400),  # over serve.max_query_chars
    (queries_body(["😀" * 256]), 200),  # the longest query, 4 tokens a character
    (b'{"queries": ["\xff\xfe"]}', 400),  # bytes that are not UTF-8
])
def test_any_unicode_is_answered_or_refused_never_a_5xx(server, body, status):
    code, reply = post(server[0], body)
    assert code == status, reply
    if status == 400:
        assert reply["error"]
    else:
        assert len(reply["result"][0]) >= 1


def test_a_chunked_body_over_the_limit_is_refused_before_it_is_all_sent(server):
    """50 MB offered in 64 KiB chunks with no content-length, at most ~13 MB/s (4 s in
    all): the 413 comes back while the client is still sending. What arrives meanwhile
    past serve.max_body_bytes (1 MiB) sits in the sockets and Serve's proxy, which drops
    the rest of a body once its response is sent."""
    url = urllib.parse.urlsplit(server[0])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.putrequest("POST", url.path)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk, sent, total = b"x" * (64 << 10), 0, 50 << 20
    while sent < total and not select.select([conn.sock], [], [], 0.005)[0]:
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sent += len(chunk)
    print(f"{sent >> 10} KiB sent before the 413")
    assert sent < total, "the whole body was sent before any answer"
    response = conn.getresponse()
    assert response.status == 413
    assert "serve.max_body_bytes" in json.loads(response.read())["error"]
    conn.close()


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (Ray, the replicas, vLLM)."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:  # a worker that ended meanwhile
            pass
    return total


def client(url: str, seconds: float, start: threading.Barrier, out: list) -> None:
    """Requests of 8 queries back to back for `seconds`: (status, seconds, Retry-After)
    each; a refused client pauses a little (not the whole Retry-After, to keep the
    pressure on)."""
    start.wait()
    until, i = time.monotonic() + seconds, 0
    while time.monotonic() < until:
        began = time.monotonic()
        req = urllib.request.Request(url, data=queries_body([f"where was Kalo born {i}"] * 8),
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=90) as response:
                response.read()
                out.append((response.status, time.monotonic() - began, None))
        except urllib.error.HTTPError as err:
            out.append((err.code, time.monotonic() - began, err.headers.get("Retry-After")))
            time.sleep(0.2)
        i += 1


def test_clients_beyond_capacity_are_answered_or_refused_and_the_server_holds(server):
    """12 clients of 8 queries each for 20 s against a bound of 16 queries in flight:
    every request is answered or refused with Retry-After, each within 60 s; afterwards
    the server answers a plain request and its processes hold under 1 GiB more memory."""
    url, pid = server
    assert post(url, queries_body(["warm up"]))[0] == 200
    before = tree_rss(pid)
    clients, out = 12, []
    start = threading.Barrier(clients)
    threads = [threading.Thread(target=client, args=(url, 20.0, start, out))
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    statuses = [status for status, _, _ in out]
    summary = f"{len(out)} requests: {statuses.count(200)} answered, " \
              f"{statuses.count(503)} refused"
    assert set(statuses) == {200, 503}, (summary, statuses)  # answered or refused only
    assert all(seconds < 60 for _, seconds, _ in out), max(s for _, s, _ in out)
    assert all(retry == str(RETRY_AFTER_S) for status, _, retry in out if status == 503)
    assert post(url, queries_body(["where was Kalo born"]))[0] == 200  # still up
    growth = tree_rss(pid) - before
    print(f"{summary}; the server's memory grew by {growth >> 20} MiB")
    assert growth < 1 << 30, f"the server's memory grew by {growth >> 20} MiB"
