"""Answer rewards: EM, F1, SSRL's format reward and Search-R1's format-aware reward.

Pure functions of strings. The answer is what the policy wrote in its last
``<answer>...</answer>`` (the episode loop records it from the policy's own turn, so tags
quoted in observations never count). A response without an answer, or with a blank one,
scores 0 and nothing here raises on any input.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_INFORMATION = re.compile(r"<information>.*?</information>", re.DOTALL)
_TAG = re.compile(r"</?([a-z_]+)>")
KNOWN_TAGS = {"think", "search", "information", "answer"}
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation and articles, fold whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str | None, golds: list[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer. A prediction
    that normalises to nothing ("", " ", "the") is no answer: it never matches, not even
    a blank gold answer."""
    pred = normalize_answer(prediction or "")
    return float(bool(pred) and any(pred == normalize_answer(g) for g in golds))


def f1_score(prediction: str | None, golds: list[str]) -> float:
    if prediction is None:
        return 0.0
    pred_tokens = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        gold_tokens = normalize_answer(gold).split()
        common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
        if common == 0:
            continue
        precision, recall = common / len(pred_tokens), common / len(gold_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def is_valid_format(response: str) -> bool:
    """SSRL's format check on the generated part of a trajectory.

    Starts with <think>, ends with </answer>, uses only known tags, balanced and never
    nested, no empty tag, and every <search> block is followed by an <information> block.
    """
    text = response.strip()
    if not (text.startswith("<think>") and text.endswith("</answer>")):
        return False
    blocks: list[str] = []
    open_tag, start = None, 0
    for m in _TAG.finditer(text):
        name, closing = m.group(1), m.group(0).startswith("</")
        if name not in KNOWN_TAGS:
            return False
        if not closing:
            if open_tag is not None:
                return False
            open_tag, start = name, m.end()
        else:
            if open_tag != name or not text[start:m.start()].strip():
                return False
            blocks.append(name)
            open_tag = None
    if open_tag is not None:
        return False
    return all(nxt == "information" for cur, nxt in zip(blocks, blocks[1:] + [""])
               if cur == "search")


def format_aware_reward(correct: bool, valid: bool, retrieved_has_answer: bool) -> float:
    """Search-R1's format-aware table for a response that has an answer.

    correct+valid 1.0, correct+invalid 0.8, wrong+valid 0.2 (0.3 if the retrieved text
    contained the answer), wrong+invalid 0.1. (No answer at all scores 0 in score().)
    """
    if correct:
        return 1.0 if valid else 0.8
    if valid:
        return 0.3 if retrieved_has_answer else 0.2
    return 0.1


def answer_in_text(text: str, golds: list[str]) -> bool:
    norm = normalize_answer(text)
    return any(gold and gold in norm for gold in map(normalize_answer, golds))


def contains_answer(text: str, golds: list[str]) -> bool:
    """A gold answer occurs in text as whole normalised words (not inside another word)."""
    norm = f" {normalize_answer(text)} "
    return any(gold and f" {gold} " in norm for gold in map(normalize_answer, golds))


def score(kind: str, answer: str | None, response: str, golds: list[str]) -> float:
    """The training reward named by kind: em, f1, ssrl or search_r1_format.

    answer: the episode's final answer (None when it ended without one); response: all
    text after the prompt, observations included (for the format and retrieval checks).
    """
    return REWARDS[kind](answer, response, golds)


def _search_r1(answer: str | None, response: str, golds: list[str]) -> float:
    if not normalize_answer(answer or ""):  # no answer, or a blank one
        return 0.0
    retrieved = " ".join(m.group(0) for m in _INFORMATION.finditer(response))
    correct, valid = exact_match(answer, golds) == 1.0, is_valid_format(response)
    return format_aware_reward(correct, valid, answer_in_text(retrieved, golds))


REWARDS = {
    "em": lambda answer, response, golds: exact_match(answer, golds),
    "f1": lambda answer, response, golds: f1_score(answer, golds),
    "ssrl": lambda answer, response, golds: (0.9 * exact_match(answer, golds)
                                             + 0.1 * float(is_valid_format(response))),
    "search_r1_format": _search_r1,
}
