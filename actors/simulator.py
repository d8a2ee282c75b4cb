"""The simulated search engine: a vLLM engine behind Ray Serve, and an OpenAI-API twin.

``SimulatorServer`` is the body of the Serve deployment (wired in
``orchestrator.wiring``): each replica runs one AsyncLLM with the simulator model, so the
requests of many episodes are batched by the engine. ``pool_writer`` calls the pool
through a Serve handle (a replica that dies fails the call, and the retry in
``actors.search`` lands on a live one); ``OpenAIWriter`` asks any OpenAI-compatible chat
endpoint instead, with the same prompt (one user message), as ZeroSearch served it. Both
return ``{"docs": [str], "tokens": int}`` and raise on failure.
"""

from __future__ import annotations

import ipaddress
import os
import time
from urllib.parse import urlsplit

from actors.engine import check_engine, generate, sampling_params, start_engine
from actors.simulator_prompt import parse_documents, request_prompt
from conf.schema import OpenAIConf, SimulatorConf

HEALTH_PROBE_S = 20.0  # within Serve's health-check timeout (30 s)


class SimulatorServer:
    start_engine = staticmethod(start_engine)  # a timed stand-in's in bench/standins.py

    def __init__(self, conf: SimulatorConf, model_path: str, seed: int):
        self.conf = conf
        self.engine = self.start_engine(conf.engine, model_path, seed)
        self.tokenizer = self.engine.get_tokenizer()
        self.answered_at: float | None = None  # when a search last finished

    async def search(self, query: str, question: str, answers: list[str], noisy: bool,
                     num_docs: int) -> dict:
        """num_docs documents for query: {"docs": [str], "tokens": int}."""
        prompt = request_prompt(self.conf, query, question, answers, noisy, num_docs)
        params = sampling_params(self.conf.max_tokens, self.conf.temperature,
                                 stop=[f"Doc {num_docs + 1}:"], engine=self.engine)
        out = await generate(self.engine, self.tokenizer.encode(prompt), params)
        self.answered_at = time.monotonic()
        return {"docs": parse_documents(out.text, num_docs), "tokens": len(out.token_ids)}

    async def check_health(self) -> None:
        """Serve's health check (every 10 s): a replica whose engine has died, or neither
        answered a search nor samples a token within HEALTH_PROBE_S, is unhealthy, and
        Serve replaces it."""
        await check_engine(self.engine, HEALTH_PROBE_S, self.answered_at)

    def __del__(self):
        """Serve's shutdown hook (called when Serve stops the replica): shut the engine
        down and drop it now, rather than leave it to interpreter teardown, where vLLM's
        own AsyncLLM.__del__ fails on module globals already cleared."""
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.shutdown()


def pool_writer(handle):
    async def write(query: str, question: str, answers: list[str], noisy: bool,
                    num_docs: int) -> dict:
        return await handle.search.remote(query, question, answers, noisy, num_docs)

    return write


def check_key_transport(base_url: str, key_is_set: bool) -> None:
    """Refuse to send an API key in clear text: with a key, base_url must be https, or
    http to a loopback host (a server on this machine). Raises ValueError naming the
    config keys; never sees the key itself."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("search.openai.base_url must be an http(s) URL, not "
                         f"{parts.scheme or 'no scheme'}://{parts.hostname or ''}")
    if not key_is_set or parts.scheme == "https" or _is_loopback(parts.hostname or ""):
        return
    raise ValueError(
        f"search.openai.base_url (http://{parts.hostname}/...) is plain http to a host "
        "that is not this machine, so the API key in the variable named by "
        "search.openai.api_key_env would cross the network unencrypted: use https, or "
        "unset that variable")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only its DNS knows where it points
        return False


class OpenAIWriter:
    """The simulator prompt sent to ``{base_url}/chat/completions``. The API key is read
    from the environment at each request and lives nowhere else (not in the config, so not
    in W&B or the run folder); it is only sent encrypted or to this machine."""

    def __init__(self, conf: OpenAIConf, simulator: SimulatorConf):
        if not conf.base_url or not conf.model:
            raise ValueError("search.openai.base_url and search.openai.model must be set "
                             "for search.backend=openai")
        check_key_transport(conf.base_url, bool(os.environ.get(conf.api_key_env)))
        self.conf, self.simulator = conf, simulator
        self.session = None  # created inside the event loop that uses it

    async def __call__(self, query: str, question: str, answers: list[str], noisy: bool,
                       num_docs: int) -> dict:
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession()
        sim = self.simulator
        body = {"model": self.conf.model, "max_tokens": sim.max_tokens,
                "temperature": sim.temperature, "stop": [f"Doc {num_docs + 1}:"],
                "messages": [{"role": "user", "content": request_prompt(
                    sim, query, question, answers, noisy, num_docs)}]}
        key = os.environ.get(self.conf.api_key_env, "")
        check_key_transport(self.conf.base_url, bool(key))  # it may be set after __init__
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = self.conf.base_url.rstrip("/") + "/chat/completions"
        async with self.session.post(url, json=body, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}: "
                                   f"{(await response.text())[:200]}")
            reply = await response.json()
        text = reply["choices"][0]["message"]["content"] or ""
        tokens = int(reply.get("usage", {}).get("completion_tokens", 0))
        return {"docs": parse_documents(text, num_docs), "tokens": tokens}

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
