"""Real retrievers: a local BM25 index and a client of a Search-R1 retrieval server.

Both answer ``await retrieve(query, topk) -> [(title, text)]`` and raise on failure (the
retry and the failure record live in ``actors.search``). Corpus contents follow Search-R1:
``"\\"Title\\"\\ntext"``; ``check_corpus`` checks a corpus file cheaply before a run.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Iterator


def split_contents(contents: str) -> tuple[str, str]:
    """Search-R1 contents to (title, text); the first line is the quoted title."""
    title, _, text = contents.partition("\n")
    return title.strip().strip('"'), text.strip()


class CorpusError(ValueError):
    pass


def iter_corpus(path: str | Path) -> Iterator[tuple[str, str]]:
    """(title, text) per line of a Search-R1 jsonl corpus, read lazily.

    A line that is not JSON, has no ``contents`` string or holds an empty document (no
    title, no text) is a CorpusError naming the file and the 1-based line. Blank lines
    (a trailing newline) are skipped.
    """
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                yield _corpus_document(f"{path}: line {number}", line)


def _corpus_document(where: str, line: str) -> tuple[str, str]:
    try:
        row = json.loads(line)
    except ValueError as err:
        raise CorpusError(f"{where}: not JSON ({err})") from None
    contents = row.get("contents") if isinstance(row, dict) else None
    if not isinstance(contents, str):
        raise CorpusError(f"{where}: not a corpus row with a 'contents' string: "
                          f"{line.strip()[:80]!r}")
    title, text = split_contents(contents)
    if not (title or text):
        raise CorpusError(f"{where}: empty document")
    return title, text


def load_corpus(path: str | Path) -> list[tuple[str, str]]:
    """Every (title, text) of a Search-R1 jsonl corpus; see iter_corpus for the errors."""
    docs = list(iter_corpus(path))
    if not docs:
        raise CorpusError(f"{path}: the corpus is empty")
    return docs


def check_corpus(path: str | Path) -> int:
    """The number of documents of a corpus, checked line by line without keeping them (a
    driver's check before anything starts); CorpusError as load_corpus."""
    count = sum(1 for _ in iter_corpus(path))
    if not count:
        raise CorpusError(f"{path}: the corpus is empty")
    return count


class Bm25Retriever:
    """BM25 (bm25s, Lucene variant) over a jsonl corpus, indexed in memory on start."""

    def __init__(self, corpus_path: str):
        import bm25s

        self.docs = load_corpus(corpus_path)
        tokens = bm25s.tokenize([f"{t} {x}" for t, x in self.docs], stopwords="en",
                                show_progress=False)
        self.index = bm25s.BM25()
        self.index.index(tokens, show_progress=False)

    def retrieve_now(self, query: str, topk: int) -> list[tuple[str, str]]:
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False,
                                show_progress=False)
        if not tokens[0]:
            return []
        ids, scores = self.index.retrieve(tokens, k=min(topk, len(self.docs)),
                                          show_progress=False)
        return [self.docs[i] for i, s in zip(ids[0], scores[0]) if s > 0]

    async def __call__(self, query: str, topk: int) -> list[tuple[str, str]]:
        return await asyncio.to_thread(self.retrieve_now, query, topk)


def parse_retrieve_response(reply: dict, num_queries: int) -> list[list[tuple[str, str]]]:
    """Search-R1's ``{"result": [[{"document": {...}, "score"} | {...}, ...], ...]}``."""
    result = reply.get("result") if isinstance(reply, dict) else None
    if not isinstance(result, list) or len(result) != num_queries:
        raise ValueError(f"expected 'result' with {num_queries} lists, got "
                         f"{str(reply)[:200]}")
    out = []
    for hits in result:
        docs = []
        for hit in hits:
            document = hit.get("document", hit)
            docs.append(split_contents(str(document["contents"])))
        out.append(docs)
    return out


class HttpRetriever:
    """Client of ``POST /retrieve``; searches within a short window share one request."""

    def __init__(self, url: str, batch_window_s: float):
        self.url, self.window = url, batch_window_s
        self.pending: list[tuple[str, int, asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None
        self.session = None

    async def __call__(self, query: str, topk: int) -> list[tuple[str, str]]:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((query, topk, future))
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush_after_window())
        return await future

    async def _flush_after_window(self) -> None:
        await asyncio.sleep(self.window)
        batch, self.pending, self.flusher = self.pending, [], None
        topk = max(k for _, k, _ in batch)
        try:
            results = await self.post([q for q, _, _ in batch], topk)
        except Exception as err:
            results = [err] * len(batch)
        for (_, k, future), docs in zip(batch, results):
            if future.done():  # the caller timed out meanwhile
                continue
            if isinstance(docs, Exception):
                future.set_exception(docs)
            else:
                future.set_result(docs[:k])

    async def post(self, queries: list[str], topk: int) -> list[list[tuple[str, str]]]:
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession()
        body = {"queries": queries, "topk": topk, "return_scores": True}
        async with self.session.post(self.url, json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"{self.url} answered {response.status}: "
                                   f"{(await response.text())[:200]}")
            return parse_retrieve_response(await response.json(), len(queries))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
