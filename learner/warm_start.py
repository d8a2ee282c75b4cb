"""A short supervised warm start of the tiny policy on format demonstrations.

A base model that never saw the tag protocol does not write a search or an answer tag, so
every reward is 0 and no gradient flows. A short SFT on demonstrations built from a share
of the training questions teaches the protocol: think, search with the question, read
what BM25 returns over the corpus, search the birth city for a two-hop question, answer.
The loss covers only the policy's own tokens, as in RL; in self-search mode (SSRL) it also
covers the information, which the policy then writes itself. Kept short on purpose: the
protocol is right while answers stay mostly wrong, so RL has something to learn.
"""

from __future__ import annotations

import re
from pathlib import Path

from actors.dataset import load_questions
from actors.episode import Question, format_observation
from actors.search import INFO_OPEN, SearchResult

WARM_START_LR = 3e-3
WARM_START_BATCH = 16
TOPK = 3
_BORN_IN = re.compile(r"was born in (\w+)")


def _observation(text: str, self_search: bool) -> list[tuple[str, bool]]:
    """The observation as parts; with self_search the policy writes the body itself."""
    if not self_search:
        return [(text, False)]
    body = text.removeprefix(INFO_OPEN).rstrip("\n")
    return [(INFO_OPEN, False), (body, True), ("\n\n", False)]


def demonstration(q: Question, retrieve, self_search: bool) -> list[tuple[str, bool]]:
    """Prompt, search turn, observation, a second search for a two-hop question, answer."""
    first = retrieve(q.question)
    parts = [(q.prompt, False),
             (f"<think> I need to search. </think> <search> {q.question} </search>", True)]
    parts += _observation(format_observation(SearchResult(first)), self_search)
    born = _BORN_IN.search(first[0][1]) if first else None
    if q.data_source.endswith("2hop") and born:
        city = born.group(1)
        parts.append((f"<think> I need to search {city}. </think> <search> {city} </search>",
                      True))
        parts += _observation(format_observation(SearchResult(retrieve(city))), self_search)
    parts.append((f"<think> I found it. </think> <answer> {q.answers[0]} </answer>", True))
    return parts


def demonstrations(data_dir: Path, fraction: float,
                   self_search: bool = False) -> list[list[tuple[str, bool]]]:
    """Demonstrations of the first `fraction` of the training questions."""
    from actors.retrievers import Bm25Retriever

    bm25 = Bm25Retriever(str(data_dir / "corpus.jsonl"))
    questions = load_questions(data_dir / "train.parquet")
    chosen = questions[:max(1, round(len(questions) * fraction))]
    return [demonstration(q, lambda query: bm25.retrieve_now(query, TOPK), self_search)
            for q in chosen]


def warm_start(base_dir: Path, out_dir: Path, data_dir: Path, steps: int, fraction: float,
               self_search: bool, seed: int) -> float:
    """Fine-tune the model in base_dir into out_dir; returns the last loss."""
    from learner.sft import finetune

    demos = demonstrations(data_dir, fraction, self_search)
    return finetune(base_dir, out_dir, demos, steps, WARM_START_LR, WARM_START_BATCH,
                    seed)[-1]
