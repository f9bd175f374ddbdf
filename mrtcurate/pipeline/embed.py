"""Embed each unique response text once, with Beam's RunInference: the model loads once per worker,
inputs arrive in batches, and the vectors come back unit-normalised."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from mrtcurate.embedders import Embedder, load_embedder
from mrtcurate.pipeline.write import WriteParquetShards

log = logging.getLogger(__name__)

# Texts handed to one encode() call. sentence-transformers sorts each call's texts by length before it
# forms its own batches of --batch-size, so a larger chunk wastes less on padding.
_CHUNK_TEXTS = 1024


class SentenceEmbeddingHandler(ModelHandler[str, PredictionResult, Embedder]):
    def __init__(self, embedder_spec: str, batch_size: int):
        super().__init__(min_batch_size=_CHUNK_TEXTS, max_batch_size=_CHUNK_TEXTS)
        self.embedder_spec = embedder_spec
        self.batch_size = batch_size
        self.embedded_here = 0  # per worker: progress lines, not accounting (the manifest does that)

    def load_model(self) -> Embedder:
        return load_embedder(self.embedder_spec)

    def run_inference(self, batch: Sequence[str], model: Embedder, inference_args: dict[str, Any] | None = None):
        started = time.perf_counter()
        vectors = model.encode(batch, batch_size=self.batch_size)
        self.embedded_here += len(batch)
        rate = len(batch) / max(time.perf_counter() - started, 1e-9)
        log.info("embedded %s responses on this worker (%.0f/s)", f"{self.embedded_here:,}", rate)
        return [PredictionResult(text, vector) for text, vector in zip(batch, vectors)]

    def get_metrics_namespace(self) -> str:
        return "mrtcurate_embed"


class _OneTextEach(beam.DoFn):
    def __init__(self):
        self.embedded = Metrics.counter("mrtcurate", "embedded")

    def process(self, group):
        _, sharing = group
        sharing = tuple(sharing)
        self.embedded.inc()
        yield sharing, sharing[0].completion


class EmbedKeyed(beam.PTransform):
    """(key, text) in, (key, embedding) out."""

    def __init__(self, embedder_spec: str, batch_size: int):
        super().__init__()
        self.handler = KeyedModelHandler(SentenceEmbeddingHandler(embedder_spec, batch_size))

    def expand(self, keyed_texts):
        return (
            keyed_texts
            | "RunInference" >> RunInference(self.handler)
            | "Vectors" >> beam.MapTuple(lambda key, result: (key, result.inference))
        )


def _fan_out(keyed_vector):
    candidates, vector = keyed_vector
    for candidate in candidates:
        yield candidate, vector


@dataclass(frozen=True)
class EmbeddingCache:
    """Content-addressed vectors from earlier runs (`files`: Parquet with response_id and vector for
    one embedder), and where this run writes the vectors it computes (`new_dir`)."""

    files: tuple[str, ...]
    new_dir: str


CACHE_SCHEMA = pa.schema([pa.field("response_id", pa.string(), nullable=False), pa.field("vector", pa.list_(pa.float32()), nullable=False)])


def _read_cache_file(path: str):
    with FileSystems.open(path) as source:
        table = pq.read_table(source)
    for response_id, vector in zip(table.column("response_id").to_pylist(), table.column("vector").to_numpy(zero_copy_only=False)):
        yield response_id, np.asarray(vector, dtype=np.float32)


class _SplitByCache(beam.DoFn):
    """After the join: texts with a cached vector skip the model; the rest go on to be embedded."""

    NEEDED = "needed"

    def __init__(self):
        self.embedded = Metrics.counter("mrtcurate", "embedded")
        self.cache_hits = Metrics.counter("mrtcurate", "cache_hits")

    def process(self, joined):
        _, groups = joined
        sharing = tuple(candidate for group in groups["candidates"] for candidate in group)
        if not sharing:
            return
        cached = list(groups["cached"])
        if cached:
            self.cache_hits.inc()
            yield sharing, cached[0]
        else:
            self.embedded.inc()
            yield beam.pvalue.TaggedOutput(self.NEEDED, (sharing, sharing[0].completion))


class EmbedResponses(beam.PTransform):
    """Candidates in, (candidate, embedding) out. Candidates that share a response text share one encode;
    with a cache, texts embedded by an earlier run are joined in (CoGroupByKey) instead of re-encoded,
    and the new vectors are written to the cache's `new_dir`."""

    def __init__(self, embedder_spec: str, batch_size: int, cache: EmbeddingCache | None = None):
        super().__init__()
        self.embedder_spec = embedder_spec
        self.batch_size = batch_size
        self.cache = cache

    def expand(self, candidates):
        grouped = (
            candidates
            | "KeyByResponse" >> beam.Map(lambda c: (c.response_id, c))
            | "GroupSameText" >> beam.GroupByKey()
        )
        if self.cache is None:
            return (
                grouped
                | "OneTextEach" >> beam.ParDo(_OneTextEach())
                | "Encode" >> EmbedKeyed(self.embedder_spec, self.batch_size)
                | "FanOut" >> beam.FlatMap(_fan_out)
            )
        cached = (
            candidates.pipeline
            | "CacheFiles" >> beam.Create(self.cache.files)
            | "ReadCache" >> beam.FlatMap(_read_cache_file)
        )
        split = (
            {"candidates": grouped | "Texts" >> beam.MapTuple(lambda rid, group: (rid, list(group))), "cached": cached}
            | "JoinCache" >> beam.CoGroupByKey()
            | "SplitByCache" >> beam.ParDo(_SplitByCache()).with_outputs(_SplitByCache.NEEDED, main="hits")
        )
        encoded = split[_SplitByCache.NEEDED] | "Encode" >> EmbedKeyed(self.embedder_spec, self.batch_size)
        _ = (
            encoded
            | "CacheRows" >> beam.MapTuple(lambda sharing, vector: {"response_id": sharing[0].response_id, "vector": vector.tolist()})
            | "WriteCache"
            >> WriteParquetShards(self.cache.new_dir, "vectors", "part", CACHE_SCHEMA, shard_key=_cache_key, sort_key=_cache_key, shards=None)
        )
        return (split.hits, encoded) | "AllVectors" >> beam.Flatten() | "FanOut" >> beam.FlatMap(_fan_out)


def _cache_key(row: dict) -> str:
    return row["response_id"]
