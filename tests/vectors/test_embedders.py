import numpy as np
import pytest

from mrtcurate.vectors.embedders import HASHING_DIM, HashingEmbedder


def test_hashing_embedder_is_unit_norm_deterministic_and_similarity_aware():
    texts = ["The cat sat on the mat.", "the cat sat on the mat", "Quantum chromodynamics lecture notes", ""]
    vectors = HashingEmbedder().encode(texts, batch_size=2)
    assert vectors.shape == (4, HASHING_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-5)
    assert not vectors[3].any()
    assert vectors[0] @ vectors[1] > 0.99 and abs(vectors[0] @ vectors[2]) < 0.3
    np.testing.assert_array_equal(vectors, HashingEmbedder().encode(texts))


def test_an_embedder_that_cannot_load_is_refused_before_the_job(tmp_path, capsys):
    from mrtcurate.cli import main
    from mrtcurate.errors import UserError
    from mrtcurate.vectors.embedders import minilm_path, prepare_embedder
    from tests.conftest import write_jsonl

    prepare_embedder("minilm")
    prepare_embedder("hashing")
    prepare_embedder(minilm_path())
    with pytest.raises(UserError, match=r"--embedder minilm-int8: not a built-in embedder \(minilm, hashing\), not a model directory"):
        prepare_embedder("minilm-int8")
    with pytest.raises(UserError, match="no sentence-transformers model there"):
        prepare_embedder(str(tmp_path))
    with pytest.raises(UserError, match="not in the local Hugging Face cache"):
        prepare_embedder("someone/not-downloaded-model")
    data = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "response": "r"}])
    code = main(["run", "--input", str(data), "--output", str(tmp_path / "out"), "--embedder", "minilm-int8"])
    error = capsys.readouterr().err
    assert code == 2 and "Traceback" not in error and "--embedder minilm-int8" in error
    assert not (tmp_path / "out").exists()
