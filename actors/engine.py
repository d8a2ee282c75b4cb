"""Start a vLLM AsyncLLM engine from an EngineConf and run single requests on it.

Shared by the policy rollout worker and the simulator replicas. vllm is imported inside
the functions so that pure modules stay light.
"""

from __future__ import annotations

import os
import uuid

from conf.schema import EngineConf

# Added to every engine so tests and weight checks can read the weights back.
WORKER_EXTENSION = "actors.engine_ext.WeightExport"


def start_engine(conf: EngineConf, model_path: str, seed: int):
    """An AsyncLLM for model_path; CPU-only settings go in the environment first."""
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(conf.kv_cache_gib))
        # Pinning threads to cores fights the other engines and the learner on small hosts.
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    args = AsyncEngineArgs(
        model=model_path, dtype=conf.dtype, max_model_len=conf.max_model_len, seed=seed,
        enforce_eager=conf.enforce_eager,
        gpu_memory_utilization=conf.gpu_memory_utilization,
        worker_extension_cls=WORKER_EXTENSION, disable_log_stats=True,
    )
    return AsyncLLM.from_engine_args(args)


def sampling_params(max_tokens: int, temperature: float, stop: list[str] | None = None,
                    logprobs: bool = False, seed: int | None = None):
    from vllm import SamplingParams

    return SamplingParams(max_tokens=max_tokens, temperature=temperature, stop=stop,
                          include_stop_str_in_output=True, logprobs=0 if logprobs else None,
                          seed=seed)


async def sample_turn(engine, token_ids: list[int], max_tokens: int, temperature: float,
                      stop: list[str], version: int):
    """One policy turn as a TurnOutput: sampled ids, their logprobs, text, finish reason."""
    from actors.episode import TurnOutput

    params = sampling_params(max_tokens, temperature, stop, logprobs=True)
    out = await generate(engine, token_ids, params)
    logprobs = [step[tok].logprob for tok, step in zip(out.token_ids, out.logprobs)]
    finish = "length" if out.finish_reason == "length" else "stop"
    return TurnOutput(list(out.token_ids), logprobs, out.text, finish, version)


async def generate(engine, token_ids: list[int], params, whole: bool = False):
    """Run one request to completion; its CompletionOutput (the RequestOutput if whole)."""
    final = None
    async for output in engine.generate({"prompt_token_ids": token_ids}, params,
                                        request_id=uuid.uuid4().hex):
        final = output
    return final if whole else final.outputs[0]
