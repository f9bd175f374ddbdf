import numpy as np

from mrtcurate.vectors.embedders import HASHING_DIM, HashingEmbedder


def test_hashing_embedder_is_unit_norm_deterministic_and_similarity_aware():
    texts = ["The cat sat on the mat.", "the cat sat on the mat", "Quantum chromodynamics lecture notes", ""]
    vectors = HashingEmbedder().encode(texts, batch_size=2)
    assert vectors.shape == (4, HASHING_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-5)
    assert not vectors[3].any()
    assert vectors[0] @ vectors[1] > 0.99 and abs(vectors[0] @ vectors[2]) < 0.3
    np.testing.assert_array_equal(vectors, HashingEmbedder().encode(texts))
