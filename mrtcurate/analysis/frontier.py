"""The quality-diversity frontier of qd: what each lambda keeps, measured on a sample of pools, so that a
user picks lambda from data instead of by feel (DESIGN.md 2.2).

For each lambda on a grid, and for random and topk as references on the same pools:
- quality: mean min-max reward scaled within the pool, of the kept set;
- coverage: the objective's own diversity term, (1/W) sum_j w_j max_{i kept} max(cos_ij, 0), the share of
  the pool's mass (by multiplicity) that the kept set stands for;
- modes: the share of the pool's answer modes the kept set hits, out of as many as it could hit
  (min(K, modes)). Modes are clusters around representatives at cosine >= MODE_COSINE, most copies first:
  groups of answers that say the same thing in other words.

The recommended lambda is the one with the highest quality among those whose coverage and modes are both
at least random's: random is the unbiased reference whose spread qd must not fall below.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from mrtcurate.schemas.config import QDSettings
from mrtcurate.selectors import Pool, minmax_quality, select
from mrtcurate.selectors.qd import select_qd
from mrtcurate.selectors.random_k import select_random
from mrtcurate.selectors.topk import select_topk
from mrtcurate.vectors.clusters import representative_clusters
from mrtcurate.vectors.components import cosine_pairs

LAMBDA_GRID = tuple(round(step / 10, 1) for step in range(11))
MODE_COSINE = 0.8
FRONTIER_POOLS = 64  # pools (smallest id hash, rewarded, more than K candidates) the frontier is measured on
FRONTIER_MEMBERS = (
    1024  # a larger pool is measured on this many of its members (smallest id hash): 11 qd runs stay cheap
)


def kept_coverage(embeddings: np.ndarray, multiplicities: np.ndarray, members: np.ndarray, kept: np.ndarray) -> float:
    """The facility-location term on `members` of the pool (all of them, or a sample): each member's best
    max(cos, 0) to a kept one, weighted by multiplicity. A kept member covers itself fully, vector or not."""
    similarity = np.maximum(embeddings[members] @ embeddings[kept].T, 0.0).max(axis=1)
    # A broadcast comparison, not np.isin: members and kept are a sample and K, and isin's fixed cost per call was
    # 1.2% of a qd run.
    similarity[(members[:, None] == kept[None, :]).any(axis=1)] = 1.0
    weights = multiplicities[members].astype(np.float64)
    return float(np.minimum(similarity, 1.0) @ weights / weights.sum())


def answer_modes(pool: Pool) -> np.ndarray:
    """Mode label per candidate: clusters around representatives at cosine >= MODE_COSINE."""
    order = np.array(
        sorted(range(len(pool)), key=lambda i: (-pool.multiplicities[i], pool.response_ids[i])), dtype=np.int64
    )
    rows, cols, cosines = cosine_pairs(pool.embeddings, MODE_COSINE)
    return representative_clusters(order, len(pool), rows, cols, cosines)


def _measure(pool: Pool, kept: np.ndarray, modes: np.ndarray, k: int) -> tuple[float, float, float]:
    quality = minmax_quality(pool.rewards)
    everyone = np.arange(len(pool))
    distinct = len(np.unique(modes))
    return (
        float(np.nanmean(quality[kept])) if np.isfinite(quality[kept]).any() else float("nan"),
        kept_coverage(pool.embeddings, pool.multiplicities, everyone, kept),
        len(np.unique(modes[kept])) / min(k, distinct),
    )


def qd_frontier(pools: list[Pool], k: int, settings: QDSettings, seed: int) -> dict | None:
    """The frontier over the pools that have a choice to make (rewards, more than K candidates), or None."""
    pools = [pool for pool in pools if pool.embeddings is not None and pool.has_rewards and len(pool) > k]
    if not pools:
        return None
    by_lambda = {lam: [] for lam in LAMBDA_GRID}
    references = {"random": [], "topk": []}
    for pool in pools:
        modes = answer_modes(pool)
        for lam in LAMBDA_GRID:
            chosen = select(partial(select_qd, settings=settings.model_copy(update={"lam": lam})), pool, k, seed)
            by_lambda[lam].append(_measure(pool, chosen.indices, modes, k))
        references["random"].append(_measure(pool, select_random(pool, k, seed).indices, modes, k))
        references["topk"].append(_measure(pool, select_topk(pool, k, seed).indices, modes, k))

    def summary(measures: list[tuple[float, float, float]]) -> dict:
        quality, coverage, modes = np.nanmean(np.array(measures), axis=0)
        return {
            "quality": round(float(quality), 4),
            "coverage": round(float(coverage), 4),
            "modes": round(float(modes), 4),
        }

    points = [{"lambda": lam, **summary(measures)} for lam, measures in by_lambda.items()]
    random, topk = summary(references["random"]), summary(references["topk"])
    eligible = [
        point for point in points if point["coverage"] >= random["coverage"] and point["modes"] >= random["modes"]
    ]
    recommended = max(eligible, key=lambda point: (point["quality"], -point["lambda"]))["lambda"] if eligible else None
    return {
        "pools": len(pools), "k": k, "points": points, "random": random, "topk": topk, "chosen_lambda": settings.lam,
        "recommended_lambda": recommended,
        "rule": "recommended: the lambda with the highest quality whose coverage and modes are at least random's",
        "definition": f"means over pools: quality = min-max reward in the pool; coverage = the qd objective's diversity term; "
        f"modes = share of answer modes (clusters at cosine >= {MODE_COSINE}) hit, out of min(K, modes)",
    }  # fmt: skip
