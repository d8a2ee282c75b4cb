"""The rollout path's overhead against raw vLLM, side by side on one real engine (CPU).

Three paths play one workload on one AsyncLLM, each through ``ForcedLength``: N episodes
of the tiny world's questions at once, T turns of exactly L tokens each, the invalid-action
observation after each turn. (a) raw: final-only ``engine.generate`` calls in a loop; (a+)
raw+logprobs: the same, asking for the sampled tokens' logprobs as (b) does; (b) project:
``run_episode`` on the rollout worker's ``Turns.generate`` (``stream_turn``, version lock,
busy clock, call bound, a seed per turn). The heap is frozen once the engine has started,
as in the worker. A warm-up round each, then --steps rounds each, taking turns; medians of
those (a shared host's load spikes skew means). tokens/s = tokens generated in a round / its wall time; ratio (b)/(a)
of tokens/s, target >= 0.9; (b)/(a+) leaves vLLM's own logprob cost out. overhead per turn
= (wall b - wall a) / turns in a round, with all N episodes running. cpu s = this
process's CPU time in a round (vLLM's front end and the episode code; the engine core runs
in its own processes): steadier than wall time on a busy host. --profile runs one more (b)
round under cProfile.

    python bench/rollout_overhead.py [--steps 4] [--episodes 64] [--turns 4] [--tokens 32]
        [--profile] [--out bench/results/rollout_overhead.json] [section.key=value ...]
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import pstats
import statistics
import time
import uuid

from common import arguments, launch, write_json

TAGS = ["<search>", "</search>", "<answer>", "</answer>"]


class ForcedLength:
    """The engine, each request sampling exactly its max_tokens: no EOS, no stop string,
    no action tag (so every turn is an invalid action); reaching max_tokens reports "stop",
    as a stop string would, so episodes play on to max_turns."""

    def __init__(self, engine, banned_ids: list[int]):
        self.engine, self.bias = engine, {i: -100.0 for i in banned_ids}

    async def generate(self, prompt: dict, params, request_id: str):
        params.min_tokens, params.ignore_eos, params.stop = params.max_tokens, True, []
        params.logit_bias = self.bias
        async for output in self.engine.generate(prompt, params, request_id=request_id):
            if output.finished:
                output.outputs[0].finish_reason = "stop"
            yield output

    def __getattr__(self, name: str):
        return getattr(self.engine, name)


async def raw_episode(engine, ids: list[int], obs_ids: list[int], turns: int, tokens: int,
                      logprobs: bool) -> int:
    """Path (a) or (a+): one episode of final-only requests; the tokens it generated."""
    from vllm import SamplingParams

    generated = 0
    for _ in range(turns):
        params = SamplingParams(max_tokens=tokens, temperature=1.0,
                                logprobs=0 if logprobs else None, flat_logprobs=logprobs)
        async for final in engine.generate({"prompt_token_ids": ids}, params,
                                           request_id=uuid.uuid4().hex):
            pass
        ids = ids + list(final.outputs[0].token_ids) + obs_ids
        generated += len(final.outputs[0].token_ids)
    return generated


async def bench(args) -> dict[str, list[dict]]:
    """Each path's timed rounds after its warm-up."""
    from actors.dataset import load_questions
    from actors.engine import start_engine
    from actors.episode import INVALID_ACTION, Limits, run_episode
    from actors.search import SearchResult
    from actors.turns import Turns
    from conf.loader import CONF_DIR, load_config
    from conf.schema import EngineConf
    from tinyworld.assets import resolve_assets

    cfg = load_config(CONF_DIR / "tiny.yaml", args.overrides)
    assets = resolve_assets(cfg, tuned_simulator=False)
    real = start_engine(EngineConf(max_model_len=4096), assets.policy_path, cfg.trainer.seed)
    gc.collect()  # as RolloutWorker.__init__ does, for all three paths (one process)
    gc.freeze()
    tokenizer = real.get_tokenizer()
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    engine = ForcedLength(real, [tokenizer.convert_tokens_to_ids(t) for t in TAGS])
    questions = load_questions(assets.train_path)
    jobs = [(q, encode(q.prompt), f"e{i}") for i, q in
            enumerate(questions[i % len(questions)] for i in range(args.episodes))]
    obs_ids, turns, tokens = encode(INVALID_ACTION), args.turns, args.tokens
    limits = Limits(turns, tokens, 1 << 20, 1 << 20)  # only turns and their length bind
    generator = Turns(engine, cfg.rollout.episode.temperature, cfg.trainer.seed,
                      call_timeout_s=cfg.rollout.call_timeout_s)

    class NoSearch:  # invalid actions never search
        async def search(self, request):
            return SearchResult(docs=[])

    async def raw(logprobs: bool) -> tuple[int, int]:
        done = await asyncio.gather(*[raw_episode(engine, ids, obs_ids, turns, tokens,
                                                  logprobs) for _, ids, _ in jobs])
        return sum(done), turns * len(jobs)

    async def project() -> tuple[int, int]:
        trajs = await asyncio.gather(*[run_episode(ids, q, generator, NoSearch(), encode,
                                                   limits, key) for q, ids, key in jobs])
        return sum(t.num_sampled for t in trajs), sum(t.turns for t in trajs)

    paths = {"raw": lambda: raw(False), "raw+logprobs": lambda: raw(True), "project": project}
    rounds = {name: [] for name in paths}
    for step in range(args.steps + 1):
        for name, play in paths.items():
            wall, cpu = time.perf_counter(), time.process_time()
            tokens_played, turns_played = await play()
            if step > 0:  # round 0 warms the path up
                rounds[name].append({"tokens": tokens_played, "turns": turns_played,
                                     "wall_s": time.perf_counter() - wall,
                                     "cpu_s": time.process_time() - cpu})
    if args.profile:
        with cProfile.Profile() as profiler:
            await project()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    real.shutdown()
    gc.unfreeze()  # the caller's heap as it was (a test runs this in its own process)
    del engine, generator, real  # vLLM's __del__ shuts down again: now, not at the exit,
    gc.collect()  # when the modules it calls are gone
    return rounds


def main(argv: list[str] | None = None) -> dict:
    args = arguments(__doc__, 4, "bench/results/rollout_overhead.json",
                     ("--episodes", {"type": int, "default": 64}),
                     ("--turns", {"type": int, "default": 4}),
                     ("--tokens", {"type": int, "default": 32}),
                     ("--profile", {"action": "store_true"}), argv=argv)
    rounds = asyncio.run(bench(args))
    if len({(r["tokens"], r["turns"]) for rs in rounds.values() for r in rs}) != 1:
        raise RuntimeError(f"the paths played different workloads: {rounds}")
    res = {name: {**rs[0], "rounds": rs, **{k: statistics.median(r[k] for r in rs)
                                            for k in ("wall_s", "cpu_s")}}
           for name, rs in rounds.items()}
    print(f"\n{'path':13} {'tokens':>7} {'turns':>6} {'wall s':>7} {'tokens/s':>9} {'cpu s':>6}")
    for name, r in res.items():
        r["tokens_per_s"] = r["tokens"] / r["wall_s"]
        print(f"{name:13} {r['tokens']:7d} {r['turns']:6d} {r['wall_s']:7.2f} "
              f"{r['tokens_per_s']:9.1f} {r['cpu_s']:6.2f}")
    ratios = {f"project/{base}": res["project"]["tokens_per_s"] / res[base]["tokens_per_s"]
              for base in ("raw", "raw+logprobs")}
    overhead_ms = 1000 * (res["project"]["wall_s"] - res["raw"]["wall_s"]) / res["raw"]["turns"]
    print(", ".join(f"{k}: {v:.3f}x tokens/s" for k, v in ratios.items())
          + f" (target >= 0.9 against raw); overhead {overhead_ms:.2f} ms per turn")
    result = {"results": res, "ratios": ratios, "overhead_ms_per_turn": overhead_ms,
              **{k: v for k, v in vars(args).items() if k != "out"}}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    launch(main)
