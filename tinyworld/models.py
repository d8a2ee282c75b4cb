"""The tiny world's tokenizer and tiny random-initialised Qwen2 models.

``tinyworld.stages`` builds them once per setting and caches them. Building is
deterministic (fixed seeds) and needs no network. The models use head_dim 64 (vLLM's CPU
attention needs it) and float32, so the learner and the vLLM engines hold bit-identical
weights after a sync. Embeddings are untied: vLLM 0.32 on CPU keeps a processed copy of a
tied output head that reload_weights does not refresh.
"""

from __future__ import annotations

from pathlib import Path

TAGS = ["<think>", "</think>", "<search>", "</search>", "<answer>", "</answer>",
        "<information>", "</information>"]
EOS = "<|endoftext|>"
# Each message's content as it is: the simulator's prompt reaches the model unchanged when
# it is served by an OpenAI-compatible server (search.backend=openai).
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


def build_tokenizer(texts: list[str], out_dir: Path):
    """A byte-level BPE tokenizer with the protocol tags as single tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from actors import simulator_prompt as sp

    extra = [sp.HEAD + sp.CONTEXT + sp.BODY + sp.TAIL, *sp.EXAMPLES.values(),
             "Doc 1: Doc 2: Doc 3: Doc 4: Doc 5: Useful Noisy useful noisy",
             "The search failed. Your previous action is invalid."]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts + extra, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    fast.add_tokens(TAGS)  # plain added tokens: decoded as text, so stop strings see them
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    return fast


def build_model(vocab_size: int, out_dir: Path, seed: int, layers: int = 2) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size, hidden_size=128, intermediate_size=256,
        num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
        head_dim=64, max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=0, eos_token_id=0, torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    model.save_pretrained(out_dir)
