"""Search-R1's ``POST /retrieve`` in front of the simulator pool (a Ray Serve ingress).

Request ``{"queries": [str], "topk": int, "return_scores": bool}``; response
``{"result": [[{"document": {"id", "contents"}, "score"}, ...] per query]}``, or bare
document dicts when return_scores is false, so Search-R1 / verl training code can use the
simulator as its retriever unchanged. A simulated document without a title gets the query
as the title line of ``contents``; scores are by rank (k for the first, 1 for
the last). Malformed requests get a 400 with a message, oversized ones a 413; a query the
pool still cannot answer after the bounded retries makes the whole request a 503.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from actors.search import EmptyOutput, SearchStats, call_with_retries
from actors.simulator_prompt import split_title
from conf.schema import SearchConf, ServeConf

MAX_TOPK = 50


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
    """Validate a request body; RequestError(status, message) says what is wrong."""
    if len(body) > conf.max_body_bytes:
        raise RequestError(413, f"request body of {len(body)} bytes exceeds "
                                f"serve.max_body_bytes={conf.max_body_bytes}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(400, f"request body is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise RequestError(400, "request body must be a JSON object with 'queries'")
    queries = data.get("queries")
    if not isinstance(queries, list) or not queries:
        raise RequestError(400, "'queries' must be a non-empty list of strings")
    bad = [i for i, q in enumerate(queries) if not isinstance(q, str) or not q.strip()]
    if bad:
        raise RequestError(400, f"'queries' items must be non-empty strings; bad at {bad[:5]}")
    if len(queries) > conf.max_queries:
        raise RequestError(413, f"{len(queries)} queries exceed "
                                f"serve.max_queries={conf.max_queries}")
    topk = data.get("topk", default_topk)
    if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= MAX_TOPK:
        raise RequestError(400, f"'topk' must be an integer in [1, {MAX_TOPK}], got {topk!r}")
    return_scores = data.get("return_scores", False)
    if not isinstance(return_scores, bool):
        raise RequestError(400, f"'return_scores' must be true or false, got {return_scores!r}")
    return RetrieveRequest(queries, topk, return_scores)


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
    """The Serve ingress: validates, fans queries out to the pool, answers in one body."""

    def __init__(self, simulator, serve_conf: ServeConf, search_conf: SearchConf):
        self.simulator, self.conf, self.search = simulator, serve_conf, search_conf
        self.stats = SearchStats()
        self.served = 0

    async def __call__(self, request):
        from starlette.responses import JSONResponse

        if request.url.path.rstrip("/") != "/retrieve":
            return JSONResponse({"error": "not found; use POST /retrieve"}, status_code=404)
        if request.method != "POST":
            return JSONResponse({"error": "use POST"}, status_code=405)
        declared = int(request.headers.get("content-length") or 0)
        try:
            if declared > self.conf.max_body_bytes:
                raise RequestError(413, f"request body of {declared} bytes exceeds "
                                        f"serve.max_body_bytes={self.conf.max_body_bytes}")
            parsed = parse_retrieve_request(await request.body(), self.conf,
                                            self.search.topk)
        except RequestError as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)
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
