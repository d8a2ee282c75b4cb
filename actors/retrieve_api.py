"""Search-R1's ``POST /retrieve`` in front of the simulator pool (a Ray Serve ingress).

Request ``{"queries": [str], "topk": int, "return_scores": bool}``; response
``{"result": [[{"document": {"id", "contents"}, "score"}, ...] per query]}``, or bare
document dicts when return_scores is false, so Search-R1 / verl training code can use the
simulator as its retriever unchanged. A simulated document without a title gets the query
as the title line of ``contents``; scores are by rank (k for the first, 1 for
the last). Malformed requests get a 400 with a message (a query over serve.max_query_chars,
or not encodable as UTF-8, such as a lone surrogate), oversized ones a 413, cut while the
body is read; a request that would put more than serve.max_pending_queries queries in
flight gets a 503 with Retry-After at once. A query the pool still cannot answer after the
bounded retries makes the whole request a 503. Any other input gets a 200 or a 4xx.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass

from actors.search import EmptyOutput, SearchStats, call_with_retries
from actors.simulator_prompt import split_title
from conf.schema import SearchConf, ServeConf

MAX_TOPK = 50
# Seconds a refused client is told to wait (Retry-After): long enough for some of the
# queries in flight to be answered on the tiny CPU pool (~10 queries/s), short enough
# that a GPU pool is not left idle; clients that back off further do so on their own.
RETRY_AFTER_S = 2


class RequestError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetrieveRequest:
    queries: list[str]
    topk: int
    return_scores: bool


def parse_retrieve_request(body: bytes, conf: ServeConf, default_topk: int) -> RetrieveRequest:
    """Validate a request body; RequestError(status, message) says what is wrong. No
    input raises anything else (tests/test_retrieve_api.py checks it with hypothesis)."""
    if len(body) > conf.max_body_bytes:
        raise RequestError(413, f"request body of {len(body)} bytes exceeds "
                                f"serve.max_body_bytes={conf.max_body_bytes}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # deep nesting too
        raise RequestError(400, f"request body is not JSON: {err}"[:300]) from None
    if not isinstance(data, dict):
        raise RequestError(400, "request body must be a JSON object with 'queries'")
    queries = _queries(data.get("queries"), conf)
    topk = data.get("topk", default_topk)
    if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= MAX_TOPK:
        raise RequestError(400, f"'topk' must be an integer in [1, {MAX_TOPK}], "
                                f"got {topk!r}"[:300])
    return_scores = data.get("return_scores", False)
    if not isinstance(return_scores, bool):
        raise RequestError(400, f"'return_scores' must be true or false, "
                                f"got {return_scores!r}"[:300])
    return RetrieveRequest(queries, topk, return_scores)


def _queries(queries, conf: ServeConf) -> list[str]:
    """The 'queries' list, checked: non-empty strings, not too many, not too long, and
    encodable as UTF-8 (JSON can spell a lone surrogate, "\\ud800", which no tokenizer
    takes)."""
    if not isinstance(queries, list) or not queries:
        raise RequestError(400, "'queries' must be a non-empty list of strings")
    bad = [i for i, q in enumerate(queries) if not isinstance(q, str) or not q.strip()]
    if bad:
        raise RequestError(400, f"'queries' items must be non-empty strings; bad at {bad[:5]}")
    if len(queries) > conf.max_queries:
        raise RequestError(413, f"{len(queries)} queries exceed "
                                f"serve.max_queries={conf.max_queries}")
    long = [i for i, q in enumerate(queries) if len(q) > conf.max_query_chars]
    if long:
        raise RequestError(400, f"'queries' items must have at most serve.max_query_chars="
                                f"{conf.max_query_chars} characters; longer at {long[:5]}")
    broken = [i for i, q in enumerate(queries) if not _utf8(q)]
    if broken:
        raise RequestError(400, f"'queries' items must be valid Unicode (no lone surrogate "
                                f"such as \\ud800); invalid at {broken[:5]}")
    return queries


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def read_body(request, max_bytes: int) -> bytes:
    """The request body, read as it streams in and cut with a 413 as soon as it passes
    max_bytes, so a client cannot make the server hold more (a chunked body has no
    content-length to check first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(413, f"request body of {declared} bytes exceeds "
                                f"serve.max_body_bytes={max_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(413, f"request body exceeds serve.max_body_bytes={max_bytes}")
        chunks.append(chunk)
    return b"".join(chunks)


class PendingQueries:
    """Queries admitted and not yet answered, against a bound. Admission is all or
    nothing for a request; one larger than the bound (up to serve.max_queries) is
    admitted only when nothing is in flight, so it is served when the server is idle
    rather than never. The lock keeps the count exact even if requests run on several
    threads (Serve runs them on one event loop today)."""

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0
        self._lock = threading.Lock()

    def try_admit(self, n: int) -> bool:
        with self._lock:
            if self.count + n > self.limit and self.count > 0:
                return False
            self.count += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.count -= n


def retrieve_response(queries: list[str], docs: list[list[str]], return_scores: bool,
                      first_id: int = 0) -> dict:
    """Search-R1's response shape for simulated documents."""
    result, next_id = [], first_id
    for query, hits in zip(queries, docs):
        rows = []
        for rank, doc in enumerate(hits):
            title, text = split_title(doc)
            document = {"id": f"sim-{next_id}", "contents": f"\"{title or query}\"\n{text}"}
            next_id += 1
            rows.append({"document": document, "score": float(len(hits) - rank)}
                        if return_scores else document)
        result.append(rows)
    return {"result": result}


class RetrieveAPI:
    """The Serve ingress: validates, admits, fans queries out to the pool, answers in one
    body. serve-simulator runs one replica, so its pending bound is the server's."""

    def __init__(self, simulator, serve_conf: ServeConf, search_conf: SearchConf):
        self.simulator, self.conf, self.search = simulator, serve_conf, search_conf
        self.stats = SearchStats()
        self.pending = PendingQueries(serve_conf.max_pending_queries)
        self.served = 0

    async def __call__(self, request):
        from starlette.responses import JSONResponse

        if request.url.path.rstrip("/") != "/retrieve":
            return JSONResponse({"error": "not found; use POST /retrieve"}, status_code=404)
        if request.method != "POST":
            return JSONResponse({"error": "use POST"}, status_code=405)
        try:
            body = await read_body(request, self.conf.max_body_bytes)
            parsed = parse_retrieve_request(body, self.conf, self.search.topk)
        except RequestError as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)
        n = len(parsed.queries)
        if not self.pending.try_admit(n):
            return JSONResponse(
                {"error": f"busy: {self.pending.count} queries in flight, "
                          f"serve.max_pending_queries={self.pending.limit}; retry later"},
                status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
        try:  # released on every way out: an answer, an error, a cancelled request
            return await self._answer(parsed)
        finally:
            self.pending.release(n)

    async def _answer(self, parsed: RetrieveRequest):
        """The pages of every query, or a 503 naming the pool's last error."""
        from starlette.responses import JSONResponse

        found = await asyncio.gather(*[self._documents(q, parsed.topk) for q in parsed.queries])
        errors = [error for _, error in found if error]
        if errors:
            message = (f"the simulator failed on {len(errors)} of {len(found)} queries "
                       f"(last error: {errors[-1]}); retry later")
            print(f"POST /retrieve: {message}", flush=True)
            return JSONResponse({"error": message}, status_code=503)
        docs = [d for d, _ in found]
        body = retrieve_response(parsed.queries, docs, parsed.return_scores, self.served)
        self.served += sum(len(d) for d in docs)
        return JSONResponse(body)

    async def _documents(self, query: str, topk: int) -> tuple[list[str] | None, str]:
        """(documents, "") or (None, the last attempt's error)."""
        async def attempt():
            reply = await self.simulator.search.remote(query, "", [], False, topk)
            if not reply["docs"]:
                raise EmptyOutput("no usable document in the simulator's output")
            return reply["docs"]

        return await call_with_retries(attempt, self.search.timeout_s, self.search.retries,
                                       self.stats)
