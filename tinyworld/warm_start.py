"""A short supervised warm start of the tiny policy on format demonstrations.

A base model that never saw the tag protocol does not write a search or an answer tag, so
every reward is 0 and no gradient flows. A short SFT on demonstrations teaches the
protocol: think, search with the question, read what BM25 returns, search the birth city
for a two-hop question, answer. Before each action the thought quotes the sentence it acts
on ("<think> The profession of Ka Lo is smith. </think> <answer> smith </answer>"): the
quote starts with the question's own words and the person's name, so the fact that follows
is an in-context copy (what followed the same words on the page), which the tiny policy
can learn, and the answer copies the quote's last word (docs/experiments.md measures the
quotes' effect). The demonstrations are about invented people outside the world
(``tinyworld.write_demo_world``), as an instruction-tuning set would be: their names are
new, so a demonstration is fitted only by copying the name into the query and the answer
out of the information, never by recalling the world. The loss covers only the
policy's own tokens, as in RL; in self-search mode (SSRL) it also covers the information,
which the policy then writes itself. It never shows a question about the world, so the
protocol is right while most answers on the world's questions are still wrong: RL has
something to learn.
"""

from __future__ import annotations

import re
from pathlib import Path

from actors.dataset import Question, load_questions
from actors.episode import format_observation
from actors.search import INFO_OPEN, SearchResult

WARM_START_LR = 3e-3
WARM_START_BATCH = 16
TOPK = 3
_BORN_IN = re.compile(r"was born in (\w+)")
_SENTENCE = re.compile(r"(?<=\.)\s+")


def _observation(text: str, self_search: bool) -> list[tuple[str, bool]]:
    """The observation as parts; with self_search the policy writes the body itself."""
    if not self_search:
        return [(text, False)]
    body = text.removeprefix(INFO_OPEN).rstrip("\n")
    return [(INFO_OPEN, False), (body, True), ("\n\n", False)]


def evidence(docs: list[tuple[str, str]], subject: str, word: str) -> str:
    """The sentence of subject's document (its title) that holds word, else ''."""
    for title, text in docs:
        if title != subject:
            continue
        for sentence in _SENTENCE.split(text):
            if word in sentence.rstrip(".").split():
                return sentence
    return ""


def _subject(docs: list[tuple[str, str]], question: str) -> str:
    """The title of the first document whose entity the question names, else ''."""
    return next((title for title, _ in docs if f" {title}" in question), "")


def demonstration(q: Question, retrieve, self_search: bool) -> list[tuple[str, bool]]:
    """Prompt, search turn, observation, a second search for a two-hop question, answer.
    Before each action the thought quotes the sentence that holds what it acts on."""
    first = retrieve(q.question)
    person = _subject(first, q.question)
    parts = [(q.prompt, False),
             (f"<think> I need to search. </think> <search> {q.question} </search>", True)]
    parts += _observation(format_observation(SearchResult(first)), self_search)
    born = _BORN_IN.search(evidence(first, person, "born"))
    docs, subject = first, person
    if q.data_source.endswith("2hop") and born:
        city = born.group(1)
        parts.append((f"<think> {born.string} I need to search {city}. </think> "
                      f"<search> {city} </search>", True))
        docs, subject = retrieve(city), city
        parts += _observation(format_observation(SearchResult(docs)), self_search)
    quote = evidence(docs, subject, q.answers[0]) or "I found it."
    parts.append((f"<think> {quote} </think> <answer> {q.answers[0]} </answer>", True))
    return parts


def demonstrations(demo_dir: Path, self_search: bool = False) -> list[list[tuple[str, bool]]]:
    """A demonstration of every question in demo_dir/demo.parquet, BM25 over its corpus."""
    from actors.retrievers import Bm25Retriever

    bm25 = Bm25Retriever(str(demo_dir / "corpus.jsonl"))
    return [demonstration(q, lambda query: bm25.retrieve_now(query, TOPK), self_search)
            for q in load_questions(demo_dir / "demo.parquet")]


def warm_start(base_dir: Path, out_dir: Path, demo_dir: Path, steps: int, self_search: bool,
               seed: int) -> float:
    """Fine-tune the model in base_dir into out_dir; returns the last loss."""
    from learner.sft import finetune

    demos = demonstrations(demo_dir, self_search)
    return finetune(base_dir, out_dir, demos, steps, WARM_START_LR, WARM_START_BATCH,
                    seed)[-1]
