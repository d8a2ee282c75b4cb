"""Supervision of the rollout workers, and the driver's calls that may find an actor gone.

``WorkerSupervisor`` owns the rollout workers, one slot each. A worker is replaced when its
actor dies (any call, or its ``run`` loop, ends in an actor error), when its engine has died,
or when it fails ``HEALTH_STRIKES`` health checks in a row (one every
``rollout.health_check_s``: a one-token probe of the engine). Replacing a worker kills it,
gives its tickets back to the queue (they are played again by any worker) and starts a new
actor with the same options, so on the same kind of node, from the initial policy; the new
worker loads the latest published weights once its engine is up, and only then joins the
pushes and admits groups. At most ``rollout.max_restarts`` replacements per run.

The learner and the queue are not replaced here: a call to either that finds it gone (or
hung past its time limit) raises ``SystemLost``, and the training driver rebuilds the system
from the last checkpoint (``orchestrator.train``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from actors.engine import Unhealthy
from actors.errors import RunStopped

HEALTH_STRIKES = 3  # health checks in a row a worker may miss before it is replaced
UNKNOWN_VERSION = -1  # a replacement's: it loads the latest weights before it plays


class SystemLost(RunStopped):
    """The learner or the queue is gone or hung: the run goes on from its last checkpoint
    (``orchestrator.train``); one that reaches the command line stops the run."""


def _cause(err: BaseException) -> BaseException:
    """An actor's own exception rather than Ray's wrapper of it."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err


def _first_line(err: BaseException) -> str:
    """An error in one line."""
    err = _cause(err)
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}"[:300]


def call(ref, timeout_s: float, what: str):
    """ray.get of a learner or queue call; SystemLost if that actor is gone, hung, or
    failed the call (its state is unknown then). A RunStopped passes through."""
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

    try:
        return ray.get(ref, timeout=timeout_s)
    except RunStopped as err:  # raised in an actor: its own message, not Ray's traceback
        raise RunStopped(str(_cause(err))) from None
    except (RayActorError, GetTimeoutError, RayTaskError) as err:
        raise SystemLost(f"{what} failed ({_first_line(err)})") from err


@dataclass
class Slot:
    index: int
    actor: object
    worker_id: str
    ready: object = None  # ObjectRef of ready() while the engine starts
    run: object = None  # ObjectRef of run() once the worker plays
    version: int = 0  # policy version of the weights it holds
    strikes: int = 0  # health checks missed in a row


class WorkerSupervisor:
    """The rollout workers of one system (`conf`: the rollout section).
    ``spawn(index, worker_id, model_path, version)`` starts a worker actor: the first ones
    from `start`, the (model folder, version) the system starts with; replacements from
    `base`, a model folder that stays for the whole run (the initial policy: checkpoints
    and published weights are pruned as the run goes). ``weights()`` gives (path, version)
    of the latest weights on disk, which a worker loads before it plays unless it holds
    them; ``on_replace()`` hears of each replacement; ``faults`` counts them over the
    whole run."""

    def __init__(self, spawn: Callable, queue, conf, timeout_s: float, faults,
                 start: tuple[str, int], base: str, weights: Callable[[], tuple[str, int]]):
        self.spawn, self.queue, self.faults = spawn, queue, faults
        self.base, self.weights = base, weights
        self.health_check_s, self.max_restarts = conf.health_check_s, conf.max_restarts
        self.timeout_s = timeout_s
        self.on_replace: Callable[[], None] = lambda: None
        self.last_check = time.monotonic()
        self.slots = [Slot(i, None, f"rollout-{i}") for i in range(conf.num_workers)]
        for slot in self.slots:
            self._start(slot, *start)

    @property
    def workers(self) -> list:
        """The workers that play now (not those still starting)."""
        return [slot.actor for slot in self.slots if slot.run is not None]

    def actors(self) -> list:
        return [slot.actor for slot in self.slots if slot.actor is not None]

    def _start(self, slot: Slot, path: str, version: int) -> None:
        slot.actor = self.spawn(slot.index, slot.worker_id, path, version)
        slot.ready, slot.run, slot.version, slot.strikes = slot.actor.ready.remote(), None, \
            version, 0

    def wait_started(self) -> None:
        """Block until every worker plays (start-up)."""
        deadline = time.monotonic() + self.timeout_s
        while any(slot.run is None for slot in self.slots):
            if time.monotonic() > deadline:
                raise RunStopped(f"rollout workers did not start within "
                                 f"trainer.step_timeout_s={self.timeout_s:g} s")
            self._collect_started(wait_s=1.0)

    def check(self) -> None:
        """Register workers whose engine is up, replace dead ones, and run a health round
        when one is due."""
        self._collect_started()
        self._reap_finished_runs()
        if time.monotonic() - self.last_check >= self.health_check_s:
            self.last_check = time.monotonic()
            self._health_round()

    def wait(self, ref, timeout_s: float, what: str):
        """ray.get of a queue call that may wait long (the batch), supervising the workers
        meanwhile; SystemLost if the queue is gone, RunStopped if nothing came in time."""
        import ray
        from ray.exceptions import GetTimeoutError

        deadline = time.monotonic() + timeout_s
        while not ray.wait([ref], timeout=min(self.health_check_s, 1.0))[0]:
            self.check()
            if time.monotonic() > deadline:
                break
        try:
            return call(ref, 1.0, what)
        except SystemLost as lost:
            if isinstance(lost.__cause__, (GetTimeoutError, TimeoutError)):
                raise RunStopped(f"{what} did not come within trainer.step_timeout_s="
                                 f"{timeout_s:g} s; {self._running_groups()}") from None
            raise

    def _running_groups(self) -> str:
        try:
            held = call(self.queue.held_by.remote(), 30, "the queue")
        except SystemLost:
            return "the queue does not answer"
        return f"groups running per worker: {held or 'none'}"

    def call_all(self, method: str, *args) -> list:
        """method(*args) on every playing worker; a worker that is gone, fails the call or
        does not answer in time is replaced, and its result left out."""
        import ray
        from ray.exceptions import RayActorError

        pending = [(slot, getattr(slot.actor, method).remote(*args))
                   for slot in self.slots if slot.run is not None]
        deadline = time.monotonic() + self.timeout_s
        results = []
        for slot, ref in pending:
            try:
                results.append(ray.get(ref, timeout=max(0.0, deadline - time.monotonic())))
            except RayActorError as err:
                self.replace(slot, f"died ({_first_line(err)})")
            except Exception as err:  # the call raised or timed out
                self.replace(slot, f"failed {method} ({_first_line(err)})")
        return results

    def _collect_started(self, wait_s: float = 0.0) -> None:
        import ray

        starting = [slot for slot in self.slots if slot.ready is not None]
        if not starting:
            return
        done, _ = ray.wait([s.ready for s in starting], num_returns=len(starting),
                           timeout=wait_s)
        for slot in (s for s in starting if s.ready in done):
            try:
                ray.get(slot.ready, timeout=self.timeout_s)
                self._catch_up(slot)
            except Exception as err:
                self.replace(slot, f"failed to start ({_first_line(err)})")
                continue
            slot.ready, slot.run = None, slot.actor.run.remote()

    def _catch_up(self, slot: Slot) -> None:
        """Load the current weights into a started worker that began with older ones."""
        import ray

        path, version = self.weights()
        if version != slot.version:
            ray.get(slot.actor.load_weights.remote(path, version), timeout=self.timeout_s)
            slot.version = version

    def _reap_finished_runs(self) -> None:
        import ray
        from ray.exceptions import RayActorError

        playing = [slot for slot in self.slots if slot.run is not None]
        if not playing:
            return
        done, _ = ray.wait([s.run for s in playing], num_returns=len(playing), timeout=0)
        for slot in (s for s in playing if s.run in done):
            try:
                ray.get(slot.run, timeout=1.0)
                reason = "stopped playing"
            except RayActorError as err:
                reason = f"died ({_first_line(err)})"
            except Exception as err:
                reason = f"stopped playing ({_first_line(err)})"
            self.replace(slot, reason)

    def _health_round(self) -> None:
        import ray
        from ray.exceptions import RayActorError

        playing = [slot for slot in self.slots if slot.run is not None]
        if not playing:
            return
        refs = {slot.index: slot.actor.health.remote(self.health_check_s) for slot in playing}
        done, _ = ray.wait(list(refs.values()), num_returns=len(refs),
                           timeout=2 * self.health_check_s)  # the probe's time and a margin
        for slot in playing:
            ref = refs[slot.index]
            try:
                if ref not in done:
                    raise TimeoutError("no answer to the health check")
                ray.get(ref, timeout=1.0)
                slot.strikes = 0
            except RayActorError as err:
                self.replace(slot, f"died ({_first_line(err)})")
            except Exception as err:
                self._strike(slot, err)

    def _strike(self, slot: Slot, err: Exception) -> None:
        """A missed health check: an unhealthy worker (dead engine, failing groups) is
        replaced now, a slow one after HEALTH_STRIKES misses in a row."""
        slot.strikes += 1
        if isinstance(err, Unhealthy) or slot.strikes >= HEALTH_STRIKES:
            self.replace(slot, f"failed {slot.strikes} health check(s) ({_first_line(err)})")

    def replace(self, slot: Slot, reason: str) -> None:
        """Kill the worker, give its groups back, start a new one from the latest weights."""
        import ray

        used = self.faults.worker_restarts
        if used >= self.max_restarts:
            raise RunStopped(f"rollout worker {slot.worker_id} {reason}, and "
                             f"rollout.max_restarts={self.max_restarts} replacements are used")
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:  # already gone
            pass
        # a lost queue raises here: the whole system is rebuilt then, not this worker
        held = call(self.queue.release.remote(slot.worker_id), self.timeout_s, "the queue")
        self.faults.worker_restarts += 1
        print(f"simsearch: rollout worker {slot.worker_id} {reason}; its groups {held} go "
              f"back to the queue; starting a replacement "
              f"({used + 1}/{self.max_restarts} restarts)", flush=True)
        slot.worker_id = f"rollout-{slot.index}.{used + 1}"
        self.on_replace()
        self._start(slot, self.base, UNKNOWN_VERSION)
