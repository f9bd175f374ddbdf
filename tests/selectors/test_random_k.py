import numpy as np
from scipy.stats import chisquare

from mrtcurate.selectors import Pool, build_selector, select
from mrtcurate.selectors.random_k import copy_keys, select_random


def make_pool(n, multiplicities=None, prompt_id="p", rewards=None):
    return Pool(
        prompt_id=prompt_id,
        response_ids=tuple(f"r{i}" for i in range(n)),
        multiplicities=np.array(multiplicities or [1] * n, dtype=np.int64),
        rewards=np.array(rewards if rewards is not None else [np.nan] * n, dtype=np.float64),
    )


def chosen_ids(pool, selection):
    return [pool.response_ids[i] for i in selection.indices]


def test_deterministic_and_independent_of_pool_order():
    pool = make_pool(20, multiplicities=[1 + i % 3 for i in range(20)])
    order = np.random.default_rng(0).permutation(20)
    shuffled = Pool("p", tuple(pool.response_ids[i] for i in order), pool.multiplicities[order], pool.rewards[order])
    assert chosen_ids(pool, select_random(pool, 5, seed=3)) == chosen_ids(shuffled, select_random(shuffled, 5, seed=3))
    assert chosen_ids(pool, select_random(pool, 5, seed=3)) != chosen_ids(pool, select_random(pool, 5, seed=4))


def test_inclusion_is_uniform_over_seeds():
    n, k, trials = 10, 3, 4000
    counts = np.zeros(n)
    pool = make_pool(n)
    for seed in range(trials):
        counts[select_random(pool, k, seed).indices] += 1
    assert counts.sum() == k * trials
    assert chisquare(counts).pvalue > 0.001


def test_draws_are_proportional_to_multiplicity():
    multiplicities = [1, 2, 3, 4]
    pool = make_pool(4, multiplicities)
    draws = np.zeros(4)
    for seed in range(3000):
        selection = select_random(pool, 2, seed)
        draws[selection.indices] += selection.draws
    expected = np.array(multiplicities) / sum(multiplicities) * draws.sum()
    assert chisquare(draws, expected).pvalue > 0.001


def test_bottom_k_merges_exactly():
    pool = make_pool(50, multiplicities=[1 + i % 4 for i in range(50)])
    halves = [
        Pool("p", pool.response_ids[a:b], pool.multiplicities[a:b], pool.rewards[a:b]) for a, b in ((0, 25), (25, 50))
    ]
    partial = sorted((key, halves[h].response_ids[index]) for h in (0, 1) for key, index in copy_keys(7, halves[h], 6))[
        :6
    ]
    whole = [(key, pool.response_ids[index]) for key, index in copy_keys(7, pool, 6)]
    assert partial == whole


def test_small_pools_keep_everything_weighted_by_multiplicity():
    pool = make_pool(3, multiplicities=[5, 1, 2])
    selection = select(build_selector("random"), pool, 4, seed=0)
    assert sorted(selection.indices.tolist()) == [0, 1, 2]
    assert dict(zip(selection.indices.tolist(), selection.draws.tolist())) == {0: 5, 1: 1, 2: 2}
    assert selection.gains is None
