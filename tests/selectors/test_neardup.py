import numpy as np

from mrtcurate.selectors import Pool, collapse_near_duplicates
from mrtcurate.vectors.components import near_duplicate_components


def unit(vectors):
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_components_are_transitive_and_threshold_inclusive():
    # a~b and b~c above 0.95 though a and c are further apart: one component by connectivity.
    angle = np.arccos(0.96)
    vectors = unit([[1, 0, 0], [np.cos(angle), np.sin(angle), 0], [np.cos(2 * angle), np.sin(2 * angle), 0], [0, 0, 1]])
    labels = near_duplicate_components(vectors, 0.95)
    assert labels[0] == labels[1] == labels[2] != labels[3]
    assert len(set(near_duplicate_components(vectors, 0.99))) == 4
    assert len(set(near_duplicate_components(unit([[1, 0], [1, 0]]), 1.0))) == 1


def test_collapse_keeps_best_member_and_absorbs_multiplicity():
    embeddings = unit([[1, 0.01, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    pool = Pool(
        prompt_id="p",
        response_ids=("a", "b", "c", "d"),
        multiplicities=np.array([2, 3, 1, 1]),
        rewards=np.array([0.2, 0.9, np.nan, 0.5]),
        embeddings=embeddings,
    )
    collapsed, merged = collapse_near_duplicates(pool, 0.95)
    assert merged == 1
    assert collapsed.response_ids == ("b", "c", "d")
    assert collapsed.multiplicities.tolist() == [5, 1, 1]
    assert collapsed.rewards[0] == 0.9
    assert collapsed.multiplicities.sum() == pool.multiplicities.sum()
