"""A synthetic world of invented entities, written in Search-R1's formats.

The tiny CPU default and the tests train on this world so nothing is downloaded. It holds
people (birth city, profession) and cities (country). Each entity gets one corpus document
(Search-R1 jsonl: ``{"id", "contents": "\\"Title\\"\\ntext"}``) and questions in
Search-R1's parquet schema: single-hop (birth city, profession) and two-hop (country of
birth). People are split into train and held-out test sets, so test questions ask about
entities the policy never saw a question about. Everything derives from one seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from actors.episode import INSTRUCTION

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
    firsts = _unique_words(rng, num_people, 2, taken)
    lasts = _unique_words(rng, num_people, 2, taken)
    city_country = {c: rng.choice(countries) for c in cities}
    people = [Person(f"{f} {l}", rng.choice(cities), rng.choice(professions))
              for f, l in zip(firsts, lasts)]
    return people, city_country


def corpus_rows(people: list[Person], city_country: dict[str, str]) -> list[dict]:
    docs = [f"\"{p.name}\"\n{p.name} was born in {p.city}. {p.name} works as a {p.profession}."
            for p in people]
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


def write_world(out_dir: Path, seed: int, num_people: int, test_fraction: float) -> None:
    """Write corpus.jsonl, train.parquet and test.parquet under out_dir."""
    import pandas as pd

    people, city_country = make_world(seed, num_people)
    num_test = max(1, int(len(people) * test_fraction))
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "corpus.jsonl", "w") as f:
        for row in corpus_rows(people, city_country):
            f.write(json.dumps(row) + "\n")
    splits = {"train": people[num_test:], "test": people[:num_test]}
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
