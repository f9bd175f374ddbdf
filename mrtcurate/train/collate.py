"""Batches of token features, padded on the right."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mrtcurate.train.encoding import IGNORE


@dataclass(frozen=True)
class WeightedCollator:
    """Pads input_ids, labels (-100) and token_weights (0).

    Unpacked batches get an attention_mask. Packed batches get position_ids instead, with the padding
    as one more example starting at position 0: a mask would stop transformers from reading the
    example boundaries out of the position restarts.
    """

    pad_token_id: int
    packed: bool = False
    pad_to_multiple_of: int = 8

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(feature["input_ids"]) for feature in features)
        width = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": torch.full((len(features), width), self.pad_token_id, dtype=torch.long),
            "labels": torch.full((len(features), width), IGNORE, dtype=torch.long),
            "token_weights": torch.zeros((len(features), width), dtype=torch.float32),
        }
        if self.packed:
            batch["position_ids"] = torch.zeros((len(features), width), dtype=torch.long)
        else:
            batch["attention_mask"] = torch.zeros((len(features), width), dtype=torch.long)
        for row, feature in enumerate(features):
            n = len(feature["input_ids"])
            batch["input_ids"][row, :n] = torch.tensor(feature["input_ids"])
            batch["labels"][row, :n] = torch.tensor(feature["labels"])
            batch["token_weights"][row, :n] = torch.tensor(feature["token_weights"])
            if self.packed:
                batch["position_ids"][row, :n] = torch.tensor(feature["position_ids"])
                batch["position_ids"][row, n:] = torch.arange(width - n)
            else:
                batch["attention_mask"][row, :n] = 1
        return batch
