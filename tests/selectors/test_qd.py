import itertools

import numpy as np
import pytest

from mrtcurate.selectors import Pool, QDSettings, build_selector, select
from mrtcurate.selectors.qd import (
    NAIVE_UP_TO,
    DenseCoverage,
    FacilityObjective,
    SparseCoverage,
    lazy_greedy,
    naive_greedy,
    pool_quality,
    select_qd,
    stochastic_greedy,
    tie_keys,
)
from mrtcurate.vectors.similarity import dense_similarity, knn_similarity


def random_pool(rng, n, dim=8, with_rewards=True, prompt_id="p"):
    embeddings = rng.normal(size=(n, dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return Pool(
        prompt_id=prompt_id,
        response_ids=tuple(f"r{i}" for i in range(n)),
        multiplicities=rng.integers(1, 4, size=n),
        rewards=rng.uniform(size=n) if with_rewards else np.full(n, np.nan),
        embeddings=embeddings,
    )


def objective_for(pool, k, lam, kind="cosine", sparse_neighbours=None):
    if sparse_neighbours:
        coverage = SparseCoverage(knn_similarity(pool.embeddings, kind, sparse_neighbours))
    else:
        coverage = DenseCoverage(dense_similarity(pool.embeddings, kind))
    return FacilityObjective(coverage, pool_quality(pool.rewards, "rank"), pool.multiplicities.astype(float), k, lam)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9])
def test_greedy_reaches_the_submodular_bound_against_brute_force(lam):
    rng = np.random.default_rng(int(lam * 10))
    worst = 1.0
    for _ in range(40):
        pool = random_pool(rng, n=int(rng.integers(6, 11)))
        k = int(rng.integers(2, 5))
        chosen, _ = lazy_greedy(objective_for(pool, k, lam), tie_keys(pool, 0), k)
        reference = objective_for(pool, k, lam)
        optimum = max(reference.value(subset) for subset in itertools.combinations(range(len(pool)), k))
        worst = min(worst, reference.value(chosen) / optimum)
    assert worst >= 1 - 1 / np.e
    assert worst > 0.9  # in practice greedy is far above the bound on these instances


@pytest.mark.parametrize("sparse", [None, 6])
def test_lazy_and_naive_return_identical_selections(sparse):
    rng = np.random.default_rng(5)
    for trial in range(60):
        pool = random_pool(rng, n=int(rng.integers(10, 60)))
        k = int(rng.integers(1, 9))
        ties = tie_keys(pool, trial)
        lazy = lazy_greedy(objective_for(pool, k, 0.3, sparse_neighbours=sparse), ties, k)
        naive = naive_greedy(objective_for(pool, k, 0.3, sparse_neighbours=sparse), ties, k)
        assert lazy[0] == naive[0]
        np.testing.assert_array_equal(lazy[1], naive[1])
        assert all(a >= b for a, b in zip(lazy[1], lazy[1][1:]))  # diminishing returns


@pytest.mark.parametrize("size", [12, NAIVE_UP_TO, NAIVE_UP_TO + 1, NAIVE_UP_TO + 60])
def test_the_lazy_setting_gives_naive_greedys_selection_on_either_side_of_its_switch(size):
    """`lazy` runs naive greedy up to NAIVE_UP_TO members, lazy greedy above: the same selection either way."""
    pool = random_pool(np.random.default_rng(size), n=size)
    lazy = select_qd(pool, 8, 3, QDSettings(optimizer="lazy"))
    naive = select_qd(pool, 8, 3, QDSettings(optimizer="naive"))
    np.testing.assert_array_equal(lazy.indices, naive.indices)
    np.testing.assert_array_equal(lazy.gains, naive.gains)


def test_sparse_with_all_neighbours_equals_dense():
    rng = np.random.default_rng(9)
    for _ in range(10):
        pool = random_pool(rng, n=40)
        dense = select_qd(pool, 6, seed=1, settings=QDSettings(sparse_above=10_000))
        sparse = select_qd(pool, 6, seed=1, settings=QDSettings(sparse_above=2, neighbours=40))
        assert dense.indices.tolist() == sparse.indices.tolist()
        np.testing.assert_allclose(dense.gains, sparse.gains, rtol=1e-6)  # the two sum float32 cosines in another order


def test_selection_is_independent_of_pool_order():
    rng = np.random.default_rng(2)
    pool = random_pool(rng, n=30)
    order = rng.permutation(30)
    shuffled = Pool(
        "p",
        tuple(pool.response_ids[i] for i in order),
        pool.multiplicities[order],
        pool.rewards[order],
        pool.embeddings[order],
    )
    for settings in (QDSettings(), QDSettings(optimizer="stochastic"), QDSettings(diversity="logdet")):
        first = [pool.response_ids[i] for i in select_qd(pool, 5, 3, settings).indices]
        second = [shuffled.response_ids[i] for i in select_qd(shuffled, 5, 3, settings).indices]
        assert first == second


def test_lambda_one_is_quality_only_and_no_rewards_is_diversity_only():
    rng = np.random.default_rng(4)
    pool = random_pool(rng, n=20)
    quality_only = select_qd(pool, 4, 0, QDSettings(lam=1.0))
    assert set(quality_only.indices) == set(np.argsort(-pool.rewards)[:4])
    unrewarded = random_pool(rng, n=20, with_rewards=False)
    assert (
        select_qd(unrewarded, 4, 0, QDSettings(lam=0.9)).indices.tolist()
        == select_qd(unrewarded, 4, 0, QDSettings(lam=0.0)).indices.tolist()
    )


def test_diversity_prefers_covering_distinct_modes():
    # Three tight clusters of very different size: facility location takes one from each before a second from any.
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16)
    embeddings = np.concatenate([c + 0.05 * rng.normal(size=(size, 16)) for c, size in zip(centres, (20, 5, 2))])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    pool = Pool(
        "p",
        tuple(f"r{i}" for i in range(27)),
        np.ones(27, dtype=np.int64),
        np.full(27, np.nan),
        embeddings.astype(np.float32),
    )
    cluster = np.repeat([0, 1, 2], (20, 5, 2))
    for diversity in ("facility", "logdet"):
        chosen = select_qd(pool, 3, 0, QDSettings(diversity=diversity)).indices
        assert sorted(cluster[chosen]) == [0, 1, 2]


def test_stochastic_greedy_stays_close_to_greedy():
    rng = np.random.default_rng(8)
    ratios = []
    for trial in range(20):
        pool = random_pool(rng, n=200, dim=16)
        ties = tie_keys(pool, trial)
        greedy, _ = lazy_greedy(objective_for(pool, 10, 0.5), ties, 10)
        sampled, _ = stochastic_greedy(
            objective_for(pool, 10, 0.5), ties, 10, sample=int(200 / 10 * np.log(10)), seed=trial
        )
        reference = objective_for(pool, 10, 0.5)
        ratios.append(reference.value(sampled) / reference.value(greedy))
    assert np.mean(ratios) > 0.95 and min(ratios) > 1 - 1 / np.e - 0.1


def test_small_pools_keep_all_with_null_gains():
    pool = random_pool(np.random.default_rng(1), n=3)
    selection = select(build_selector("qd"), pool, 4, seed=0)
    assert sorted(selection.indices.tolist()) == [0, 1, 2] and selection.gains is None


def test_rank_quality():
    np.testing.assert_allclose(pool_quality(np.array([3.0, 1.0, np.nan, 2.0]), "rank"), [1.0, 0.0, 0.0, 0.5])
    np.testing.assert_allclose(pool_quality(np.array([5.0, 5.0, 7.0]), "rank"), [0.25, 0.25, 1.0])


def test_batched_greedy_equals_per_pool_naive_greedy():
    from mrtcurate.selectors.qd_batch import facility_greedy_batch

    rng = np.random.default_rng(12)
    pools = [random_pool(rng, n=24, dim=12) for _ in range(70)]
    similarity = np.stack([dense_similarity(pool.embeddings, "cosine") for pool in pools])
    quality = np.stack([pool_quality(pool.rewards, "rank") for pool in pools])
    weights = np.stack([pool.multiplicities.astype(float) for pool in pools])
    ties = np.stack([tie_keys(pool, 0) for pool in pools])
    chosen, gains = facility_greedy_batch(similarity, quality, weights, ties, 5, 0.4)
    for b, pool in enumerate(pools):
        expected, expected_gains = naive_greedy(objective_for(pool, 5, 0.4), ties[b], 5)
        assert chosen[b].tolist() == expected
        np.testing.assert_array_equal(gains[b], expected_gains)


@pytest.mark.slow
def test_facility_location_matches_apricot(monkeypatch):
    # apricot's kernels are numba-compiled on first use: 35 s of the suite. Run as Python they compute the same on
    # pools of 60, in a second. numba reads the switch where apricot's module defines them, so before its import.
    monkeypatch.setattr(pytest.importorskip("numba").config, "DISABLE_JIT", True)
    apricot = pytest.importorskip("apricot")
    rng = np.random.default_rng(21)
    for _ in range(10):
        pool = random_pool(rng, n=60, dim=32, with_rewards=False)
        pool = Pool(pool.prompt_id, pool.response_ids, np.ones(60, dtype=np.int64), pool.rewards, pool.embeddings)
        ours = select_qd(pool, 10, seed=0, settings=QDSettings(lam=0.0, similarity="shifted"))
        similarity = dense_similarity(pool.embeddings, "shifted")
        oracle = apricot.FacilityLocationSelection(10, metric="precomputed", optimizer="lazy", verbose=False).fit(
            similarity
        )
        assert ours.indices.tolist() == list(oracle.ranking)
        np.testing.assert_allclose(ours.gains * 60, oracle.gains, rtol=1e-9)
