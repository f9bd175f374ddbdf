import numpy as np
import pytest

from mrtcurate.selectors import MissingRewardsError, Pool
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
    pick = lambda p, seed: [p.response_ids[i] for i in select_topk(p, 3, seed).indices]  # noqa: E731
    assert pick(pool, 1) == pick(reversed_pool, 1)
    assert len({tuple(pick(pool, seed)) for seed in range(10)}) > 1


def test_no_rewards_is_an_error():
    pool = Pool("p", ("a", "b"), np.ones(2, dtype=np.int64), np.array([np.nan, np.nan]))
    with pytest.raises(MissingRewardsError):
        select_topk(pool, 1, seed=0)
