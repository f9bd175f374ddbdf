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


def encode_pair(tokenizer, turns: list[dict], completion: str) -> tuple[list[int], int]:
    """Token ids of the whole example and how many of them form the prompt.

    With a chat template the example is the rendered conversation; the prompt is the rendering with
    the generation prompt, which must be a prefix of the whole (checked, since templates may rewrite
    earlier turns). Without one: the prompt's text, a newline, then the completion and end of sequence.
    """
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if tokenizer.chat_template:
        prompt = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=True, return_dict=False)
        whole = tokenizer.apply_chat_template(
            turns + [{"role": "assistant", "content": completion}], tokenize=True, return_dict=False
        )
        if whole[: len(prompt)] == prompt and len(whole) > len(prompt):
            return list(whole), len(prompt)
        return list(prompt) + tokenizer(completion, add_special_tokens=False)["input_ids"] + eos, len(prompt)
    text = "\n\n".join(turn["content"] for turn in turns) + "\n"
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt = bos + tokenizer(text, add_special_tokens=False)["input_ids"]
    return prompt + tokenizer(completion, add_special_tokens=False)["input_ids"] + eos, len(prompt)


def encode_rows(rows: pa.Table, tokenizer, max_length: int) -> Encoded:
    features, prompt_ids, ranks = [], [], []
    truncated = skipped = 0
    for row in rows.to_pylist():
        ids, prompt_length = encode_pair(tokenizer, prompt_turns(row), row["completion"])
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
