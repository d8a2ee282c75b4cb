"""Step metrics: computed from a batch, logged to W&B and to ``<run dir>/metrics.jsonl``.

W&B sits behind a same-signature no-op (``DummyWandb``) when disabled, so no code
branches on whether logging is on. Mode ``auto`` logs online when WANDB_API_KEY is set and
offline otherwise; the offline run file lands under the run directory.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from actors.trajectory import Trajectory
from conf.schema import Config, WandbConf

END_REASONS = ("answer", "max_turns", "turn_tokens", "obs_tokens", "context")


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def batch_metrics(groups: list[list[Trajectory]], learner_version: int) -> dict[str, float]:
    """Reward, episode and staleness statistics of one train batch."""
    trajs = [t for g in groups for t in g]
    staleness = [learner_version - t.oldest_version for t in trajs if t.num_sampled]
    reasons = Counter(t.end_reason for t in trajs)
    metrics = {
        "reward/mean": _mean(t.reward for t in trajs),
        "em/mean": _mean(t.em for t in trajs),
        "episode/turns_mean": _mean(t.turns for t in trajs),
        "episode/turns_max": float(max((t.turns for t in trajs), default=0)),
        "episode/search_calls_mean": _mean(t.search_calls for t in trajs),
        "episode/search_failures": float(sum(t.search_failures for t in trajs)),
        "episode/response_tokens_mean": _mean(t.num_sampled for t in trajs),
        "episode/length_tokens_mean": _mean(len(t.token_ids) for t in trajs),
        "episode/seconds_mean": _mean(t.total_s for t in trajs),
        "staleness/mean": _mean(staleness),
        "staleness/max": float(max(staleness, default=0)),
        "simulator/noisy_fraction": (sum(t.noisy_searches for t in trajs)
                                     / max(1, sum(t.search_calls for t in trajs))),
    }
    for reason in END_REASONS:
        metrics[f"episode/end_{reason}"] = reasons.get(reason, 0) / len(trajs)
    return metrics


def rollout_metrics(worker_stats: list[dict], step_s: float) -> dict[str, float]:
    """Search latency/cost and rollout throughput from the workers' drained counters."""
    latencies = [x for s in worker_stats for x in s["latencies"]]
    tokens = [x for s in worker_stats for x in s["tokens"]]
    generated = sum(s["generated_tokens"] for s in worker_stats)
    return {
        "search/latency_p50_s": _percentile(latencies, 0.5),
        "search/latency_p99_s": _percentile(latencies, 0.99),
        "search/queries": float(len(latencies)),
        "search/queries_per_s": len(latencies) / max(step_s, 1e-9),
        "simulator/tokens_per_query": _mean(tokens),
        "search/usable_docs_mean": _mean(x for s in worker_stats for x in s["usable_docs"]),
        "search/failed": float(sum(s["failures"] for s in worker_stats)),
        "search/retried": float(sum(s["retried"] for s in worker_stats)),
        "search/cache_hits": float(sum(s["cache_hits"] for s in worker_stats)),
        "throughput/rollout_tokens_per_s": generated / max(step_s, 1e-9),
        "rollout/interrupted_turns": float(sum(s["interrupted_turns"] for s in worker_stats)),
        "idle/rollout_fraction": _mean(s["idle_fraction"] for s in worker_stats),
        # running requests over the episodes a worker may run at once
        "rollout/occupancy": _mean(s["mean_running"] / s["capacity"] for s in worker_stats),
        "rollout/in_flight_episodes": float(sum(s["running_episodes"] for s in worker_stats)),
    }


class DummyWandb:
    """Same calls as the wandb run object; does nothing."""

    def log(self, data: dict, step: int | None = None) -> None:
        pass

    def finish(self) -> None:
        pass


def has_wandb_key() -> bool:
    """An API key in WANDB_API_KEY or from `wandb login` (the netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc

    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return netrc.netrc(path).authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_init_args(conf: WandbConf, run_dir: Path) -> dict:
    """Mode, project, entity and name from config, the environment winning where set."""
    mode = conf.mode
    if mode == "auto":
        mode = "online" if has_wandb_key() else "offline"
    env = os.environ.get
    return {"mode": mode, "project": env("WANDB_PROJECT") or conf.project,
            "entity": env("WANDB_ENTITY") or conf.entity or None,
            "name": env("WANDB_NAME") or conf.name or run_dir.name}


def start_wandb(conf: WandbConf, run_dir: Path, config: Config):
    args = wandb_init_args(conf, run_dir)
    if args["mode"] == "disabled":
        return DummyWandb()
    import wandb

    return wandb.init(
        **args, dir=str(run_dir),
        config=asdict(config), settings=wandb.Settings(console="off", x_disable_stats=True),
    )


class MetricsLogger:
    """Writes each step's metrics to W&B and as one JSON line to metrics.jsonl, and each
    step's groups to batches.jsonl."""

    def __init__(self, run_dir: Path, wandb_run):
        self.run_dir = run_dir
        self.file = open(run_dir / "metrics.jsonl", "a")
        self.batches = open(run_dir / "batches.jsonl", "a")
        self.wandb = wandb_run

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.wandb.log(metrics, step=step)
        self.file.write(json.dumps(metrics) + "\n")
        self.file.flush()

    def log_batch(self, step: int, groups: list[list[Trajectory]]) -> None:
        """Which groups (and so which questions) step trained on, to batches.jsonl."""
        rows = sorted([g[0].group_index, g[0].question_index] for g in groups if g)
        self.batches.write(json.dumps({"step": step, "groups": rows}) + "\n")
        self.batches.flush()

    def close(self) -> None:
        self.batches.close()
        self.file.close()
        self.wandb.finish()
