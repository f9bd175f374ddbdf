"""Embed the responses in content buckets: the distinct candidates travel in batches to one grouping by a
bucket of their response id (the content id of the completion), joined there with the cached vectors of
the same bucket; each bucket encodes its texts not in the cache once, in chunks sorted by id, and sends its
members on in batches keyed by prompt bucket, the grouping selection needs (pipeline/select.py).

Per record, the engine now only calls our functions inside fused stages: the per-record grouping by content
and RunInference's per-element steps (seven element-wise stages between the dedup and the pools) were most
of the time of a qd run with a fast embedder. Prompts keep RunInference (pipeline/embed.py): they are few."""

from __future__ import annotations

import functools
import logging
import time
import unicodedata

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from mrtcurate.garbage import tune_collector
from mrtcurate.pipeline import progress
from mrtcurate.pipeline.batching import PromptBucket, content_bucket
from mrtcurate.pipeline.cache import ContentCache, KeepInCache, cached_files, read_cached, vectors_table
from mrtcurate.pipeline.coders import CandidateCoder, Member, Vector
from mrtcurate.pipeline.pools import into_groups
from mrtcurate.pipeline.read import Locations
from mrtcurate.pipeline.spill import SpillBatches, batches_of
from mrtcurate.schemas import Candidate, Reject, RejectReason
from mrtcurate.schemas.config import EmbeddingSettings
from mrtcurate.schemas.counts import Count
from mrtcurate.schemas.records import RecordLocator
from mrtcurate.vectors.embedders import embedder_key, load_embedder

log = logging.getLogger(__name__)
# Texts handed to one encode() call. sentence-transformers sorts each call's texts by length before it
# forms its own batches of --batch-size, so a larger chunk wastes less on padding.
CHUNK_TEXTS = 1024
UNUSABLE = "unusable"
COUNTS = "counts"
NEW_VECTORS = "new_vectors"


def _by_content(candidate: Candidate, buckets: int) -> tuple[int, Candidate]:
    return content_bucket(candidate.response_id, buckets), candidate


def _cached_batches(path: str, buckets: int):
    """One cache file's (response id, vector) pairs, batched by content bucket."""
    table = read_cached(path)
    vectors = table.column("vector").to_numpy(zero_copy_only=False)
    batches: dict[int, list] = {}
    for response_id, vector in zip(table.column("response_id").to_pylist(), vectors, strict=True):
        batches.setdefault(content_bucket(response_id, buckets), []).append(
            (response_id, np.asarray(vector, dtype=np.float32))
        )
    yield from batches.items()


class LoadedEmbedder:
    """A holder Beam's Shared can keep a weak reference to; whoever uses the model keeps the holder."""

    def __init__(self, embedding: EmbeddingSettings):
        self.model = load_embedder(embedding.embedder, embedding.max_tokens)


# One model per worker process for every stage that embeds (the prompts' RunInference and the response buckets):
# a Shared made in each stage's constructor loads the model once per stage, a second load of MiniLM being a
# tenth of a small job's wall time.
_EMBEDDERS = Shared()


def shared_embedder(embedding: EmbeddingSettings) -> LoadedEmbedder:
    tag = embedder_key(embedding.embedder, embedding.max_tokens)
    return _EMBEDDERS.acquire(lambda: LoadedEmbedder(embedding), tag=tag)


def readable(text: str) -> bool:
    """Whether a text holds a character the job can read: anything but controls, format marks, unassigned
    or private-use code points and separators. Emoji, symbols and every script are readable."""
    return any(unicodedata.category(character)[0] not in "CZ" for character in text)


def _unembeddable(candidate: Candidate, finite: bool, locator: RecordLocator) -> list[Reject]:
    problem = "all-zero" if finite else "non-finite"
    return candidate.rejected(
        RejectReason.UNEMBEDDABLE_TEXT.value,
        f"the embedder gave a {problem} vector and the text has no readable character",
        locator,
    )


class BucketEmbedder:
    """A bucket's distinct texts to vectors, and its candidates to members: what the content-bucket stage here and
    Select (which embeds its own bucket's members where no cache or scorer needs the content grouping: graph.py)
    share. One model per worker process (shared_embedder).

    A non-finite or all-zero vector (a text with nothing the embedder reads, a broken model) never reaches the
    planner or selection as it is. A limit of the embedder never loses a valid text: a readable text keeps a
    zero vector, which has similarity 0 to every other candidate (the planner leaves it out), and is counted
    as embedding_fallback; only a text with no readable character is a reject."""

    def __init__(self, embedding: EmbeddingSettings):
        self.embedding = embedding
        self.embedded = Metrics.counter("mrtcurate", "embedded")

    def setup(self):
        self.loaded = shared_embedder(self.embedding)
        self.model = self.loaded.model

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Vectors of texts as they are (prompts: no check, no count, as the planner's own embedding does)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return self.model.encode(texts, batch_size=self.embedding.batch_size)

    def encode(self, needed: list[str], by_text: dict[str, list[Candidate]], vectors: dict) -> int:
        """The vector of each needed text into `vectors`, encoded in chunks in the order given; returns how many
        candidates had a text longer than the model's window (a count by candidate, one per prompt a text answers,
        is the same whichever stage embeds: a text answering prompts of several buckets is encoded once per bucket
        in Select)."""
        texts = [by_text[response_id][0].completion for response_id in needed]
        progress.add(progress.TO_EMBED, len(texts))
        progress.add(progress.TO_EMBED_CHARS, sum(min(len(text), progress.TEXT_CHARS_CAP) for text in texts))
        truncated = 0
        for start in range(0, len(needed), CHUNK_TEXTS):
            began = time.perf_counter()
            chunk = texts[start : start + CHUNK_TEXTS]
            encoded = self.model.embed(chunk, batch_size=self.embedding.batch_size)
            chunk_ids = needed[start : start + CHUNK_TEXTS]
            truncated += sum(len(by_text[chunk_ids[i]]) for i in np.flatnonzero(encoded.truncated))
            vectors.update(zip(chunk_ids, encoded.vectors, strict=True))
            self.embedded.inc(len(chunk))
            progress.add(progress.EMBEDDED_CHARS, sum(min(len(text), progress.TEXT_CHARS_CAP) for text in chunk))
            progress.add(progress.EMBEDDED, len(chunk), flush_now=True)
            log.debug("embedded %s texts (%.0f/s)", len(chunk), len(chunk) / max(time.perf_counter() - began, 1e-9))
        return truncated

    def members(self, by_text: dict[str, list[Candidate]], vectors: dict, locator: RecordLocator) -> tuple:
        """(each candidate with its vector, in response-id order; the rejects of texts with no usable vector and no
        readable character; how many candidates were kept with a zero vector)."""
        members, rejects, fallbacks = [], [], 0
        order = sorted(by_text)
        # Checked as one matrix: two numpy calls per text had cost more than the hashing embedder's encoding of it.
        matrix = np.stack([vectors[response_id] for response_id in order]) if order else np.zeros((0, 1))
        finite_rows = np.isfinite(matrix).all(axis=1)
        finites, usables = finite_rows.tolist(), (finite_rows & matrix.any(axis=1)).tolist()
        for response_id, finite, usable in zip(order, finites, usables, strict=True):
            vector = vectors[response_id]
            for candidate in by_text[response_id]:
                if not usable and not readable(candidate.completion):
                    rejects.extend(_unembeddable(candidate, finite, locator))
                    continue
                if not usable:
                    fallbacks += 1
                    vector = np.zeros_like(vector, dtype=np.float32)
                members.append((candidate, vector))
        return members, rejects, fallbacks

    def embed(self, candidates: list[Candidate], locator: RecordLocator) -> tuple:
        """Candidates (distinct per prompt), every text encoded once, to (members in response-id order, rejects,
        the count pairs of texts cut by the window and of candidates kept with a zero vector)."""
        by_text: dict[str, list[Candidate]] = {}
        for candidate in candidates:
            by_text.setdefault(candidate.response_id, []).append(candidate)
        progress.add(progress.COVERED, len(candidates))
        vectors: dict[str, np.ndarray] = {}
        truncated = self.encode(sorted(by_text), by_text, vectors)
        members, rejects, fallbacks = self.members(by_text, vectors, locator)
        counts = [(Count.TEXTS_TRUNCATED.value, truncated), (Count.EMBEDDING_FALLBACK.value, fallbacks)]
        return members, rejects, counts


class _EmbedBucket(beam.DoFn):
    """One content bucket: cached vectors looked up, the other texts encoded, members out by prompt bucket."""

    def __init__(
        self,
        embedding: EmbeddingSettings,
        prompt_buckets: int,
        spill: str | None,
        part_size: int,
        locator: RecordLocator,
    ):
        self.embedder = BucketEmbedder(embedding)
        self.spill = spill
        self.part_size = part_size
        self.prompt_bucket = PromptBucket(prompt_buckets, member=True)
        self.locator = locator
        self.cache_hits = Metrics.counter("mrtcurate", "cache_hits")

    def setup(self):
        tune_collector()  # a worker process of its own runs no CLI
        self.embedder.setup()

    def process(self, joined, hot_sizes: dict[str, int], rows_before: dict):
        _, groups = joined
        by_text: dict[str, list[Candidate]] = {}
        for batch in batches_of(groups["candidates"], self.spill, CandidateCoder()):
            for candidate in batch:
                by_text.setdefault(candidate.response_id, []).append(candidate)
        if not by_text:
            return
        vectors = {
            response_id: vector
            for batch in groups.get("cached", ())
            for response_id, vector in batch
            if response_id in by_text
        }
        progress.add(progress.COVERED, sum(len(candidates) for candidates in by_text.values()))
        from_cache = len(vectors)
        self.cache_hits.inc(from_cache)
        needed = sorted(response_id for response_id in by_text if response_id not in vectors)
        truncated = self.embedder.encode(needed, by_text, vectors)
        for response_id in needed:
            yield beam.pvalue.TaggedOutput(NEW_VECTORS, (response_id, vectors[response_id]))
        members, rejects, fallbacks = self.embedder.members(
            by_text, vectors, self.locator.with_rows_before(rows_before)
        )
        for name, value in (
            (Count.TEXTS_TRUNCATED, truncated),
            (Count.VECTORS_FROM_CACHE, from_cache),
            (Count.EMBEDDING_FALLBACK, fallbacks),
        ):
            yield beam.pvalue.TaggedOutput(COUNTS, (name.value, value))
        for reject in rejects:
            yield beam.pvalue.TaggedOutput(UNUSABLE, reject)
        batches: dict[int, list] = {}
        for bucket, member in map(self.prompt_bucket, members):
            batches.setdefault(bucket, []).append(member)
        # Hot pools split into their parts here, where the pool sizes arrive as a side input of a stage that starts
        # from a grouping: on a transform of its own the side input made the runner hold every member to wait.
        for batch in batches.items():
            yield from into_groups(batch, hot_sizes, self.part_size)


class EmbedResponses(beam.PTransform):
    """Distinct candidates in; out: (prompt bucket, members) batches, the rejects of unreadable texts, and the
    count pairs of texts longer than the token window, of vectors from the cache and of texts kept without a
    usable vector."""

    def __init__(
        self,
        embedding: EmbeddingSettings,
        cache: ContentCache | None,
        buckets: int,
        locations: Locations,
        spill: str | None = None,
        hot_sizes=None,
        part_size: int = 1,
    ):
        super().__init__()
        self.locations = locations
        # (prompt id, size) of the pools over --hot-above (pipeline/dedup.py), split into parts on the way out
        self.hot_sizes = hot_sizes
        self.part_size = part_size
        self.embedding = embedding
        self.buckets = buckets
        self.spill = spill  # where the candidates cross the content grouping as files (pipeline/spill.py), or None
        key = embedder_key(embedding.embedder, embedding.max_tokens)
        self.folder = cache.embeddings(key) if cache else None

    def expand(self, candidates):
        by_content = candidates | "IntoContentBuckets" >> SpillBatches(
            self.spill, CandidateCoder(), keyed=functools.partial(_by_content, buckets=self.buckets)
        )
        groups = {"candidates": by_content}
        if self.folder is not None:
            groups["cached"] = (
                candidates.pipeline
                | "CacheFiles" >> beam.Create(cached_files(self.folder))
                | "ReadCache"
                >> beam.FlatMap(_cached_batches, self.buckets).with_output_types(tuple[int, list[tuple[str, Vector]]])
            )
        embedded = (
            groups
            | "ByContent" >> beam.CoGroupByKey()
            | "EmbedBucket"
            >> beam.ParDo(
                _EmbedBucket(self.embedding, self.buckets, self.spill, self.part_size, self.locations.locator),
                {} if self.hot_sizes is None else beam.pvalue.AsDict(self.hot_sizes),
                self.locations.side_input(),
            )
            .with_output_types(tuple[tuple[int, str, int], list[Member]])
            .with_outputs(UNUSABLE, COUNTS, NEW_VECTORS, main="members")
        )
        if self.folder is not None:
            _ = embedded[NEW_VECTORS] | "KeepInCache" >> beam.ParDo(KeepInCache(self.folder, vectors_table))
        return embedded.members, embedded[UNUSABLE], embedded[COUNTS]
