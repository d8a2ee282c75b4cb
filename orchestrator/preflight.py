"""What a command checks before anything starts: the files its config names and the
settings each search backend needs; on a joined cluster, that some node offers each
resource an actor asks for.

``preflight(command, cfg)`` runs on the driver before Ray starts: training and evaluation
data are read once (the first bad row named), model folders must hold an HF checkpoint, a
corpus must load, an openai backend needs its URL and model (and sends a key only over
HTTPS or to this machine), an http backend a URL. ``check_cluster(cfg)`` runs once the
driver has joined a cluster. Every failure is a one-line ConfigError naming the key.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from conf.loader import ConfigError
from conf.schema import Config, SearchConf


def bad(key: str, problem: str) -> ConfigError:
    return ConfigError(f"bad value for config key '{key}': {problem}")


def check_model(key: str, path: str) -> None:
    """An HF checkpoint folder (empty = a tiny model built locally)."""
    if not path:
        return
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise bad(key, f"{path!r} is not a folder (an HF checkpoint folder is needed)")
    if not (folder / "config.json").is_file():
        raise bad(key, f"{path!r} has no config.json (an HF checkpoint folder is needed)")


def check_questions(key: str, path: str) -> None:
    """A question parquet that loads, every row usable (empty = the tiny world's)."""
    from actors.dataset import DatasetError, load_questions

    if not path:
        return
    if not Path(path).expanduser().is_file():
        raise bad(key, f"no such file: {path!r}")
    try:
        load_questions(Path(path).expanduser())
    except DatasetError as err:
        raise bad(key, str(err)) from None


def check_url(key: str, url: str) -> None:
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad(key, f"{url!r} is not an http(s) URL")


def check_search(prefix: str, conf: SearchConf) -> None:
    """The settings the backend of one search section needs."""
    if conf.backend == "openai":
        from actors.simulator import check_key_transport

        if not conf.openai.base_url:
            raise bad(f"{prefix}.openai.base_url", "empty; the openai backend needs the "
                                                   "endpoint's URL, ending in /v1")
        check_url(f"{prefix}.openai.base_url", conf.openai.base_url)
        if not conf.openai.model:
            raise bad(f"{prefix}.openai.model", "empty; the openai backend needs the name "
                                                "of the model the endpoint serves")
        try:
            check_key_transport(conf.openai.base_url,
                                bool(os.environ.get(conf.openai.api_key_env)))
        except ValueError as err:  # it names the training section's keys
            raise ConfigError(str(err).replace("search.openai.", f"{prefix}.openai.")) \
                from None
    elif conf.backend == "http":
        check_url(f"{prefix}.http.url", conf.http.url)
    elif conf.backend == "bm25" and conf.bm25.corpus_path:
        check_corpus(f"{prefix}.bm25.corpus_path", conf.bm25.corpus_path)


def check_corpus(key: str, path: str) -> None:
    """A jsonl corpus whose every line is a document (read through, not kept)."""
    from actors import retrievers

    if not Path(path).expanduser().is_file():
        raise bad(key, f"no such file: {path!r}")
    try:
        retrievers.check_corpus(Path(path).expanduser())
    except retrievers.CorpusError as err:
        raise bad(key, str(err)) from None


def check_resume(path: str) -> None:
    if path and not Path(path).expanduser().is_dir():
        raise bad("trainer.resume_from", f"{path!r} is not a run directory nor a "
                                         f"checkpoint folder")


def check_train(cfg: Config) -> None:
    check_questions("data.train_path", cfg.data.train_path)
    check_model("rollout.engine.model_path", cfg.rollout.engine.model_path)
    check_model("simulator.engine.model_path", cfg.simulator.engine.model_path)
    check_search("search", cfg.search)
    if cfg.eval.every:
        check_questions("eval.data_path", cfg.eval.data_path)
        check_search("eval.search", cfg.eval.search)
    check_resume(cfg.trainer.resume_from)


def check_eval(cfg: Config) -> None:
    check_questions("eval.data_path", cfg.eval.data_path)
    check_model("eval.policy_path", cfg.eval.policy_path)
    check_model("rollout.engine.model_path", cfg.rollout.engine.model_path)
    check_model("simulator.engine.model_path", cfg.simulator.engine.model_path)
    check_search("eval.search", cfg.eval.search)


def check_serve(cfg: Config) -> None:
    check_model("simulator.engine.model_path", cfg.simulator.engine.model_path)


def check_sft(cfg: Config) -> None:
    check_questions("data.train_path", cfg.data.train_path)
    check_model("rollout.engine.model_path", cfg.rollout.engine.model_path)
    check_model("simulator.engine.model_path", cfg.simulator.engine.model_path)
    check_search("sft.search", cfg.sft.search)


CHECKS = {"train": check_train, "pipeline": check_train, "eval": check_eval,
          "serve-simulator": check_serve, "sft-simulator": check_sft}


def preflight(command: str, cfg: Config) -> None:
    """Raise a ConfigError for the first thing that would stop `command` after it started."""
    check = CHECKS.get(command)
    if check is not None:
        check(cfg)


def requested_resources(cfg: Config, roles: tuple[str, ...]) -> list[tuple[str, str, float]]:
    """(config key, resource, amount one actor needs) for the actors of each role named
    (rollout, learner, simulator)."""
    wanted = []
    for key in roles:
        section = getattr(cfg, key)
        if section.resource:
            wanted.append((f"{key}.resource", section.resource, 1.0))
        if section.num_gpus:
            wanted.append((f"{key}.num_gpus", "GPU", section.num_gpus))
        if section.num_cpus:
            wanted.append((f"{key}.num_cpus", "CPU", section.num_cpus))
    return wanted


def missing_resources(wanted: list[tuple[str, str, float]],
                      nodes: list[dict[str, float]]) -> list[str]:
    """The keys whose resource no node offers in the amount one actor needs."""
    return [f"{key} ({resource} x{amount:g})" for key, resource, amount in wanted
            if not any(node.get(resource, 0.0) >= amount for node in nodes)]


def check_cluster(cfg: Config, roles: tuple[str, ...]) -> None:
    """On a joined cluster without an autoscaler, each actor's resources must be offered
    by some node (else its actors would wait forever); with one, the start-up bounds
    (simulator.start_timeout_s, trainer.step_timeout_s) apply instead."""
    import ray

    alive = [node for node in ray.nodes() if node.get("Alive")]
    offered = [dict(node.get("Resources", {})) for node in alive]
    missing = missing_resources(requested_resources(cfg, roles), offered)
    if not missing or autoscaler_running():
        return
    listing = "; ".join(
        f"{node.get('NodeManagerAddress', '?')}: "
        + ", ".join(f"{k}={v:g}" for k, v in sorted(res.items()) if not k.startswith("node:"))
        for node, res in zip(alive, offered))
    raise ConfigError(f"no node of the cluster offers what these config keys ask for: "
                      f"{', '.join(missing)}; nodes offer: {listing}")


STATUS_WAIT_S = 15.0  # how long to wait for the cluster monitor's first report


def autoscaler_running() -> bool:
    """Whether an autoscaler may add the nodes that are missing: autoscaler v2 reports a
    state version; v1 names node types from its config (a cluster without one has only
    the read-only provider's anonymous types, ``node_<id>``)."""
    import ray
    from ray.experimental.internal_kv import _internal_kv_get

    try:
        from ray.autoscaler.v2.sdk import get_cluster_status

        status = get_cluster_status(ray.get_runtime_context().gcs_address)
        if status.stats.autoscaler_version not in (None, "", "0"):
            return True
        deadline = time.monotonic() + STATUS_WAIT_S
        while True:  # the monitor reports every few seconds; a driver may come first
            raw = _internal_kv_get("__autoscaling_status")
            report = (json.loads(raw).get("autoscaler_report") or {}) if raw else {}
            types = (report.get("node_type_mapping") or {}).items()
            if types:
                return any(kind != f"node_{node_id}" for node_id, kind in types)
            if time.monotonic() > deadline:
                return True  # no report yet: do not refuse what may yet start
            time.sleep(0.5)
    except Exception:  # an unknown Ray layout: do not refuse what may yet start
        return True
