"""Near-duplicate components: the dense path for small sets and the FAISS path agree on every partition."""

import numpy as np
import pytest

from mrtcurate.vectors import components


def partition(labels: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(labels == label).tolist()) for label in np.unique(labels)}


@pytest.mark.parametrize("seed", range(5))
def test_dense_and_faiss_paths_give_the_same_components(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        count = int(rng.integers(2, 80))
        centres = rng.standard_normal((max(1, count // 3), 32))
        vectors = centres[rng.integers(0, len(centres), count)] + rng.normal(
            0, rng.choice([0.01, 0.2, 0.5]), (count, 32)
        )
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        dense = components.near_duplicate_components(vectors, 0.95)
        with monkeypatch.context() as patch:
            patch.setattr(components, "_DENSE_ROWS", 0)
            indexed = components.near_duplicate_components(vectors, 0.95)
        assert partition(dense) == partition(indexed)


def test_copies_link_and_strangers_do_not():
    vectors = np.eye(4, dtype=np.float32)[[0, 0, 1, 2, 2, 3]]
    assert partition(components.near_duplicate_components(vectors, 0.95)) == {
        frozenset({0, 1}),
        frozenset({2}),
        frozenset({3, 4}),
        frozenset({5}),
    }
