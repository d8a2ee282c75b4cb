"""The simulated search engine: a vLLM engine behind Ray Serve, and its client.

``SimulatorServer`` is the body of the Serve deployment (wired in
``orchestrator.wiring``): each replica runs one AsyncLLM with the simulator model, so the
requests of many episodes are batched by the engine. ``SimulatorSearch`` is what an
episode calls: it draws useful/noisy per query from a seeded generator with the current
curriculum probability, and bounds every call with a timeout and a few retries; a search
that still fails comes back as a recorded failure, never a hang.
"""

from __future__ import annotations

import asyncio
import random
import time

from actors.engine import generate, sampling_params, start_engine
from actors.episode import Question, SearchResult
from actors.simulator_prompt import parse_documents, simulator_prompt
from conf.schema import SimulatorConf


class SimulatorServer:
    def __init__(self, conf: SimulatorConf, model_path: str, seed: int):
        self.conf = conf
        self.engine = start_engine(conf.engine, model_path, seed)
        self.tokenizer = self.engine.get_tokenizer()

    async def search(self, query: str, question: str, answers: list[str],
                     noisy: bool) -> dict:
        """k documents for query: {"docs": [str], "tokens": int, "latency_s": float}."""
        start = time.monotonic()
        prompt = simulator_prompt(query, question, answers, noisy, self.conf.num_docs,
                                  self.conf.doc_words)
        params = sampling_params(self.conf.max_tokens, self.conf.temperature,
                                 stop=[f"Doc {self.conf.num_docs + 1}:"])
        out = await generate(self.engine, self.tokenizer.encode(prompt), params)
        return {"docs": parse_documents(out.text, self.conf.num_docs),
                "tokens": len(out.token_ids), "latency_s": time.monotonic() - start}


class SimulatorSearch:
    """The episode-side client of the simulator pool (one per rollout worker)."""

    def __init__(self, handle, conf: SimulatorConf, seed: int):
        self.handle = handle
        self.conf = conf
        self.rng = random.Random(seed)
        self.noise_probability = 0.0
        self.latencies: list[float] = []
        self.tokens: list[int] = []
        self.failures = 0
        self.retried = 0

    async def search(self, query: str, question: Question) -> SearchResult:
        noisy = self.rng.random() <= self.noise_probability if self.noise_probability else False
        error = ""
        for attempt in range(self.conf.retries + 1):
            if attempt:
                self.retried += 1
                await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 5.0))
            try:
                reply = await asyncio.wait_for(
                    self.handle.search.remote(query, question.question, question.answers,
                                              noisy),
                    self.conf.timeout_s)
            except Exception as err:  # any replica or transport failure is retried
                error = f"{type(err).__name__}: {err}"[:200]
                continue
            self.latencies.append(reply["latency_s"])
            self.tokens.append(reply["tokens"])
            return SearchResult([("", d) for d in reply["docs"]], noisy=noisy)
        self.failures += 1
        return SearchResult([], failed=True, error=error or "unknown error", noisy=noisy)

    def drain_stats(self) -> dict[str, list | int]:
        """Latencies and token counts since the last call, plus failure counters."""
        stats = {"latencies": self.latencies, "tokens": self.tokens,
                 "failures": self.failures, "retried": self.retried}
        self.latencies, self.tokens, self.failures, self.retried = [], [], 0, 0
        return stats
