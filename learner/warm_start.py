"""A short supervised warm start of the tiny policy on protocol demonstrations.

A random-initialised policy never writes a search or an answer tag, so every reward is 0
and no gradient flows. A few hundred steps on demonstrations built from the training
questions (think, search, the corpus document as the observation, answer) teach the tag
protocol; the loss covers only the policy's own tokens, exactly as in RL. Kept short on
purpose: the protocol is right while answers on held-out questions stay mostly wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

from actors.dataset import load_questions
from actors.episode import format_observation
from actors.search import SearchResult


def _documents(corpus_path: Path) -> dict[str, str]:
    docs = {}
    for line in open(corpus_path):
        title, _, text = json.loads(line)["contents"].partition("\n")
        docs[title.strip('"')] = text
    return docs


def demonstrations(data_dir: Path) -> list[list[tuple[str, bool]]]:
    """Per training question: prompt, search turn, observation, answer turn, as
    (text, trained) parts; the prompt and the observation are not trained (as in RL)."""
    docs = _documents(data_dir / "corpus.jsonl")
    demos = []
    for q in load_questions(data_dir / "train.parquet"):
        title = next((t for t in docs if t in q.question), "")
        observation = format_observation(SearchResult([("", docs.get(title, ""))]))
        first = f"<think> I need to search. </think> <search> {q.question} </search>"
        final = f"<think> I found it. </think> <answer> {q.answers[0]} </answer>"
        demos.append([(q.prompt, False), (first, True), (observation, False), (final, True)])
    return demos


def warm_start(model_dir: Path, data_dir: Path, steps: int, seed: int, lr: float = 3e-3,
               batch_size: int = 16) -> float:
    """Fine-tune the model in model_dir in place; returns the last loss."""
    from learner.sft import finetune

    return finetune(model_dir, model_dir, demonstrations(data_dir), steps, lr, batch_size,
                    seed)[-1]
