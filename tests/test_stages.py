"""Cached stages and the tiny world's build pieces (no models are trained here)."""

import json

import pytest

from actors.dataset import Question, load_questions
from actors.retrievers import load_corpus
from tinyworld.warm_start import demonstration, evidence
from tinyworld.stages import DONE, cached_stage
from tinyworld.world import (LINKS, generic_documents, held_out_titles, make_world,
                                    write_demo_world, write_world)


def test_a_stage_builds_once_per_setting_and_rebuilds_a_half_built_one(tmp_path, capsys):
    calls = []

    def build(out):
        calls.append(out)
        (out / "model.txt").write_text("weights")

    first = cached_stage(str(tmp_path), "pretrain", {"steps": 10}, build)
    again = cached_stage(str(tmp_path), "pretrain", {"steps": 10}, build)
    assert first == again and len(calls) == 1
    assert "built" in capsys.readouterr().out
    assert json.loads((first / DONE).read_text())["depends"] == {"steps": 10}
    other = cached_stage(str(tmp_path), "pretrain", {"steps": 20}, build)
    assert other != first and len(calls) == 2  # a changed setting is a new stage folder
    (other / DONE).unlink()  # as if the build died before it finished
    (other / "partial.bin").write_text("junk")
    assert cached_stage(str(tmp_path), "pretrain", {"steps": 20}, build) == other
    assert len(calls) == 3 and not (other / "partial.bin").exists()


def test_a_failed_build_is_not_taken_for_a_finished_one(tmp_path):
    def broken(out):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cached_stage(str(tmp_path), "warm-start", {"a": 1}, broken)
    built = cached_stage(str(tmp_path), "warm-start", {"a": 1}, lambda out: None)
    assert (built / DONE).exists()


def test_large_worlds_have_unique_people_whose_name_words_recur():
    people, _ = make_world(seed=3, num_people=3000)
    names = [p.name for p in people]
    assert len(set(names)) == 3000
    firsts = [n.split()[0] for n in names]
    assert len(set(firsts)) < len(firsts)  # name words are shared, as real names are


def test_held_out_titles_are_exactly_the_test_people(tmp_path):
    write_world(tmp_path, seed=0, num_people=20)
    people, _ = make_world(0, 20)
    assert held_out_titles(tmp_path) == {p.name for p in people[:4]}  # a fifth held out


def test_general_text_names_nobody_of_the_world():
    people, _ = make_world(0, 60)
    docs = generic_documents(200, seed=0, exclude={people[0].name})
    titles = {d.split("\n")[0].strip('"') for d in docs}
    assert len(titles) > 190 and not titles & {p.name for p in people}
    assert all(" was born in " in d and ". The profession of " in d for d in docs)
    for doc in docs:  # the linking sentence opens the text and closes it, word for word
        title, body = doc.split("\n")
        link = body[:body.index(".") + 1]
        assert body.endswith(" " + link) and title.strip('"') in link
        assert link.split()[0] in LINKS and len(link.split()) == 6



def test_demonstrations_ask_about_invented_people_in_the_world_s_cities(tmp_path):
    write_demo_world(tmp_path, seed=0, num_people=30, invented=50)
    people, city_country = make_world(0, 30)
    titles = [title for title, _ in load_corpus(tmp_path / "corpus.jsonl")]
    invented = set(titles) - {p.name for p in people} - set(city_country)
    assert len(titles) == 30 + 50 + len(city_country) and len(invented) == 50
    questions = load_questions(tmp_path / "demo.parquet")
    assert len(questions) == 150
    named = {next(n for n in invented if n in q.question) for q in questions}
    assert named == invented  # every question is about an invented person, none about the world
    countries = {q.answers[0] for q in questions if q.data_source.endswith("2hop")}
    assert countries <= set(city_country.values())  # born in the world's cities

def _retrieve(query):
    if query == "Kami":
        return [("Kami", "Kami is a city in the country of Zelqu.")]
    return [("Ka Lo", "Ka Lo was born in Tarvo. The profession of Ka Lo is smith."),
            ("Lo Fi", "Lo Fi was born in Kami. The profession of Lo Fi is potter.")]


def test_a_two_hop_demonstration_searches_the_birth_city_then_answers():
    q = Question(0, "in which country was Lo Fi born?", "PROMPT", ["Zelqu"], "tinyworld_2hop")
    parts = demonstration(q, _retrieve, self_search=False)
    trained = [text for text, on in parts if on]
    assert [t.split("<search>")[1].split("</search>")[0].strip() for t in trained[:2]] == [
        "in which country was Lo Fi born?", "Kami"]
    assert trained[1].startswith("<think> Lo Fi was born in Kami. I need to search Kami.")
    assert trained[-1] == ("<think> Kami is a city in the country of Zelqu. </think> "
                           "<answer> Zelqu </answer>")
    assert parts[0] == ("PROMPT", False)
    assert all(not on for text, on in parts if "<information>" in text)  # observations


def test_a_one_hop_demonstration_quotes_the_named_person_s_sentence_then_answers():
    q = Question(0, "what is the profession of Lo Fi?", "PROMPT", ["potter"], "tinyworld_1hop")
    trained = [text for text, on in demonstration(q, _retrieve, self_search=False) if on]
    assert trained[-1] == ("<think> The profession of Lo Fi is potter. </think> "
                           "<answer> potter </answer>")  # Lo Fi's page is second, quoted
    assert evidence(_retrieve("Lo Fi"), "Lo Fi", "smith") == ""  # another person's fact


def test_a_self_search_demonstration_trains_the_information_body_only():
    q = Question(0, "where was Lo Fi born?", "PROMPT", ["Kami"], "tinyworld_1hop")
    parts = demonstration(q, _retrieve, self_search=True)
    opening = [i for i, (text, _) in enumerate(parts) if "<information>" in text]
    (i,) = opening
    assert parts[i][1] is False  # the backend writes the opening tag
    body, on = parts[i + 1]
    assert on and "Lo Fi was born in Kami." in body and body.endswith("</information>")
    assert parts[i + 2] == ("\n\n", False)
