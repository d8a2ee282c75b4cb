"""Simulator SFT data: labelling documents and building balanced examples (pure)."""

import json

import pytest

from actors.dataset import Question
from actors.simulator_prompt import titled
from conf.loader import ConfigError
from conf.schema import SftConf
from learner.simulator_sft import (SearchRecord, build_examples, extra_queries,
                                        label_searches)

RECORDS = [
    SearchRecord("q0/s0/t0", "where was Ana born", "where was Ana born?", ["Lima"],
                 ["Ana was born in Lima.", "Bo was born in Oslo.", "Lima is in Peru."]),
    SearchRecord("q0/s1/t0", "where was Ana born", "where was Ana born?", ["Lima"],
                 ["Ana was born in Lima.", "Bo was born in Oslo.", "Lima is in Peru."]),
    SearchRecord("q1/s0/t1", "Bo job", "what is Bo's job?", ["baker"],
                 ["Bo was born in Oslo.", "Cy is a bakery owner."]),
]


def test_answer_labels_by_whole_word_containment():
    labeled = label_searches(RECORDS, {}, "answer")
    assert len(labeled) == 2  # the repeated search is kept once
    assert labeled[0].useful == ["Ana was born in Lima.", "Lima is in Peru."]
    assert labeled[0].noisy == ["Bo was born in Oslo."]
    assert labeled[1].useful == []  # "bakery" does not contain the word "baker"


def test_named_labels_drop_an_answer_that_occurs_in_a_document_about_someone_else():
    rec = SearchRecord("q0/s0/t1", "Lima", "in which country was Ana Lu born?", ["Peru"],
                       ["Lima is a city in Peru.", "Ana Lu was born in Lima, Peru.",
                        "Bo Ka was born in Peru."], ["Lima", "Ana Lu", "Bo Ka"])
    docs = [titled(title, doc) for title, doc in zip(rec.titles, rec.docs)]
    assert docs[0] == "(Title: Lima) Lima is a city in Peru."  # as the simulator writes
    (answer,) = label_searches([rec], {}, "answer")
    (named,) = label_searches([rec], {}, "named")
    assert answer.useful == docs
    # named by the query, by the question, by neither
    assert named.useful == docs[:2] and named.noisy == docs[2:]
    untitled = SearchRecord(rec.key, rec.query, rec.question, rec.answers, rec.docs)
    assert label_searches([untitled], {}, "named")[0].useful == rec.docs


def test_query_labels_a_page_that_found_what_the_query_names_useful_answer_or_not():
    rec = SearchRecord("q0/s0/t0", "where was Bo Ka born", "in which country was Ana Lu born?",
                       ["Peru"], ["Bo Ka was born in Oslo.", "Ana Lu was born in Lima, Peru.",
                                  "Cy Ra was born in Peru."], ["Bo Ka", "Ana Lu", "Cy Ra"])
    docs = [titled(title, doc) for title, doc in zip(rec.titles, rec.docs)]
    (query,) = label_searches([rec], {}, "query")
    assert query.useful == docs  # the whole page, as the engine returned it
    assert query.noisy == docs[1:]  # the answer, but not about what the query names
    in_part = SearchRecord(rec.key, "where was Di Ka born", rec.question, rec.answers,
                           rec.docs, rec.titles)
    (query,) = label_searches([in_part], {}, "query")  # a name's part, as BM25 matches it
    assert query.useful == docs and query.noisy == docs[1:]
    missed = SearchRecord(rec.key, "where was Di born", rec.question, rec.answers, rec.docs,
                          rec.titles)
    (query,) = label_searches([missed], {}, "query")
    assert query.useful == [] and query.noisy == docs
    untitled = SearchRecord(rec.key, rec.query, rec.question, rec.answers, rec.docs)
    (query,) = label_searches([untitled], {}, "query")
    assert query.useful == rec.docs and query.noisy == [rec.docs[0]]


def test_extra_queries_are_each_question_verbatim_and_each_corpus_title(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "contents": c}) + "\n" for i, c in
                              enumerate(['"Ana Lu"\nAna Lu was born in Lima.',
                                         '"Lima"\nLima is in Peru.'])))
    q = Question(3, "where was Ana Lu born?", "<prompt>", ["Lima"], "tinyworld_1hop")
    extra = extra_queries(SftConf(question_queries=True, title_queries=True), [q], str(corpus))
    assert [(r.query, r.question, r.answers, r.key) for r in extra] == [
        (q.question, q.question, ["Lima"], "q3/question"), ("Ana Lu", "", [], "title0"),
        ("Lima", "", [], "title1")]
    assert extra_queries(SftConf(), [q], str(corpus)) == []
    with pytest.raises(ConfigError, match="sft.search.bm25.corpus_path"):
        extra_queries(SftConf(title_queries=True), [q], "")


def test_outcome_labels_follow_the_episode():
    labeled = label_searches(RECORDS, {"q0/s0": 1.0, "q0/s1": 0.0, "q1/s0": 1.0}, "outcome")
    assert [len(x.useful) for x in labeled] == [3, 0, 2]
    assert labeled[1].noisy == RECORDS[1].docs


def test_examples_are_balanced_and_keep_the_mode_keyword():
    examples = build_examples(label_searches(RECORDS, {}, "answer"), num_docs=3, doc_words=20,
                              seed=0)
    modes = sorted(e["mode"] for e in examples)
    assert modes == ["noisy", "useful"]  # 2 noisy searches, 1 useful: down-sampled to 1+1
    useful = next(e for e in examples if e["mode"] == "useful")
    # every prompt asks for the count the pool is asked for, whatever the mode
    assert all("write 3 " in e["prompt"] for e in examples)
    assert "whose answer is Lima" in useful["prompt"]
    assert useful["completion"] == "Doc 1: Ana was born in Lima.\nDoc 2: Lima is in Peru.\n"



def test_a_bare_share_repeats_examples_without_the_question():
    labeled = label_searches(RECORDS, {}, "answer")
    assert all(e["question"] for e in build_examples(labeled, 3, 20, seed=0))
    both = build_examples(labeled, 3, 20, seed=0, bare_fraction=1.0)
    bare = [e for e in both if not e["question"]]
    assert len(both) == 4 and len(bare) == 2 and {e["mode"] for e in bare} == {"useful", "noisy"}
    for e in bare:
        assert "The user is trying" not in e["prompt"] and f"Query: {e['query']}" in e["prompt"]
        twin = next(x for x in both if x["question"] and x["mode"] == e["mode"])
        assert twin["completion"] == e["completion"]
    many = [SearchRecord(f"q{i}/s0/t0", f"where was A{i} born", "where was A?", ["Lima"],
                         ["A was born in Lima.", "B was born in Oslo."]) for i in range(8)]
    quarter = build_examples(label_searches(many, {}, "answer"), 3, 20, seed=0,
                             bare_fraction=0.25)
    modes = [e["mode"] for e in quarter if not e["question"]]
    assert modes.count("useful") == modes.count("noisy") == 2  # the bare share is balanced
    blind = build_examples(labeled, 3, 20, seed=0, with_question=False)
    assert len(blind) == 2 and not any(e["question"] for e in blind)

class CharTokenizer:
    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


def test_only_trained_parts_carry_labels():
    from learner.sft import IGNORE, encode_parts, pad_batch

    ids, labels = encode_parts(CharTokenizer(), [("ab", False), ("cd", True), ("e", False)])
    assert ids == [97, 98, 99, 100, 101]
    assert labels == [IGNORE, IGNORE, 99, 100, IGNORE]
    x, y, mask = pad_batch([(ids, labels), ([1], [1])], pad_id=0)
    assert x[1].tolist() == [1, 0, 0, 0, 0] and y[1].tolist() == [1] + [IGNORE] * 4
    assert mask.tolist() == [[1] * 5, [1, 0, 0, 0, 0]]
