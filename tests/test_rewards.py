"""Reward tables worked by hand: SQuAD normalization, EM, F1, SSRL and Search-R1 format."""

import pytest

from actors.rewards import (exact_match, extract_answer, f1_score, is_valid_format,
                            normalize_answer, score, search_r1_format_reward, ssrl_reward)

VALID = ("<think> need it </think><search> q </search>"
         "<information>Doc 1: Paris is big</information>"
         "<think> found </think><answer> Paris </answer>")


@pytest.mark.parametrize("text, expected", [
    ("The  Eiffel Tower!", "eiffel tower"),
    ("an Apple, a day", "apple day"),
    ("U.S.A.", "usa"),
    ("  theatre ", "theatre"),  # 'the' only as a whole word
])
def test_normalize(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize("pred, golds, em, f1", [
    ("Paris", ["paris"], 1.0, 1.0),
    ("the Paris.", ["Paris", "Lyon"], 1.0, 1.0),
    ("Lyon", ["Paris"], 0.0, 0.0),
    # pred {new, york, city} vs gold {new, york}: P=2/3, R=1, F1=2*(2/3)/(5/3)=0.8
    ("New York City", ["New York"], 0.0, 0.8),
    # max over golds: vs "york" P=1/3 R=1 F1=0.5; vs "new york city" F1=1
    ("New York City", ["york", "new york city"], 1.0, 1.0),
    (None, ["Paris"], 0.0, 0.0),
    ("", ["Paris"], 0.0, 0.0),
])
def test_em_f1(pred, golds, em, f1):
    assert exact_match(pred, golds) == em
    assert f1_score(pred, golds) == pytest.approx(f1)


def test_answer_is_last_one_outside_information():
    text = "<answer> a </answer> x <answer> b </answer><information><answer> c </answer>"
    assert extract_answer(text) == "b"
    assert extract_answer("no tags at all") is None


@pytest.mark.parametrize("response, valid", [
    (VALID, True),
    ("<think> t </think><answer> Paris </answer>", True),
    ("<answer> Paris </answer>", False),  # must start with <think>
    ("<think> t </think><answer> Paris </answer> trailing", False),
    ("<think> t </think><search> q </search><answer> Paris </answer>", False),  # no info
    ("<think></think><answer> Paris </answer>", False),  # empty tag
    ("<think> t </think><foo> x </foo><answer> Paris </answer>", False),  # unknown tag
    ("<think> t <answer> P </answer></think><answer> P </answer>", False),  # nested
])
def test_format(response, valid):
    assert is_valid_format(response) is valid


def test_ssrl_reward():
    assert ssrl_reward(VALID, ["Paris"]) == pytest.approx(1.0)  # 0.9 + 0.1
    assert ssrl_reward(VALID, ["Rome"]) == pytest.approx(0.1)  # format only
    assert ssrl_reward("<answer> Paris </answer>", ["Paris"]) == pytest.approx(0.9)
    assert ssrl_reward("garbage", ["Paris"]) == 0.0


def test_search_r1_format_table():
    invalid_right = "<answer> Paris </answer>"
    invalid_wrong = "<answer> Rome </answer>"
    valid_wrong = VALID.replace("<answer> Paris", "<answer> Rome")
    assert search_r1_format_reward(VALID, ["Paris"]) == 1.0
    assert search_r1_format_reward(invalid_right, ["Paris"]) == 0.8
    assert search_r1_format_reward(valid_wrong, ["Paris"]) == 0.2
    assert search_r1_format_reward(valid_wrong, ["Paris"], retrieved_has_answer=True) == 0.3
    assert search_r1_format_reward(invalid_wrong, ["Paris"]) == 0.1
    assert search_r1_format_reward("no answer", ["Paris"]) == 0.0
    # score() finds the answer in the retrieved text by itself
    assert score("search_r1_format", valid_wrong, ["Paris"]) == 0.3


@pytest.mark.parametrize("kind", ["em", "f1", "ssrl", "search_r1_format"])
@pytest.mark.parametrize("junk", ["", "<answer>", "</answer><answer>", "\x00\xff", "<<>>" * 50])
def test_no_answer_scores_zero_and_never_raises(kind, junk):
    assert score(kind, junk, ["Paris"]) == 0.0
