"""The policy rollout worker: one vLLM engine running many search episodes at once.

Runs as an async Ray actor (options applied in ``orchestrator.wiring``). Its loop asks the
trajectory queue for admission, plays a GRPO group (n episodes of one question)
concurrently with other groups, scores it and pushes it whole. A weight update aborts the
turns in flight (interruptible generation), loads the weights and lets them resume from
the tokens sampled so far, so every sampled token carries the exact policy version that
produced it; with ``rollout.interrupt_on_update=false`` the update waits for them instead.
"""

from __future__ import annotations

import asyncio
import time

from actors.dataset import load_questions, question_for
from actors.engine import generate, sampling_params, start_engine, stream_turn
from actors.episode import STOP_STRINGS, Limits, Question, TurnOutput, run_episode
from actors.rewards import exact_match, score
from actors.search import BackendContext, make_backend
from actors.trajectory import Trajectory
from conf.schema import RolloutConf, SearchConf, SimulatorConf


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


class AtTemperature:
    """A worker's generate at a fixed sampling temperature (evaluation episodes)."""

    def __init__(self, worker, temperature: float):
        self.worker, self.temperature = worker, temperature

    async def generate(self, token_ids: list[int], max_tokens: int,
                       stop: list[str] | None = None) -> TurnOutput:
        return await self.worker.generate(token_ids, max_tokens, stop, self.temperature)


class RolloutWorker:
    def __init__(self, worker_index: int, conf: RolloutConf, model_path: str,
                 train_path: str, reward: str, seed: int, queue, search_conf: SearchConf,
                 simulator_conf: SimulatorConf, simulator_handle, admit_timeout_s: float,
                 start_version: int = 0, weight_transfer: bool = False):
        self.conf, self.reward, self.seed, self.queue = conf, reward, seed, queue
        self.admit_timeout_s = admit_timeout_s
        self.engine = start_engine(conf.engine, model_path, seed + worker_index,
                                   weight_transfer)
        self.questions = load_questions(train_path)
        self.backend_context = BackendContext(simulator_conf, seed, simulator_handle,
                                              generator=self, encode=self.encode)
        self.search = make_backend(search_conf, self.backend_context)
        self.eval_searches: dict = {}  # per backend, built on first use, noise 0
        self.limits = Limits.of(conf.episode)
        self.version = start_version
        self.lock = VersionLock()
        self.stopping = False
        self.tokenizer = None
        self.generated_tokens = 0
        self.inflight: set[str] = set()  # engine request ids of the turns now sampling
        self.interrupted = 0
        self.running_episodes = 0
        self.busy = BusyClock()
        self.slots = asyncio.Semaphore(conf.max_groups_per_worker)

    async def ready(self) -> bool:
        self.tokenizer = self.engine.get_tokenizer()
        return True

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    async def generate(self, token_ids: list[int], max_tokens: int,
                       stop: list[str] | None = None,
                       temperature: float | None = None) -> TurnOutput:
        """One turn; a weight update may interrupt it, and it resumes from the tokens so
        far under the new weights, each token keeping the version that sampled it."""
        if temperature is None:
            temperature = self.conf.episode.temperature
        part_ids, logprobs, versions, text, finish = [], [], [], "", "stop"
        while len(part_ids) < max_tokens:
            async with self.lock:
                version = self.version
                self.busy.enter()
                try:
                    part = await stream_turn(self.engine, token_ids + part_ids,
                                             max_tokens - len(part_ids), temperature,
                                             stop or STOP_STRINGS, self.inflight,
                                             self._count_tokens)
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

    async def run(self) -> int:
        """Play groups until stopped; returns the number of groups started."""
        tasks: set[asyncio.Task] = set()
        started = 0
        while not self.stopping:
            await self.slots.acquire()
            ticket = await self.queue.admit.remote(self.admit_timeout_s)
            if ticket is None:
                self.slots.release()
                continue
            task = asyncio.create_task(self._group(ticket))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
        for task in tasks:
            task.cancel()
        return started

    async def _group(self, ticket) -> None:
        try:
            q = self.questions[question_for(ticket.index, len(self.questions), self.seed)]
            prompt_ids = self.encode(q.prompt)
            episodes = [run_episode(prompt_ids, q, self, self.search, self.encode,
                                    self.limits, key=f"g{ticket.index}/s{sample}")
                        for sample in range(self.conf.group_size)]
            self.running_episodes += len(episodes)
            try:
                group: list[Trajectory] = await asyncio.gather(*episodes)
            finally:
                self.running_episodes -= len(episodes)
            for traj in group:
                self._score(traj, ticket.index, q)
            await self.queue.put.remote(ticket, group)
        finally:
            self.slots.release()

    async def evaluate(self, questions: list[Question], samples: int, temperature: float,
                       search_conf: SearchConf, tag: str) -> list[tuple[int, Trajectory]]:
        """Play `samples` episodes per question with the current weights, next to the
        training episodes, against the evaluation backend; (question position, trajectory)."""
        if search_conf.backend not in self.eval_searches:
            self.eval_searches[search_conf.backend] = make_backend(search_conf,
                                                                   self.backend_context)
        search = self.eval_searches[search_conf.backend]
        policy = AtTemperature(self, temperature)
        jobs = [(i, q, f"{tag}/q{q.index}/s{s}") for i, q in enumerate(questions)
                for s in range(samples)]
        trajs = await asyncio.gather(*[
            run_episode(self.encode(q.prompt), q, policy, search, self.encode,
                        self.limits, key) for _, q, key in jobs])
        return [(i, traj) for (i, _, _), traj in zip(jobs, trajs)]

    def _score(self, traj: Trajectory, group_index: int, q) -> None:
        traj.group_index, traj.question_index = group_index, q.index
        traj.data_source, traj.answers = q.data_source, q.answers
        traj.reward = score(self.reward, traj.answer, traj.response_text, q.answers)
        traj.em = exact_match(traj.answer, q.answers)

    async def load_weights(self, path: str, version: int) -> float:
        """Reload weights from a saved checkpoint; returns the seconds spent."""
        start = time.monotonic()

        async def update():
            await self.engine.collective_rpc("reload_weights", kwargs={"weights_path": path})
            await self.engine.reset_prefix_cache()  # cached prefixes hold the old weights' KV
            self.version = version

        await self.lock.write(update, self._interrupt())
        return time.monotonic() - start

    def _interrupt(self):
        return self._abort_inflight if self.conf.interrupt_on_update else None

    # An NCCL update (learner/weight_transfer.py) in three calls: start takes the version
    # lock (no turn samples while vLLM swaps the layers), finish sets the version and
    # releases it.
    async def init_weight_transfer(self, init_info: dict) -> None:
        from vllm.distributed.weight_transfer.base import WeightTransferInitRequest

        await self.engine.init_weight_transfer_engine(
            WeightTransferInitRequest(init_info=init_info))

    async def start_weight_update(self) -> None:
        await self.lock.acquire_write(self._interrupt())
        try:
            await self.engine.start_weight_update()
        except BaseException:
            await self.lock.release_write()
            raise

    async def update_weights(self, update_info: dict) -> None:
        from vllm.distributed.weight_transfer.base import WeightTransferUpdateRequest

        await self.engine.update_weights(WeightTransferUpdateRequest(update_info=update_info))

    async def finish_weight_update(self, version: int) -> None:
        try:
            await self.engine.finish_weight_update()
            await self.engine.reset_prefix_cache()  # cached prefixes hold the old weights' KV
            self.version = version
        finally:
            await self.lock.release_write()

    def _count_tokens(self, n: int) -> None:
        self.generated_tokens += n

    async def _abort_inflight(self) -> None:
        if self.inflight:
            await self.engine.abort(list(self.inflight))

    def set_noise_probability(self, p: float) -> None:
        self.search.noise_probability = p

    def drain_stats(self) -> dict:
        stats = self.search.stats.drain()
        stats["generated_tokens"], self.generated_tokens = self.generated_tokens, 0
        stats["interrupted_turns"], self.interrupted = self.interrupted, 0
        stats.update(self.busy.drain())
        stats["capacity"] = self.conf.max_groups_per_worker * self.conf.group_size
        stats["running_episodes"] = self.running_episodes
        return stats

    async def export_weights(self) -> list[dict]:
        return await self.engine.collective_rpc("export_weights")

    async def prompt_logprobs(self, token_ids: list[int]) -> list[float]:
        """The engine's logprob of each token given those before it (0.0 for the first)."""
        params = sampling_params(1, 1.0, prompt_logprobs=True)
        async with self.lock:
            out = await generate(self.engine, token_ids, params, whole=True)
        return [0.0] + [step[tok].logprob for tok, step in
                        zip(token_ids[1:], out.prompt_logprobs[1:])]

    def stop(self) -> None:
        self.stopping = True
