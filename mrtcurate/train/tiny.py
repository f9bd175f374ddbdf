"""A tiny randomly initialised causal LM with a word-level tokenizer, built offline.

For the structured benchmark and the tests: nothing is downloaded, the tokenizer is trained on the
texts it will see (with `tokenizers`), and the model is a few-layer Llama built from a config.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer(texts: Iterable[str], chat_template: bool = True) -> PreTrainedTokenizerFast:
    """Word-level: every word and punctuation mark of the texts is one token, anything else <unk>."""
    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="<|end|>"
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(
    directory: str | Path,
    texts: Iterable[str],
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    max_positions: int = 256,
    chat_template: bool = True,
    seed: int = 0,
) -> Path:
    """Writes a tokenizer and a freshly initialised Llama to `directory`, loadable by from_pretrained."""
    tokenizer = build_tokenizer(texts, chat_template)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    save_random_model(directory, LlamaForCausalLM, config, tokenizer, seed)
    return Path(directory)


def save_random_model(directory: str | Path, model_class, config, tokenizer, seed: int = 0):
    """A freshly initialised model of `model_class` (seeded) and its tokenizer, saved side by side."""
    torch.manual_seed(seed)
    model = model_class(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model
