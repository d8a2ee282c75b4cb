"""A rollout worker's engine and queue calls are bounded (rollout.call_timeout_s): a call
that hangs is an error its group recovers from, never a hang (stand-in engine and queue;
the recovery itself runs against real actors in test_faults)."""

import asyncio

import pytest

from actors.engine import CallTimeout, within
from actors.dataset import Question
from actors.queue import Ticket
from actors.rollout_worker import RolloutWorker
from actors.turns import Turns
from conf.schema import RolloutConf

BOUND_S = 0.2


class HungEngine:
    """An engine whose requests never produce a token."""

    errored = False

    async def generate(self, prompt, params, request_id):
        await asyncio.Event().wait()
        yield None  # never reached: an async generator


class Queue:
    """A stand-in queue actor: put hangs, fail records what was given back."""

    def __init__(self):
        self.failed = []
        self.put, self.fail = Method(self._hang), Method(self._fail)

    async def _hang(self, *args):
        await asyncio.Event().wait()

    async def _fail(self, ticket, worker, question, error):
        self.failed.append((ticket.index, worker, error))
        return True


class Method:
    def __init__(self, call):
        self.remote = call


def worker(engine=None, queue=None) -> RolloutWorker:
    """A worker around stand-ins (its constructor would start a vLLM engine)."""
    w = RolloutWorker.__new__(RolloutWorker)
    w.worker_id, w.engine, w.queue = "rollout-0", engine or HungEngine(), queue or Queue()
    w.conf = RolloutConf(call_timeout_s=BOUND_S)
    w.turns = Turns(w.engine, 1.0, seed=0, call_timeout_s=BOUND_S)
    w.failed_in_row = 0
    return w


def test_within_names_the_call_and_cancels_it():
    cancelled = []

    async def hang():
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append(True)

    with pytest.raises(CallTimeout, match="a weight load took longer than 0.2 s"):
        asyncio.run(within(hang(), BOUND_S, "a weight load"))
    assert cancelled == [True]
    assert asyncio.run(within(asyncio.sleep(0, "done"), BOUND_S, "x")) == "done"


def test_a_hung_turn_is_an_error_and_leaves_no_request_in_flight():
    w = worker()
    with pytest.raises(CallTimeout, match="a turn's sampling took longer"):
        asyncio.run(w.turns.generate([1, 2, 3], max_tokens=8, key="g0/s0/t0"))
    assert w.turns.inflight == set()  # nothing left for a weight update to abort


def test_a_put_that_hangs_gives_the_group_back():
    queue = Queue()
    w = worker(queue=queue)
    q = Question(7, "who?", "prompt", ["x"], "tiny")
    asyncio.run(w._deliver(Ticket(3, 0, 11), q, group=[]))
    assert [(index, who) for index, who, _ in queue.failed] == [(3, "rollout-0")]
    assert "a put to the queue took longer" in queue.failed[0][2]
    assert w.failed_in_row == 1  # counts toward replacing a worker whose calls keep hanging
