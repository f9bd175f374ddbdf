"""Pure selection over arrays: no Beam, no I/O. Every selector has the signature (pool, k, seed) -> Selection."""

from __future__ import annotations

import numpy as np

from mrtcurate.ids import stable_hash
from mrtcurate.selectors.neardup import collapse_near_duplicates
from mrtcurate.selectors.pool import MissingRewardsError, Pool, Selection
from mrtcurate.selectors.quality import minmax_quality
from mrtcurate.selectors.random_k import select_random
from mrtcurate.selectors.topk import select_topk

SELECTORS = {"random": select_random, "topk": select_topk}


def select(name: str, pool: Pool, k: int, seed: int) -> Selection:
    """K of the pool by the named selector; a pool of K or fewer keeps everything, weighted by multiplicity."""
    if len(pool) <= k:
        order = sorted(range(len(pool)), key=lambda i: stable_hash(seed, pool.prompt_id, pool.response_ids[i]))
        indices = np.array(order, dtype=np.int64)
        return Selection(indices=indices, draws=pool.multiplicities[indices], gains=None)
    return SELECTORS[name](pool, k, seed)


__all__ = [
    "SELECTORS",
    "MissingRewardsError",
    "Pool",
    "Selection",
    "collapse_near_duplicates",
    "minmax_quality",
    "select",
]
