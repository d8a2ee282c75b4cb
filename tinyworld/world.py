"""A synthetic world of invented entities, written in Search-R1's formats.

The tiny CPU default and the tests train on this world so nothing is downloaded. It holds
people (birth city, profession) and cities (country). Each entity gets one corpus document
(Search-R1 jsonl: ``{"id", "contents": "\\"Title\\"\\ntext"}``) and questions in
Search-R1's parquet schema: single-hop (birth city, profession) and two-hop (country of
birth). A document states each fact in its question's words ("The profession of X is
P.", "C is a city in the country of K."). People are split into train and held-out test
sets, so test questions ask about entities the policy never saw a question about.
Everything derives from one seed.
``generic_documents`` writes documents of the same shape about invented entities outside
the world, each with a sentence said twice: the general text a base model reads besides
the corpus, from which it learns to copy. ``write_demo_world`` adds invented people to the
world for the policy's warm-start demonstrations.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from actors.dataset import INSTRUCTION

SYLLABLES = ["ka", "lo", "mi", "ren", "tar", "vo", "zel", "qu", "dan", "fi", "mor",
             "pel", "su", "thi", "gra", "nox", "bel", "cor", "ish", "um", "wen", "yar"]

@dataclass(frozen=True)
class Person:
    name: str
    city: str
    profession: str


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def _unique_words(rng: random.Random, count: int, parts: int, taken: set[str]) -> list[str]:
    words: list[str] = []
    while len(words) < count:
        w = _word(rng, parts)
        if w not in taken:
            taken.add(w)
            words.append(w)
    return words


def make_world(seed: int, num_people: int) -> tuple[list[Person], dict[str, str]]:
    """People and a city -> country map, all names invented from syllables."""
    rng = random.Random(seed)
    taken: set[str] = set()
    countries = _unique_words(rng, 5, 3, taken)
    cities = _unique_words(rng, 15, 2, taken)
    professions = [w.lower() for w in _unique_words(rng, 8, 2, taken)]
    city_country = {c: rng.choice(countries) for c in cities}
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < num_people:  # first and last names repeat, full names do not
        first, last = _word(rng, 2), _word(rng, 2)
        name = f"{first} {last}"
        if name not in seen and not {first, last} & taken:
            seen.add(name)
            names.append(name)
    people = [Person(name, rng.choice(cities), rng.choice(professions)) for name in names]
    return people, city_country


def _document(name: str, city: str, profession: str) -> str:
    return f"\"{name}\"\n{name} was born in {city}. The profession of {name} is {profession}."


def _fresh_names(rng: random.Random, count: int, exclude: set[str]) -> list[str]:
    names: list[str] = []
    seen = set(exclude)
    while len(names) < count:
        name = f"{_word(rng, 2)} {_word(rng, 2)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


# Words that link two people in general text's repeated sentence.
LINKS = ["with", "near", "beside", "after", "before", "like", "and", "for", "from", "by",
         "meets", "knows", "sees", "helps", "calls", "thanks", "told", "asked", "was", "is"]


def generic_documents(count: int, seed: int, exclude: set[str]) -> list[str]:
    """Documents about invented people, cities and professions with fresh names (none in
    exclude), so predicting a name's second mention takes copying it, not remembering it.

    Each document also says one sentence twice that links its person to a second one
    ("calls Renren Milo asked Wenzel Kaum."): the second person's repeat is predicted
    only by copying what followed the same word before (an induction head). That is the
    in-context copying a search query needs (the question's name after "where was") and
    that any pretrained LLM brings; without it the tiny policy copies no held-out name.
    """
    rng = random.Random(f"general text {seed}")  # a stream apart from the world's
    names = _fresh_names(rng, 2 * count, exclude)
    docs = []
    for name, other in zip(names[::2], names[1::2]):
        title, body = _document(name, _word(rng, 2), _word(rng, 2).lower()).split("\n")
        first, then = rng.sample(LINKS, 2)
        link = f"{first} {name} {then} {other}."
        docs.append(f"{title}\n{link} {body} {link}")
    return docs


def invented_people(count: int, seed: int, people: list[Person],
                    city_country: dict[str, str]) -> list[Person]:
    """People outside the world, born in its cities, with its professions and new names."""
    rng = random.Random(f"invented people {seed}")
    professions = sorted({p.profession for p in people})
    cities = sorted(city_country)
    return [Person(name, rng.choice(cities), rng.choice(professions))
            for name in _fresh_names(rng, count, {p.name for p in people})]


def corpus_rows(people: list[Person], city_country: dict[str, str]) -> list[dict]:
    docs = [_document(p.name, p.city, p.profession) for p in people]
    docs += [f"\"{c}\"\n{c} is a city in the country of {k}." for c, k in city_country.items()]
    return [{"id": str(i), "contents": d} for i, d in enumerate(docs)]


def question_rows(people: list[Person], city_country: dict[str, str], split: str) -> list[dict]:
    qa = []
    for p in people:
        qa.append(("tinyworld_1hop", f"where was {p.name} born?", p.city))
        qa.append(("tinyworld_1hop", f"what is the profession of {p.name}?", p.profession))
        qa.append(("tinyworld_2hop", f"in which country was {p.name} born?",
                   city_country[p.city]))
    return [{
        "data_source": source,
        "question": question,
        "golden_answers": [answer],
        "prompt": [{"role": "user", "content": INSTRUCTION.format(question=question)}],
        "ability": "fact-reasoning",
        "reward_model": {"style": "rule", "ground_truth": {"target": [answer]}},
        "extra_info": {"split": split, "index": i},
    } for i, (source, question, answer) in enumerate(qa)]


TEST_FRACTION = 0.2  # share of people whose questions are held out


def write_world(out_dir: Path, seed: int, num_people: int) -> None:
    """Write corpus.jsonl, train.parquet and test.parquet under out_dir."""
    people, city_country = make_world(seed, num_people)
    num_test = max(1, int(len(people) * TEST_FRACTION))
    _write(out_dir, people, city_country,
           {"train": people[num_test:], "test": people[:num_test]})


def write_demo_world(out_dir: Path, seed: int, num_people: int, invented: int) -> None:
    """The world's corpus plus `invented` people outside it (corpus.jsonl), and questions
    about those people only (demo.parquet): what the policy's warm start demonstrates."""
    people, city_country = make_world(seed, num_people)
    extra = invented_people(invented, seed, people, city_country)
    _write(out_dir, people + extra, city_country, {"demo": extra})


def _write(out_dir: Path, people: list[Person], city_country: dict[str, str],
           splits: dict[str, list[Person]]) -> None:
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "corpus.jsonl", "w") as f:
        for row in corpus_rows(people, city_country):
            f.write(json.dumps(row) + "\n")
    for split, members in splits.items():
        rows = question_rows(members, city_country, split)
        pd.DataFrame(rows).to_parquet(out_dir / f"{split}.parquet", index=False)


def world_text(out_dir: Path) -> list[str]:
    """Every text the tokenizer should know: corpus, questions and prompts."""
    import pandas as pd

    lines = [json.loads(line)["contents"] for line in open(out_dir / "corpus.jsonl")]
    for split in ("train", "test"):
        frame = pd.read_parquet(out_dir / f"{split}.parquet")
        lines += [str(p[0]["content"]) for p in frame["prompt"]]
    return lines


def held_out_titles(out_dir: Path) -> set[str]:
    """Titles of the corpus documents whose entity a held-out question names."""
    import pandas as pd

    from actors.retrievers import split_contents

    questions = [str(p[0]["content"]) for p in pd.read_parquet(out_dir / "test.parquet")["prompt"]]
    titles = {split_contents(json.loads(line)["contents"])[0]
              for line in open(out_dir / "corpus.jsonl")}
    return {t for t in titles if any(f" {t}?" in q or f" {t} " in q for q in questions)}
