"""The policy's turns on a vLLM engine: the one turn generator of every episode (a rollout
worker's training and evaluation groups, and ``actors.play`` for ``simsearch eval`` and
the simulator SFT's collection).

Many turns sample at once; a weight update runs alone (``VersionLock``). With `interrupt`
an update first aborts the turns in flight, and each resumes from its tokens so far under
the new weights, every token keeping the policy version that sampled it.

A turn with a key (its episode's, plus the turn) samples with its own seed, a fixed
function of the run's seed and the key, not with the engine's shared random stream: its
draw does not depend on what else the engine runs, so evaluations and the simulator SFT's
collection repeat from one run to the next.
"""

from __future__ import annotations

import asyncio
import time

from actors.curriculum import noise_draw
from actors.engine import stream_turn, within
from actors.episode import STOP_STRINGS
from actors.trajectory import TurnOutput


class VersionLock:
    """Many turns may run together; a weight update runs alone. It first calls
    `interrupt` (which aborts the turns in flight), then waits for them to leave."""

    def __init__(self):
        self.readers = 0
        self.writing = False
        self.cond = asyncio.Condition()

    async def __aenter__(self):
        async with self.cond:
            await self.cond.wait_for(lambda: not self.writing)
            self.readers += 1

    async def __aexit__(self, *exc):
        async with self.cond:
            self.readers -= 1
            self.cond.notify_all()

    async def acquire_write(self, interrupt=None) -> None:
        async with self.cond:
            self.writing = True
            if interrupt is not None:
                await interrupt()
            await self.cond.wait_for(lambda: self.readers == 0)

    async def release_write(self) -> None:
        async with self.cond:
            self.writing = False
            self.cond.notify_all()

    async def write(self, update, interrupt=None) -> None:
        await self.acquire_write(interrupt)
        try:
            await update()
        finally:
            await self.release_write()


class BusyClock:
    """Engine load between drains: the share of time no request ran (idle) and the mean
    number of requests running (occupancy, before dividing by capacity)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.active, self.busy_s, self.area = 0, 0.0, 0.0
        self.since = self.last = self.window_start = clock()

    def _advance(self) -> float:
        now = self.clock()
        self.area += self.active * (now - self.last)
        self.last = now
        return now

    def enter(self) -> None:
        now = self._advance()
        if self.active == 0:
            self.since = now
        self.active += 1

    def leave(self) -> None:
        now = self._advance()
        self.active -= 1
        if self.active == 0:
            self.busy_s += now - self.since

    def drain(self) -> dict[str, float]:
        now = self._advance()
        busy = self.busy_s + (now - self.since if self.active else 0.0)
        window = max(now - self.window_start, 1e-9)
        out = {"idle_fraction": max(0.0, 1.0 - busy / window),
               "mean_running": self.area / window}
        self.busy_s, self.area, self.window_start, self.since = 0.0, 0.0, now, now
        return out


class Turns:
    """The policy on `engine` as an episode's generator (``generate``), at `version`.

    call_timeout_s bounds every engine call (None: unbounded); interrupt: a weight update
    aborts the turns in flight rather than waiting for them."""

    def __init__(self, engine, temperature: float, seed: int, version: int = 0,
                 call_timeout_s: float | None = None, interrupt: bool = True):
        self.engine, self.temperature, self.seed = engine, temperature, seed
        self.version = version
        self.call_timeout_s, self.interrupt = call_timeout_s, interrupt
        self.lock = VersionLock()
        self.busy = BusyClock()
        self.inflight: set[str] = set()  # engine request ids of the turns now sampling
        self.interrupted = 0  # turns a weight update cut (they resumed)
        self.generated_tokens = 0
        self.sampled_at: float | None = None  # when the engine last streamed tokens

    async def generate(self, token_ids: list[int], max_tokens: int,
                       stop: list[str] | None = None, key: str = "",
                       temperature: float | None = None) -> TurnOutput:
        """One turn (seeded by `key` unless it is empty); a weight update may interrupt
        it, and it resumes from the tokens so far under the new weights, each token
        keeping the version that sampled it."""
        if temperature is None:
            temperature = self.temperature
        part_ids, logprobs, versions, text, finish = [], [], [], "", "stop"
        while len(part_ids) < max_tokens:
            async with self.lock:
                version = self.version
                self.busy.enter()
                try:
                    part = await self.bounded(stream_turn(
                        self.engine, token_ids + part_ids, max_tokens - len(part_ids),
                        temperature, stop or STOP_STRINGS, self.inflight,
                        self._count_tokens, self._seed(key, len(part_ids))),
                        "a turn's sampling")
                finally:
                    self.busy.leave()
            part_ids += part.token_ids
            logprobs += part.logprobs
            versions += [version] * len(part.token_ids)
            text += part.text
            if part.finish_reason != "abort":
                finish = "length" if part.finish_reason == "length" else "stop"
                break
            self.interrupted += 1
        else:
            finish = "length"
        return TurnOutput(part_ids, logprobs, text, finish, versions)

    def at(self, temperature: float) -> AtTemperature:
        return AtTemperature(self, temperature)

    async def bounded(self, awaitable, what: str, extra_s: float = 0.0):
        """An engine call within call_timeout_s (plus extra_s), else CallTimeout."""
        if self.call_timeout_s is None:
            return await awaitable
        return await within(awaitable, self.call_timeout_s + extra_s, what)

    async def update(self, update, version: int) -> None:
        """Run `update` (a coroutine function) alone, then serve `version`."""
        await self.start_update()
        await self.finish_update(update, version)

    async def start_update(self) -> None:
        """Hold the turns (aborting those in flight when interrupting) until finish_update."""
        await self.lock.acquire_write(self._abort_inflight if self.interrupt else None)

    async def finish_update(self, update, version: int) -> None:
        try:
            await update()
            self.version = version
        finally:
            await self.lock.release_write()

    def drain(self) -> dict:
        """Counts since the last drain: tokens generated, turns interrupted, engine load."""
        out = {"generated_tokens": self.generated_tokens,
               "interrupted_turns": self.interrupted, **self.busy.drain()}
        self.generated_tokens = self.interrupted = 0
        return out

    def _seed(self, key: str, done: int) -> int | None:
        """The seed of a turn's request that starts after `done` of its tokens."""
        if not key:
            return None
        return int(noise_draw(self.seed, f"sample/{key}/{done}") * 2 ** 31)

    def _count_tokens(self, n: int) -> None:
        self.generated_tokens += n
        self.sampled_at = time.monotonic()

    async def _abort_inflight(self) -> None:
        if self.inflight:
            await self.bounded(self.engine.abort(list(self.inflight)), "an abort")


class AtTemperature:
    """Turns at a fixed sampling temperature (evaluation episodes)."""

    def __init__(self, turns: Turns, temperature: float):
        self.turns, self.temperature = turns, temperature

    async def generate(self, token_ids: list[int], max_tokens: int,
                       stop: list[str] | None = None, key: str = "") -> TurnOutput:
        return await self.turns.generate(token_ids, max_tokens, stop, key, self.temperature)
