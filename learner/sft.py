"""Supervised fine-tuning of a causal LM on texts split into trained and untrained parts.

Used by the policy warm start (protocol demonstrations, observations untrained) and by
``simsearch sft-simulator`` (prompt untrained, documents trained). An example is a list of
``(text, trained)`` parts; the loss covers only the trained parts' tokens.
"""

from __future__ import annotations

import random
from pathlib import Path

IGNORE = -100


def encode_parts(tokenizer, parts: list[tuple[str, bool]]) -> tuple[list[int], list[int]]:
    """Token ids and labels (IGNORE on untrained parts), parts encoded one by one."""
    ids, labels = [], []
    for text, trained in parts:
        piece = tokenizer.encode(text, add_special_tokens=False)
        ids += piece
        labels += piece if trained else [IGNORE] * len(piece)
    return ids, labels


def pad_batch(batch: list[tuple[list[int], list[int]]], pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
    for i, (x, y) in enumerate(batch):
        ids[i, :len(x)] = torch.tensor(x)
        labels[i, :len(y)] = torch.tensor(y)
        mask[i, :len(x)] = 1
    return ids, labels, mask


def finetune(model_dir: str | Path, out_dir: str | Path,
             examples: list[list[tuple[str, bool]]], steps: int, lr: float, batch_size: int,
             seed: int, end_with_eos: bool = False) -> list[float]:
    """Fine-tune model_dir on examples, save model and tokenizer to out_dir; losses/step.

    end_with_eos appends a trained end-of-sequence token, so the model learns to stop.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not examples:
        raise ValueError("no fine-tuning examples")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    encoded = [encode_parts(tokenizer, parts) for parts in examples]
    if end_with_eos:
        encoded = [(ids + [tokenizer.eos_token_id], labels + [tokenizer.eos_token_id])
                   for ids, labels in encoded]
    losses = []
    for _ in range(steps):
        batch = rng.sample(encoded, min(batch_size, len(encoded)))
        ids, labels, mask = pad_batch(batch, tokenizer.pad_token_id or 0)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return losses
