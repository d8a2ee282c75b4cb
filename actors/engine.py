"""Start a vLLM AsyncLLM engine from an EngineConf and run single requests on it.

Shared by the policy rollout worker and the simulator replicas. vllm is imported inside
the functions so that pure modules stay light.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from conf.schema import EngineConf

# Added to every engine so tests and weight checks can read the weights back.
WORKER_EXTENSION = "actors.engine_ext.WeightExport"
PROBE_PROMPT = [0]  # a health probe's prompt: any valid token id
# A streamed turn's tokens come this many to an output (the first and the last at once; an
# abort's output brings those held back): an output per token and request, each a Python
# wake-up, took about a sixth of the front end's CPU (bench/rollout_overhead.py).
STREAM_INTERVAL = 16


def start_engine(conf: EngineConf, model_path: str, seed: int,
                 weight_transfer: bool = False):
    """An AsyncLLM for model_path; CPU-only settings go in the environment first. With
    weight_transfer, it can receive weights by NCCL (vLLM's weight-transfer API). Sampled
    tokens' logprobs are those of the distribution they were drawn from (after the
    temperature), which the learner reproduces."""
    import torch

    cpu = {}
    if not torch.cuda.is_available():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(conf.kv_cache_gib))
        # Pinning threads to cores fights the other engines and the learner on small hosts.
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
        # The model runs in the engine-core process, not in a worker process of its own: one
        # interpreter fewer to spawn and import torch in (bench/engine_start.py: 13 s, not 20).
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        # Prompts prefill whole: after a partial prefill vLLM rewinds a seeded request's
        # generator (actors.turns seeds each turn), which a CPU generator cannot do.
        cpu = {"enable_chunked_prefill": False,
               "max_num_batched_tokens": max(conf.max_model_len, 2048)}
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    logprobs_without_text()
    args = AsyncEngineArgs(
        model=model_path, dtype=conf.dtype, max_model_len=conf.max_model_len, seed=seed,
        enforce_eager=conf.enforce_eager,
        gpu_memory_utilization=conf.gpu_memory_utilization,
        worker_extension_cls=WORKER_EXTENSION, disable_log_stats=True,
        logprobs_mode="processed_logprobs",
        **({"weight_transfer_config": {"backend": "nccl"}} if weight_transfer else {}),
        **cpu,
    )
    return AsyncLLM.from_engine_args(args)


def logprobs_without_text() -> None:
    """Requests' logprobs come without each token's text (``decoded_token`` None), in
    every engine this process starts. vLLM decodes the text of every logprob's token,
    which nothing here reads; it took about a third of the front end's CPU per streamed
    turn (bench/rollout_overhead.py). The outputs' own text is still decoded (stop strings
    need it). A vLLM without this hook keeps its default."""
    try:
        from vllm.v1.engine.logprobs import LogprobsProcessor
    except ImportError:
        return
    if getattr(LogprobsProcessor, "without_text", False):
        return
    with_text = LogprobsProcessor.from_new_request

    def from_new_request(cls, tokenizer, request):
        return with_text(tokenizer=None, request=request)

    LogprobsProcessor.from_new_request = classmethod(from_new_request)
    LogprobsProcessor.without_text = True


def sampling_params(max_tokens: int, temperature: float, stop: list[str] | None = None,
                    logprobs: bool = False, seed: int | None = None,
                    prompt_logprobs: bool = False, delta: bool = False, engine=None):
    """vLLM sampling parameters (delta: stream only the new tokens of each output); logprob
    options are set here, not on the object later: vLLM decides at construction whether a
    request may read the prefix cache, and prompt logprobs from a cached prefix would be
    left unfilled. Sampled tokens' logprobs come flat (FlatLogprobs: lists, not a dict and
    a Logprob object per token, which loaded the garbage collector); read them with
    sampled_logprobs. An `engine` with a `params_type` (a timed stand-in, bench/) gets its
    own, so that it runs without importing vLLM."""
    own = getattr(engine, "params_type", None)
    if own is not None:
        return own(max_tokens, temperature, stop, 0 if logprobs else None, seed,
                   0 if prompt_logprobs else None, delta)
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    kind = ({"output_kind": RequestOutputKind.DELTA, "stream_interval": STREAM_INTERVAL}
            if delta else {})
    return SamplingParams(max_tokens=max_tokens, temperature=temperature, stop=stop,
                          include_stop_str_in_output=True, logprobs=0 if logprobs else None,
                          prompt_logprobs=0 if prompt_logprobs else None, seed=seed,
                          flat_logprobs=logprobs, **kind)


def sampled_logprobs(token_ids: list[int], logprobs) -> list[float]:
    """Each sampled token's logprob, from an output's logprobs: FlatLogprobs (the sampled
    token first at each position) or a list of {token id: Logprob} (a stand-in's)."""
    if logprobs is None:
        return []
    if hasattr(logprobs, "start_indices"):
        return [logprobs.logprobs[i] for i in logprobs.start_indices]
    return [step[tok].logprob for tok, step in zip(token_ids, logprobs)]


@dataclass
class TurnPart:
    """What one engine request produced before it finished or was aborted."""

    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""
    finish_reason: str = ""  # "stop", "length" or "abort"


async def stream_turn(engine, token_ids: list[int], max_tokens: int, temperature: float,
                      stop: list[str], inflight: set[str] | None = None,
                      on_tokens: Callable[[int], None] | None = None,
                      seed: int | None = None) -> TurnPart:
    """Sample one turn, streaming; the request id sits in `inflight` while it runs, so a
    weight update can abort it (``engine.abort``) and keep the tokens sampled so far.
    on_tokens(n) hears of every n tokens as they arrive (STREAM_INTERVAL at a time); seed:
    the request's own sampling seed (None: the engine's stream)."""
    params = sampling_params(max_tokens, temperature, stop, logprobs=True, seed=seed,
                             delta=True, engine=engine)
    request_id = uuid.uuid4().hex
    part = TurnPart()
    if inflight is not None:
        inflight.add(request_id)
    try:
        async for output in engine.generate({"prompt_token_ids": token_ids}, params,
                                            request_id=request_id):
            out = output.outputs[0]
            part.token_ids += out.token_ids
            part.logprobs += sampled_logprobs(out.token_ids, out.logprobs)
            part.text += out.text
            part.finish_reason = out.finish_reason or part.finish_reason
            if on_tokens is not None:
                on_tokens(len(out.token_ids))
    finally:
        if inflight is not None:
            inflight.discard(request_id)
    return part


async def generate(engine, token_ids: list[int], params, whole: bool = False):
    """Run one request to completion; its CompletionOutput (the RequestOutput if whole)."""
    final = None
    async for output in engine.generate({"prompt_token_ids": token_ids}, params,
                                        request_id=uuid.uuid4().hex):
        final = output
    return final if whole else final.outputs[0]


class CallTimeout(TimeoutError):
    """An engine or actor call that took longer than its bound."""


async def within(awaitable, timeout_s: float, what: str):
    """awaitable's result, or CallTimeout naming `what` once timeout_s has passed (the
    call is cancelled: an engine request is aborted)."""
    try:
        return await asyncio.wait_for(awaitable, timeout_s)
    except TimeoutError:
        raise CallTimeout(f"{what} took longer than {timeout_s:g} s") from None


class Unhealthy(RuntimeError):
    """A health check's verdict: replace this worker (or replica) now."""


class EngineDead(Unhealthy):
    """The engine's core process has died: every request to it fails from now on."""


async def check_engine(engine, timeout_s: float, answered_at: float | None = None) -> None:
    """Raise EngineDead if the engine has died or, when timeout_s > 0, TimeoutError if it
    does not sample one token within timeout_s: a hung engine fails this, a busy one
    passes. An engine that finished a request within the last timeout_s (answered_at, a
    time.monotonic()) is sampling and passes without the probe, which on a loaded engine
    waits behind its batch."""
    if engine.errored:
        raise EngineDead("the engine has died")
    if answered_at is not None and time.monotonic() - answered_at < timeout_s:
        return
    if timeout_s > 0:
        await asyncio.wait_for(generate(engine, PROBE_PROMPT,
                                        sampling_params(1, 0.0, engine=engine)), timeout_s)
