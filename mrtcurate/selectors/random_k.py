"""Random-K-of-N by bottom-K hashing over copies (DESIGN.md 2.2).

Each copy of each candidate gets the key hash(seed, prompt_id, response_id, copy); the K smallest keys win.
The result depends on the ids only, not on pool order, and bottom-K of a union equals bottom-K of the
parts' bottom-Ks, so partial selections merge exactly.
"""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np

from mrtcurate.ids import stable_hashes
from mrtcurate.selectors.pool import Pool, Selection


def copy_keys(seed: int, pool: Pool, limit: int) -> list[tuple[int, int]]:
    """The `limit` smallest (key, candidate index) pairs over every copy in the pool."""
    copies = [
        (index, f"{response_id}\x1f{copy}")
        for index, response_id in enumerate(pool.response_ids)
        for copy in range(int(pool.multiplicities[index]))
    ]
    # stable_hash(seed, prompt_id, response_id, copy), with the pool's prefix hashed once.
    keys = stable_hashes((seed, pool.prompt_id), (last for _, last in copies))
    return heapq.nsmallest(limit, zip(keys, (index for index, _ in copies)))


def select_random(pool: Pool, k: int, seed: int) -> Selection:
    drawn = [index for _, index in copy_keys(seed, pool, k)]
    draws = Counter(drawn)
    order = list(dict.fromkeys(drawn))  # first-draw order, duplicates removed
    return Selection(
        indices=np.array(order, dtype=np.int64),
        draws=np.array([draws[index] for index in order], dtype=np.int64),
        gains=None,
    )
