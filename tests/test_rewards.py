"""Reward tables worked by hand: SQuAD normalization, EM, F1, SSRL and Search-R1 format."""

import pytest

from actors.rewards import (exact_match, f1_score, format_aware_reward, is_valid_format,
                            normalize_answer, score)

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
    assert score("ssrl", "Paris", VALID, ["Paris"]) == pytest.approx(1.0)  # 0.9 + 0.1
    assert score("ssrl", "Paris", VALID, ["Rome"]) == pytest.approx(0.1)  # format only
    assert score("ssrl", "Paris", "<answer> Paris </answer>", ["Paris"]) == pytest.approx(0.9)
    assert score("ssrl", None, "garbage", ["Paris"]) == 0.0


def test_search_r1_format_table():
    assert format_aware_reward(correct=True, valid=True, retrieved_has_answer=False) == 1.0
    assert format_aware_reward(True, False, False) == 0.8
    assert format_aware_reward(False, True, False) == 0.2
    assert format_aware_reward(False, True, True) == 0.3
    assert format_aware_reward(False, False, True) == 0.1
    # through score(): validity and retrieval are read off the response
    valid_wrong = VALID.replace("<answer> Paris", "<answer> Rome")
    assert score("search_r1_format", "Paris", VALID, ["Paris"]) == 1.0
    assert score("search_r1_format", "Paris", "<answer> Paris </answer>", ["Paris"]) == 0.8
    assert score("search_r1_format", "Rome", valid_wrong, ["Paris"]) == 0.3  # info had Paris
    assert score("search_r1_format", "Rome", valid_wrong, ["Oslo"]) == 0.2
    assert score("search_r1_format", "Rome", "<answer> Rome </answer>", ["Paris"]) == 0.1
    # no answer at all: 0 even though the text quotes answer tags (an observation did)
    assert score("search_r1_format", None, "put it between <answer> and </answer>",
                 ["and"]) == 0.0


@pytest.mark.parametrize("kind", ["em", "f1", "ssrl", "search_r1_format"])
@pytest.mark.parametrize("junk", ["", "<answer>", "</answer><answer>", "\x00\xff", "<<>>" * 50])
def test_no_answer_scores_zero_and_never_raises(kind, junk):
    assert score(kind, None, junk, ["Paris"]) == 0.0
    assert score(kind, junk, junk, ["Paris"]) in (0.0, 0.1)  # a junk answer is wrong


@pytest.mark.parametrize("kind", ["em", "f1", "ssrl", "search_r1_format"])
@pytest.mark.parametrize("blank", ["", "   ", "\n"])
@pytest.mark.parametrize("golds", [[""], ["  "], ["Paris", ""], ["a"]])
def test_a_blank_answer_never_scores_even_against_a_blank_gold(kind, blank, golds):
    # ssrl's format term is 0 too: <answer> is an empty tag
    assert score(kind, blank, f"<think> t </think><answer>{blank}</answer>", golds) == 0.0


@pytest.mark.parametrize("answer", ["the", "!?", "a."])
def test_an_answer_that_normalises_to_nothing_matches_nothing(answer):
    golds = ["", "an", "Paris"]  # all but Paris normalise to nothing as well
    assert exact_match(answer, golds) == f1_score(answer, golds) == 0.0
    assert score("search_r1_format", answer, f"<answer> {answer} </answer>", golds) == 0.0
