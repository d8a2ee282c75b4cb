"""The policy rollout worker: one vLLM engine running many search episodes at once.

Runs as an async Ray actor (options applied in ``orchestrator.wiring``). Its loop asks the
trajectory queue for admission, plays a GRPO group (n episodes of one question)
concurrently with other groups, scores it and pushes it whole. Its turns are sampled by
``actors.turns``: a weight update aborts the turns in flight (interruptible generation),
loads the weights and lets them resume from the tokens sampled so far, so every sampled
token carries the exact policy version that produced it; with
``rollout.interrupt_on_update=false`` the update waits for them instead.

A group whose episodes raise is logged (ticket, question, traceback) and handed back to
the queue (``fail``), which issues it again; ``health`` is the driver's probe of the
engine (``orchestrator.supervisor``). A worker whose engine died, or on which
``rollout.max_group_failures`` groups failed in a row, admits no more groups and fails its
health check, so the driver replaces it.
"""

from __future__ import annotations

import asyncio
import gc
import time
import traceback

from actors.curriculum import NoiseSchedule
from actors.dataset import Question, load_questions, question_for
from actors.engine import (CallTimeout, Unhealthy, check_engine, generate, sampling_params,
                           start_engine)
from actors.episode import Limits, play_episodes, sample_keys
from actors.rewards import exact_match, score
from actors.search import BackendContext, make_backend
from actors.trajectory import Trajectory
from actors.turns import Turns
from conf.schema import RolloutConf, SearchConf, SimulatorConf


class RolloutWorker:
    start_engine = staticmethod(start_engine)  # a timed stand-in's in bench/standins.py

    def __init__(self, worker_id: str, worker_index: int, conf: RolloutConf, model_path: str,
                 train_path: str, reward: str, seed: int, queue, search_conf: SearchConf,
                 simulator_conf: SimulatorConf, simulator_handle, admit_timeout_s: float,
                 start_version: int = 0, weight_transfer: bool = False,
                 noise: NoiseSchedule = NoiseSchedule()):
        """worker_id: this worker's name at the queue (a replacement gets a new one);
        worker_index: its slot, which seeds its engine; model_path and start_version: the
        weights it starts with and their policy version; noise: the curriculum, served at
        the version each group was admitted at."""
        self.worker_id = worker_id
        self.conf, self.reward, self.seed, self.queue = conf, reward, seed, queue
        self.admit_timeout_s = admit_timeout_s
        self.engine = self.start_engine(conf.engine, model_path, seed + worker_index,
                                        weight_transfer)
        self.turns = Turns(self.engine, conf.episode.temperature, seed, start_version,
                           conf.call_timeout_s, conf.interrupt_on_update)
        self.questions = load_questions(train_path)
        self.backend_context = BackendContext(simulator_conf, seed, simulator_handle,
                                              generator=self.turns, encode=self.encode)
        self.search = make_backend(search_conf, self.backend_context, noise)
        self.eval_searches: dict = {}  # per backend, built on first use, noise 0
        self.limits = Limits.of(conf.episode)
        self.stopping = False
        self.tokenizer = None
        self.running_episodes = 0
        self.slots = asyncio.Semaphore(conf.max_groups_per_worker)
        self.failed_in_row = 0  # groups that raised here since one was played through
        self.last_error = ""
        # The engine's, torch's and the tokenizer's long-lived objects leave the garbage
        # collector's reach: its full passes rescanned them all (~0.45 s each).
        gc.collect()
        gc.freeze()

    async def ready(self) -> bool:
        self.tokenizer = self.engine.get_tokenizer()
        return True

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    @property
    def version(self) -> int:
        """The policy version the engine holds."""
        return self.turns.version

    async def run(self) -> int:
        """Play groups until stopped (returns the number of groups started) or broken
        (raises Unhealthy)."""
        tasks: set[asyncio.Task] = set()
        started = 0
        while not self.stopping and not self._broken():  # a broken worker is replaced
            await self.slots.acquire()
            ticket = await self._bounded(
                self.queue.admit.remote(self.worker_id, self.admit_timeout_s),
                "an admission by the queue", self.admit_timeout_s)
            if ticket is None:
                self.slots.release()
                continue
            task = asyncio.create_task(self._group(ticket))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
        for task in tasks:
            task.cancel()
        if self._broken():
            raise Unhealthy("the engine has died" if self.engine.errored else
                            f"{self.failed_in_row} groups in a row failed on this worker; "
                            f"the last: {self.last_error}")
        return started

    async def _group(self, ticket) -> None:
        q = self.questions[question_for(ticket.index, len(self.questions), self.seed)]
        try:
            group = await self._play_group(ticket, q)
            self.failed_in_row = 0
        except Exception as err:  # one bad episode must not strand its ticket
            group = None
            self.failed_in_row += 1
            self.last_error = f"{type(err).__name__}: {err}"[:300]
            if not self.engine.errored:  # else the supervisor gives back all this one holds
                await self._give_back(ticket, q, err)
        finally:
            self.slots.release()
        if group is not None:
            await self._deliver(ticket, q, group)

    def _broken(self) -> bool:
        """A dead engine, or groups failing here one after another (a fault of this
        worker rather than of their questions): it admits no more and is replaced."""
        return self.engine.errored or self.failed_in_row >= self.conf.max_group_failures

    async def _play_group(self, ticket, q: Question) -> list[Trajectory]:
        jobs = [(q, f"g{ticket.index}/s{sample}") for sample in range(self.conf.group_size)]
        self.running_episodes += len(jobs)
        try:
            group = await play_episodes(jobs, self.turns, self.search, self.encode,
                                        self.limits, step=ticket.version)
        finally:
            self.running_episodes -= len(jobs)
        for traj in group:
            self._score(traj, ticket.index, q)
        return group

    async def _give_back(self, ticket, q: Question, err: Exception) -> None:
        question = f"question {q.index}: {q.question[:200]!r}"
        print(f"simsearch: group {ticket.index} (lease {ticket.lease}, {question}) failed "
              f"on {self.worker_id}; it goes back to the queue\n{traceback.format_exc()}",
              flush=True)
        try:
            await self._bounded(self.queue.fail.remote(
                ticket, self.worker_id, question, f"{type(err).__name__}: {err}"[:500]),
                "giving a group back to the queue")
        except Exception as queue_err:  # the queue is gone: the driver rebuilds the system
            print(f"simsearch: {self.worker_id} could not give group {ticket.index} back: "
                  f"{type(queue_err).__name__}", flush=True)

    async def _deliver(self, ticket, q: Question, group: list[Trajectory]) -> None:
        try:
            accepted = await self._bounded(self.queue.put.remote(ticket, group, self.worker_id),
                                           "a put to the queue")
        except CallTimeout as err:  # given back; a put that landed meanwhile keeps its lease
            self.failed_in_row += 1
            await self._give_back(ticket, q, err)
            return
        except Exception as queue_err:  # the queue is gone: the driver rebuilds the system
            print(f"simsearch: {self.worker_id} could not deliver group {ticket.index}: "
                  f"{type(queue_err).__name__}", flush=True)
            return
        if not accepted:
            print(f"simsearch: the queue refused group {ticket.index} (lease {ticket.lease}) "
                  f"from {self.worker_id}: it no longer holds that lease", flush=True)

    async def evaluate(self, questions: list[Question], samples: int, temperature: float,
                       search_conf: SearchConf, tag: str) -> list[tuple[int, Trajectory]]:
        """Play `samples` episodes per question with the current weights, next to the
        training episodes, against the evaluation backend; (question position, trajectory)."""
        if search_conf.backend not in self.eval_searches:
            self.eval_searches[search_conf.backend] = make_backend(search_conf,
                                                                   self.backend_context)
        search = self.eval_searches[search_conf.backend]
        jobs = sample_keys(questions, samples, f"{tag}/q")
        trajs = await play_episodes(jobs, self.turns.at(temperature), search, self.encode,
                                    self.limits)
        return [(i // samples, traj) for i, traj in enumerate(trajs)]  # question-major

    def _score(self, traj: Trajectory, group_index: int, q) -> None:
        traj.group_index, traj.question_index = group_index, q.index
        traj.data_source, traj.answers = q.data_source, q.answers
        traj.reward = score(self.reward, traj.answer, traj.response_text, q.answers)
        traj.em = exact_match(traj.answer, q.answers)

    async def load_weights(self, path: str, version: int) -> float:
        """Reload weights from a saved checkpoint; returns the seconds spent."""
        start = time.monotonic()

        async def update():
            await self._bounded(self.engine.collective_rpc(
                "reload_weights", kwargs={"weights_path": path}), "a weight load")
            # cached prefixes hold the old weights' KV
            await self._bounded(self.engine.reset_prefix_cache(), "a prefix cache reset")

        await self.turns.update(update, version)
        return time.monotonic() - start

    # An NCCL update (learner/weight_transfer.py) in three calls: start takes the version
    # lock (no turn samples while vLLM swaps the layers), finish sets the version and
    # releases it.
    async def init_weight_transfer(self, init_info: dict) -> None:
        from vllm.distributed.weight_transfer.base import WeightTransferInitRequest

        await self.engine.init_weight_transfer_engine(
            WeightTransferInitRequest(init_info=init_info))

    async def start_weight_update(self) -> None:
        await self.turns.start_update()
        try:
            await self.engine.start_weight_update()
        except BaseException:
            await self.turns.lock.release_write()
            raise

    async def update_weights(self, update_info: dict) -> None:
        from vllm.distributed.weight_transfer.base import WeightTransferUpdateRequest

        await self.engine.update_weights(WeightTransferUpdateRequest(update_info=update_info))

    async def finish_weight_update(self, version: int) -> None:
        async def finish():
            await self.engine.finish_weight_update()
            await self.engine.reset_prefix_cache()  # cached prefixes hold the old weights' KV

        await self.turns.finish_update(finish, version)

    def drain_stats(self) -> dict:
        stats = self.search.stats.drain()
        stats.update(self.turns.drain())
        stats["capacity"] = self.conf.max_groups_per_worker * self.conf.group_size
        stats["running_episodes"] = self.running_episodes
        return stats

    async def export_weights(self) -> list[dict]:
        return await self._bounded(self.engine.collective_rpc("export_weights"),
                                   "a weight export")

    async def prompt_logprobs(self, token_ids: list[int]) -> list[float]:
        """The engine's logprob of each token given those before it (0.0 for the first)."""
        params = sampling_params(1, 1.0, prompt_logprobs=True)
        async with self.turns.lock:
            out = await self._bounded(generate(self.engine, token_ids, params, whole=True),
                                      "a prompt's scoring")
        return [0.0] + [step[tok].logprob for tok, step in
                        zip(token_ids[1:], out.prompt_logprobs[1:])]

    async def health(self, timeout_s: float) -> None:
        """Raise unless the engine is alive and sampling (it streamed a turn's tokens, or
        samples a probe's token, within timeout_s; only the first check while weights load:
        the load has its own time limit) and the last rollout.max_group_failures groups did
        not all fail here."""
        if self._broken() and not self.engine.errored:
            raise Unhealthy(f"{self.failed_in_row} groups in a row failed on this worker; "
                            f"the last: {self.last_error}")
        await check_engine(self.engine, 0.0 if self.turns.lock.writing else timeout_s,
                           self.turns.sampled_at)

    def stop(self) -> None:
        self.stopping = True

    def _bounded(self, awaitable, what: str, extra_s: float = 0.0):
        """An engine or queue call within rollout.call_timeout_s (plus extra_s, what the
        call itself may wait), else CallTimeout: the caller's group is played again."""
        return self.turns.bounded(awaitable, what, extra_s)
