import numpy as np

from mrtcurate.selectors import Pool
from mrtcurate.selectors.random_k import select_random
from mrtcurate.selectors.topk import select_topk


def test_topk_takes_highest_rewards_missing_last():
    pool = Pool("p", ("a", "b", "c", "d", "e"), np.ones(5, dtype=np.int64), np.array([0.1, np.nan, 0.9, 0.5, 0.7]))
    selection = select_topk(pool, 3, seed=0)
    assert selection.indices.tolist() == [2, 4, 3]
    assert selection.gains.tolist() == [0.9, 0.7, 0.5]


def test_ties_break_by_seeded_hash_not_position():
    ids = tuple(f"r{i}" for i in range(8))
    pool = Pool("p", ids, np.ones(8, dtype=np.int64), np.ones(8))
    reversed_pool = Pool("p", ids[::-1], np.ones(8, dtype=np.int64), np.ones(8))
    pick = lambda p, seed: [p.response_ids[i] for i in select_topk(p, 3, seed).indices]
    assert pick(pool, 1) == pick(reversed_pool, 1)
    assert len({tuple(pick(pool, seed)) for seed in range(10)}) > 1


def test_no_rewards_falls_back_to_random_k_of_n():
    pool = Pool("p", ("a", "b", "c"), np.array([1, 3, 1]), np.array([np.nan, np.nan, np.nan]))
    for seed in range(5):
        fallback, random = select_topk(pool, 2, seed), select_random(pool, 2, seed)
        assert fallback.indices.tolist() == random.indices.tolist() and fallback.draws.tolist() == random.draws.tolist()
