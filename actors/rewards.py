"""Answer rewards: EM, F1, SSRL's format reward and Search-R1's format-aware reward.

Pure functions of strings. The answer is the last ``<answer>...</answer>`` in the text the
policy generated (never the prompt). A response without an answer scores 0 and nothing here
raises on any input.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_INFORMATION = re.compile(r"<information>.*?(</information>|$)", re.DOTALL)
_TAG = re.compile(r"</?([a-z_]+)>")
KNOWN_TAGS = {"think", "search", "information", "answer"}


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation and articles, fold whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def extract_answer(response: str) -> str | None:
    """The last answer the policy wrote; text inside <information> blocks is not its own."""
    found = _ANSWER.findall(_INFORMATION.sub(" ", response))
    return found[-1].strip() if found else None


def exact_match(prediction: str | None, golds: list[str]) -> float:
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


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


def ssrl_reward(response: str, golds: list[str]) -> float:
    """0.9 * EM + 0.1 * format (SSRL)."""
    em = exact_match(extract_answer(response), golds)
    return 0.9 * em + 0.1 * float(is_valid_format(response))


def search_r1_format_reward(response: str, golds: list[str],
                            retrieved_has_answer: bool = False) -> float:
    """Search-R1's format-aware reward table.

    correct+valid 1.0, correct+invalid 0.8, wrong+valid 0.2 (0.3 if the retrieved text
    contained the answer), wrong+invalid with an answer 0.1, no answer 0.
    """
    answer = extract_answer(response)
    if answer is None:
        return 0.0
    correct, valid = exact_match(answer, golds) == 1.0, is_valid_format(response)
    if correct:
        return 1.0 if valid else 0.8
    if valid:
        return 0.3 if retrieved_has_answer else 0.2
    return 0.1


def answer_in_text(text: str, golds: list[str]) -> bool:
    norm = normalize_answer(text)
    return any(normalize_answer(g) and normalize_answer(g) in norm for g in golds)


def score(kind: str, response: str, golds: list[str]) -> float:
    """The training reward named by kind: em, f1, ssrl or search_r1_format."""
    if kind == "search_r1_format":
        retrieved = " ".join(m.group(0) for m in _INFORMATION.finditer(response))
        return search_r1_format_reward(response, golds, answer_in_text(retrieved, golds))
    return REWARDS[kind](response, golds)


REWARDS = {
    "em": lambda response, golds: exact_match(extract_answer(response), golds),
    "f1": lambda response, golds: f1_score(extract_answer(response), golds),
    "ssrl": ssrl_reward,
}
REWARD_NAMES = [*REWARDS, "search_r1_format"]
