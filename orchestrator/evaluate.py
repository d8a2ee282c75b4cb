"""``simsearch eval``: score a policy checkpoint on a question set with any search backend.

The backend (``eval.search``) is chosen apart from training's, so a policy trained on the
simulator can be scored on a real retriever (sim-to-real), or both on the same questions.
Reports EM and F1 per ``data_source`` and overall, pass@k with k = ``eval.samples``, mean
turns, searches and failed searches; prints a table and writes a JSON file.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from actors.play import Played
from actors.rewards import exact_match, f1_score
from actors.search import with_corpus
from conf.schema import Config

EVAL_APP = "simulator-eval"


def eval_report(played: list[Played]) -> dict[str, dict[str, float]]:
    """Per data_source and "all": questions, episodes, em, f1, pass_at_k, turns, searches."""
    by_source: dict[str, list[Played]] = defaultdict(list)
    for p in played:
        by_source[p.question.data_source].append(p)
        by_source["all"].append(p)
    return {source: _scores(items) for source, items in sorted(by_source.items())}


def _scores(items: list[Played]) -> dict[str, float]:
    em = [exact_match(p.trajectory.answer, p.question.answers) for p in items]
    best: dict[int, float] = defaultdict(float)
    for p, value in zip(items, em):
        best[p.question.index] = max(best[p.question.index], value)
    n = len(items)
    return {
        "questions": float(len(best)),
        "episodes": float(n),
        "em": sum(em) / n,
        "f1": sum(f1_score(p.trajectory.answer, p.question.answers) for p in items) / n,
        "pass_at_k": sum(best.values()) / len(best),
        "turns": sum(p.trajectory.turns for p in items) / n,
        "searches": sum(p.trajectory.search_calls for p in items) / n,
        "failed_searches": float(sum(p.trajectory.search_failures for p in items)),
    }


def eval_inputs(cfg: Config, assets):
    """(data path, questions, search section) of eval, defaults resolved."""
    from actors.dataset import load_questions

    ev = cfg.eval
    data_path = ev.data_path or str(Path(assets.train_path).with_name("test.parquet"))
    questions = load_questions(data_path)[:ev.max_questions or None]
    return data_path, questions, with_corpus(ev.search, assets.corpus_path)


def periodic_evaluator(cfg: Config, assets, rollout):
    """step -> eval/<data_source>/<metric> from the engine of the first rollout worker of
    `rollout` (the supervised workers) with its current weights; with
    eval.also_training_search, also eval_<backend>/... with training's backend. An
    evaluation whose worker dies on the way is skipped, and says so."""
    ev = cfg.eval
    _, questions, search = eval_inputs(cfg, assets)
    backends = [("eval", search)]
    if ev.also_training_search:
        backends.append((f"eval_{cfg.search.backend}", with_corpus(cfg.search,
                                                                   assets.corpus_path)))

    def evaluate_at(step: int) -> dict[str, float]:
        from ray.exceptions import RayActorError

        try:
            return scores(step)
        except RayActorError as err:
            print(f"simsearch: evaluation after step {step} skipped: its rollout worker "
                  f"died ({type(err).__name__})", flush=True)
            return {}

    def scores(step: int) -> dict[str, float]:
        import ray

        metrics = {}
        for prefix, conf in backends:
            rollout.wait_started()  # a replacement may still be starting
            worker = rollout.workers[0]
            pairs = ray.get(worker.evaluate.remote(questions, ev.samples, ev.temperature,
                                                   conf, f"{prefix}{step}"),
                            timeout=cfg.trainer.step_timeout_s)
            report = eval_report([Played(questions[i], "", traj) for i, traj in pairs])
            metrics.update({f"{prefix}/{source}/{key}": value
                            for source, row in report.items() for key, value in row.items()})
        return metrics

    return evaluate_at


def print_table(report: dict[str, dict[str, float]], backend: str, samples: int) -> None:
    print(f"\n{'data_source':24} {'questions':>9} {'EM':>6} {'F1':>6} "
          f"{f'pass@{samples}':>8} {'turns':>6} {'searches':>8}   (search: {backend})")
    for source, r in report.items():
        print(f"{source:24} {r['questions']:9.0f} {r['em']:6.3f} {r['f1']:6.3f} "
              f"{r['pass_at_k']:8.3f} {r['turns']:6.2f} {r['searches']:8.2f}")


def evaluate(cfg: Config) -> Path:
    """Play, score, print, write; returns the JSON report's path."""
    from tinyworld.assets import resolve_assets

    ev = cfg.eval
    assets = resolve_assets(cfg)
    data_path, questions, search = eval_inputs(cfg, assets)
    policy = ev.policy_path or assets.policy_path
    episode = replace(cfg.rollout.episode, temperature=ev.temperature)
    played = _play(cfg, search, episode, policy, questions, assets.simulator_path)
    report = eval_report(played)
    print_table(report, search.backend, ev.samples)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(ev.output or Path(cfg.trainer.run_dir) / f"eval-{stamp}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"policy": policy, "data": data_path, "backend": search.backend,
                               "samples": ev.samples, "report": report}, indent=2))
    print(f"wrote {out.resolve()}")
    return out


def _play(cfg: Config, search, episode, policy: str, questions, simulator_path: str):
    """Episodes against the chosen backend; the simulator pool is started only for it."""
    from actors.play import play_questions
    from actors.search import BackendContext, make_backend
    from orchestrator import wiring

    def play(handle):
        def make_search(generator, encode):
            return make_backend(search, BackendContext(cfg.simulator, cfg.trainer.seed,
                                                       handle, generator, encode))

        return asyncio.run(play_questions(cfg.rollout.engine, episode, policy,
                                          cfg.trainer.seed, questions, cfg.eval.samples,
                                          make_search))

    if search.backend != "simulator":
        return play(None)
    with wiring.ray_connection(cfg, ("simulator",)):
        handle = wiring.start_simulator(cfg.simulator, simulator_path, cfg.trainer.seed,
                                        app_name=EVAL_APP)
        try:
            return play(handle)
        finally:
            wiring.stop_app(EVAL_APP)
