import itertools

import numpy as np

from mrtcurate.analysis.frontier import LAMBDA_GRID, answer_modes, qd_frontier
from mrtcurate.schemas.config import QDSettings
from mrtcurate.selectors import Pool
from mrtcurate.vectors.embedders import HashingEmbedder


def fixed_pools(count=20):
    """Pools of 5 topics x 3 wordings x 2 variants; topic 0 is rewarded higher, as a biased judge would."""
    rng = np.random.default_rng(0)
    texts = [f"answer about topic {t} variant {v} words {w}" for t in "abcde" for v in "xyz" for w in ("alpha", "beta")]
    vectors = HashingEmbedder().encode(texts)
    pools = []
    for p in range(count):
        rewards = rng.uniform(size=len(texts)) + np.array([0.5 if "topic a" in t else 0.0 for t in texts])
        pools.append(
            Pool(f"p{p}", tuple(f"r{i}" for i in range(len(texts))), rng.integers(1, 4, len(texts)), rewards, vectors)
        )
    return pools


def test_quality_rises_and_coverage_falls_with_lambda_and_the_recommendation_follows_its_rule():
    frontier = qd_frontier(fixed_pools(), 4, QDSettings(**{"lambda": 0.3}), 0)
    points = frontier["points"]
    assert [p["lambda"] for p in points] == list(LAMBDA_GRID)
    quality = [p["quality"] for p in points]
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(quality))
    assert points[0]["coverage"] > points[-1]["coverage"] and points[0]["modes"] > points[-1]["modes"]
    assert points[-1]["quality"] == frontier["topk"]["quality"]  # lambda 1 is quality only: topk's choice
    assert frontier["chosen_lambda"] == 0.3
    random = frontier["random"]
    eligible = [p for p in points if p["coverage"] >= random["coverage"] and p["modes"] >= random["modes"]]
    assert frontier["recommended_lambda"] == max(eligible, key=lambda p: p["quality"])["lambda"]
    print(f"recommended lambda {frontier['recommended_lambda']}, chosen {frontier['chosen_lambda']}")


def test_modes_are_clusters_that_do_not_chain_and_pools_without_a_choice_are_left_out():
    pool = fixed_pools(1)[0]
    modes = answer_modes(pool)
    assert 1 < len(set(modes)) <= len(pool)
    unrewarded = Pool("q", pool.response_ids, pool.multiplicities, np.full(len(pool), np.nan), pool.embeddings)
    assert qd_frontier([unrewarded], 4, QDSettings(), 0) is None
    assert qd_frontier([pool], len(pool), QDSettings(), 0) is None
