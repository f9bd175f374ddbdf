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
    with pytest.raises(
        UserError,
        match=r"--embedder minilm-int4: not a built-in embedder \(minilm, minilm-int8, static, hashing\), not a model directory",
    ):
        prepare_embedder("minilm-int4")
    with pytest.raises(UserError, match="no sentence-transformers model there"):
        prepare_embedder(str(tmp_path))
    with pytest.raises(UserError, match="not in the local Hugging Face cache"):
        prepare_embedder("someone/not-downloaded-model")
    data = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "response": "r"}])
    code = main(["run", "--input", str(data), "--output", str(tmp_path / "out"), "--embedder", "minilm-int4"])
    error = capsys.readouterr().err
    assert code == 2 and "Traceback" not in error and "--embedder minilm-int4" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minilm", "minilm-int8", "static", "hashing"])
def test_every_built_in_embedder_gives_unit_rows_that_rank_a_paraphrase_first_and_marks_cut_texts(name):
    from mrtcurate.vectors.embedders import load_embedder

    texts = [
        "How do I boil an egg?",
        "What is the way to boil an egg?",
        "The stock market fell sharply today.",
        "egg " * 300,
    ]
    embedder = load_embedder(name, max_tokens=32)
    vectors, truncated = embedder.embed(texts, batch_size=2)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert truncated.tolist() == ([False] * 4 if name == "hashing" else [False, False, False, True])
    np.testing.assert_array_equal(embedder.encode(texts, batch_size=2), vectors)


def test_threads_sharing_one_embedder_each_get_their_own_texts_cut_marks():
    """One loaded embedder serves every thread of a worker (a Dataflow worker runs bundles in parallel threads):
    which texts were cut comes back with each call's vectors, never from the embedder's state, which another
    thread's call would have overwritten."""
    from concurrent.futures import ThreadPoolExecutor

    from mrtcurate.vectors.embedders import load_embedder

    embedder = load_embedder("static", max_tokens=8)
    long_texts, short_texts = ["word " * 50] * 40, ["a short one"] * 3

    def cut_marks(texts: list[str]) -> list[bool]:
        return sorted(set(embedder.embed(texts, batch_size=8).truncated.tolist()))

    with ThreadPoolExecutor(max_workers=4) as threads:
        found = list(threads.map(cut_marks, [long_texts, short_texts] * 100))
    assert found == [[True], [False]] * 100


def test_the_identity_separates_embedders_windows_and_builds(tmp_path, monkeypatch):
    from mrtcurate.vectors.embedders import BUILT_IN, artifact, describe_embedder, embedder_key

    keys = {embedder_key(name, window) for name in BUILT_IN for window in (None, 128)}
    assert len(keys) == len(BUILT_IN) * 2 - 1  # hashing has no window
    assert describe_embedder("minilm-int8")["precision"] == "int8" and describe_embedder("minilm")["precision"] in (
        "fp32",
        "fp16",
    )
    monkeypatch.setenv("MRT_CACHE_DIR", str(tmp_path))
    assert (
        artifact("minilm") is None
        and not artifact("static").is_built()
        and str(artifact("static").path).startswith(str(tmp_path))
    )


@pytest.mark.slow
def test_minilm_int8_gives_a_text_the_same_vector_whatever_its_neighbours():
    """Dynamic quantisation scales activations per call: batched texts would depend on each other."""
    from mrtcurate.vectors.embedders import load_embedder

    texts = [
        "A short one.",
        "A much longer answer that goes on about several things " * 8,
        "Numbers: 1, 22, 333, 4444.",
        "ok",
    ]
    embedder = load_embedder("minilm-int8")
    together = embedder.encode(texts, batch_size=64)
    alone = np.concatenate([embedder.encode([text], batch_size=1) for text in texts])
    reordered = embedder.encode(texts[::-1], batch_size=2)[::-1]
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together, reordered)
