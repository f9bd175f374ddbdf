"""Beam's RunInference around our embedders: the model loads once per worker, inputs arrive in batches,
and the vectors come back unit-normalised. Its own module because importing RunInference imports torch
(1.6 s here): a job that embeds nothing never loads it (pipeline/embed.py imports this lazily)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from mrtcurate.pipeline import progress
from mrtcurate.vectors.embedders import Embedder, embedder_identity, load_embedder

log = logging.getLogger(__name__)

# Texts handed to one encode() call. sentence-transformers sorts each call's texts by length before it
# forms its own batches of --batch-size, so a larger chunk wastes less on padding.
_CHUNK_TEXTS = 1024


class SentenceEmbeddingHandler(ModelHandler[str, PredictionResult, Embedder]):
    def __init__(self, embedder_spec: str, batch_size: int, shows_progress: bool = False):
        super().__init__(min_batch_size=_CHUNK_TEXTS, max_batch_size=_CHUNK_TEXTS)
        self.embedder_spec = embedder_spec
        self.batch_size = batch_size
        self.shows_progress = shows_progress  # the responses' embedding is the stage whose time left users watch
        self.embedded_here = 0  # per worker: progress lines, not accounting (the manifest does that)

    def load_model(self) -> Embedder:
        return load_embedder(self.embedder_spec)

    def run_inference(self, batch: Sequence[str], model: Embedder, inference_args: dict[str, Any] | None = None):
        started = time.perf_counter()
        vectors = model.encode(batch, batch_size=self.batch_size)
        self.embedded_here += len(batch)
        if self.shows_progress:
            progress.add(progress.EMBEDDED, len(batch), flush_now=True)
        rate = len(batch) / max(time.perf_counter() - started, 1e-9)
        log.debug("embedded %s texts on this worker (%.0f/s)", f"{self.embedded_here:,}", rate)
        return [PredictionResult(text, vector) for text, vector in zip(batch, vectors)]

    def get_metrics_namespace(self) -> str:
        return "mrtcurate_embed"


class EmbedKeyed(beam.PTransform):
    """(key, text) in, (key, embedding) out: RunInference with the model loaded once per worker."""

    def __init__(self, embedder_spec: str, batch_size: int, shows_progress: bool = False):
        super().__init__()
        self.handler = KeyedModelHandler(SentenceEmbeddingHandler(embedder_spec, batch_size, shows_progress))
        # One identifier per embedder: every RunInference step of the job shares one loaded model per process.
        self.model_identifier = f"mrtcurate:{embedder_identity(embedder_spec)}"

    def expand(self, keyed_texts):
        return (
            keyed_texts
            | "RunInference" >> RunInference(self.handler, model_identifier=self.model_identifier)
            | "Vectors" >> beam.MapTuple(lambda key, result: (key, result.inference))
        )
