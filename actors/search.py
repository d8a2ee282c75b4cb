"""Search backends behind one interface: ``await backend.search(request) -> SearchResult``.

Chosen by name (``search.backend``) from ``BACKENDS``:

- ``simulator``: the Ray Serve simulator pool (``actors.simulator``);
- ``openai``: any OpenAI-compatible chat endpoint playing the simulator;
- ``bm25``: a local BM25 index over a Search-R1 jsonl corpus (``actors.retrievers``);
- ``http``: a Search-R1 retrieval server's ``POST /retrieve``;
- ``self``: no call at all, the policy writes its own information (SSRL).

The two simulated backends draw useful/noisy per search from the curriculum at the
request's step (a seeded hash of the search's key, so concurrent episodes do not change
each other's draws). Every remote call has a timeout and a bounded retry with exponential
backoff; output with no usable document counts as a failed attempt; a search that still
fails comes back as a recorded failure, which the episode turns into a failure
observation. Never a hang.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable, Protocol

from actors.curriculum import NoiseSchedule, is_noisy
from actors.simulator_prompt import split_title
from conf.schema import SearchConf, SimulatorConf

MAX_BACKOFF_S = 5.0


@dataclass(frozen=True)
class SearchRequest:
    query: str
    question: str
    answers: list[str]
    key: str  # names this search in the run (group/sample/turn); seeds its noise draw
    context_ids: list[int] = field(default_factory=list)  # the trajectory so far
    step: int = 0  # the policy version its group was admitted at: the curriculum's step


@dataclass
class SearchResult:
    docs: list[tuple[str, str]]  # (title, text)
    failed: bool = False
    error: str = ""
    noisy: bool = False
    token_ids: list[int] | None = None  # self-search: the observation as generated ids
    text: str = ""  # self-search: the observation's text


class EmptyOutput(ValueError):
    """The backend answered, but nothing in the answer is a usable document."""


@dataclass
class SearchStats:
    """Counters a backend keeps between two ``drain`` calls (one training step)."""

    latencies: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # generated per answered search
    usable_docs: list[int] = field(default_factory=list)
    failures: int = 0
    retried: int = 0
    cache_hits: int = 0  # searches answered by an earlier identical request's pages

    def drain(self) -> dict:
        out = {"latencies": self.latencies, "tokens": self.tokens,
               "usable_docs": self.usable_docs, "failures": self.failures,
               "retried": self.retried, "cache_hits": self.cache_hits}
        self.latencies, self.tokens, self.usable_docs = [], [], []
        self.failures = self.retried = self.cache_hits = 0
        return out


class SearchBackend(Protocol):
    stats: SearchStats

    async def search(self, request: SearchRequest) -> SearchResult: ...

    async def close(self) -> None: ...


async def close_client(client) -> None:
    """Close what a writer or retriever holds open (an HTTP session), if anything."""
    close = getattr(client, "close", None)
    if close is not None:
        await close()


async def call_with_retries(call: Callable[[], Awaitable], timeout_s: float, retries: int,
                            stats: SearchStats):
    """(value, "") from the first attempt that succeeds, else (None, last error)."""
    error = ""
    for attempt in range(retries + 1):
        if attempt:
            stats.retried += 1
            await asyncio.sleep(min(0.25 * 2 ** attempt, MAX_BACKOFF_S))
        try:
            return await asyncio.wait_for(call(), timeout_s), ""
        except asyncio.TimeoutError:
            error = f"timed out after {timeout_s:g} s"
        except Exception as err:  # a dead replica, a refused connection, garbage output
            error = f"{type(err).__name__}: {err}"[:300]
    stats.failures += 1
    return None, error


# A writer turns (query, question, answers, noisy, num_docs) into simulator output:
# {"docs": [str], "tokens": int}; it raises on failure.
Writer = Callable[[str, str, list[str], bool, int], Awaitable[dict]]


class PageCache:
    """The answers to the last `size` distinct requests, least recently used evicted.

    A call returns (value, error). An entry is the call's task, stored before it ends:
    identical searches that arrive while it runs (a group's samples asking the same query)
    await the same call. A failed call (value None) is dropped, so a later identical search
    calls again.
    """

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[tuple, asyncio.Task] = OrderedDict()

    async def get(self, key: tuple, call: Callable[[], Awaitable]):
        """(value, hit): the cached call's value, or that of a new call stored under key."""
        task = self.entries.get(key)
        hit = task is not None
        if hit:
            self.entries.move_to_end(key)
        else:
            task = self.entries[key] = asyncio.ensure_future(call())
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        value = await asyncio.shield(task)
        if value[0] is None and self.entries.get(key) is task:
            del self.entries[key]
        return value, hit


class SimulatedSearch:
    """An LLM playing the search engine, with the curriculum's noise draw per search.

    With ``search.cache_size`` > 0, identical requests (query, question, answers and the
    useful/noisy draw) share one simulator call, as a real engine answers a query the same
    way each time.
    """

    def __init__(self, write: Writer, conf: SearchConf, seed: int,
                 noise: NoiseSchedule = NoiseSchedule()):
        self.write, self.conf, self.seed, self.noise = write, conf, seed, noise
        self.stats = SearchStats()
        self.cache = PageCache(conf.cache_size) if conf.cache_size else None

    async def search(self, request: SearchRequest) -> SearchResult:
        noisy = is_noisy(self.noise(request.step), self.seed, request.key)
        if self.cache is None:
            reply, error = await self._call(request, noisy)
        else:
            key = (request.query, request.question, tuple(request.answers), noisy)
            (reply, error), hit = await self.cache.get(key, lambda: self._call(request, noisy))
            self.stats.cache_hits += hit
        if reply is None:
            return SearchResult([], failed=True, error=error, noisy=noisy)
        self.stats.usable_docs.append(len(reply["docs"]))
        return SearchResult([split_title(d) for d in reply["docs"]], noisy=noisy)

    async def _call(self, request: SearchRequest, noisy: bool) -> tuple[dict | None, str]:
        """(reply, "") from the simulator, with retries, or (None, the last error)."""
        start = time.monotonic()

        async def attempt():
            reply = await self.write(request.query, request.question, request.answers,
                                     noisy, self.conf.topk)
            if not reply["docs"]:
                raise EmptyOutput("no usable document in the simulator's output")
            return reply

        reply, error = await call_with_retries(attempt, self.conf.timeout_s,
                                               self.conf.retries, self.stats)
        if reply is not None:
            self.stats.latencies.append(time.monotonic() - start)
            self.stats.tokens.append(reply["tokens"])
        return reply, error

    async def close(self) -> None:
        await close_client(self.write)


class RetrievedSearch:
    """A real retriever: ``retrieve(query, topk) -> [(title, text)]``."""

    def __init__(self, retrieve, conf: SearchConf):
        self.retrieve, self.conf = retrieve, conf
        self.stats = SearchStats()

    async def search(self, request: SearchRequest) -> SearchResult:
        start = time.monotonic()
        docs, error = await call_with_retries(
            lambda: self.retrieve(request.query, self.conf.topk), self.conf.timeout_s,
            self.conf.retries, self.stats)
        if docs is None:
            return SearchResult([], failed=True, error=error)
        self.stats.latencies.append(time.monotonic() - start)
        self.stats.usable_docs.append(len(docs))
        return SearchResult(docs)

    async def close(self) -> None:
        await close_client(self.retrieve)


INFO_OPEN, INFO_CLOSE = "\n\n<information>", "</information>"


class SelfSearch:
    """SSRL: the policy continues the trajectory inside ``<information>`` itself.

    The written tokens are the engine's own ids (never re-tokenized) and come back as the
    observation, so the episode masks them from the loss like any retrieved text.
    """

    def __init__(self, generator, encode: Callable[[str], list[int]], max_tokens: int):
        self.generator, self.encode, self.max_tokens = generator, encode, max_tokens
        self.stats = SearchStats()

    async def search(self, request: SearchRequest) -> SearchResult:
        start = time.monotonic()
        opening = self.encode(INFO_OPEN)
        out = await self.generator.generate(request.context_ids + opening, self.max_tokens,
                                            stop=[INFO_CLOSE], key=f"{request.key}/info")
        ids, text = opening + list(out.token_ids), INFO_OPEN + out.text
        if not out.text.endswith(INFO_CLOSE):
            ids, text = ids + self.encode(INFO_CLOSE), text + INFO_CLOSE
        ids, text = ids + self.encode("\n\n"), text + "\n\n"
        self.stats.latencies.append(time.monotonic() - start)
        self.stats.tokens.append(len(out.token_ids))
        return SearchResult([], token_ids=ids, text=text)

    async def close(self) -> None:
        pass


@dataclass
class BackendContext:
    """What a backend may need from the process that hosts it."""

    simulator: SimulatorConf
    seed: int
    simulator_handle: object = None  # a Serve DeploymentHandle of the simulator pool
    generator: object = None  # the policy (self-search)
    encode: Callable[[str], list[int]] | None = None


def _simulator(conf: SearchConf, ctx: BackendContext, noise: NoiseSchedule):
    from actors.simulator import pool_writer

    return SimulatedSearch(pool_writer(ctx.simulator_handle), conf, ctx.seed, noise)


def _openai(conf: SearchConf, ctx: BackendContext, noise: NoiseSchedule):
    from actors.simulator import OpenAIWriter

    return SimulatedSearch(OpenAIWriter(conf.openai, ctx.simulator), conf, ctx.seed, noise)


def _bm25(conf: SearchConf, ctx: BackendContext, noise: NoiseSchedule):
    from actors.retrievers import Bm25Retriever

    return RetrievedSearch(Bm25Retriever(conf.bm25.corpus_path), conf)


def _http(conf: SearchConf, ctx: BackendContext, noise: NoiseSchedule):
    from actors.retrievers import HttpRetriever

    return RetrievedSearch(HttpRetriever(conf.http.url, conf.http.batch_window_s), conf)


def _self(conf: SearchConf, ctx: BackendContext, noise: NoiseSchedule):
    return SelfSearch(ctx.generator, ctx.encode, ctx.simulator.max_tokens)


BACKENDS = {"simulator": _simulator, "openai": _openai, "bm25": _bm25, "http": _http,
            "self": _self}


def with_corpus(conf: SearchConf, corpus_path: str) -> SearchConf:
    """The search section with the bm25 corpus resolved."""
    return replace(conf, bm25=replace(conf.bm25, corpus_path=corpus_path))


def make_backend(conf: SearchConf, ctx: BackendContext,
                 noise: NoiseSchedule = NoiseSchedule()) -> SearchBackend:
    """The backend `conf.backend`; simulated ones serve noise by `noise` (none by default,
    as in evaluation); real and self-search ones have none to serve."""
    return BACKENDS[conf.backend](conf, ctx, noise)
