"""A short supervised warm start of the tiny policy on protocol demonstrations.

A random-initialised policy never writes a search or an answer tag, so every reward is 0
and no gradient flows. A few hundred steps on demonstrations built from the training
questions (think, search, the corpus document as the observation, answer) teach the tag
protocol; the loss covers only the policy's own tokens, exactly as in RL. Kept short on
purpose: the protocol is right while answers on held-out questions stay mostly wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

from actors.dataset import load_questions
from actors.episode import SearchResult, format_observation


def _documents(corpus_path: Path) -> dict[str, str]:
    docs = {}
    for line in open(corpus_path):
        title, _, text = json.loads(line)["contents"].partition("\n")
        docs[title.strip('"')] = text
    return docs


def demonstrations(data_dir: Path) -> list[tuple[str, str, str]]:
    """(prompt, first turn + observation, final turn) texts for every training question."""
    docs = _documents(data_dir / "corpus.jsonl")
    demos = []
    for q in load_questions(data_dir / "train.parquet"):
        title = next((t for t in docs if t in q.question), "")
        observation = format_observation(SearchResult([("", docs.get(title, ""))]))
        first = f"<think> I need to search. </think> <search> {q.question} </search>"
        final = f"<think> I found it. </think> <answer> {q.answers[0]} </answer>"
        demos.append((q.prompt, first + observation, final))
    return demos


def warm_start(model_dir: Path, data_dir: Path, steps: int, seed: int, lr: float = 3e-3,
               batch_size: int = 16) -> float:
    """Fine-tune the model in model_dir in place; returns the last loss."""
    import random

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    examples = [_encode(tokenizer, *demo) for demo in demonstrations(data_dir)]
    loss = torch.tensor(0.0)
    for _ in range(steps):
        batch = rng.sample(examples, min(batch_size, len(examples)))
        ids, labels = _pad(batch, tokenizer.pad_token_id)
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(model_dir)
    return loss.item()


def _encode(tokenizer, prompt: str, middle: str, final: str) -> tuple[list[int], list[int]]:
    """Token ids and labels: -100 on the prompt and the observation (masked like RL)."""
    first, _, observation = middle.partition("</search>")
    parts = [(prompt, False), (first + "</search>", True), (observation, False),
             (final, True)]
    ids, labels = [], []
    for text, trained in parts:
        piece = tokenizer.encode(text, add_special_tokens=False)
        ids += piece
        labels += piece if trained else [-100] * len(piece)
    return ids, labels


def _pad(batch, pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)  # (B, T)
    for i, (x, y) in enumerate(batch):
        ids[i, :len(x)] = torch.tensor(x)
        labels[i, :len(y)] = torch.tensor(y)
    return ids, labels
