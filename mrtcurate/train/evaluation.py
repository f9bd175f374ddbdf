"""Held-out evaluation against several reference responses per prompt."""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext

import numpy as np
import torch

from mrtcurate.train.collate import WeightedCollator
from mrtcurate.train.encoding import Encoded
from mrtcurate.train.loss import sequence_nll


@torch.no_grad()
def completion_nll(
    model, features: list[dict], pad_token_id: int, batch_size: int, autocast=nullcontext
) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's completion NLL (nats, summed over its tokens) and token count."""
    was_training = model.training
    model.eval()
    collate = WeightedCollator(pad_token_id)
    device = next(model.parameters()).device
    totals, counts = [], []
    try:
        for start in range(0, len(features), batch_size):
            batch = collate(features[start : start + batch_size])
            with autocast():
                logits = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    use_cache=False,
                ).logits
            total, count = sequence_nll(logits, batch["labels"].to(device))
            totals.append(total.cpu().numpy())
            counts.append(count.cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(totals).astype(np.float64), np.concatenate(counts).astype(np.float64)


def multi_reference_metrics(
    model, encoded: Encoded, pad_token_id: int, batch_size: int, autocast=nullcontext
) -> dict[str, float]:
    """multi_ref_nll: mean over prompts of the mean over that prompt's references of the sequence NLL.

    That is the cross-entropy from the references' empirical distribution to the model, the
    distributional metric; the per-token variant divides each reference's NLL by its length first.
    single_ref_loss is the usual loss: token-mean NLL over each prompt's first reference (lowest rank).
    """
    totals, counts = completion_nll(model, encoded.features, pad_token_id, batch_size, autocast)
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for index, prompt_id in enumerate(encoded.prompt_ids):
        by_prompt[prompt_id].append(index)
    per_prompt_nll, per_prompt_token_nll, first = [], [], []
    for members in by_prompt.values():
        per_prompt_nll.append(totals[members].mean())
        per_prompt_token_nll.append((totals[members] / counts[members]).mean())
        first.append(min(members, key=lambda i: (encoded.ranks[i], i)))
    return {
        "multi_ref_nll": float(np.mean(per_prompt_nll)),
        "multi_ref_nll_per_token": float(np.mean(per_prompt_token_nll)),
        "single_ref_loss": float(totals[first].sum() / counts[first].sum()),
        "prompts": len(by_prompt),
        "references": len(encoded.features),
    }
