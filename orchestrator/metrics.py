"""Step metrics: computed from a batch, logged to W&B and to ``<run dir>/metrics.jsonl``.

W&B sits behind a same-signature no-op (``DummyWandb``) when disabled, so no code
branches on whether logging is on. Mode ``auto`` logs online when WANDB_API_KEY is set and
offline otherwise; the offline run file lands under the run directory. The W&B run's id is
the run directory's name, so a run resumed in its directory continues the same W&B run;
its x-axis is the ``step`` metric, so a step trained again after a restart from a
checkpoint is plotted at its own step. ``Faults`` counts the run's failures.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
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


@dataclass
class Faults:
    """What went wrong in a run and was recovered from, counted over the whole run (across
    restarts, and kept in checkpoints), logged with every step."""

    failed_groups: int = 0  # groups whose episodes raised (played again)
    released_groups: int = 0  # groups given back by a dead worker (played again)
    refused_puts: int = 0  # groups delivered under a lease no longer held (not trained)
    worker_restarts: int = 0  # rollout workers replaced
    restarts: int = 0  # systems rebuilt from a checkpoint (learner or queue lost)
    rollbacks: int = 0  # rollbacks by the collapse guard

    def add(self, drained: dict[str, int]) -> None:
        """Add the queue's counts since its last drain."""
        for key, value in drained.items():
            setattr(self, key, getattr(self, key) + int(value))

    def metrics(self) -> dict[str, float]:
        return {"rollout/failed_groups": float(self.failed_groups),
                "rollout/released_groups": float(self.released_groups),
                "queue/refused_puts": float(self.refused_puts),
                "rollout/worker_restarts": float(self.worker_restarts),
                "trainer/restarts": float(self.restarts),
                "guard/rollbacks": float(self.rollbacks)}

    def state_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> Faults:
        return cls(**{key: int(state.get(key, 0)) for key in asdict(cls())})


class DummyWandb:
    """Same calls as the wandb run object; does nothing."""

    def log(self, data: dict, step: int | None = None) -> None:
        pass

    def alert(self, title: str, text: str) -> None:
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
    """The W&B run of run_dir: a new one, or the one it started before (resumed by id)."""
    args = wandb_init_args(conf, run_dir)
    if args["mode"] == "disabled":
        return DummyWandb()
    import wandb

    run = wandb.init(
        **args, dir=str(run_dir), id=run_dir.name, resume="allow",
        config=asdict(config), settings=wandb.Settings(console="off", x_disable_stats=True),
    )
    run.define_metric("*", step_metric="step")
    return run


def keep_steps_through(path: Path, last_step: int) -> None:
    """Drop the lines of a JSON-lines file whose step is after last_step (steps undone by a
    restart from a checkpoint), and a last line cut short by a crash."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(kept))
    os.replace(partial, path)


def read_rows(path: Path) -> list[dict]:
    """A JSON-lines file's rows, skipping a last line cut short by a crash."""
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def move_steps_after(path: Path, last_step: int, rollback: int) -> None:
    """Append the rows of steps after last_step to ``<path stem>.undone.jsonl``."""
    undone = [dict(row, rollback=rollback) for row in read_rows(path)
              if row.get("step", -1) > last_step]
    with open(path.with_suffix(".undone.jsonl"), "a") as out:
        out.writelines(json.dumps(row) + "\n" for row in undone)


class MetricsLogger:
    """Writes each step's metrics to W&B and as one JSON line to metrics.jsonl, and each
    step's groups to batches.jsonl. With keep_through (a run continued in its directory),
    the lines of later steps are dropped first, as by ``rewind``."""

    FILES = ("metrics.jsonl", "batches.jsonl")

    def __init__(self, run_dir: Path, wandb_run, keep_through: int | None = None):
        self.run_dir = run_dir
        self.wandb = wandb_run
        if keep_through is not None:
            self._keep(keep_through)
        self._open()

    def _open(self) -> None:
        self.file = open(self.run_dir / "metrics.jsonl", "a")
        self.batches = open(self.run_dir / "batches.jsonl", "a")

    def _keep(self, last_step: int) -> None:
        for name in self.FILES:
            keep_steps_through(self.run_dir / name, last_step)

    def rewind(self, last_step: int, rollback: int = 0) -> None:
        """Forget the steps after last_step (the run goes on from a checkpoint there), so
        the files hold each step once. A rollback (its number) moves their lines to
        ``<file>.undone.jsonl``, each marked with it."""
        self.batches.close()
        self.file.close()
        if rollback:
            for name in self.FILES:
                move_steps_after(self.run_dir / name, last_step, rollback)
        self._keep(last_step)
        self._open()

    def rows(self) -> list[dict]:
        """The metrics of the steps logged so far (this timeline's)."""
        self.file.flush()
        return read_rows(self.run_dir / "metrics.jsonl")

    def alert(self, title: str, text: str) -> None:
        """A W&B alert (e-mail or Slack where the project sets them up)."""
        try:
            self.wandb.alert(title=title, text=text)
        except Exception as err:  # offline runs cannot send one; the log line stands
            print(f"simsearch: no W&B alert ({type(err).__name__})", flush=True)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.wandb.log(dict(metrics, step=step))
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
