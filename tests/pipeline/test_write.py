import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.util import assert_that, equal_to

from mrtcurate.pipeline.write import TARGET_SHARD_BYTES, WriteParquetShards, shard_count
from mrtcurate.schemas import REJECTS_SCHEMA
from tests.helpers import local_pipeline


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
        infos = (
            pipeline
            | beam.Create(rows)
            | WriteParquetShards(
                str(tmp_path), "rejects", "part", REJECTS_SCHEMA,
                shard_key=lambda r: r["source_file"], sort_key=lambda r: r["source_row"], shards=3,
            )
        )
        assert_that(infos | beam.Map(lambda info: info.rows) | beam.combiners.ToList() | beam.Map(sum), equal_to([40]))
    files = sorted((tmp_path / "rejects").glob("part-*-of-00003.parquet"))
    assert files
    for path in files:
        table = pq.read_table(path).to_pylist()
        assert [r["source_row"] for r in table] == sorted(r["source_row"] for r in table)
        for source in {r["source_file"] for r in table}:
            assert sum(r["source_file"] == source for r in table) == 8  # a key never splits across shards
