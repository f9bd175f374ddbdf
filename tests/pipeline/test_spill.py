import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from mrtcurate.pipeline import spill
from mrtcurate.pipeline.coders import CandidateCoder, PlainValuesCoder
from mrtcurate.pipeline.spill import GroupBatches, SegmentWriter, read_segments
from mrtcurate.schemas import Candidate
from tests.helpers import local_pipeline


def _candidate(index: int) -> Candidate:
    return Candidate(f"p{index % 7}", f"r{index}", f"prompt {index % 7}", f"answer {index}", float(index), "src")


def test_a_writer_holds_items_up_to_its_limit_then_writes_one_file_of_one_segment_per_key(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "ITEMS_PER_FILE", 10)
    writer = SegmentWriter(str(tmp_path), CandidateCoder())
    segments = []
    for index in range(25):
        segments += writer.add(index % 3, [_candidate(index)])
    assert len(list(tmp_path.iterdir())) == 2 and len(segments) == 6  # two files of three keys; five items held
    segments += writer.flush()
    assert len(list(tmp_path.iterdir())) == 3
    by_key: dict[int, list] = {}
    for key, segment in segments:
        (batch,) = read_segments([segment], CandidateCoder())
        by_key.setdefault(key, []).extend(batch)
    assert {key: sorted(c.response_id for c in items) for key, items in by_key.items()} == {
        key: sorted(f"r{i}" for i in range(25) if i % 3 == key) for key in range(3)
    }
    assert by_key[1][0] == _candidate(1)  # the whole candidate comes back, not only its id


@pytest.mark.parametrize("keyed", [False, True], ids=["batches-in", "items-in"])
def test_a_grouping_through_files_gives_what_a_plain_grouping_gives(tmp_path, monkeypatch, keyed):
    monkeypatch.setattr(spill, "ITEMS_PER_FILE", 16)  # many files, a key spread over several
    items = [f"item {index}" for index in range(200)]

    def grouped(directory):
        with local_pipeline() as pipeline:
            created = pipeline | f"Create{directory is None}" >> beam.Create(items)
            if keyed:
                grouping = GroupBatches(directory, PlainValuesCoder(), keyed=lambda item: (len(item) % 4, item))
            else:
                created = created | beam.Map(lambda item: (len(item) % 4, [item, item.upper()]))
                grouping = GroupBatches(directory, PlainValuesCoder())
            result = (
                created | grouping | beam.MapTuple(lambda key, batches: (key, sorted(i for b in batches for i in b)))
            )
            expected = {}
            for item in items:
                expected.setdefault(len(item) % 4, []).extend([item] if keyed else [item, item.upper()])
            assert_that(result, equal_to([(key, sorted(values)) for key, values in expected.items()]))

    grouped(None)
    grouped(str(tmp_path / "spill"))
    assert len(list((tmp_path / "spill").glob("*.segments"))) >= 200 // 16


def test_the_local_job_groups_through_files_and_dataflow_does_not(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from mrtcurate.pipeline.graph import spill_folder

    assert spill_folder(local_pipeline(), str(tmp_path)) == str(tmp_path / ".shuffle")
    dataflow = beam.Pipeline(
        options=PipelineOptions(
            [
                "--runner=DataflowRunner",
                "--project=mrt-project",
                "--region=us-central1",
                "--temp_location=gs://bucket/tmp",
                "--dry_run=True",
            ]
        )
    )
    assert spill_folder(dataflow, "gs://bucket/out") is None


def test_a_writer_of_arrow_tables_flushes_by_their_rows(tmp_path, monkeypatch):
    import pyarrow as pa

    from mrtcurate.pipeline.coders import ArrowTablesCoder

    monkeypatch.setattr(spill, "ITEMS_PER_FILE", 100)
    writer = SegmentWriter(str(tmp_path), ArrowTablesCoder())
    segments = []
    for index in range(5):  # 5 tables of 30 rows: the limit is reached at the fourth, not after 100 tables
        segments += writer.add("rows", [pa.table({"n": list(range(index * 30, index * 30 + 30))})])
    assert len(list(tmp_path.iterdir())) == 1 and len(segments) == 1
    segments += writer.flush()
    (first,), (last,) = (read_segments([segment], ArrowTablesCoder()) for _, segment in segments)
    assert len(first) == 4 and pa.concat_tables([*first, *last])["n"].to_pylist() == list(range(150))
