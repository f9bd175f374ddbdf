"""Near-duplicate collapse within one pool: cosine >= tau links two responses; each connected
component keeps its best member, which absorbs the component's multiplicity."""

from __future__ import annotations

import numpy as np

from mrtcurate.selectors.pool import Pool
from mrtcurate.vectors.components import near_duplicate_components


def collapse_near_duplicates(pool: Pool, tau: float) -> tuple[Pool, int]:
    """The collapsed pool and how many candidates were merged away."""
    if pool.embeddings is None or len(pool) < 2:
        return pool, 0
    labels = near_duplicate_components(pool.embeddings, tau)
    rewards = np.where(np.isfinite(pool.rewards), pool.rewards, -np.inf)
    # Best member first: highest reward, then most copies, then smallest id (order-independent).
    order = sorted(range(len(pool)), key=lambda i: (-rewards[i], -pool.multiplicities[i], pool.response_ids[i]))
    keep: dict[int, int] = {}
    for index in order:
        keep.setdefault(labels[index], index)
    kept = np.array(sorted(keep.values()), dtype=np.int64)
    multiplicities = np.bincount(labels, weights=pool.multiplicities, minlength=labels.max() + 1).astype(np.int64)
    collapsed = Pool(
        prompt_id=pool.prompt_id,
        response_ids=tuple(pool.response_ids[i] for i in kept),
        multiplicities=multiplicities[labels[kept]],
        rewards=pool.rewards[kept],
        embeddings=pool.embeddings[kept],
    )
    return collapsed, len(pool) - len(kept)
