"""Scores for corpora that have none: a local `transformers` sequence-classification model reads (prompt,
response) and its logit is the reward.

Encoding: the tokenizer's chat template where it has one (a user turn, then an assistant turn), else the
tokenizer's own pair encoding (prompt as the first segment, response as the second, as cross-encoders and
most reward models were trained). A pair longer than the model's window loses the start of its prompt
(the response and the end of the prompt, nearest to it, are what is judged); a response longer than the
window alone is cut at its end. Both are counted. A single-logit head is the score; a multi-logit head needs
the label to read (`--reward-label`). fp16 on a CUDA GPU, fp32 on a CPU. Each call sorts its pairs by
length, so a batch pads little; results come back in the order given.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mrtcurate.errors import UserError
from mrtcurate.schemas.config import cuda_available


@dataclass(frozen=True)
class RewardModelIdentity:
    path: str
    config_sha256: str
    dtype: str
    label: str | None
    weights_stamp: (
        str  # the model folder's files by name, size and modification time: retrained weights are another model
    )

    @property
    def cache_key(self) -> str:
        """Scores of one model, as `--cache` keeps them."""
        fields = (self.path, self.config_sha256, self.dtype, self.label or "", self.weights_stamp)
        return hashlib.sha256("\0".join(fields).encode()).hexdigest()[:16]


def resolve_model_path(name_or_path: str) -> str:
    """A local directory, or a name already in the local Hugging Face cache: nothing downloads."""
    if os.path.isdir(name_or_path):
        return os.path.abspath(name_or_path)
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name_or_path, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure means: not here, and we never download
        raise UserError(
            f"--reward-model {name_or_path}: not a local directory, nor a model in the local Hugging Face cache"
        ) from None


def identity(name_or_path: str, label: str | None) -> RewardModelIdentity:
    """Checks the model up front (one line, before the job) and names it for the manifest and caches."""
    path = resolve_model_path(name_or_path)
    config_path = os.path.join(path, "config.json")
    try:
        with open(config_path, "rb") as source:
            raw = source.read()
        config = json.loads(raw)
    except (OSError, ValueError):
        raise UserError(f"--reward-model {name_or_path}: no readable config.json in {path}") from None
    architectures = config.get("architectures") or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        raise UserError(
            f"--reward-model {name_or_path}: a {', '.join(architectures) or 'model'} is not a sequence classifier"
        )
    labels = _labels(config)
    if len(labels) > 1 and label is None:
        raise UserError(
            f"--reward-model {name_or_path} has {len(labels)} outputs ({', '.join(labels)}): say which is the score with --reward-label"
        )
    if label is not None and label not in labels:
        raise UserError(f"--reward-label {label!r} is not one of the model's labels ({', '.join(labels)})")
    return RewardModelIdentity(
        path, hashlib.sha256(raw).hexdigest(), "float16" if cuda_available() else "float32", label, _stamp(path)
    )


def _stamp(path: str) -> str:
    entries = sorted(
        f"{entry.name}:{entry.stat().st_size}:{entry.stat().st_mtime_ns}"
        for entry in os.scandir(path)
        if entry.is_file()
    )
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def _labels(config: dict) -> list[str]:
    count = config.get("num_labels") or len(config.get("id2label") or {}) or 1
    names = config.get("id2label") or {}
    return [str(names.get(str(index), names.get(index, f"LABEL_{index}"))) for index in range(count)]


class RewardModel:
    def __init__(self, model: RewardModelIdentity, batch_size: int = 16):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.identity = model
        self.batch_size = batch_size
        self.device = "cuda" if cuda_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model.path)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        dtype = torch.float16 if model.dtype == "float16" else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(model.path, dtype=dtype).to(self.device).eval()
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        labels = _labels(self.model.config.to_dict())
        self.column = 0 if model.label is None else labels.index(model.label)
        self.window = min(
            self.tokenizer.model_max_length, getattr(self.model.config, "max_position_embeddings", None) or 10**9
        )
        self.templated = bool(getattr(self.tokenizer, "chat_template", None))
        self.truncated = 0  # pairs cut to the window, over this scorer's life

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        encoded = [self._encode(prompt, response) for prompt, response in zip(prompts, responses, strict=True)]
        order = sorted(range(len(encoded)), key=lambda index: len(encoded[index]))
        scores = np.empty(len(encoded), dtype=np.float64)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            batch = self.tokenizer.pad({"input_ids": [encoded[index] for index in chosen]}, return_tensors="pt").to(
                self.device
            )
            with self.torch.inference_mode():
                logits = self.model(**batch).logits.float()
            scores[chosen] = logits[:, self.column].cpu().numpy()
        return scores

    def _encode(self, prompt: str, response: str) -> list[int]:
        ids = self._ids(prompt, response)
        if len(ids) <= self.window:
            return ids
        self.truncated += 1
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"]
        excess = len(ids) - self.window
        if excess < len(prompt_ids):
            ids = self._ids(self.tokenizer.decode(prompt_ids[excess + 1 :]), response)  # one more: decoding can merge
        return ids[: self.window] if len(ids) > self.window else ids

    def _ids(self, prompt: str, response: str) -> list[int]:
        if self.templated:
            turns = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
            text = self.tokenizer.apply_chat_template(turns, tokenize=False)
            return self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        # verbose=False: the tokenizer would warn of a pair past the window, which _encode cuts and counts itself.
        return self.tokenizer(prompt, response, verbose=False)["input_ids"]
