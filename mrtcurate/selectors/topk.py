"""Reward top-K: biased towards high-reward modes (DESIGN.md 2.2); offered and labelled as such."""

from __future__ import annotations

import numpy as np

from mrtcurate.ids import stable_hash
from mrtcurate.selectors.pool import Pool, Selection
from mrtcurate.selectors.random_k import select_random


def select_topk(pool: Pool, k: int, seed: int) -> Selection:
    """The K highest rewards; candidates without a reward rank last. A pool where no candidate has a
    reward has nothing to rank by: it gets the unbiased default, Random-K-of-N (counted in the manifest)."""
    if not pool.has_rewards:
        return select_random(pool, k, seed)
    rewards = np.where(np.isfinite(pool.rewards), pool.rewards, -np.inf)
    tie_breaks = [stable_hash(seed, pool.prompt_id, response_id) for response_id in pool.response_ids]
    order = sorted(range(len(pool)), key=lambda index: (-rewards[index], tie_breaks[index]))[:k]
    indices = np.array(order, dtype=np.int64)
    return Selection(indices=indices, draws=np.ones(len(indices), dtype=np.int64), gains=rewards[indices])
