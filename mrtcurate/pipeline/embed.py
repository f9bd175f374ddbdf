"""Embed each unique response text once, with Beam's RunInference: the model loads once per worker,
inputs arrive in batches, and the vectors come back unit-normalised."""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from mrtcurate.embedders import Embedder, load_embedder

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


class EmbedResponses(beam.PTransform):
    """Candidates in, (candidate, embedding) out. Candidates that share a response text share one encode."""

    def __init__(self, embedder_spec: str, batch_size: int):
        super().__init__()
        self.embedder_spec = embedder_spec
        self.batch_size = batch_size

    def expand(self, candidates):
        return (
            candidates
            | "KeyByResponse" >> beam.Map(lambda c: (c.response_id, c))
            | "GroupSameText" >> beam.GroupByKey()
            | "OneTextEach" >> beam.ParDo(_OneTextEach())
            | "Encode" >> EmbedKeyed(self.embedder_spec, self.batch_size)
            | "FanOut" >> beam.FlatMap(_fan_out)
        )
