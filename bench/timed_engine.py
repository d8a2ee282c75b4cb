"""A timed stand-in for a GPU vLLM engine, with AsyncLLM's request interface.

A scheduler loop advances every running request one token per step; a step takes
``a + b * running_requests`` modelled seconds plus a prefill cost per prompt token not in
its prefix cache (16-token blocks, as vLLM's; cleared by ``reset_prefix_cache``). Modelled
seconds become wall seconds times ``time_scale``, so a layout of 64 GPUs fits a small host.
Steps are scheduled against a deadline, so the stand-in's own Python runs inside the
modelled step rather than after it.

The text is the protocol in real token ids of the tiny world's tokenizer: a policy turn is
``<think> ... </think>`` then a search or, at the end of the episode, an answer; a simulator
request is ``Doc 1: ... Doc n:``. Stop strings, ``max_tokens``, aborts and the streaming
interval (``actors.engine.STREAM_INTERVAL``) are honoured as vLLM does; an aborted turn
resumed from its tokens (a weight update) continues where it stopped. Used by
``bench/standins.py``; nothing in the default config reaches it.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
import re
import time
from dataclasses import dataclass, field

from actors.engine import STREAM_INTERVAL

BLOCK = 16  # tokens per prefix-cache block


@dataclass
class EngineModel:
    """Step time of one engine. Defaults model a 3B model in bf16 on one H100 with vLLM:
    a decode step reads the weights once (6.4 GB at 3.35 TB/s is 1.9 ms; 6 ms with
    scheduling and sampling), and the batch term is set so a full engine reaches the
    ~25k output tokens/s that vLLM's 8B figure of ~12.5k tokens/s on one H100
    (morphllm.com/vllm-benchmarks, 2026) gives scaled by weight bytes. Prefill: 2 x 3e9
    FLOP per token at 50% of 989 TFLOP/s."""

    step_s: float = 0.006
    """a: seconds of a decode step with no request."""
    step_per_request_s: float = 4.0e-5
    """b: seconds each running request adds to a step."""
    prefill_per_token_s: float = 1.2e-5
    """Seconds per prompt token not found in the prefix cache."""
    time_scale: float = 1.0
    """Wall seconds per modelled second."""
    weight_load_s: float = 0.0
    """Modelled seconds a weight update takes on the engine (model bytes / bandwidth)."""


@dataclass
class Workload:
    """Long-tail episodes. Turns per episode: 1 + floor(X), X log-normal with median
    `turns_median_x` and shape `turns_sigma`, at most `max_turns` (defaults: 22% answer at
    once, 56% take 2-4 turns, 1 in 500 more than 20: the long tail that search agents show
    when allowed many turns, as ASearcher (AReaL) reports trajectories of more than 40 tool
    calls). Tokens per turn: log-normal, median `turn_tokens_median`."""

    turns_median_x: float = 2.0
    turns_sigma: float = 0.9
    max_turns: int = 64
    turn_tokens_median: float = 40.0
    turn_tokens_sigma: float = 0.6
    turn_tokens_min: int = 12
    doc_tokens: int = 24
    """Tokens of each simulated document."""


def turn_hazard(w: Workload) -> list[float]:
    """P(the episode answers at turn k | it reached turn k), k = 0 .. max_turns - 1."""
    def survive(k: int) -> float:  # P(T > k) = P(X >= k)
        if k <= 0:
            return 1.0
        z = (math.log(k) - math.log(w.turns_median_x)) / w.turns_sigma
        return 0.5 * math.erfc(z / math.sqrt(2))
    hazard = [1.0 - survive(k + 1) / max(survive(k), 1e-300) for k in range(w.max_turns)]
    hazard[-1] = 1.0
    return hazard


class Draw:
    """The workload's seeded draws: whether turn k answers, and a turn's length."""

    def __init__(self, w: Workload, seed: int):
        self.w, self.rng, self.hazard = w, random.Random(seed), turn_hazard(w)

    def answers(self, turn: int) -> bool:
        return self.rng.random() < self.hazard[min(turn, len(self.hazard) - 1)]

    def turn_tokens(self) -> int:
        w = self.w
        return max(w.turn_tokens_min,
                   round(self.rng.lognormvariate(math.log(w.turn_tokens_median),
                                                 w.turn_tokens_sigma)))

    def episode_turns(self) -> int:
        """A whole episode's turn count (for tests and tables)."""
        turn = 0
        while not self.answers(turn):
            turn += 1
        return turn + 1


@dataclass
class Params:
    """The sampling parameters the stand-in reads (``actors.engine.sampling_params``)."""

    max_tokens: int
    temperature: float = 1.0
    stop: list[str] | None = None
    logprobs: int | None = None
    seed: int | None = None
    prompt_logprobs: int | None = None
    delta: bool = False


@dataclass
class Logprob:
    logprob: float


@dataclass
class Completion:
    token_ids: list[int]
    text: str
    logprobs: list[dict] | None
    finish_reason: str | None


@dataclass
class Output:
    outputs: list[Completion]
    finished: bool
    prompt_logprobs: list | None = None


class Tokenizer:
    """The tiny world's tokenizer through the `tokenizers` library (no torch, no
    transformers: each of many stand-in processes stays small)."""

    def __init__(self, folder: str):
        from tokenizers import Tokenizer as Fast

        self.fast = Fast.from_file(f"{folder}/tokenizer.json")
        self.pieces: dict[int, str] = {}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.fast.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: list[int]) -> str:
        return self.fast.decode(ids, skip_special_tokens=False)

    def piece(self, token: int) -> str:
        if token not in self.pieces:
            self.pieces[token] = self.decode([token])
        return self.pieces[token]


@dataclass(eq=False)
class Request:
    prompt: list[int]
    plan: list[int]  # the tokens this request will write, cut at max_tokens or a stop
    finish: str  # at the end of plan: "stop" or "length"
    logprobs: bool
    delta: bool
    pos: int = 0
    sent: int = 0
    done: str = ""
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class TimedEngine:
    params_type = Params  # actors.engine.sampling_params builds these, not vLLM's

    def __init__(self, model: EngineModel, workload: Workload, tokenizer_folder: str,
                 role: str, seed: int):
        self.model, self.workload, self.role = model, workload, role
        self.tokenizer = Tokenizer(tokenizer_folder)
        self.draw = Draw(workload, seed)
        self.running: dict[str, Request] = {}
        self.cache: set[int] = set()  # prefix-cache block hashes
        self.resume: dict[int, list[int]] = {}  # hash(prompt) of an aborted turn -> its rest
        self.prefill_tokens = 0  # waiting to be charged to the next step
        self.busy_s = 0.0  # modelled seconds of steps with requests
        self.errored = False
        self.loop_task: asyncio.Task | None = None
        self.new_work = asyncio.Event()
        enc = self.tokenizer.encode
        self.filler = enc(" the city river of a name person lives works known in old new")
        self.info_close = enc("</information>")[0]
        from actors.dataset import INSTRUCTION

        self.base_observations = enc(INSTRUCTION).count(self.info_close)

    def get_tokenizer(self) -> Tokenizer:
        return self.tokenizer

    async def generate(self, prompt: dict, params: Params, request_id: str):
        ids = prompt["prompt_token_ids"]
        plan, finish = self._cut(self._plan(ids, params), params)
        request = Request(ids, plan, finish, params.logprobs is not None, params.delta)
        self._admit(request_id, request)
        try:
            while True:
                await request.wake.wait()
                request.wake.clear()
                out = self._output(request)
                if out is not None:
                    yield out
                if request.done:
                    return
        finally:
            self.running.pop(request_id, None)

    def _admit(self, request_id: str, request: Request) -> None:
        self.prefill_tokens += len(request.prompt) - self._cached_prefix(request.prompt)
        self._remember(request.prompt)
        if not request.plan:  # max_tokens 0 or a stop at once
            request.done = request.finish
            request.wake.set()
            return
        self.running[request_id] = request
        self.new_work.set()
        if self.loop_task is None:
            self.loop_task = asyncio.get_running_loop().create_task(self._loop())

    def _output(self, r: Request) -> Output | None:
        """What the consumer gets now: the new tokens (DELTA) or all so far."""
        start = r.sent if r.delta else 0
        if r.pos == r.sent and not r.done:
            return None
        if not r.done and not r.delta:
            return None  # final output only, as vLLM's non-streaming kind
        tokens = r.plan[start:r.pos]
        r.sent = r.pos
        text = "".join(self.tokenizer.piece(t) for t in tokens)
        logprobs = [{t: Logprob(-1.0)} for t in tokens] if r.logprobs else None
        finish = r.done if r.done else None
        return Output([Completion(tokens, text, logprobs, finish)], bool(r.done))

    async def _loop(self) -> None:
        deadline = time.monotonic()
        while True:
            if not self.running:
                self.new_work.clear()
                await self.new_work.wait()
                deadline = time.monotonic()
            m = self.model
            step = (m.step_s + m.step_per_request_s * len(self.running)
                    + m.prefill_per_token_s * self.prefill_tokens)
            self.prefill_tokens = 0
            deadline += step * m.time_scale
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            self.busy_s += step
            self._advance()

    def _advance(self) -> None:
        for request_id, request in list(self.running.items()):
            request.pos += 1
            if request.pos >= len(request.plan):
                request.done = request.finish
                del self.running[request_id]
                self._remember(request.prompt + request.plan)
            if request.done or request.delta and (request.pos == 1 or
                                                  request.pos - request.sent >= STREAM_INTERVAL):
                request.wake.set()

    async def abort(self, request_ids) -> None:
        for request_id in [request_ids] if isinstance(request_ids, str) else request_ids:
            request = self.running.pop(request_id, None)
            if request is None or request.done:
                continue
            written = request.prompt + request.plan[:request.pos]
            self.resume[hash(tuple(written))] = request.plan[request.pos:]
            request.done = "abort"
            request.wake.set()

    def _plan(self, prompt: list[int], params: Params) -> list[int]:
        rest = self.resume.pop(hash(tuple(prompt)), None)
        if rest is not None:
            return rest
        if self.role == "simulator":
            return self._documents(params)
        turn = prompt.count(self.info_close) - self.base_observations
        enc, words = self.tokenizer.encode, self._words
        length = self.draw.turn_tokens()
        if self.draw.answers(turn):
            tail = enc("<answer>") + words(2) + enc("</answer>")
        else:
            tail = enc("<search>") + words(4) + enc("</search>")
        think = max(1, length - len(tail) - 2)
        return enc("<think>") + words(think) + enc("</think>") + tail

    def _documents(self, params: Params) -> list[int]:
        """Doc 1: ... Doc n: for the n of the stop string ``Doc {n+1}:`` (else 5)."""
        wanted = [int(m.group(1)) - 1 for s in params.stop or []
                  if (m := re.fullmatch(r"Doc (\d+):", s))]
        count = wanted[0] if wanted else 5
        ids: list[int] = []
        for i in range(1, count + 2):
            ids += self.tokenizer.encode(f"Doc {i}: ")
            if i <= count:
                ids += self._words(self.workload.doc_tokens) + self.tokenizer.encode("\n")
        return ids

    def _words(self, count: int) -> list[int]:
        return [self.draw.rng.choice(self.filler) for _ in range(count)]

    def _cut(self, plan: list[int], params: Params) -> tuple[list[int], str]:
        """plan up to and with the first stop string, then at most max_tokens."""
        finish = "stop"
        if params.stop:
            ends = [0]
            for token in plan:
                ends.append(ends[-1] + len(self.tokenizer.piece(token)))
            text = "".join(self.tokenizer.piece(t) for t in plan)
            hits = [text.find(s) + len(s) for s in params.stop if s in text]
            if hits:
                plan = plan[:bisect.bisect_left(ends, min(hits))]
        if len(plan) > params.max_tokens:
            plan, finish = plan[:params.max_tokens], "length"
        return plan, finish

    def _hashes(self, ids: list[int]) -> list[int]:
        """Chained hashes of the full 16-token blocks of ids."""
        out, last = [], 0
        for start in range(0, len(ids) - BLOCK + 1, BLOCK):
            last = hash((last, tuple(ids[start:start + BLOCK])))
            out.append(last)
        return out

    def _cached_prefix(self, ids: list[int]) -> int:
        count = 0
        for block in self._hashes(ids):
            if block not in self.cache:
                break
            count += 1
        return count * BLOCK

    def _remember(self, ids: list[int]) -> None:
        if len(self.cache) > 1_000_000:
            self.cache.clear()
        self.cache.update(self._hashes(ids))

    async def collective_rpc(self, method: str, kwargs: dict | None = None):
        """reload_weights takes the modelled load time; other calls do nothing."""
        if method == "reload_weights":
            await asyncio.sleep(self.model.weight_load_s * self.model.time_scale)
        return []

    async def reset_prefix_cache(self) -> None:
        self.cache.clear()

    def drain_busy(self) -> float:
        busy, self.busy_s = self.busy_s, 0.0
        return busy

    def shutdown(self) -> None:
        if self.loop_task is not None:
            self.loop_task.cancel()
