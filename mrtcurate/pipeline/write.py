"""Shard the output tables' rows deterministically and write each shard as one zstd Parquet file through Beam's
FileSystems."""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from mrtcurate.ids import stable_hash
from mrtcurate.pipeline.coders import PlainValuesCoder
from mrtcurate.pipeline.spill import SegmentWriter, SpillBatches, batches_of, read_segments
from mrtcurate.schemas import ShardInfo

TARGET_SHARD_BYTES = 256 * 1024 * 1024
_ROWS = PlainValuesCoder()  # a row is a dict of plain values


def estimated_bytes(row: dict) -> int:
    return 64 + sum(len(value) for value in row.values() if isinstance(value, str))


def shard_count(total_bytes: int, fixed: int | None) -> int:
    return fixed if fixed is not None else max(1, math.ceil(total_bytes / TARGET_SHARD_BYTES))


def shard_name(prefix: str, index: int, count: int) -> str:
    return f"{prefix}-{index:05d}-of-{count:05d}.parquet"


def parquet_bytes(rows: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(rows, buffer, compression="zstd")
    return buffer.getvalue()


def sorted_rows(batches, table: Table) -> pa.Table:
    """A shard's rows as one Arrow table sorted by the table's columns, as Python would sort the value tuples
    (UTF-8 byte order is code point order) with a missing number first, like -1. Each batch becomes Arrow as
    it is read: a shard's rows held as dicts took several times their size."""
    pieces = [pa.Table.from_pylist(batch, schema=table.schema) for batch in batches]
    rows = pa.concat_tables(pieces) if pieces else table.schema.empty_table()
    keys = pa.table(
        {
            name: pc.fill_null(rows[name], -1) if pa.types.is_integer(rows[name].type) else rows[name]
            for name in table.sort_columns
        }
    )
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending") for name in table.sort_columns])
    return rows.take(order).combine_chunks()


def _batch_bytes(batch: list[dict]) -> int:
    return sum(estimated_bytes(row) for row in batch)


@dataclass(frozen=True)
class Table:
    """One output table: its folder, schema, how rows are sharded and sorted, and whether its elements are
    batches (lists of rows) or rows."""

    relative_dir: str
    schema: pa.Schema
    shard_key: Callable[[dict], str]
    sort_columns: tuple[str, ...]
    shards: int | None = None  # fixed, or by size
    batched: bool = False

    def size(self, element) -> int:
        return _batch_bytes(element) if self.batched else estimated_bytes(element)

    def to_shards(self, element, count: int):
        """(shard, rows) pairs of one element: a batch split by shard, one element per shard it touches."""
        by_shard: dict[int, list[dict]] = {}
        for row in element if self.batched else [element]:
            by_shard.setdefault(stable_hash(self.shard_key(row)) % count, []).append(row)
        return by_shard.items()


def _count(totals: dict[str, int], name: str, table: Table) -> int:
    """A table's shard count, from its rows' bytes (a table with no rows at all has no total)."""
    return shard_count(totals.get(name, 0), table.shards)


def _tagged(element, name: str) -> tuple:
    return name, element


class _Bytes:
    def __init__(self, tables: dict[str, Table]):
        self.tables = tables

    def __call__(self, tagged) -> tuple[str, int]:
        name, element = tagged
        return name, self.tables[name].size(element)


class _AssignShards(beam.DoFn):
    """A table's rows to their shards: from (table name, element) where nothing is spilled, or from (table name,
    segment) where the rows were written to files, and then into files again, by (table name, shard)."""

    def __init__(self, tables: dict[str, Table], spill: str | None):
        self.tables = tables
        self.spill = spill

    def start_bundle(self):
        self.writer = None if self.spill is None else SegmentWriter(self.spill, _ROWS)

    def process(self, tagged, totals: dict[str, int]):
        name, element = tagged
        table = self.tables[name]
        if self.spill is not None:
            (element,) = read_segments([element], _ROWS)
            table = replace(table, batched=True)
        for index, rows in table.to_shards(element, _count(totals, name, table)):
            if self.writer is None:
                yield (name, index), rows
            else:
                yield from self.writer.add((name, index), rows)

    def finish_bundle(self):
        if self.writer is not None:
            for pair in self.writer.flush():
                yield WindowedValue(pair, MIN_TIMESTAMP, [GlobalWindow()])


def _as_batch(tagged, tables: dict[str, Table]) -> tuple[str, list[dict]]:
    name, element = tagged
    return name, element if tables[name].batched else [element]


class _WriteShard(beam.DoFn):
    def __init__(self, directory: str, prefix: str, tables: dict[str, Table], spill: str | None):
        self.directory = directory
        self.prefix = prefix
        self.tables = tables
        self.spill = spill

    def process(self, shard, totals: dict[str, int]):
        (name, index), batches = shard
        table = self.tables[name]
        rows = sorted_rows(batches_of(batches, self.spill, _ROWS), table)
        yield name, _write(self.directory, table, self.prefix, index, _count(totals, name, table), rows)


class _WriteEmptyShards(beam.DoFn):
    """Every shard of the count is written, with the table's schema, even when no row hashed to it: names
    `-of-N` promise N files, and a table with no rows at all is one empty file that readers can open."""

    def __init__(self, directory: str, prefix: str, tables: dict[str, Table]):
        self.directory = directory
        self.prefix = prefix
        self.tables = tables

    def process(self, _, totals: dict[str, int], written: list):
        present = {(name, shard.path) for name, shard in written}
        for name, table in self.tables.items():
            count = _count(totals, name, table)
            for index in range(count):
                if (name, f"{table.relative_dir}/{shard_name(self.prefix, index, count)}") not in present:
                    yield name, _write(self.directory, table, self.prefix, index, count, table.schema.empty_table())


def _write(directory: str, table: Table, prefix: str, index: int, count: int, rows: pa.Table) -> ShardInfo:
    payload = parquet_bytes(rows)
    relative = f"{table.relative_dir}/{shard_name(prefix, index, count)}"
    with FileSystems.create(FileSystems.join(directory, relative)) as sink:
        sink.write(payload)
    return ShardInfo(path=relative, rows=rows.num_rows, sha256=hashlib.sha256(payload).hexdigest())


class WriteParquetTables(beam.PTransform):
    """{table name: its rows (or batches of rows), or a tuple of such PCollections} in; {table name: ShardInfo
    per written file} out. All rows
    with one shard key land in one file, rows in a file are sorted, and each table's shard count comes from
    its data size unless fixed: output bytes depend on the data alone, not on workers or bundles. Every shard
    of the count is written, empty ones too. The tables share one size count and one grouping by shard."""

    def __init__(self, directory: str, tables: dict[str, Table], prefix: str = "part", spill: str | None = None):
        super().__init__()
        self.spill = spill  # where the rows wait for the sizes and cross the shard grouping as files, or None
        self.directory = directory
        self.tables = tables
        self.prefix = prefix

    def expand(self, elements: dict):
        # Each producer's rows are sized, and spilled, where they are made: a Flatten of several stages' outputs is
        # a buffer that the local runner holds whole.
        pieces, sizes = [], []
        for name in self.tables:
            produced = elements[name] if isinstance(elements[name], tuple) else (elements[name],)
            for index, rows in enumerate(produced):
                label = f"{name}{index}" if index else name
                tagged = rows | f"Tag{label}" >> beam.Map(_tagged, name)
                sizes.append(tagged | f"RowBytes{label}" >> beam.Map(_Bytes(self.tables)))
                if self.spill is not None:
                    # Written to files before they wait for the tables' sizes, which the local runner would hold.
                    tagged = (
                        tagged
                        | f"AsBatches{label}" >> beam.Map(_as_batch, self.tables)
                        | f"SpillRows{label}" >> SpillBatches(self.spill, _ROWS)
                    )
                pieces.append(tagged)
        waiting = pieces | "AllTables" >> beam.Flatten()
        totals = beam.pvalue.AsDict(sizes | "AllRowBytes" >> beam.Flatten() | "TotalBytes" >> beam.CombinePerKey(sum))
        written = (
            waiting
            | "AssignShard" >> beam.ParDo(_AssignShards(self.tables, self.spill), totals)
            | "GroupShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShard(self.directory, self.prefix, self.tables, self.spill), totals)
        )
        empty = (
            waiting.pipeline
            | "Once" >> beam.Create([None])
            | "WriteEmptyShards"
            >> beam.ParDo(
                _WriteEmptyShards(self.directory, self.prefix, self.tables), totals, beam.pvalue.AsList(written)
            )
        )
        names = list(self.tables)
        by_table = (
            (written, empty)
            | "AllShards" >> beam.Flatten()
            | "ByTable" >> beam.Partition(lambda named, _: names.index(named[0]), len(names))
        )
        return {
            name: by_table[index] | f"{name}Shards" >> beam.Map(lambda named: named[1])
            for index, name in enumerate(names)
        }
