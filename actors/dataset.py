"""Read Search-R1 / ZeroSearch question parquet files and order them reproducibly.

Accepted columns: ``prompt`` ([{"role", "content"}]) and ``reward_model.ground_truth.
target`` (Search-R1), or ``question`` and ``golden_answers`` (ZeroSearch); ``data_source``
is kept for per-source metrics. A row that has neither form is an error naming the file
and the row. Group g of a run trains on question ``question_for(g)``: a seeded permutation
per epoch, so the stream of questions depends only on the seed and the group index.
"""

from __future__ import annotations

import functools
import random
import re
from pathlib import Path

from actors.episode import INSTRUCTION, Question


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
        question = _present(row, "question") or _question_from_prompt(prompt)
    except (KeyError, TypeError, IndexError, ValueError) as err:
        raise DatasetError(f"{path}: row {i}: {err}") from None
    if not answers or not prompt:
        raise DatasetError(f"{path}: row {i}: needs a prompt (or question) and answers")
    return Question(i, str(question), prompt, answers, str(row.get("data_source") or "unknown"))


def _present(row: dict, key: str):
    """row[key], or None when absent or a missing value (NaN) of a mixed-schema frame."""
    value = row.get(key)
    return None if value is None or (isinstance(value, float) and value != value) else value


def _answers(row: dict) -> list[str]:
    reward_model = _present(row, "reward_model")
    if reward_model is not None:
        target = reward_model["ground_truth"]["target"]
    else:
        target = _present(row, "golden_answers")
        if target is None:
            raise KeyError("no reward_model.ground_truth.target nor golden_answers")
    if isinstance(target, str):
        return [target]
    return [str(t) for t in target]


def _prompt(row: dict) -> str:
    messages = _present(row, "prompt")
    if messages is not None and len(messages):
        return str(messages[-1]["content"])
    question = _present(row, "question")
    if question is None:
        raise KeyError("no prompt nor question")
    return INSTRUCTION.format(question=question)


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
