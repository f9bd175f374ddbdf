"""Many small pools at once: naive facility-location greedy vectorised across pools of one size.

Per pool, the greedy is a handful of tiny NumPy calls whose fixed cost dominates at N=64; stacking
pools into a (B, N, N) tensor pays that cost once per chunk of pools. The arithmetic is the per-pool
naive greedy's, row sums included, so the selections are the same as `naive_greedy` pool by pool.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Pools per chunk: keeps the (chunk, N, N) working buffer inside the CPU cache for N around 64.
_CHUNK = 64


def facility_greedy_batch(
    similarity: np.ndarray,  # (B, N, N), row i = what candidate i covers
    quality: np.ndarray,  # (B, N) in [0, 1]
    weights: np.ndarray,  # (B, N) multiplicities
    ties: np.ndarray,  # (B, N) uint64 tie keys
    k: int,
    lam: float,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Chosen indices (B, k) in selection order and their marginal gains (B, k). Chunks are independent,
    and NumPy releases the GIL on arrays this size, so `threads` > 1 uses more cores."""
    chosen = np.empty((len(similarity), k), dtype=np.int64)
    gains = np.empty((len(similarity), k))

    def run_chunk(start: int) -> None:
        part = slice(start, start + _CHUNK)
        chosen[part], gains[part] = _greedy_chunk(similarity[part], quality[part], weights[part], ties[part], k, lam)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run_chunk, range(0, len(similarity), _CHUNK)))
    return chosen, gains


def _greedy_chunk(similarity, quality, weights, ties, k, lam):
    pools, size, _ = similarity.shape
    rows = np.arange(pools)
    quality_gain = lam * quality / k
    scale = ((1.0 - lam) / weights.sum(axis=1))[:, None]
    unit_weights = bool((weights == 1).all())  # x * 1.0 == x exactly, so skipping the product changes nothing
    covered = np.zeros((pools, size))
    available = np.ones((pools, size), dtype=bool)
    buffer = np.empty_like(similarity, dtype=np.float64)
    chosen = np.empty((pools, k), dtype=np.int64)
    gains = np.empty((pools, k))
    never = np.iinfo(np.uint64).max
    for step in range(k):
        np.subtract(similarity, covered[:, None, :], out=buffer)
        np.maximum(buffer, 0.0, out=buffer)
        if not unit_weights:
            buffer *= weights[:, None, :]
        step_gains = quality_gain + scale * buffer.sum(axis=2)
        step_gains[~available] = -np.inf
        top = step_gains == step_gains.max(axis=1, keepdims=True)
        picked = np.argmin(np.where(top, ties, never), axis=1)
        chosen[:, step] = picked
        gains[:, step] = step_gains[rows, picked]
        np.maximum(covered, similarity[rows, picked], out=covered)
        available[rows, picked] = False
    return chosen, gains
