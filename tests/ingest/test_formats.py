import gzip
import io

import pyarrow as pa
import pyarrow.parquet as pq

from mrtcurate.ingest.formats import RawRecord, format_for_path, iter_records
from mrtcurate.schemas import Reject


def parse(data: bytes, fmt: str = "jsonl", path: str = "f.jsonl", max_chars: int = 1000):
    return list(iter_records(io.BytesIO(data), fmt, path, max_chars))


def reasons(items):
    return [(item.reason, item.source_row) if isinstance(item, Reject) else ("ok", item.row) for item in items]


def test_jsonl_bad_lines_become_rejects_with_rows():
    data = b'{"a": 1}\n\n{"a": \n[1, 2]\n{"a": "\xff"}\n' + b'{"a": "' + b"x" * 2000 + b'"}\n{"a": 2}'
    assert reasons(parse(data)) == [
        ("ok", 1),
        ("invalid_json", 3),
        ("not_an_object", 4),
        ("invalid_utf8", 5),
        ("record_too_large", 6),
        ("ok", 7),
    ]


def test_truncated_gzip_keeps_complete_rows_and_rejects_the_rest():
    whole = gzip.compress(b"".join(b'{"row": %d, "pad": "%s"}\n' % (i, b"y" * 50) for i in range(2000)))
    items = list(iter_records(gzip.GzipFile(fileobj=io.BytesIO(whole[: len(whole) // 2])), "jsonl", "f.jsonl.gz", 1000))
    *good, last = items
    assert good and all(isinstance(item, RawRecord) for item in good)
    assert [item.fields["row"] for item in good] == list(range(len(good)))
    assert isinstance(last, Reject) and last.reason == "truncated_gzip" and last.source_row == len(good) + 1


def test_csv_rows_checked_for_column_count_and_utf8():
    data = b'prompt,response,score\n"multi\nline",ok,1\na,b\nc,"\xfe",2\nd,e,3,extra\nf,g,4\n'
    items = parse(data, "csv", "f.csv")
    assert reasons(items) == [("ok", 3), ("csv_column_count", 4), ("invalid_utf8", 5), ("csv_column_count", 6), ("ok", 7)]
    assert items[0].fields == {"prompt": "multi\nline", "response": "ok", "score": "1"}


def test_parquet_rows_and_corrupt_file():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"prompt": ["p1", "p2"], "response": ["r1", "r2"]}), buffer)
    items = parse(buffer.getvalue(), "parquet", "f.parquet")
    assert [item.fields for item in items] == [{"prompt": "p1", "response": "r1"}, {"prompt": "p2", "response": "r2"}]
    corrupt = parse(buffer.getvalue()[:40], "parquet", "f.parquet")
    assert reasons(corrupt) == [("unreadable_file", 1)]


def test_format_from_extension():
    assert format_for_path("gs://b/x/data.JSONL.gz") == "jsonl"
    assert format_for_path("a.json.gz") == "jsonl"
    assert format_for_path("a.parquet") == "parquet"
    assert format_for_path("a.tsv") == "csv"
