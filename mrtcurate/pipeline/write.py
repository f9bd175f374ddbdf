"""Shard the output tables' rows deterministically and write each shard as one zstd Parquet file through Beam's
FileSystems.

Rows become Arrow where they are made, a batch at a time, with their shard key's hash as one more column: from there
on a batch is split by shard, carried and written as columns. Carried as dicts, every row was encoded, decoded and
hashed twice more and built into Arrow by the one worker writing its shard, in the job's serial tail."""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from mrtcurate.ids import stable_hash
from mrtcurate.pipeline.coders import ArrowTablesCoder
from mrtcurate.pipeline.job_files import new_file
from mrtcurate.pipeline.spill import SegmentWriter, SpillBatches, batches_of, read_segments
from mrtcurate.schemas import ShardInfo
from mrtcurate.schemas.counts import Insight

TARGET_SHARD_BYTES = 256 * 1024 * 1024
_TABLES = ArrowTablesCoder()
SHARD_HASH = "__shard_hash"  # the column each batch carries until its shard is written: stable_hash(shard key)
_ROW_BYTES = 64  # a row's estimated size beyond its strings


def estimated_bytes(rows: pa.Table) -> int:
    """64 per row plus the characters of its strings."""
    text = 0
    for column in rows.itercolumns():
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            text += pc.sum(pc.utf8_length(column)).as_py() or 0
    return _ROW_BYTES * rows.num_rows + text


def shard_count(total_bytes: int, fixed: int | None) -> int:
    return fixed if fixed is not None else max(1, math.ceil(total_bytes / TARGET_SHARD_BYTES))


def shard_name(prefix: str, index: int, count: int) -> str:
    return f"{prefix}-{index:05d}-of-{count:05d}.parquet"


def parquet_bytes(rows: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(rows, buffer, compression="zstd")
    return buffer.getvalue()


def sorted_rows(batches, table: Table) -> pa.Table:
    """A shard's rows (batches of Arrow tables) as one Arrow table of the table's schema, sorted by its columns as
    Python would sort the value tuples (UTF-8 byte order is code point order) with a missing number first, like -1."""
    pieces = [piece.drop_columns([SHARD_HASH]) for batch in batches for piece in batch]
    rows = pa.concat_tables(pieces) if pieces else table.schema.empty_table()
    keys = pa.table(
        {
            name: pc.fill_null(rows[name], -1) if pa.types.is_integer(rows[name].type) else rows[name]
            for name in table.sort_columns
        }
    )
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending") for name in table.sort_columns])
    return rows.take(order).combine_chunks()


@dataclass(frozen=True)
class Table:
    """One output table: its folder, schema, the column rows are sharded by and the columns they are sorted by. Its
    elements are batches (lists of rows), each made Arrow whole."""

    relative_dir: str
    schema: pa.Schema
    shard_column: str
    sort_columns: tuple[str, ...]
    shards: int | None = None  # fixed, or by size

    def as_arrow(self, batch: list[dict]) -> pa.Table:
        """A batch of rows as Arrow, with the hash of each row's shard key (one hash per distinct key)."""
        # As a struct array, which Arrow converts from the dicts in C++ (a missing key is null, another key ignored):
        # Table.from_pylist took 2.7 times as long as column lists built in Python, and those 3.7 times as long as
        # this on a batch of dropped rows (every output row becomes Arrow here).
        as_struct = pa.array(batch, type=pa.struct(list(self.schema)))
        rows = pa.Table.from_batches([pa.RecordBatch.from_struct_array(as_struct)]).cast(self.schema)
        hashes: dict = {}
        keyed = [
            hashes[key] if key in hashes else hashes.setdefault(key, stable_hash(key))
            for key in rows[self.shard_column].to_pylist()
        ]
        return rows.append_column(SHARD_HASH, pa.array(keyed, pa.uint64()))


def to_shards(rows: pa.Table, count: int):
    """(shard, rows) pairs of one Arrow batch, one per shard it touches."""
    shard_of = rows[SHARD_HASH].to_numpy() % np.uint64(count)
    for shard in np.unique(shard_of).tolist():
        yield shard, rows.filter(pa.array(shard_of == shard))


def _count(totals: dict[str, int], name: str, table: Table) -> int:
    """A table's shard count, from its rows' bytes (a table with no rows at all has no total)."""
    return shard_count(totals.get(name, 0), table.shards)


class _AsArrow:
    def __init__(self, tables: dict[str, Table]):
        self.tables = tables

    def __call__(self, element, name: str) -> tuple[str, pa.Table]:
        return name, self.tables[name].as_arrow(element)


def _bytes(tagged: tuple[str, pa.Table]) -> tuple[str, tuple[str, int]]:
    name, rows = tagged
    return Insight.TABLE_BYTES.value, (name, estimated_bytes(rows))


class _AssignShards(beam.DoFn):
    """A table's rows to their shards: from (table name, Arrow batch) where nothing is spilled, or from (table name,
    segment) where the batches were written to files, and then into files again, by (table name, shard)."""

    def __init__(self, tables: dict[str, Table], spill: str | None):
        self.tables = tables
        self.spill = spill

    def start_bundle(self):
        self.writer = None if self.spill is None else SegmentWriter(self.spill, _TABLES)

    def process(self, tagged, totals: dict[str, int]):
        name, element = tagged
        batches = [element] if self.spill is None else next(read_segments([element], _TABLES))
        count = _count(totals, name, self.tables[name])
        for rows in batches:
            for index, part in to_shards(rows, count):
                if self.writer is None:
                    yield (name, index), [part]  # a batch of tables, as a segment holds
                else:
                    yield from self.writer.add((name, index), [part])

    def finish_bundle(self):
        if self.writer is not None:
            for pair in self.writer.flush():
                yield WindowedValue(pair, MIN_TIMESTAMP, [GlobalWindow()])


def _as_batch(tagged: tuple[str, pa.Table]) -> tuple[str, list[pa.Table]]:
    name, rows = tagged
    return name, [rows]


class _WriteShard(beam.DoFn):
    def __init__(self, directory: str, prefix: str, tables: dict[str, Table], spill: str | None):
        self.directory = directory
        self.prefix = prefix
        self.tables = tables
        self.spill = spill

    def process(self, shard, totals: dict[str, int]):
        (name, index), batches = shard
        table = self.tables[name]
        rows = sorted_rows(batches_of(batches, self.spill, _TABLES), table)
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
    with new_file(FileSystems.join(directory, relative)) as sink:
        sink.write(payload)
    return ShardInfo(path=relative, rows=rows.num_rows, sha256=hashlib.sha256(payload).hexdigest())


@dataclass
class TablePieces:
    """The output tables' rows on their way to the shards: `pieces` (table name, Arrow batch, or the segment it was
    spilled to) and `sizes`, each batch's (table name, estimated bytes), whose per-table sums set the shard counts
    (summed in the job's one combine of summaries, statistics.JobInsights)."""

    pieces: beam.PCollection
    sizes: beam.PCollection


class TableRows(beam.PTransform):
    """{table name: its batches of rows, or a tuple of such PCollections} in; TablePieces out. Each producer's
    rows are made Arrow, sized, and spilled, where they are made: a Flatten of several stages' outputs is a buffer
    that the local runner holds whole."""

    def __init__(self, tables: dict[str, Table], spill: str | None = None):
        super().__init__()
        self.tables = tables
        self.spill = spill  # where the rows wait for the sizes and cross the shard grouping as files, or None

    def expand(self, elements: dict) -> TablePieces:
        pieces, sizes = [], []
        for name in self.tables:
            produced = elements[name] if isinstance(elements[name], tuple) else (elements[name],)
            for index, rows in enumerate(produced):
                label = f"{name}{index}" if index else name
                tagged = rows | f"AsArrow{label}" >> beam.Map(_AsArrow(self.tables), name)
                sizes.append(tagged | f"RowBytes{label}" >> beam.Map(_bytes))
                if self.spill is not None:
                    # Written to files before they wait for the tables' sizes, which the local runner would hold.
                    tagged = (
                        tagged
                        | f"AsBatches{label}" >> beam.Map(_as_batch)
                        | f"SpillRows{label}" >> SpillBatches(self.spill, _TABLES)
                    )
                pieces.append(tagged)
        return TablePieces(pieces | "AllTables" >> beam.Flatten(), sizes | "AllRowBytes" >> beam.Flatten())


class WriteShards(beam.PTransform):
    """TablePieces' pieces in, with `totals` (a PCollection of one {table name: estimated bytes}); {table name:
    ShardInfo per written file} out. All rows with one shard key land in one file, rows in a file are sorted, and
    each table's shard count comes from its data size unless fixed: output bytes depend on the data alone, not on
    workers or bundles. Every shard of the count is written, empty ones too. The tables share one grouping by
    shard."""

    def __init__(
        self,
        directory: str,
        tables: dict[str, Table],
        totals: beam.PCollection,
        prefix: str = "part",
        spill: str | None = None,
    ):
        super().__init__()
        self.spill = spill  # where the rows crossed TableRows as files, or None
        self.directory = directory
        self.tables = tables
        self.totals = totals
        self.prefix = prefix

    def expand(self, waiting):
        totals = beam.pvalue.AsSingleton(self.totals)
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
