"""Rows to token features: prompt tokens carry no loss, completion tokens carry their row's weight.

A feature is a dict of equal-length lists: input_ids, labels (-100 on prompt tokens) and token_weights
(0 on prompt tokens, the row's weight on completion tokens), plus position_ids once packed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import pyarrow as pa

IGNORE = -100  # the label torch's cross-entropy skips


@dataclass(frozen=True)
class Encoded:
    features: list[dict]
    prompt_ids: list[str]
    ranks: list[int]
    truncated: int  # rows whose completion was cut at --max-length
    skipped: int  # rows whose prompt alone fills --max-length: nothing left to learn


def prompt_turns(row: dict) -> list[dict]:
    """The conversation before the response: the chat turns when the data has them, else one user turn."""
    messages = row.get("messages")
    if messages:
        return [{"role": turn["role"], "content": turn["content"]} for turn in messages[:-1]]
    return [{"role": "user", "content": row["prompt"]}]


def encode_batch(tokenizer, turns: list[list[dict]], completions: list[str]) -> list[tuple[list[int], int]]:
    """For each example: its token ids and how many of them form the prompt.

    With a chat template the example is the rendered conversation; the prompt is the rendering with
    the generation prompt, which must be a prefix of the whole (checked, since templates may rewrite
    earlier turns or merge tokens at the boundary; otherwise prompt + completion + end of sequence).
    Without one: the prompt's text, a newline, then the completion and end of sequence. Rendering is
    per example; tokenising is one batched call into the tokenizer's Rust core, which is where the
    time goes, and matches apply_chat_template(tokenize=True), which tokenises without special tokens.
    """
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    completion_ids = _tokenize(tokenizer, completions)
    if not tokenizer.chat_template:
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        prompts = _tokenize(
            tokenizer, ["\n\n".join(turn["content"] for turn in conversation) + "\n" for conversation in turns]
        )
        return [
            (bos + prompt + completion + eos, len(bos) + len(prompt))
            for prompt, completion in zip(prompts, completion_ids)
        ]
    prompts = _tokenize(
        tokenizer, [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in turns]
    )
    wholes = _tokenize(
        tokenizer,
        [
            tokenizer.apply_chat_template(c + [{"role": "assistant", "content": text}], tokenize=False)
            for c, text in zip(turns, completions)
        ],
    )
    encoded = []
    for prompt, whole, completion in zip(prompts, wholes, completion_ids):
        if whole[: len(prompt)] == prompt and len(whole) > len(prompt):
            encoded.append((whole, len(prompt)))
        else:
            encoded.append((prompt + completion + eos, len(prompt)))
    return encoded


def _tokenize(tokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []


def encode_rows(rows: pa.Table, tokenizer, max_length: int, chunk: int = 2048) -> Encoded:
    features, prompt_ids, ranks = [], [], []
    truncated = skipped = 0
    for batch in rows.to_batches(max_chunksize=chunk):
        batch_rows = batch.to_pylist()
        pairs = encode_batch(
            tokenizer, [prompt_turns(row) for row in batch_rows], [row["completion"] for row in batch_rows]
        )
        for row, (ids, prompt_length) in zip(batch_rows, pairs):
            if prompt_length >= max_length:
                skipped += 1
                continue
            if len(ids) > max_length:
                ids, truncated = ids[:max_length], truncated + 1
            completion_length = len(ids) - prompt_length
            features.append(
                {
                    "input_ids": ids,
                    "labels": [IGNORE] * prompt_length + ids[prompt_length:],
                    "token_weights": [0.0] * prompt_length + [float(row["weight"])] * completion_length,
                }
            )
            prompt_ids.append(row["prompt_id"])
            ranks.append(row["rank"])
    return Encoded(features, prompt_ids, ranks, truncated, skipped)


def pack(features: list[dict], max_length: int) -> list[dict]:
    """Best-fit decreasing bins of at most max_length tokens, each example keeping its own positions.

    position_ids restart at 0 for every example; transformers turns restarts into a block-diagonal
    causal mask, so packed examples never attend to each other. Every example starts with prompt
    tokens (label -100), so no loss crosses a boundary either.
    """
    order = sorted(range(len(features)), key=lambda i: (-len(features[i]["input_ids"]), i))
    bins: list[list[int]] = []
    free_space: list[tuple[int, int]] = []  # (room left, bin), sorted: bisect finds the tightest fit
    for index in order:
        length = len(features[index]["input_ids"])
        slot = bisect.bisect_left(free_space, (length, -1))
        if slot == len(free_space):
            bins.append([index])
            bisect.insort(free_space, (max_length - length, len(bins) - 1))
            continue
        room, target = free_space.pop(slot)
        bins[target].append(index)
        bisect.insort(free_space, (room - length, target))
    packed = []
    for members in bins:
        example = {"input_ids": [], "labels": [], "token_weights": [], "position_ids": []}
        for index in members:
            feature = features[index]
            for key in ("input_ids", "labels", "token_weights"):
                example[key].extend(feature[key])
            example["position_ids"].extend(range(len(feature["input_ids"])))
        packed.append(example)
    return packed
