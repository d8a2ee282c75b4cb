"""Health checks tell a loaded engine from a hung one: an engine that answered within the
probe's time passes without a probe (which on a loaded engine waits behind its batch), one
that did not must sample a probe's token in time, and a dead one fails at once."""

import asyncio
import time
from types import SimpleNamespace

import pytest

from actors import simulator
from actors.engine import EngineDead, check_engine
from conf.schema import SimulatorConf


class ScriptedEngine:
    """Answers each request at once, or never once `hung`."""

    errored = False
    hung = False
    params_type = staticmethod(lambda *args: args)

    def shutdown(self):
        pass

    def get_tokenizer(self):
        return SimpleNamespace(encode=lambda text: [1] * len(text.split()))

    async def generate(self, prompt, params, request_id):
        if self.hung:
            await asyncio.Event().wait()
        text = "Doc 1: a river town. Doc 2: an old city. "
        yield SimpleNamespace(outputs=[SimpleNamespace(text=text, token_ids=[1, 2, 3])])


class Server(simulator.SimulatorServer):
    start_engine = staticmethod(lambda conf, model_path, seed: ScriptedEngine())


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(simulator, "HEALTH_PROBE_S", 0.2)
    return Server(SimulatorConf(), "unused", 0)


def search(server) -> dict:
    return asyncio.run(server.search("ada", "where?", ["x"], False, 2))


def test_a_hung_replica_fails_the_probe(server):
    server.engine.hung = True
    with pytest.raises(TimeoutError):
        asyncio.run(server.check_health())


def test_a_replica_that_just_answered_passes_without_a_probe(server):
    assert search(server)["docs"]
    server.engine.hung = True  # a probe now would wait past its bound, like a full batch
    start = time.monotonic()
    asyncio.run(server.check_health())
    assert time.monotonic() - start < 0.1
    server.answered_at -= 1.0  # its last answer is older than the probe's time: probed
    with pytest.raises(TimeoutError):
        asyncio.run(server.check_health())


def test_a_dead_engine_fails_even_after_an_answer(server):
    search(server)
    server.engine.errored = True
    with pytest.raises(EngineDead):
        asyncio.run(server.check_health())


def test_an_idle_live_engine_passes_the_probe():
    asyncio.run(check_engine(ScriptedEngine(), 0.2))
    asyncio.run(check_engine(ScriptedEngine(), 0.2, answered_at=time.monotonic() - 5.0))
