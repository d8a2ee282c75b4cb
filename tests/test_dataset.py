"""Search-R1 and ZeroSearch parquet rows load; a malformed row names file and row, and a
malformed corpus line names file and line."""

import json
import re

import pandas as pd
import pytest

from actors.dataset import DatasetError, load_questions, question_for
from actors.retrievers import CorpusError, check_corpus, load_corpus


def test_search_r1_and_zerosearch_rows(tmp_path):
    rows = [
        {"data_source": "nq", "prompt": [{"role": "user", "content": "Q? Question: who?"}],
         "reward_model": {"style": "rule", "ground_truth": {"target": ["Ann", "Anne"]}}},
        {"data_source": "hotpotqa", "question": "where?", "golden_answers": ["Oslo"]},
    ]
    path = tmp_path / "mixed.parquet"
    pd.DataFrame(rows).to_parquet(path)
    first, second = load_questions(path)
    assert (first.question, first.answers, first.data_source) == ("who?", ["Ann", "Anne"], "nq")
    assert second.answers == ["Oslo"] and "Question: where?" in second.prompt


def test_malformed_row_names_file_and_row(tmp_path):
    rows = [{"question": "ok?", "golden_answers": ["a"]}, {"question": "bad", "other": 1}]
    path = tmp_path / "bad.parquet"
    pd.DataFrame(rows).to_parquet(path)
    with pytest.raises(DatasetError, match=r"bad\.parquet: row 1"):
        load_questions(path)


def test_unreadable_file_is_named(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_text("not parquet")
    with pytest.raises(DatasetError, match="x.parquet"):
        load_questions(path)


def test_question_order_is_a_seeded_permutation_per_epoch():
    epoch0 = [question_for(g, 10, seed=3) for g in range(10)]
    epoch1 = [question_for(g, 10, seed=3) for g in range(10, 20)]
    assert sorted(epoch0) == sorted(epoch1) == list(range(10))
    assert epoch0 == [question_for(g, 10, seed=3) for g in range(10)]
    assert epoch0 != [question_for(g, 10, seed=4) for g in range(10)]


def _chat(content):
    return [{"role": "user", "content": content}]


GOOD = {"question": "ok?", "golden_answers": ["a"]}


@pytest.mark.parametrize("rows, error", [
    # (the good first row makes the bad one row 1, where the column types allow it)
    ([GOOD, {"question": "q?", "golden_answers": [""]}], r"row 1: answer 0 is blank"),
    ([GOOD, {"question": "q?", "golden_answers": ["  "]}], r"row 1: answer 0 is blank"),
    ([GOOD, {"question": "q?", "golden_answers": ["Ann", " ", "Anne"]}],
     r"row 1: answer 1 is blank"),
    ([GOOD, {"question": "q?", "golden_answers": []}], r"row 1: no answers"),
    ([GOOD, {"question": "q?", "golden_answers": ["x", None]}], r"row 1: answer 1 is not text"),
    ([{"question": "q?", "golden_answers": [1998]}], r"row 0: answer 0 is not text"),
    ([{"prompt": _chat("Question: q?"),
       "reward_model": {"ground_truth": {"target": ["a", ""]}}}], r"row 0: answer 1 is blank"),
    ([{"prompt": _chat("Question: q?"), "reward_model": {"ground_truth": {"target": ""}}}],
     r"row 0: answer 0 is blank"),
    ([GOOD, {"question": "  ", "golden_answers": ["a"]}], r"row 1: question is blank"),
    ([{"question": 7, "golden_answers": ["a"]}], r"row 0: question is not text \(int"),
    ([{"question": {"text": "q?"}, "golden_answers": ["a"]}], r"row 0: question is not text"),
    ([{"prompt": _chat(None), "golden_answers": ["a"]}], r"row 0: prompt's last message "
                                                         r"content is not text \(NoneType"),
    ([{"prompt": _chat("  "), "golden_answers": ["a"]}], r"row 0: prompt's last .* is blank"),
    ([{"prompt": _chat("Question:  "), "golden_answers": ["a"]}], r"row 0: question is blank"),
    ([{"prompt": [None], "golden_answers": ["a"]}], r"row 0: prompt's last message has no"),
    ([{"prompt": "Question: q?", "golden_answers": ["a"]}],
     r"row 0: prompt is not a list of messages"),
    ([{"prompt": [], "golden_answers": ["a"]}], r"row 0: no prompt nor question"),
])
def test_bad_row_names_file_row_and_what(tmp_path, rows, error):
    path = tmp_path / "bad.parquet"
    pd.DataFrame(rows).to_parquet(path)
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(path))}: {error}"):
        load_questions(path)


CORPUS_ROW = json.dumps({"id": "0", "contents": "\"A\"\nA is a city."})
NO_CONTENTS = "not a corpus row with a 'contents' string"


@pytest.mark.parametrize("bad_line, error", [
    ("not json", "not JSON"),
    ('{"id": "1"', "not JSON"),
    ('{"id": "1"}', NO_CONTENTS),
    ('{"id": "1", "contents": null}', NO_CONTENTS),
    ('{"id": "1", "contents": 5}', NO_CONTENTS),
    ('{"id": "1", "text": "A is a city."}', NO_CONTENTS),
    ('["\\"A\\"\\ntext"]', NO_CONTENTS),
    ('{"id": "1", "contents": ""}', "empty document"),
    ('{"id": "1", "contents": "  \\n  "}', "empty document"),
    ('{"id": "1", "contents": "\\"\\"\\n"}', "empty document"),
])
def test_bad_corpus_line_names_file_and_line(tmp_path, bad_line, error):
    path = tmp_path / "corpus.jsonl"
    path.write_text(f"{CORPUS_ROW}\n\n{bad_line}\n{CORPUS_ROW}\n")  # the bad one is line 3
    for read in (load_corpus, check_corpus):
        with pytest.raises(CorpusError, match=rf"^{re.escape(str(path))}: line 3: {error}"):
            read(path)


def test_corpus_check_counts_documents_and_rejects_an_empty_file(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(f"{CORPUS_ROW}\n\n{CORPUS_ROW}\n")
    assert check_corpus(path) == 2 and load_corpus(path) == [("A", "A is a city.")] * 2
    path.write_text("\n")
    with pytest.raises(CorpusError, match="corpus.jsonl: the corpus is empty"):
        check_corpus(path)
