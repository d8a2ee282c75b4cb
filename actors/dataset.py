"""Read Search-R1 / ZeroSearch question parquet files and order them reproducibly.

Accepted columns: ``prompt`` ([{"role", "content"}]) and ``reward_model.ground_truth.
target`` (Search-R1), or ``question`` and ``golden_answers`` (ZeroSearch); ``data_source``
is kept for per-source metrics. A row that has neither form, or whose prompt, question or
any answer is not text or is blank, is an error naming the file and the row. Group g of a
run trains on question ``question_for(g)``: a seeded permutation per epoch, so the stream
of questions depends only on the seed and the group index.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path

# The instruction shown to the policy: a paraphrase of the Search-R1 / ZeroSearch prompt.
INSTRUCTION = (
    "Answer the given question. Think inside <think> and </think> whenever you get new "
    "information. If you lack knowledge, search by writing <search> query </search>; the "
    "results come back between <information> and </information>. You may search as many "
    "times as you want. When you know the answer, write it inside <answer> and </answer> "
    "with no explanation, for example <answer> Beijing </answer>. Question: {question}\n"
)


@dataclass(frozen=True)
class Question:
    index: int
    question: str
    prompt: str
    answers: list[str]
    data_source: str


class DatasetError(ValueError):
    pass


def load_questions(path: str | Path) -> list[Question]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as err:
        raise DatasetError(f"{path}: cannot read parquet: {err}") from None
    questions = [_row_question(path, i, row) for i, row in enumerate(frame.to_dict("records"))]
    if not questions:
        raise DatasetError(f"{path}: no rows")
    return questions


def _row_question(path, i: int, row: dict) -> Question:
    try:
        answers = _answers(row)
        prompt = _prompt(row)
        question = _present(row, "question")
        if question is None:
            question = _question_from_prompt(prompt)
        question = _text(question, "question")
    except (KeyError, TypeError, IndexError, ValueError) as err:
        raise DatasetError(f"{path}: row {i}: {err}") from None
    source = str(_present(row, "data_source") or "unknown")
    return Question(i, question, prompt, answers, source)


def _present(row: dict, key: str):
    """row[key], or None when absent or a missing value (NaN) of a mixed-schema frame."""
    value = row.get(key)
    return None if value is None or (isinstance(value, float) and value != value) else value


def _text(value, what: str) -> str:
    """value when it is a string with something in it; else a ValueError saying `what`."""
    if not isinstance(value, str):
        raise ValueError(f"{what} is not text ({type(value).__name__}: {str(value)[:60]!r})")
    if not value.strip():
        raise ValueError(f"{what} is blank")
    return str(value)  # numpy's str_ to str


def _answers(row: dict) -> list[str]:
    """The gold answers; each must be non-blank text (a blank one would match a blank
    prediction, a number or None its str())."""
    reward_model = _present(row, "reward_model")
    if reward_model is not None:
        target = reward_model["ground_truth"]["target"]
    else:
        target = _present(row, "golden_answers")
        if target is None:
            raise ValueError("no reward_model.ground_truth.target nor golden_answers")
    if isinstance(target, str):
        target = [target]
    if not _is_list(target):
        raise ValueError(f"answers are not a list of text: {str(target)[:60]!r}")
    if not len(target):
        raise ValueError("no answers")
    return [_text(answer, f"answer {k}") for k, answer in enumerate(target)]


def _prompt(row: dict) -> str:
    """The last message's content of a chat prompt, or the instruction around the question."""
    messages = _present(row, "prompt")
    if messages is None or (_is_list(messages) and not len(messages)):
        question = _present(row, "question")
        if question is None:
            raise ValueError("no prompt nor question")
        return INSTRUCTION.format(question=_text(question, "question"))
    if not _is_list(messages):
        raise ValueError(f"prompt is not a list of messages: {str(messages)[:60]!r}")
    last = messages[-1]
    if not isinstance(last, dict) or "content" not in last:
        raise ValueError(f"prompt's last message has no content: {str(last)[:60]!r}")
    return _text(last["content"], "prompt's last message content")


def _is_list(value) -> bool:
    """A list, tuple or numpy array (parquet's lists arrive as arrays)."""
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes, dict))


def _question_from_prompt(prompt: str) -> str:
    match = re.search(r"Question:\s*(.*)", prompt, re.DOTALL)
    return match.group(1).strip() if match else prompt.strip()


def question_for(group_index: int, num_questions: int, seed: int) -> int:
    """Index of the question that group `group_index` trains on."""
    epoch, position = divmod(group_index, num_questions)
    return _epoch_order(num_questions, seed, epoch)[position]


@functools.lru_cache(maxsize=4)
def _epoch_order(num_questions: int, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(num_questions))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return tuple(order)
