"""Pretraining a tiny base LM on a Search-R1 corpus: the stand-in for an LLM's pretraining.

A random-initialised tiny model reads the documents of the corpus (but those skipped) until
it can complete "<name> was born in" with the right city: it then "knows" those entities.
The policy's base also reads general text of the same shape about invented entities with
fresh names, where the only way to predict a name's second mention is to copy the first,
and where a sentence said twice is predicted by copying what followed the same word before
(``tinyworld.generic_documents``): the copying that a search query and an answer need
later, and that any pretrained LLM brings. (The simulator's base reads the corpus alone:
general text would dilute what it has to know.)
"""

from __future__ import annotations

import json
from pathlib import Path

PRETRAIN_LR = 3e-3
PRETRAIN_BATCH = 32
GENERIC_DOCUMENTS = 2000  # general text about invented entities, read besides the corpus


def corpus_examples(corpus_path: Path, skip_titles: set[str]) -> list[list[tuple[str, bool]]]:
    """Each document's contents as one fully trained example, skipped titles left out."""
    from actors.retrievers import split_contents

    examples = []
    for line in open(corpus_path):
        contents = json.loads(line)["contents"]
        if split_contents(contents)[0] not in skip_titles:
            examples.append([(contents, True)])
    return examples


def pretrain(tokenizer_dir: Path, out_dir: Path, examples: list[list[tuple[str, bool]]],
             steps: int, seed: int) -> list[float]:
    """A fresh tiny model in out_dir, trained on examples; losses per step."""
    from transformers import AutoTokenizer

    from learner.sft import finetune
    from tinyworld.models import build_model

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    build_model(len(tokenizer), out_dir, seed=seed)
    tokenizer.save_pretrained(out_dir)
    return finetune(out_dir, out_dir, examples, steps, PRETRAIN_LR, PRETRAIN_BATCH, seed,
                    end_with_eos=True)
