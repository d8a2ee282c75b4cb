"""An engine's start on CPU: the model in vLLM's engine-core process (the default here,
``VLLM_ENABLE_V1_MULTIPROCESSING=0``) against a worker process of its own (vLLM's CPU
default), side by side, taking turns.

Each start runs in a fresh interpreter, as a rollout worker or a simulator replica starts
its engine: import vLLM, ``actors.engine.start_engine`` on the tiny policy, one greedy
request, shutdown. Prints the median seconds of each phase per layout and the ratio, and
writes JSON.

    python bench/engine_start.py [--steps 3] [--out bench/results/engine_start.json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from common import arguments, launch, write_json

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = {"engine-core process": "0", "worker process": "1"}
PHASES = ("import_s", "start_s", "first_request_s", "shutdown_s")


def one_start(policy: str) -> dict:
    """The phases of one engine's life in this process, in seconds."""
    import asyncio
    import time

    from conf.schema import EngineConf

    marks = [time.monotonic()]
    import vllm  # noqa: F401  (its import is part of a start)

    from actors.engine import generate, sampling_params, start_engine

    marks.append(time.monotonic())
    engine = start_engine(EngineConf(), policy, seed=0)
    marks.append(time.monotonic())
    asyncio.run(generate(engine, [1, 2, 3], sampling_params(8, 0.0)))
    marks.append(time.monotonic())
    engine.shutdown()
    marks.append(time.monotonic())
    return {phase: b - a for phase, a, b in zip(PHASES, marks, marks[1:])}


def timed_start(policy: str, multiprocessing: str) -> dict:
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING=multiprocessing)
    proc = subprocess.run([sys.executable, __file__, "--one", policy], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    line = [x for x in proc.stdout.splitlines() if x.startswith("PHASES ")]
    if proc.returncode or not line:
        raise RuntimeError(f"an engine start failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[-1].removeprefix("PHASES "))


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        print("PHASES " + json.dumps(one_start(sys.argv[2])), flush=True)
        return
    from conf.loader import CONF_DIR, load_config
    from tinyworld.assets import resolve_assets

    args = arguments(__doc__, 3, "bench/results/engine_start.json")
    policy = resolve_assets(load_config(CONF_DIR / "tiny.yaml", args.overrides)).policy_path
    runs = {name: [] for name in LAYOUTS}
    for _ in range(args.steps):  # taking turns, so a busy spell of the host hits both
        for name, flag in LAYOUTS.items():
            runs[name].append(timed_start(policy, flag))
    res = {name: {p: statistics.median(r[p] for r in rs) for p in PHASES}
           for name, rs in runs.items()}
    print(f"\n{'model runs in':20} " + " ".join(f"{p:>16}" for p in PHASES))
    for name, r in res.items():
        print(f"{name:20} " + " ".join(f"{r[p]:16.2f}" for p in PHASES))
    ratio = res["worker process"]["start_s"] / res["engine-core process"]["start_s"]
    print(f"start: the worker-process layout takes {ratio:.2f}x the engine-core layout's")
    write_json(args.out, {"medians": res, "runs": runs, "start_ratio": ratio,
                          "steps": args.steps})


if __name__ == "__main__":
    launch(main)
