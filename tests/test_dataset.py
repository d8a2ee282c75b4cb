"""Search-R1 and ZeroSearch parquet rows load; a malformed row names file and row."""

import pandas as pd
import pytest

from actors.dataset import DatasetError, load_questions, question_for


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
