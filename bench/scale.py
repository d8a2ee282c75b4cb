"""The control plane at 64-GPU scale: the real Ray actors, trajectory queue, Serve pool and
driver, with timed stand-ins for the GPU engines and the learner (``bench/standins.py``).

Layout modelled on 64 GPUs: 32 policy engines, 8 simulator replicas, a learner on the
rest, on fractional CPUs of this host; modelled seconds run `time_scale` times slower so
the control plane's own CPU fits. Side by side in one run it measures trajectories per
modelled second at each `queue.max_staleness` with and without interruptible generation and
under each `queue.bound` (strict, admission), the engines' busy fraction (a turn running on
the engine, over wall time), the learner's idle fraction, the control plane's CPU time per
turn (driver, queue, workers, Serve, Ray), episodes in flight, scaling over 1..32 engines
against the ideal line (per-engine load held fixed), and the weight push's share of a step
for 3B and 7B models. Prints tables, writes JSON and a PNG.

    python bench/scale.py [--sections staleness,scaling,weight_sync] [--out DIR]
        [key=value ...]   (keys of ScaleConf, e.g. engines=8 steps=3 time_scale=4)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]
from report_scale import report, run_table  # noqa: E402
from standins import LearnerModel, timed_parts  # noqa: E402
from timed_engine import EngineModel, Workload  # noqa: E402


@dataclass
class ModelSize:
    name: str
    bytes: float


@dataclass
class ScaleConf:
    engines: int = 32
    simulator_replicas: int = 8
    group_size: int = 8
    groups_per_engine: int = 4
    """Groups per train batch per policy engine (32 engines: 128 groups, 1024 episodes)."""
    max_groups_per_worker: int = 16
    """Groups an engine runs at once (32 engines x 16 x 8 = 4096 episodes in flight)."""
    steps: int = 3
    """Timed steps, after a first one that is left out (start-up)."""
    staleness: list[int] = field(default_factory=lambda: [0, 1, 2, 4])
    interrupt: list[bool] = field(default_factory=lambda: [True, False])
    """Interruptible generation settings run at each eta > 0 (eta 0 runs with it on)."""
    bounds: list[str] = field(default_factory=lambda: ["strict", "admission"])
    """queue.bound rules run at each eta > 0 and each scaling point (eta 0 runs strict)."""
    scaling_engines: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    time_scale: float = 12.0
    """Wall seconds per modelled second (12 keeps 32 engines' control plane within two
    cores)."""
    engine: EngineModel = field(default_factory=EngineModel)
    workload: Workload = field(default_factory=Workload)
    learner: LearnerModel = field(default_factory=LearnerModel)
    weight_bandwidth_gbs: float = 25.0
    """Weight push bandwidth in GB/s (an NCCL broadcast over a 200 Gb/s-class link)."""
    bucket_latency_s: float = 0.001
    """Fixed cost of each learner.sync_bucket_mb bucket of a push."""
    bucket_mb: int = 256
    models: list[ModelSize] = field(default_factory=lambda: [
        ModelSize("3B", 6.2e9), ModelSize("7B", 15.2e9)])
    """Policy sizes in bf16 bytes; the first is the default workload's."""


def simulator_replicas(conf: ScaleConf, engines: int) -> int:
    """The pool for `engines` policy engines: the full layout's share, at least one."""
    return max(1, round(conf.simulator_replicas * engines / conf.engines))


def push_s(conf: ScaleConf, size: ModelSize) -> float:
    """Modelled seconds of one weight push: bytes over bandwidth plus a cost per bucket."""
    buckets = -(-size.bytes // (conf.bucket_mb * 2**20))
    return size.bytes / (conf.weight_bandwidth_gbs * 1e9) + buckets * conf.bucket_latency_s


def train_config(conf: ScaleConf, engines: int, eta: int, interrupt: bool, bound: str,
                 run_root: str):
    from conf.loader import CONF_DIR, load_config
    from tinyworld.stages import world_stage

    world = world_stage(load_config(CONF_DIR / "tiny.yaml", []).world, quiet=True)
    replicas = simulator_replicas(conf, engines)
    w = conf.workload
    return load_config(CONF_DIR / "tiny.yaml", [
        f"data.train_path={world / 'data' / 'train.parquet'}",
        f"search.bm25.corpus_path={world / 'data' / 'corpus.jsonl'}",
        f"rollout.engine.model_path={world / 'tokenizer'}",
        f"simulator.engine.model_path={world / 'tokenizer'}",
        f"rollout.num_workers={engines}", f"rollout.group_size={conf.group_size}",
        f"rollout.max_groups_per_worker={conf.max_groups_per_worker}",
        f"rollout.interrupt_on_update={interrupt}", "rollout.num_cpus=0.01",
        f"rollout.episode.max_turns={w.max_turns}", "rollout.episode.max_turn_tokens=1024",
        "rollout.episode.max_obs_tokens=65536", "rollout.episode.max_context_tokens=131072",
        "rollout.engine.max_model_len=131072", "rollout.max_restarts=0",
        f"simulator.autoscaling.min_replicas={replicas}",
        f"simulator.autoscaling.max_replicas={replicas}", "simulator.num_cpus=0.01",
        "simulator.resource=''",
        "simulator.max_tokens=512", "search.timeout_s=3600", "search.topk=3",
        "learner.num_cpus=0.01", f"queue.max_staleness={eta}", f"queue.bound={bound}",
        f"trainer.groups_per_step={conf.groups_per_engine * engines}",
        f"trainer.total_steps={conf.steps + 1}", "trainer.checkpoint_every=0",
        "trainer.step_timeout_s=7200", f"trainer.run_dir={run_root}", "eval.every=0",
        "wandb.mode=disabled"])


class CpuMeter:
    """CPU seconds of this process and the Ray processes under it, by role."""

    ROLES = {"RolloutWorker": "workers", "TrajectoryQueue": "queue", "Serve": "serve",
             "Simulator": "serve", "Learner": "learner"}

    def __init__(self):
        self.start: dict[str, float] = {}

    def sample(self) -> dict[str, float]:
        import psutil

        out: dict[str, float] = {}
        me = psutil.Process()
        for proc in [me, *me.children(recursive=True)]:
            try:
                title = " ".join(proc.cmdline()[:1]) if proc is not me else "driver"
                times = proc.cpu_times()
            except psutil.Error:
                continue
            role = next((r for key, r in self.ROLES.items() if key in title),
                        "driver" if proc is me else "ray")
            out[role] = out.get(role, 0.0) + times.user + times.system
        return out

    def after_step(self, step: int, system) -> None:
        if step == 0:
            self.start = self.sample()
        self.end = self.sample()

    def used(self) -> dict[str, float]:
        return {role: self.end.get(role, 0.0) - self.start.get(role, 0.0)
                for role in sorted(set(self.end) | set(self.start))}


def run(conf: ScaleConf, engines: int, eta: int, interrupt: bool, bound: str,
        size: ModelSize, run_root: str) -> dict:
    """One training run with stand-ins; its figures over the timed steps."""
    from orchestrator.train import train

    engine = replace(conf.engine, time_scale=conf.time_scale, weight_load_s=push_s(conf, size))
    learner = replace(conf.learner, time_scale=conf.time_scale)
    cfg = train_config(conf, engines, eta, interrupt, bound, run_root)
    meter = CpuMeter()
    started = time.monotonic()
    run_dir = train(cfg, after_step=meter.after_step,
                    parts=timed_parts(engine, conf.workload, learner))
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    late = rows[-1]["queue/over_bound_groups"] - rows[0]["queue/over_bound_groups"]
    result = summarize(rows[1:], cfg, conf, meter.used()) | {
        "engines": engines, "max_staleness": eta, "interrupt": interrupt, "bound": bound,
        "over_bound_groups": late, "simulator_replicas": simulator_replicas(conf, engines),
        "model": size.name, "wall_s": time.monotonic() - started}
    run_table(f"run done in {result['wall_s']:.0f} s", [result])
    return result


def summarize(rows: list[dict], cfg, conf: ScaleConf, cpu: dict[str, float]) -> dict:
    def mean(key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    batch = cfg.trainer.groups_per_step * cfg.rollout.group_size
    modelled_s = sum(r["timing/step_s"] for r in rows) / conf.time_scale
    turns = sum(r["episode/turns_mean"] * batch for r in rows)
    return {
        "trajectories_per_s": len(rows) * batch / modelled_s,
        "step_s": modelled_s / len(rows),
        "engine_busy": 1.0 - mean("idle/rollout_fraction"),
        "occupancy": mean("rollout/occupancy"),
        "learner_idle": mean("idle/learner_fraction"),
        "weight_sync_share": sum(r["timing/weight_sync_s"] for r in rows)
        / sum(r["timing/step_s"] for r in rows),
        "in_flight_mean": mean("rollout/in_flight_episodes"),
        "in_flight_max": max(r["rollout/in_flight_episodes"] for r in rows),
        "turns_mean": mean("episode/turns_mean"),
        "turns_max": max(r["episode/turns_max"] for r in rows),
        "staleness_max": max(r["staleness/max"] for r in rows),
        "interrupted_turns": sum(r["rollout/interrupted_turns"] for r in rows),
        "cpu_ms_per_turn": {role: 1000 * s / max(turns, 1) for role, s in cpu.items()},
        "cpu_cores": sum(cpu.values()) / (modelled_s * conf.time_scale),
        "steps_timed": len(rows),
    }


def staleness_section(conf: ScaleConf, root: str) -> list[dict]:
    size = conf.models[0]
    return [run(conf, conf.engines, eta, interrupt, bound, size, root)
            for eta in sorted(conf.staleness, reverse=True)
            for interrupt in (conf.interrupt if eta else [True])
            for bound in (conf.bounds if eta else ["strict"])]


def scaling_section(conf: ScaleConf, root: str, eta: int, done: list[dict]) -> list[dict]:
    have = {(r["engines"], r["bound"]): r for r in done
            if r["max_staleness"] == eta and r["interrupt"]}
    return [have.get((e, bound)) or run(conf, e, eta, True, bound, conf.models[0], root)
            for bound in conf.bounds for e in conf.scaling_engines]


def weight_section(conf: ScaleConf, root: str, eta: int, bound: str,
                   done: list[dict]) -> list[dict]:
    have = {(r["model"], r["interrupt"]): r for r in done if r["max_staleness"] == eta
            and r["engines"] == conf.engines and r["bound"] == bound}
    return [have.get((size.name, interrupt)) or run(conf, conf.engines, eta, interrupt,
                                                    bound, size, root)
            for size in conf.models for interrupt in (True, False)]


def parse(argv: list[str] | None = None) -> tuple[ScaleConf, argparse.Namespace]:
    from omegaconf import OmegaConf

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="staleness,scaling,weight_sync")
    parser.add_argument("--out", default=str(BENCH / "results"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    merged = OmegaConf.merge(OmegaConf.structured(ScaleConf),
                             OmegaConf.from_dotlist(args.overrides))
    return OmegaConf.to_object(merged), args


def main(argv: list[str] | None = None) -> dict:
    conf, args = parse(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sections = args.sections.split(",")
    root = tempfile.mkdtemp(prefix="scale-")
    import ray

    if not ray.is_initialized():  # one cluster for every run
        ray.init(include_dashboard=False, log_to_driver=False)
    results: dict[str, list[dict]] = {}
    if "staleness" in sections:
        results["staleness"] = staleness_section(conf, root)
    done = results.get("staleness", [])
    eta, bound = best_setting(done, conf)
    if "scaling" in sections:
        results["scaling"] = scaling_section(conf, root, eta, done)
    if "weight_sync" in sections:
        results["weight_sync"] = weight_section(conf, root, eta, bound, done)
    return report(results, asdict(conf), (eta, bound), Path(args.out))


def best_setting(rows: list[dict], conf: ScaleConf) -> tuple[int, str]:
    """The eta and queue.bound of the fastest run (without runs: the largest eta, the last
    bound)."""
    if not rows:
        return max(conf.staleness), conf.bounds[-1]
    best = max(rows, key=lambda r: r["trajectories_per_s"])
    return best["max_staleness"], best["bound"]


if __name__ == "__main__":
    main()
