"""`--cache DIR` (and `mrt refresh`'s ROOT/cache): what the costly stages computed, kept by content, so a run
killed at any point and started again with the same arguments recomputes nothing it had finished, and a
refresh encodes only new texts.

    DIR/embeddings/<embedder key>/part-<digest>.parquet   response_id -> vector
    DIR/scores/<scorer key>/part-<digest>.parquet         score_key (prompt id, response id) -> score

Files are written while the stage runs, every ROWS_PER_FILE results or WRITE_EVERY_S seconds, each one whole or not at all (a rename
on a local disk; an object store shows an object only once it is closed), and named by a digest of the keys
they hold, so a retried bundle writes the same file again rather than a second one. A key can still sit in
two files (two runs computed it at once): the values are the same, and readers take either.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from mrtcurate.ingest.files import is_local, local_path
from mrtcurate.outputs import write_inside

ROWS_PER_FILE = 2048
WRITE_EVERY_S = 10.0


@dataclass(frozen=True)
class ContentCache:
    directory: str

    def embeddings(self, embedder: str) -> str:
        return FileSystems.join(self.directory, "embeddings", embedder)

    def scores(self, scorer: str) -> str:
        return FileSystems.join(self.directory, "scores", scorer)


def cached_files(folder: str) -> tuple[str, ...]:
    """The complete files in a cache folder, listed when the job is built (temporary files never end in .parquet)."""
    matched = FileSystems.match([FileSystems.join(folder, "*.parquet")])[0].metadata_list
    return tuple(sorted(metadata.path for metadata in matched))


def read_cached(path: str) -> pa.Table:
    with FileSystems.open(path) as source:
        return pq.read_table(source)


def score_key(prompt_id: str, response_id: str) -> str:
    # A score judges the pair, so one response under two prompts is two keys.
    return f"{prompt_id}:{response_id}"


class CacheWriter:
    """Pairs added go into `folder` ROWS_PER_FILE at a time, or after WRITE_EVERY_S seconds when they come slowly
    (a judge's scores), so a kill loses little; `flush` writes the rest."""

    def __init__(self, folder: str, to_table: Callable[[Sequence[str], Sequence], pa.Table]):
        self.folder = folder
        self.to_table = to_table
        self.pending: list[tuple[str, object]] = []
        self.since = time.monotonic()

    def add(self, pairs: Iterable[tuple[str, object]]) -> None:
        self.pending.extend(pairs)
        if len(self.pending) >= ROWS_PER_FILE or time.monotonic() - self.since > WRITE_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self.since = time.monotonic()
        if not self.pending:
            return
        pairs = sorted(self.pending, key=lambda pair: pair[0])
        self.pending = []
        keys = [key for key, _ in pairs]
        sink = pa.BufferOutputStream()
        pq.write_table(self.to_table(keys, [value for _, value in pairs]), sink)
        name = f"part-{hashlib.sha256(chr(0).join(keys).encode()).hexdigest()[:24]}.parquet"
        if is_local(self.folder):
            folder = local_path(self.folder)
            os.makedirs(folder, exist_ok=True)
            write_inside(folder, name, sink.getvalue().to_pybytes())
        else:
            with FileSystems.create(FileSystems.join(self.folder, name)) as remote:
                remote.write(sink.getvalue().to_pybytes())


class KeepInCache(beam.DoFn):
    """(key, value) in, nothing out: the pairs land in `folder` while the stage runs (CacheWriter)."""

    def __init__(self, folder: str, to_table: Callable[[Sequence[str], Sequence], pa.Table]):
        self.folder = folder
        self.to_table = to_table

    def start_bundle(self):
        self.writer = CacheWriter(self.folder, self.to_table)

    def process(self, pair):
        self.writer.add([pair])

    def finish_bundle(self):
        self.writer.flush()


CACHE_SCHEMA = pa.schema(
    [pa.field("response_id", pa.string(), nullable=False), pa.field("vector", pa.list_(pa.float32()), nullable=False)]
)


def vectors_table(keys: Sequence[str], vectors: Sequence[np.ndarray]) -> pa.Table:
    flat = np.asarray(vectors, dtype=np.float32)
    offsets = np.arange(0, flat.size + 1, flat.shape[1] if flat.ndim == 2 else 1, dtype=np.int32)
    column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.reshape(-1)))
    return pa.table([pa.array(keys, pa.string()), column], schema=CACHE_SCHEMA)
