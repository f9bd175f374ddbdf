"""Batches by key: what the job sends across a grouping travels as (key, list) elements gathered over a bundle,
not one element per record. The engine's cost is per element (encode, decode, a Python call at every fused
stage boundary), so a million records in batches of thousands cost it hundreds of elements. Beam's own
GroupIntoBatches keeps per-key state and timers and is meant for streaming; in batch this plain buffer does
the job with no state."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from mrtcurate.garbage import tune_collector
from mrtcurate.ingest.formats import is_gzip_path
from mrtcurate.schemas import InputFile

BATCH_SIZE = 2_048  # items per element
# Items one BatchByKey holds over all its keys before it sends every batch on, full or not: with thousands of
# buckets (a 10M-response corpus has about 1,900) batches of one bundle would otherwise hold most of the corpus.
MAX_HELD = 100_000
MIN_BUCKETS = 8  # enough for parallel workers on a small corpus
# Input bytes per bucket, as text: a bucket's memory is bounded by this, not by the corpus. Stored sizes are
# scaled by a typical ratio for compressed files (a gzip of JSONL holds about 4 times its size in text).
BUCKET_INPUT_BYTES = 2 * 1024 * 1024
_TEXT_PER_STORED_BYTE = {"gzip": 4, "parquet": 3}


class BatchByKey(beam.DoFn):
    """Items in; (key, items) out, up to BATCH_SIZE items each. `keyed` maps an item to (key, value), or to None
    for an item that does not travel."""

    def __init__(self, keyed: Callable):
        self.keyed = keyed

    def setup(self):
        tune_collector()  # a worker process of its own runs no CLI

    def start_bundle(self):
        self.batches: dict = {}
        self.held = 0

    def process(self, item):
        pair = self.keyed(item)
        if pair is None:
            return
        key, value = pair
        batch = self.batches.setdefault(key, [])
        batch.append(value)
        self.held += 1
        if len(batch) >= BATCH_SIZE:
            del self.batches[key]
            self.held -= len(batch)
            yield key, batch
        elif self.held >= MAX_HELD:
            yield from self.batches.items()
            self.batches, self.held = {}, 0

    def finish_bundle(self):
        for key, batch in self.batches.items():
            yield WindowedValue((key, batch), MIN_TIMESTAMP, [GlobalWindow()])
        self.batches = {}


def prompt_bucket(prompt_id: str, buckets: int) -> int:
    # crc32, not the seeded blake2b of ids.py: a bucket only spreads work (nothing selected depends on it), and at
    # a million prompts no cache of the hash held, which made it a fifth of the read stage (py-spy, 10M responses).
    return zlib.crc32(prompt_id.encode()) % buckets


def content_bucket(response_id: str, buckets: int) -> int:
    """The bucket of a response id (the content id of its text): every stage that joins by content must agree."""
    return zlib.crc32(response_id.encode()) % buckets


class PromptBucket:
    """A candidate's (or a member's) bucket, by its prompt: the keying for BatchByKey."""

    def __init__(self, buckets: int, member: bool = False):
        self.buckets = buckets
        self.member = member

    def __call__(self, item) -> tuple[int, object]:
        candidate = item[0] if self.member else item
        return prompt_bucket(candidate.prompt_id, self.buckets), item


def bucket_count(files: Sequence[InputFile]) -> int:
    """Buckets from the size of the input, never from the worker count: the same corpus groups the same way on
    every runner."""
    return max(MIN_BUCKETS, math.ceil(estimated_text_bytes(files) / BUCKET_INPUT_BYTES))


def estimated_text_bytes(files: Sequence[InputFile]) -> int:
    """The input's size as text, from its stored size: compressed files hold several times their bytes."""
    text_bytes = 0
    for file in files:
        kind = "gzip" if is_gzip_path(file.path) else file.format
        text_bytes += file.bytes * _TEXT_PER_STORED_BYTE.get(kind, 1)
    return text_bytes
