"""Shard rows deterministically and write each shard as one zstd Parquet file through Beam's FileSystems."""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from mrtcurate.ids import stable_hash
from mrtcurate.schemas import ShardInfo

TARGET_SHARD_BYTES = 256 * 1024 * 1024


def estimated_bytes(row: dict) -> int:
    return 64 + sum(len(value) for value in row.values() if isinstance(value, str))


def shard_count(total_bytes: int, fixed: int | None) -> int:
    return fixed if fixed is not None else max(1, math.ceil(total_bytes / TARGET_SHARD_BYTES))


def shard_name(prefix: str, index: int, count: int) -> str:
    return f"{prefix}-{index:05d}-of-{count:05d}.parquet"


def parquet_bytes(rows: list[dict], schema: pa.Schema) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer, compression="zstd")
    return buffer.getvalue()


def _batch_bytes(batch: list[dict]) -> int:
    return sum(estimated_bytes(row) for row in batch)


def _row_to_shard(row: dict, count: int, shard_key: Callable[[dict], str]):
    yield stable_hash(shard_key(row)) % count, row


def _batch_to_shards(batch: list[dict], count: int, shard_key: Callable[[dict], str]):
    """A batch of rows split by shard: one element per shard it touches, not one per row."""
    by_shard: dict[int, list[dict]] = {}
    for row in batch:
        by_shard.setdefault(stable_hash(shard_key(row)) % count, []).append(row)
    yield from by_shard.items()


class _WriteShard(beam.DoFn):
    def __init__(
        self, directory: str, relative_dir: str, prefix: str, schema: pa.Schema, sort_key: Callable, batched: bool
    ):
        self.directory = directory
        self.relative_dir = relative_dir
        self.prefix = prefix
        self.schema = schema
        self.sort_key = sort_key
        self.batched = batched

    def process(self, shard, count: int):
        index, elements = shard
        rows = (row for batch in elements for row in batch) if self.batched else elements
        rows = sorted(rows, key=self.sort_key)
        payload = parquet_bytes(rows, self.schema)
        relative = f"{self.relative_dir}/{shard_name(self.prefix, index, count)}"
        with FileSystems.create(FileSystems.join(self.directory, relative)) as sink:
            sink.write(payload)
        yield ShardInfo(path=relative, rows=len(rows), sha256=hashlib.sha256(payload).hexdigest())


class _WriteEmptyShards(beam.DoFn):
    """Every shard of the count is written, with the table's schema, even when no row hashed to it: names
    `-of-N` promise N files, and a table with no rows at all is one empty file that readers can open."""

    def __init__(self, directory: str, relative_dir: str, prefix: str, schema: pa.Schema):
        self.directory = directory
        self.relative_dir = relative_dir
        self.prefix = prefix
        self.schema = schema

    def process(self, count: int, written: list[ShardInfo]):
        present = {shard.path for shard in written}
        payload = parquet_bytes([], self.schema)
        for index in range(count):
            relative = f"{self.relative_dir}/{shard_name(self.prefix, index, count)}"
            if relative in present:
                continue
            with FileSystems.create(FileSystems.join(self.directory, relative)) as sink:
                sink.write(payload)
            yield ShardInfo(path=relative, rows=0, sha256=hashlib.sha256(payload).hexdigest())


class WriteParquetShards(beam.PTransform):
    """Rows in (or, with `batched`, lists of rows), ShardInfo per written file out. All
    rows with one shard key land in one file, rows in a file are sorted, and the shard count comes from the
    data size unless fixed: output bytes depend on the data alone, not on workers or bundles. Every shard of
    the count is written, empty ones too."""

    def __init__(
        self,
        directory: str,
        relative_dir: str,
        prefix: str,
        schema: pa.Schema,
        shard_key: Callable[[dict], str],
        sort_key: Callable[[dict], tuple],
        shards: int | None,
        batched: bool = False,
    ):
        super().__init__()
        self.batched = batched
        self.directory = directory
        self.relative_dir = relative_dir
        self.prefix = prefix
        self.schema = schema
        self.shard_key = shard_key
        self.sort_key = sort_key
        self.shards = shards

    def expand(self, elements):
        fixed = self.shards
        size, to_shards = (_batch_bytes, _batch_to_shards) if self.batched else (estimated_bytes, _row_to_shard)
        counted = (
            elements
            | "RowBytes" >> beam.Map(size)
            | "TotalBytes" >> beam.CombineGlobally(sum)
            | "ShardCount" >> beam.Map(shard_count, fixed)
        )
        count = beam.pvalue.AsSingleton(counted)
        written = (
            elements
            | "AssignShard" >> beam.FlatMap(to_shards, count, self.shard_key)
            | "GroupShard" >> beam.GroupByKey()
            | "WriteShard"
            >> beam.ParDo(
                _WriteShard(self.directory, self.relative_dir, self.prefix, self.schema, self.sort_key, self.batched),
                count,
            )
        )
        empty = counted | "WriteEmptyShards" >> beam.ParDo(
            _WriteEmptyShards(self.directory, self.relative_dir, self.prefix, self.schema), beam.pvalue.AsList(written)
        )
        return (written, empty) | "AllShards" >> beam.Flatten()
