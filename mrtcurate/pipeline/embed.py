"""Embed texts keyed by any id (prompts), each distinct text once, with Beam's RunInference: the model loads once
per worker, inputs arrive in batches, and the vectors come back unit-normalised. Responses, many more, are
embedded in content buckets (pipeline/embed_responses.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from mrtcurate.ids import identity_key, stable_id
from mrtcurate.pipeline.cache import ContentCache, KeepInCache, cached_files, read_cached, vectors_table
from mrtcurate.pipeline.coders import Vector
from mrtcurate.pipeline.embed_responses import CHUNK_TEXTS, LoadedEmbedder, shared_embedder
from mrtcurate.schemas.config import EmbeddingSettings
from mrtcurate.vectors.embedders import embedder_key

log = logging.getLogger(__name__)


class SentenceEmbeddingHandler(ModelHandler[str, PredictionResult, LoadedEmbedder]):
    """Each result's inference is (vector, whether the text was longer than the token window). The model is the
    worker process's one (shared_embedder), which the response buckets use too."""

    def __init__(self, embedding: EmbeddingSettings):
        super().__init__(min_batch_size=CHUNK_TEXTS, max_batch_size=CHUNK_TEXTS)
        self.embedding = embedding
        self.embedded_here = 0  # per worker: log lines, not accounting (the manifest does that)

    def load_model(self) -> LoadedEmbedder:
        return shared_embedder(self.embedding)

    def run_inference(self, batch: Sequence[str], loaded: LoadedEmbedder, inference_args: dict[str, Any] | None = None):
        model = loaded.model
        started = time.perf_counter()
        vectors, truncated = model.embed(batch, batch_size=self.embedding.batch_size)
        self.embedded_here += len(batch)
        rate = len(batch) / max(time.perf_counter() - started, 1e-9)
        log.debug("embedded %s texts on this worker (%.0f/s)", f"{self.embedded_here:,}", rate)
        return [PredictionResult(text, (vector, bool(cut))) for text, vector, cut in zip(batch, vectors, truncated)]

    def get_metrics_namespace(self) -> str:
        return "mrtcurate_embed"


def _vector(key, result: PredictionResult):
    vector, _ = result.inference
    return key, vector


class EmbedKeyed(beam.PTransform):
    """(key, text) in, (key, embedding) out: RunInference with the model loaded once per worker."""

    def __init__(self, embedding: EmbeddingSettings):
        super().__init__()
        self.handler = KeyedModelHandler(SentenceEmbeddingHandler(embedding))
        # One identifier per embedder: every RunInference step of the job shares one loaded model per process.
        self.model_identifier = f"mrtcurate:{embedder_key(embedding.embedder, embedding.max_tokens)}"

    def expand(self, keyed_texts):
        return (
            keyed_texts
            | "RunInference" >> RunInference(self.handler, model_identifier=self.model_identifier)
            | "Vectors" >> beam.MapTuple(_vector)
        )


def _read_cache_file(path: str):
    table = read_cached(path)
    for response_id, vector in zip(
        table.column("response_id").to_pylist(), table.column("vector").to_numpy(zero_copy_only=False)
    ):
        yield response_id, np.asarray(vector, dtype=np.float32)


class _SplitByCache(beam.DoFn):
    """One text (by content hash) after the join: a cached vector goes straight out; otherwise the
    text goes on to the model. Either way it is encoded at most once in the run."""

    NEEDED = "needed"

    def __init__(self, counter: str):
        self.embedded = Metrics.counter("mrtcurate", counter)
        self.cache_hits = Metrics.counter("mrtcurate", "cache_hits")

    def process(self, joined):
        text_id, groups = joined
        keyed_texts = list(groups["texts"])
        if not keyed_texts:
            return
        keys = tuple(key for key, _ in keyed_texts)
        cached = list(groups.get("cached", ()))
        if cached:
            self.cache_hits.inc()
            yield (text_id, keys), cached[0]
        else:
            self.embedded.inc()
            yield beam.pvalue.TaggedOutput(self.NEEDED, ((text_id, keys), keyed_texts[0][1]))


def _only_texts(text_id_and_texts: tuple) -> tuple[str, dict]:
    text_id, texts = text_id_and_texts
    return text_id, {"texts": texts}


def _by_content(key_text: tuple) -> tuple[str, tuple]:
    return stable_id(identity_key(key_text[1])), key_text


def _fan_out(keyed_vector):
    (_, keys), vector = keyed_vector
    for key in keys:
        yield key, vector


def _cache_pair(keyed_vector) -> tuple[str, np.ndarray]:
    (text_id, _), vector = keyed_vector
    return text_id, vector


class EmbedByContent(beam.PTransform):
    """(text id, (key, text)) in; (key, vector) out. The text id is a content hash (the response_id scheme),
    so no text is encoded twice in a run; with a cache, texts embedded by an earlier run are joined in with a
    CoGroupByKey instead of re-encoded, and new vectors go into the cache as they come."""

    def __init__(self, embedding: EmbeddingSettings, cache: ContentCache | None, kind: str):
        super().__init__()
        self.embedding = embedding
        self.cache = cache
        self.kind = kind  # not `label`: that attribute is the PTransform's own name in the graph

    def expand(self, by_text):
        folder = (
            self.cache.embeddings(embedder_key(self.embedding.embedder, self.embedding.max_tokens))
            if self.cache
            else None
        )
        if folder is None:  # nothing to join: one grouping by content
            grouped = by_text | "ByText" >> beam.GroupByKey() | "OnlyTexts" >> beam.Map(_only_texts)
        else:
            cached = (
                by_text.pipeline
                | "CacheFiles" >> beam.Create(cached_files(folder))
                | "ReadCache" >> beam.FlatMap(_read_cache_file).with_output_types(tuple[str, Vector])
            )
            grouped = {"texts": by_text, "cached": cached} | "JoinCache" >> beam.CoGroupByKey()
        split = grouped | "SplitByCache" >> beam.ParDo(_SplitByCache(f"embedded_{self.kind}")).with_outputs(
            _SplitByCache.NEEDED, main="hits"
        )
        encoded = split[_SplitByCache.NEEDED] | "Encode" >> EmbedKeyed(self.embedding)
        fan_out = "FanOut" >> beam.FlatMap(_fan_out).with_output_types(tuple[str, Vector])
        if folder is None:
            # No cache, no hits: the vectors go on from the stage that made them. Through the Flatten, the local
            # runner held them all in the driver between stages (164 MB at 100,000 prompts, the job's tail peak).
            return encoded | fan_out
        _ = (
            encoded
            | "CachePairs" >> beam.Map(_cache_pair)
            | "KeepInCache" >> beam.ParDo(KeepInCache(folder, vectors_table))
        )
        return (split.hits, encoded) | "AllVectors" >> beam.Flatten() | fan_out


class EmbedTexts(beam.PTransform):
    """(key, text) in, (key, vector) out: the texts' content ids, then EmbedByContent."""

    def __init__(self, embedding: EmbeddingSettings, cache: ContentCache | None = None, kind: str = "prompts"):
        super().__init__()
        self.by_content = EmbedByContent(embedding, cache, kind)

    def expand(self, keyed_texts):
        # Prompts: the report counts cut responses only, so the truncation counts stop here.
        return (
            keyed_texts
            | "ByContent" >> beam.Map(_by_content).with_output_types(tuple[str, tuple[str, str]])
            | "EmbedByContent" >> self.by_content
        )
