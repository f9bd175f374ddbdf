"""Large files read in parts give the same records, reject rows and output bytes as read whole."""

import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrtcurate.ids import identity_key, stable_id
from mrtcurate.ingest import files
from mrtcurate.ingest.formats import RowTally, iter_lines, part_lines, read_chunks
from mrtcurate.schemas import InputFile
from tests.helpers import curate, read_rows, shard_bytes


def messy_jsonl(rng: random.Random, lines: int) -> bytes:
    out = [b"\xef\xbb\xbf"]
    for index in range(lines):
        kind = rng.random()
        if kind < 0.05:
            out.append(b"\n")  # blank line
        elif kind < 0.1:
            out.append(b"{not json\r\n")
        else:
            record = {"prompt": f"p{index % 37}", "response": "r" * rng.randrange(1, 300) + str(index)}
            out.append(json.dumps(record).encode() + (b"\r\n" if kind < 0.2 else b"\n"))
    out.append(b'{"prompt": "last", "response": "no newline"}')
    return b"".join(out)


@pytest.mark.parametrize("seed", range(6))
def test_parts_at_any_offsets_hold_every_line_once(seed):
    rng = random.Random(seed)
    data = messy_jsonl(rng, 400)
    whole = list(iter_lines(read_chunks(io.BytesIO(data)), 1 << 20))
    cuts = sorted({0, *rng.sample(range(1, len(data)), 12)})
    parts, rows = [], 0
    for start, end in zip(cuts, [*cuts[1:], None]):
        tally = RowTally()
        parts += list(part_lines(io.BytesIO(data), start, end, tally, 1 << 20))
        rows += tally.rows
    assert parts == whole and rows == len(whole)


@pytest.mark.slow
def test_a_split_jsonl_and_parquet_give_the_same_bytes_as_whole_files(tmp_path, monkeypatch):
    rng = random.Random(7)
    jsonl = tmp_path / "in" / "big.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_bytes(messy_jsonl(rng, 3000))
    table = pa.table(
        {"prompt": [f"q{i % 50}" for i in range(2000)], "response": [f"a{i}" if i % 97 else "" for i in range(2000)]}
    )
    parquet = tmp_path / "in" / "big.parquet"
    pq.write_table(table, parquet, row_group_size=150)

    whole = curate([jsonl, parquet], tmp_path / "whole", k=2, selector="random", plan=False, near_dup="off")
    monkeypatch.setattr(files, "SPLIT_BYTES", 5000)
    assert len(files.plan_splits(InputFile(str(jsonl), "jsonl", jsonl.stat().st_size, ""))) > 20
    assert len(files.plan_splits(InputFile(str(parquet), "parquet", parquet.stat().st_size, ""))) > 3
    split = curate([jsonl, parquet], tmp_path / "split", k=2, selector="random", plan=False, near_dup="off")

    assert whole.manifest["counts"] == split.manifest["counts"] and whole.manifest["counts"]["rejected"] > 100
    assert shard_bytes(tmp_path / "whole") == shard_bytes(tmp_path / "split")
    assert read_rows(tmp_path / "whole", "rejects") == read_rows(tmp_path / "split", "rejects")
    # The rows named in rejects are the lines of the file, whichever part read them.
    lines = jsonl.read_bytes().split(b"\n")
    for reject in read_rows(tmp_path / "split", "rejects"):
        if reject["source_file"].endswith(".jsonl") and reject["reason"] == "invalid_json":
            assert lines[reject["source_row"] - 1].rstrip(b"\r").decode() == reject["record"]
    # So are the rows named in dropped/, made to count from the file's start once every part is read.
    dropped = read_rows(tmp_path / "split", "dropped")
    assert dropped == read_rows(tmp_path / "whole", "dropped") and len(dropped) > 1000
    parquet_rows = table.to_pylist()
    for row in dropped:
        if row["source_file"].endswith(".jsonl"):
            record = json.loads(lines[row["source_row"] - 1].decode("utf-8-sig"))
        else:
            record = parquet_rows[row["source_row"] - 1]
        assert stable_id(identity_key(record["response"])) == row["response_id"]


def test_gzip_and_csv_files_are_read_whole_however_large(monkeypatch):
    monkeypatch.setattr(files, "SPLIT_BYTES", 10)
    for path, fmt in (("big.jsonl.gz", "jsonl"), ("big.csv", "csv"), ("big.tsv.gz", "csv")):
        (split,) = files.plan_splits(InputFile(path, fmt, 10_000, ""))
        assert split.whole
    parts = files.plan_splits(InputFile("big.jsonl", "jsonl", 35, ""))
    assert [(part.start, part.end) for part in parts] == [(0, 10), (10, 20), (20, 30), (30, None)]


@pytest.mark.slow
def test_a_split_message_table_joins_the_same_trees_and_names_the_same_rows(tmp_path, monkeypatch):
    rows = []
    for tree in range(60):
        rows.append({"message_id": f"{tree}", "parent_id": None, "role": "prompter", "text": f"question {tree}"})
        for reply in range(3):
            rows.append(
                {
                    "message_id": f"{tree}.{reply}",
                    "parent_id": f"{tree}",
                    "role": "assistant",
                    "text": f"answer {reply} to {tree}",
                    "rank": reply,
                }
            )
        rows.append(
            {"message_id": f"{tree}.x", "parent_id": f"gone{tree}", "role": "assistant", "text": "orphan", "rank": 0}
        )
    table = tmp_path / "in" / "messages.jsonl"
    table.parent.mkdir()
    table.write_text("".join(json.dumps(row) + "\n" for row in rows))
    # No tree id: each message finds its root by parent id (pipeline/trees.py's pointer doubling).
    options = {
        "layout": "tree",
        "message_id_field": "message_id",
        "parent_field": "parent_id",
        "k": 2,
        "plan": False,
        "near_dup": "off",
    }
    whole = curate([table], tmp_path / "whole", **options)
    monkeypatch.setattr(files, "SPLIT_BYTES", 2000)
    assert len(files.plan_splits(InputFile(str(table), "jsonl", table.stat().st_size, ""))) > 5
    split = curate([table], tmp_path / "split", **options)
    assert whole.manifest["counts"] == split.manifest["counts"] and split.manifest["rejected_by_reason"] == {
        "missing_parent": 60
    }
    assert shard_bytes(tmp_path / "whole") == shard_bytes(tmp_path / "split")
    lines = table.read_text().splitlines()
    for reject in read_rows(tmp_path / "split", "rejects"):
        assert lines[reject["source_row"] - 1] == reject["record"]


@pytest.mark.parametrize("seed", range(3))
def test_parts_cut_over_long_lines_as_the_whole_file_does(seed):
    # Issue 20: a line over the read limit is held as its head only; parts must agree with the whole read.
    rng = random.Random(seed)
    data = messy_jsonl(rng, 200)
    limit = 40

    def seen(lines):
        return [(bytes(line), getattr(line, "size", None)) for line in lines]

    whole = seen(iter_lines(read_chunks(io.BytesIO(data)), limit))
    assert any(size for _, size in whole)
    cuts = sorted({0, *rng.sample(range(1, len(data)), 12)})
    parts = []
    for start, end in zip(cuts, [*cuts[1:], None]):
        parts += seen(part_lines(io.BytesIO(data), start, end, RowTally(), limit))
    assert parts == whole
