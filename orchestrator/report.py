"""A training run's learning report: starting vs final policy on held-out questions.

Read from the run's ``metrics.jsonl``, where training logged the starting policy's scores
(``start/eval...``) and every evaluation (``eval/...`` for ``eval.search``,
``eval_<backend>/...`` for training's own backend). Printed as a table, written as
``report.json``, and drawn as ``curves.png``: training reward and EM, held-out EM per
backend, and the noise probability of the curriculum, over steps. ``answer_prior`` gives
the baseline a policy reaches without searching, by answering what training questions of
the same shape answered most often.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from actors.dataset import Question
from actors.rewards import exact_match, normalize_answer

METRICS = ("em", "f1", "searches")


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in open(Path(run_dir) / "metrics.jsonl")]


def eval_prefixes(rows: list[dict]) -> list[str]:
    """The evaluation key prefixes present ("eval", "eval_simulator", ...)."""
    keys = {key.split("/")[0] for row in rows for key in row if key.startswith("eval")}
    return sorted(keys)


def _scores(row: dict, prefix: str) -> dict[str, dict[str, float]]:
    """{data_source: {metric: value}} of one evaluation under prefix."""
    out: dict[str, dict[str, float]] = {}
    for key, value in row.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == prefix and parts[2] in METRICS + ("questions",):
            out.setdefault(parts[1], {})[parts[2]] = value
    return out


def summarize(rows: list[dict], backends: dict[str, str]) -> dict:
    """{backend: {data_source: {start_em, final_em, gain_em, start_f1, ...}}}; backends
    maps an eval prefix to the backend's name."""
    first = next(row for row in rows if any(k.startswith("start/") for k in row))
    last = [row for row in rows if any(k.startswith("eval/") for k in row)][-1]
    summary = {}
    for prefix, backend in backends.items():
        start = _scores({k.removeprefix("start/"): v for k, v in first.items()}, prefix)
        final = _scores(last, prefix)
        summary[backend] = {source: {
            "questions": final[source]["questions"],
            **{f"{when}_{m}": scores[source][m] for m in METRICS
               for when, scores in (("start", start), ("final", final))},
            "gain_em": final[source]["em"] - start[source]["em"],
        } for source in final}
    return summary


def _shape(q: Question) -> tuple[str, str]:
    """A question's data source and its first two words ("where was", "in which")."""
    return q.data_source, " ".join(q.question.lower().split()[:2])


def answer_prior(train: list[Question], held_out: list[Question]) -> dict[str, float]:
    """EM per data source (and "all") of answering each held-out question, without a
    search, with the most common training answer among questions of its shape."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for q in train:
        counts[_shape(q)][normalize_answer(q.answers[0])] += 1
    hits: dict[str, list[float]] = defaultdict(list)
    for q in held_out:
        common = counts[_shape(q)].most_common(1)
        hits[q.data_source].append(exact_match(common[0][0] if common else None, q.answers))
    prior = {source: sum(h) / len(h) for source, h in sorted(hits.items())}
    return {"all": sum(map(sum, hits.values())) / max(1, len(held_out)), **prior}


def print_summary(summary: dict, steps: int) -> None:
    print(f"\nheld-out questions: starting policy vs after {steps} RL steps")
    print(f"{'search':10} {'data_source':16} {'questions':>9} {'EM start':>9} {'EM final':>9} "
          f"{'gain':>7} {'F1 start':>9} {'F1 final':>9}")
    for backend, rows in summary.items():
        for source, r in rows.items():
            print(f"{backend:10} {source:16} {r['questions']:9.0f} {r['start_em']:9.3f} "
                  f"{r['final_em']:9.3f} {r['gain_em']:+7.3f} {r['start_f1']:9.3f} "
                  f"{r['final_f1']:9.3f}")


def plot_curves(rows: list[dict], backends: dict[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    steps = [row["step"] + 1 for row in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(steps, [row["reward/mean"] for row in rows], label="reward")
    axes[0].plot(steps, [row["em/mean"] for row in rows], label="EM")
    axes[0].set_title("training batch")
    for prefix, backend in backends.items():
        points = [(0, rows[0][f"start/{prefix}/all/em"])]
        points += [(row["step"] + 1, row[f"{prefix}/all/em"]) for row in rows
                   if f"{prefix}/all/em" in row]
        axes[1].plot(*zip(*points), marker="o", label=backend)
    axes[1].set_title("held-out EM")
    axes[2].plot(steps, [row["curriculum/noise_prob"] for row in rows])
    axes[2].set_title("noise probability")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(run_dir: Path, backends: dict[str, str], extra: dict | None = None) -> dict:
    """Print the table, write report.json and curves.png under run_dir; the report."""
    rows = read_metrics(run_dir)
    summary = summarize(rows, backends)
    steps = rows[-1]["step"] + 1
    print_summary(summary, steps)
    if extra and "answer_prior" in extra:
        print("answer prior (no search): " + ", ".join(
            f"{source} {em:.3f}" for source, em in extra["answer_prior"].items()))
    plot_curves(rows, backends, Path(run_dir) / "curves.png")
    report = {"run_dir": str(Path(run_dir).resolve()), "steps": steps, "held_out": summary,
              **(extra or {})}
    (Path(run_dir) / "report.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {Path(run_dir).resolve() / 'report.json'} and curves.png")
    return report
