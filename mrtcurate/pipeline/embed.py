"""Embed each unique response text once, with Beam's RunInference: the model loads once per worker,
inputs arrive in batches, and the vectors come back unit-normalised."""

from __future__ import annotations

import json
import logging
import time
import unicodedata
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from mrtcurate.ids import identity_key, stable_id
from mrtcurate.pipeline import progress
from mrtcurate.pipeline.cache import ContentCache, KeepInCache, cached_files, read_cached
from mrtcurate.pipeline.coders import Member, Vector
from mrtcurate.schemas import Candidate, Reject, RejectReason
from mrtcurate.schemas.config import EmbeddingSettings
from mrtcurate.schemas.counts import Count
from mrtcurate.vectors.embedders import Embedder, embedder_key, load_embedder

log = logging.getLogger(__name__)

# Texts handed to one encode() call. sentence-transformers sorts each call's texts by length before it
# forms its own batches of --batch-size, so a larger chunk wastes less on padding.
_CHUNK_TEXTS = 1024


class SentenceEmbeddingHandler(ModelHandler[str, PredictionResult, Embedder]):
    """Each result's inference is (vector, whether the text was longer than the token window)."""

    def __init__(self, embedding: EmbeddingSettings, shows_progress: bool = False):
        super().__init__(min_batch_size=_CHUNK_TEXTS, max_batch_size=_CHUNK_TEXTS)
        self.embedding = embedding
        self.shows_progress = shows_progress  # the responses' embedding is the stage whose time left users watch
        self.embedded_here = 0  # per worker: progress lines, not accounting (the manifest does that)

    def load_model(self) -> Embedder:
        return load_embedder(self.embedding.embedder, self.embedding.max_tokens)

    def run_inference(self, batch: Sequence[str], model: Embedder, inference_args: dict[str, Any] | None = None):
        started = time.perf_counter()
        vectors = model.encode(batch, batch_size=self.embedding.batch_size)
        self.embedded_here += len(batch)
        if self.shows_progress:
            progress.add(progress.EMBEDDED_CHARS, sum(min(len(text), progress.TEXT_CHARS_CAP) for text in batch))
            progress.add(progress.EMBEDDED, len(batch), flush_now=True)
        rate = len(batch) / max(time.perf_counter() - started, 1e-9)
        log.debug("embedded %s texts on this worker (%.0f/s)", f"{self.embedded_here:,}", rate)
        return [
            PredictionResult(text, (vector, bool(cut))) for text, vector, cut in zip(batch, vectors, model.truncated)
        ]

    def get_metrics_namespace(self) -> str:
        return "mrtcurate_embed"


TRUNCATED = "truncated"


def _vector_and_window(key, result: PredictionResult):
    vector, cut = result.inference
    if cut:
        yield beam.pvalue.TaggedOutput(TRUNCATED, (Count.TEXTS_TRUNCATED.value, 1))
    yield key, vector


class EmbedKeyed(beam.PTransform):
    """(key, text) in, (key, embedding) out: RunInference with the model loaded once per worker; and,
    tagged TRUNCATED, a count pair for every text longer than the token window."""

    def __init__(self, embedding: EmbeddingSettings, shows_progress: bool = False):
        super().__init__()
        self.handler = KeyedModelHandler(SentenceEmbeddingHandler(embedding, shows_progress))
        # One identifier per embedder: every RunInference step of the job shares one loaded model per process.
        self.model_identifier = f"mrtcurate:{embedder_key(embedding.embedder, embedding.max_tokens)}"

    def expand(self, keyed_texts):
        return (
            keyed_texts
            | "RunInference" >> RunInference(self.handler, model_identifier=self.model_identifier)
            | "Vectors" >> beam.FlatMapTuple(_vector_and_window).with_outputs(TRUNCATED, main="vectors")
        )


CACHE_SCHEMA = pa.schema(
    [pa.field("response_id", pa.string(), nullable=False), pa.field("vector", pa.list_(pa.float32()), nullable=False)]
)


def _read_cache_file(path: str):
    table = read_cached(path)
    for response_id, vector in zip(
        table.column("response_id").to_pylist(), table.column("vector").to_numpy(zero_copy_only=False)
    ):
        yield response_id, np.asarray(vector, dtype=np.float32)


def vectors_table(keys: Sequence[str], vectors: Sequence[np.ndarray]) -> pa.Table:
    flat = np.asarray(vectors, dtype=np.float32)
    offsets = np.arange(0, flat.size + 1, flat.shape[1] if flat.ndim == 2 else 1, dtype=np.int32)
    column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.reshape(-1)))
    return pa.table([pa.array(keys, pa.string()), column], schema=CACHE_SCHEMA)


class _SplitByCache(beam.DoFn):
    """One text (by content hash) after the join: a cached vector goes straight out; otherwise the
    text goes on to the model. Either way it is encoded at most once in the run."""

    NEEDED = "needed"
    COUNTS = "counts"

    def __init__(self, counter: str, shows_progress: bool, text_of):
        self.text_of = text_of
        self.embedded = Metrics.counter("mrtcurate", counter)
        self.cache_hits = Metrics.counter("mrtcurate", "cache_hits")
        self.shows_progress = shows_progress

    def process(self, joined):
        text_id, groups = joined
        keyed_texts = list(groups["texts"])
        if not keyed_texts:
            return
        keys = tuple(key for key, _ in keyed_texts)
        cached = list(groups.get("cached", ()))
        if self.shows_progress:
            progress.add(progress.COVERED, len(keys))
            progress.add(progress.TO_EMBED, 0 if cached else 1)
            progress.add(
                progress.TO_EMBED_CHARS,
                0 if cached else min(len(self.text_of(keyed_texts[0])), progress.TEXT_CHARS_CAP),
            )
        if cached:
            self.cache_hits.inc()
            if self.shows_progress:  # the responses: the manifest counts their vectors from the cache
                yield beam.pvalue.TaggedOutput(self.COUNTS, (Count.VECTORS_FROM_CACHE.value, 1))
            yield (text_id, keys), cached[0]
        else:
            self.embedded.inc()
            yield beam.pvalue.TaggedOutput(self.NEEDED, ((text_id, keys), self.text_of(keyed_texts[0])))


def _given_text(key_text: tuple) -> str:
    return key_text[1]


def _completion(candidate_and_nothing: tuple) -> str:
    return candidate_and_nothing[0].completion


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
    """(text id, (key, text)) in; (key, vector) out, and the truncation counts of the texts it encoded
    (EmbedKeyed), with how many vectors came from the cache. The text id is a content hash (the response_id
    scheme), so no text is encoded twice in a run; with a cache, texts embedded by an earlier run are
    joined in with a CoGroupByKey instead of re-encoded, and new vectors go into the cache as they come."""

    def __init__(
        self, embedding: EmbeddingSettings, cache: ContentCache | None, kind: str, key_type: type, text_of=_given_text
    ):
        super().__init__()
        self.key_type = key_type  # the keys' type hint, which picks their coder
        self.text_of = text_of  # the text of one (key, text) pair: responses travel as (candidate, ""), text inside
        self.embedding = embedding
        self.cache = cache
        self.kind = kind  # not `label`: that attribute is the PTransform's own name in the graph

    def expand(self, by_text):
        responses = self.kind == "responses"
        counter = "embedded" if responses else f"embedded_{self.kind}"
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
        split = grouped | "SplitByCache" >> beam.ParDo(_SplitByCache(counter, responses, self.text_of)).with_outputs(
            _SplitByCache.NEEDED, _SplitByCache.COUNTS, main="hits"
        )
        encoded = split[_SplitByCache.NEEDED] | "Encode" >> EmbedKeyed(self.embedding, responses)
        if folder is not None:
            _ = (
                encoded.vectors
                | "CachePairs" >> beam.Map(_cache_pair)
                | "KeepInCache" >> beam.ParDo(KeepInCache(folder, vectors_table))
            )
        vectors = (
            (split.hits, encoded.vectors)
            | "AllVectors" >> beam.Flatten()
            | "FanOut" >> beam.FlatMap(_fan_out).with_output_types(tuple[self.key_type, Vector])
        )
        counts = (encoded[TRUNCATED], split[_SplitByCache.COUNTS]) | "EmbedCounts" >> beam.Flatten()
        return vectors, counts


class EmbedTexts(beam.PTransform):
    """(key, text) in, (key, vector) out: the texts' content ids, then EmbedByContent."""

    def __init__(self, embedding: EmbeddingSettings, cache: ContentCache | None = None, kind: str = "responses"):
        super().__init__()
        self.by_content = EmbedByContent(embedding, cache, kind, key_type=str)

    def expand(self, keyed_texts):
        vectors, _ = (
            keyed_texts
            | "ByContent" >> beam.Map(_by_content).with_output_types(tuple[str, tuple[str, str]])
            | "EmbedByContent" >> self.by_content
        )
        return vectors  # prompts: the report counts cut responses only


def _by_response_id(candidate: Candidate) -> tuple[str, tuple[Candidate, str]]:
    # The response_id already is the content id of the completion: no second hash. The completion is read from
    # the candidate (_completion), not carried a second time through the grouping.
    return candidate.response_id, (candidate, "")


UNUSABLE = "unusable"
FALLBACK = "fallback"


def readable(text: str) -> bool:
    """Whether a text holds a character the job can read: anything but controls, format marks, unassigned
    or private-use code points and separators. Emoji, symbols and every script are readable."""
    return any(unicodedata.category(character)[0] not in "CZ" for character in text)


class _UsableVectors(beam.DoFn):
    """A non-finite or all-zero vector (a text with nothing the embedder reads, a broken model) must never
    reach the planner or selection as it is. A limit of the embedder never loses a valid text: a readable
    text keeps a zero vector, which has similarity 0 to every other candidate (the planner leaves it out),
    and is counted as embedding_fallback; only a text with no readable character is a reject."""

    def process(self, member):
        candidate, vector = member
        finite = bool(np.isfinite(vector).all())
        if finite and vector.any():
            yield member
            return
        if readable(candidate.completion):
            yield beam.pvalue.TaggedOutput(FALLBACK, (Count.EMBEDDING_FALLBACK.value, 1))
            yield candidate, np.zeros_like(vector, dtype=np.float32)
            return
        problem = "all-zero" if finite else "non-finite"
        record = json.dumps({"prompt": candidate.prompt, "response": candidate.completion}, ensure_ascii=False)
        reject = Reject(
            record,
            RejectReason.UNEMBEDDABLE_TEXT.value,
            f"the embedder gave a {problem} vector and the text has no readable character",
            candidate.source,
            None,
        )
        for _ in range(candidate.multiplicity):
            yield beam.pvalue.TaggedOutput(UNUSABLE, reject)


class EmbedResponses(beam.PTransform):
    """Candidates in; (candidate, embedding) out, the rejects of unreadable texts, and the count pairs of
    texts longer than the token window and of texts kept without a usable vector."""

    def __init__(self, embedding: EmbeddingSettings, cache: ContentCache | None = None):
        super().__init__()
        self.by_content = EmbedByContent(embedding, cache, "responses", key_type=Candidate, text_of=_completion)

    def expand(self, candidates):
        vectors, embed_counts = (
            candidates
            | "ByResponseId" >> beam.Map(_by_response_id).with_output_types(tuple[str, tuple[Candidate, str]])
            | "EmbedByContent" >> self.by_content
        )
        checked = vectors | "UsableVectors" >> beam.ParDo(_UsableVectors()).with_output_types(Member).with_outputs(
            UNUSABLE, FALLBACK, main="members"
        )
        counts = (embed_counts, checked[FALLBACK]) | "AllEmbedCounts" >> beam.Flatten()
        return checked.members, checked[UNUSABLE], counts
