import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from mrtcurate.pipeline.statistics import SumPerKey
from mrtcurate.pipeline.write import TARGET_SHARD_BYTES, Table, TableRows, WriteShards, shard_count
from mrtcurate.schemas import REJECTS_SCHEMA
from tests.helpers import local_pipeline


def write_tables(elements: dict, directory, tables: dict, spill=None) -> dict:
    """The job's writer: rows to Arrow pieces, their sizes summed per table (in the job, by statistics.JobInsights)
    and the pieces written by shard."""
    rows = elements | "Rows" >> TableRows(tables, spill)
    totals = rows.sizes | beam.Map(lambda sized: sized[1]) | "TotalBytes" >> beam.CombineGlobally(SumPerKey())
    return rows.pieces | "Write" >> WriteShards(str(directory), tables, totals, spill=spill)


def test_shard_count_by_size_or_fixed():
    assert shard_count(0, None) == 1
    assert shard_count(TARGET_SHARD_BYTES + 1, None) == 2
    assert shard_count(10, 7) == 7


def test_rows_sharded_by_key_sorted_and_checksummed(tmp_path):
    rows = [
        {"record": f"r{i}", "reason": "invalid_json", "detail": "", "source_file": f"f{i % 5}", "source_row": 100 - i}
        for i in range(40)
    ]
    with local_pipeline() as pipeline:
        table = Table("rejects", REJECTS_SCHEMA, "source_file", ("source_row",), shards=3)
        infos = write_tables({"rejects": pipeline | beam.Create([[row] for row in rows])}, tmp_path, {"rejects": table})
        infos = infos["rejects"]
        assert_that(infos | beam.Map(lambda info: info.rows) | beam.combiners.ToList() | beam.Map(sum), equal_to([40]))
    files = sorted((tmp_path / "rejects").glob("part-*-of-00003.parquet"))
    assert files
    for path in files:
        table = pq.read_table(path).to_pylist()
        assert [r["source_row"] for r in table] == sorted(r["source_row"] for r in table)
        for source in {r["source_file"] for r in table}:
            assert sum(r["source_file"] == source for r in table) == 8  # a key never splits across shards


@pytest.mark.parametrize(("rows", "shards", "expected"), [(2, 5, 5), (0, None, 1), (0, 3, 3)])
def test_every_shard_of_the_count_is_written_with_the_schema_even_empty(tmp_path, rows, shards, expected):
    # Issue 20: --shards 50 on 5 rows wrote part-00015-of-00050 and part-00049-of-00050 only, and a table with
    # no rows (no rejects) was not written at all, so reading `rejects/*.parquet` failed.
    records = [
        {"record": f"r{i}", "reason": "invalid_json", "detail": "", "source_file": f"f{i}", "source_row": i}
        for i in range(rows)
    ]
    with local_pipeline() as pipeline:
        table = Table("rejects", REJECTS_SCHEMA, "source_file", ("source_row",), shards=shards)
        write_tables(
            {"rejects": pipeline | beam.Create([[record] for record in records])}, tmp_path, {"rejects": table}
        )
    files = sorted((tmp_path / "rejects").glob("*.parquet"))
    assert [path.name for path in files] == [f"part-{i:05d}-of-{expected:05d}.parquet" for i in range(expected)]
    table = pq.read_table(tmp_path / "rejects")
    assert table.num_rows == rows and table.schema.names == REJECTS_SCHEMA.names


@pytest.mark.parametrize("spilled", [False, True], ids=["rows-shuffled", "rows-through-files"])
def test_tables_share_one_writer_and_batches_split_by_shard(tmp_path, spilled):
    # Batches of many keys and batches of one row go through one grouping; each table keeps its own
    # shard count, and a key's rows never split across the shards of its table. Through files (the local runner's
    # way, pipeline/spill.py), the same files come out.
    rows = [
        {"record": f"r{i}", "reason": "invalid_json", "detail": "", "source_file": f"f{i % 7}", "source_row": i}
        for i in range(70)
    ]
    batches = [rows[start : start + 9] for start in range(0, 70, 9)]
    tables = {
        "plain": Table("plain", REJECTS_SCHEMA, "source_file", ("source_row",), shards=2),
        "batched": Table("batched", REJECTS_SCHEMA, "source_file", ("source_row",), shards=3),
    }
    with local_pipeline() as pipeline:
        elements = {
            "plain": pipeline | "OneRowBatches" >> beam.Create([[row] for row in rows]),
            "batched": pipeline | "Batches" >> beam.Create(batches),
        }
        write_tables(elements, tmp_path, tables, spill=str(tmp_path / "spill") if spilled else None)
    assert any((tmp_path / "spill").glob("*.segments")) == spilled
    for name, count in (("plain", 2), ("batched", 3)):
        files = sorted((tmp_path / name).glob("*.parquet"))
        assert [path.name for path in files] == [f"part-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
        by_file = [pq.read_table(path).to_pylist() for path in files]
        assert sorted(row["source_row"] for table in by_file for row in table) == list(range(70))
        for source in {row["source_file"] for row in rows}:
            assert sum(any(row["source_file"] == source for row in table) for table in by_file) == 1
