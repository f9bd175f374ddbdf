"""Near-duplicate collapse within one pool (DESIGN.md 2.2): clusters form around representatives, best
member first, and a candidate joins one only if it is itself a near-duplicate of that representative, so
similarity never chains. The representative absorbs its cluster's multiplicity.

Two tests link a pair: the lexical one (vectors/lexical.py: near-identical word sequences stating the
same numbers), and, opted into, embedding cosine >= tau between texts that both fit the embedder's token
window: a text cut at the window is known by its first tokens only, so its vector never judges it. A
candidate without a usable vector (all zeros: vectors/embedders.py) has cosine 0 to every other and is
judged by the lexical test alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mrtcurate.selectors.pool import Pool
from mrtcurate.vectors.clusters import representative_clusters
from mrtcurate.vectors.components import cosine_pairs
from mrtcurate.vectors.lexical import lexical_pairs


@dataclass(frozen=True)
class NearDuplicateRule:
    lexical: float | None  # word-sequence similarity threshold, or None for no lexical test
    embedding: float | None = None  # cosine threshold between texts within the token window, or None

    @property
    def active(self) -> bool:
        return self.lexical is not None or self.embedding is not None


@dataclass(frozen=True)
class Collapsed:
    pool: Pool
    merged: int  # candidates merged away
    clusters: tuple[tuple[int, tuple[int, ...]], ...]  # (representative, merged members), indices into the input pool


def collapse_near_duplicates(
    pool: Pool, texts: Sequence[str], rule: NearDuplicateRule, fits_window: np.ndarray | None = None
) -> Collapsed:
    """`texts` are the pool's completions, in its order; `fits_window` marks those the embedder read whole
    (needed by the embedding test)."""
    if not rule.active or len(pool) < 2:
        return Collapsed(pool, 0, ())
    rows, cols, scores = _linked_pairs(pool, texts, rule, fits_window)
    rewards = np.where(np.isfinite(pool.rewards), pool.rewards, -np.inf)
    # Best member first: highest reward, then most copies, then smallest id (order-independent).
    order = np.array(
        sorted(range(len(pool)), key=lambda i: (-rewards[i], -pool.multiplicities[i], pool.response_ids[i])),
        dtype=np.int64,
    )
    labels = representative_clusters(order, len(pool), rows, cols, scores)
    kept = np.flatnonzero(labels == np.arange(len(pool)))
    if len(kept) == len(pool):
        return Collapsed(pool, 0, ())
    multiplicities = np.bincount(labels, weights=pool.multiplicities, minlength=len(pool)).astype(np.int64)
    collapsed = Pool(
        prompt_id=pool.prompt_id,
        response_ids=tuple(pool.response_ids[i] for i in kept),
        multiplicities=multiplicities[kept],
        rewards=pool.rewards[kept],
        embeddings=None if pool.embeddings is None else pool.embeddings[kept],
    )
    members = {
        int(representative): tuple(int(i) for i in np.flatnonzero(labels == representative) if i != representative)
        for representative in kept
    }
    clusters = tuple((representative, merged) for representative, merged in members.items() if merged)
    return Collapsed(collapsed, len(pool) - len(kept), clusters)


def _linked_pairs(pool: Pool, texts: Sequence[str], rule: NearDuplicateRule, fits_window: np.ndarray | None):
    found = []
    if rule.lexical is not None:
        found.append(lexical_pairs(texts, rule.lexical))
    if rule.embedding is not None:
        if pool.embeddings is None or fits_window is None:
            raise ValueError(
                "the embedding near-duplicate test needs the pool's embeddings and which texts fit the window"
            )
        whole = np.flatnonzero(fits_window)
        rows, cols, cosines = cosine_pairs(pool.embeddings[whole], rule.embedding)
        found.append((whole[rows], whole[cols], cosines))
    rows, cols, scores = (np.concatenate(parts) for parts in zip(*found))
    # A pair both tests link counts once, at its higher similarity.
    keys = rows * len(pool) + cols
    order = np.lexsort((-scores, keys))
    first = order[np.r_[True, keys[order][1:] != keys[order][:-1]]] if len(order) else order
    return rows[first], cols[first], scores[first]
