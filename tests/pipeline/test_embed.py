"""The embedding stage on the real runner: each text content encoded once, cached vectors joined in
instead of re-encoded, and only new vectors written to the cache."""

import json
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mrtcurate.ids import identity_key, stable_id
from mrtcurate.pipeline.cache import CACHE_SCHEMA, ContentCache
from mrtcurate.pipeline.embed import EmbedTexts
from mrtcurate.schemas.config import EmbeddingSettings
from mrtcurate.vectors.embedders import HashingEmbedder, embedder_key
from tests.helpers import collect_to, collected, local_pipeline

HASHING = EmbeddingSettings(embedder="hashing", batch_size=4)
TEXTS = {"a": "the cat sat", "b": "the  cat sat ", "c": "a dog ran", "d": "birds fly south", "e": "a dog ran"}


def embed(tmp_path, cache=None):
    with local_pipeline() as pipeline:
        vectors = pipeline | beam.Create(sorted(TEXTS.items())) | EmbedTexts(HASHING, cache)
        collect_to(
            vectors | beam.MapTuple(lambda key, vector: [key, np.asarray(vector).tolist()]),
            tmp_path / "vectors",
            "Vectors",
        )
        result = pipeline.run()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    return {key: np.array(vector) for key, vector in collected(tmp_path / "vectors")}, counters


def test_same_content_is_encoded_once_and_fanned_out_to_every_key(tmp_path):
    vectors, counters = embed(tmp_path)
    assert sorted(vectors) == sorted(TEXTS)
    assert (
        counters["embedded_prompts"] == 3
    )  # "the cat sat" (a, b: whitespace differs), "a dog ran" (c, e), "birds fly south"
    np.testing.assert_allclose(vectors["a"], vectors["b"])
    np.testing.assert_allclose(vectors["d"], HashingEmbedder().encode([TEXTS["d"]])[0], rtol=1e-6)


def test_cached_vectors_are_joined_in_and_only_new_ones_written(tmp_path):
    marker = np.zeros(HashingEmbedder().encode(["x"]).shape[1], dtype=np.float32)
    marker[0] = 1.0  # no hashing vector looks like this: its presence proves the cache was used
    cache = ContentCache(str(tmp_path / "cache"))
    folder = Path(cache.embeddings(embedder_key(HASHING.embedder, HASHING.max_tokens)))
    folder.mkdir(parents=True)
    cache_file = folder / "earlier.parquet"
    pq.write_table(
        pa.table(
            {"response_id": [stable_id(identity_key(TEXTS["c"]))], "vector": [marker.tolist()]}, schema=CACHE_SCHEMA
        ),
        cache_file,
    )
    vectors, counters = embed(tmp_path, cache)
    np.testing.assert_array_equal(vectors["c"], marker)
    np.testing.assert_array_equal(vectors["e"], marker)
    assert counters["embedded_prompts"] == 2 and counters["cache_hits"] == 1
    new_files = sorted(path for path in folder.glob("*.parquet") if path != cache_file)
    written = pq.read_table(new_files).column("response_id").to_pylist()
    assert sorted(written) == sorted({stable_id(identity_key(TEXTS[key])) for key in ("a", "d")})
    np.testing.assert_allclose(
        pq.read_table(new_files).column("vector").to_pylist()[written.index(stable_id(identity_key(TEXTS["d"])))],
        HashingEmbedder().encode([TEXTS["d"]])[0],
        rtol=1e-6,
    )
    # A second run finds every text in the cache and encodes none.
    again, counters = embed(tmp_path / "again", cache)
    assert counters.get("embedded", 0) == 0 and counters["cache_hits"] == 3
    np.testing.assert_array_equal(again["d"], vectors["d"])


def test_embedding_with_a_torch_free_embedder_never_imports_torch(tmp_path):
    """Beam's RunInference would import torch for its GPU ModelManager (a second and ~200 MB in every process);
    mrtcurate.pipeline declines that optional import, so a hashing job runs in a fresh interpreter without torch."""
    script = f"""
import json, sys
from pathlib import Path
import apache_beam as beam
import numpy as np
from mrtcurate.pipeline.embed import EmbedTexts
from mrtcurate.schemas.config import EmbeddingSettings
from tests.helpers import collect_to, collected, local_pipeline
with local_pipeline() as pipeline:
    texts = pipeline | beam.Create([("a", "the cat sat"), ("b", "a dog ran")])
    vectors = texts | EmbedTexts(EmbeddingSettings(embedder="hashing"))
    collect_to(vectors | beam.MapTuple(lambda key, vector: [key, np.asarray(vector).tolist()]), Path({str(tmp_path)!r}), "V")
    pipeline.run()
print(json.dumps({{"vectors": dict(collected(Path({str(tmp_path)!r}))), "torch": "torch" in sys.modules}}))
"""
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    found = json.loads(shown.stdout.strip().splitlines()[-1])
    assert found["torch"] is False
    expected = HashingEmbedder().encode([TEXTS["c"], TEXTS["a"]])
    np.testing.assert_allclose([found["vectors"]["b"], found["vectors"]["a"]], expected, rtol=1e-6)


def test_the_prompts_and_the_response_buckets_share_one_loaded_model_per_process(tmp_path, monkeypatch):
    """The planner embeds prompts with RunInference and Select embeds its buckets' responses: one worker process
    loads the model once for both (an earlier test's may still be held: what counts is that both use one)."""
    from tests.helpers import curate

    models = set()  # which loaded model each encode ran on
    real_encode = HashingEmbedder.encode
    monkeypatch.setattr(
        HashingEmbedder, "encode", lambda self, *a, **k: models.add(id(self)) or real_encode(self, *a, **k)
    )
    data = tmp_path / "in.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": f"question {index % 3}", "response": f"answer {index} to it"}) + "\n"
            for index in range(12)
        )
    )
    outcome = curate([data], tmp_path / "out", k=2, selector="qd", embedder="hashing", workers=1)
    assert outcome.manifest["counts"]["selected"] == 6
    assert len(models) == 1
