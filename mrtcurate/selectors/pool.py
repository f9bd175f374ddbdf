"""The selector interface: a pool of one prompt's candidates in, the chosen indices in order out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pool:
    prompt_id: str
    response_ids: tuple[str, ...]
    multiplicities: np.ndarray  # int64, copies each candidate stands for
    rewards: np.ndarray  # float64, NaN where a candidate has no reward
    embeddings: np.ndarray | None = None  # float32 (n, d), L2-normalised

    def __len__(self) -> int:
        return len(self.response_ids)

    @property
    def has_rewards(self) -> bool:
        return bool(np.isfinite(self.rewards).any())


@dataclass(frozen=True)
class Selection:
    indices: np.ndarray  # into the pool, in selection order
    draws: np.ndarray  # how many draws landed on each chosen candidate; weights are proportional to it
    gains: np.ndarray | None  # marginal gain of each at selection; None where the selector has no objective
