import gzip
import io
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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


def complete_lines_before_the_cut(compressed: bytes) -> int:
    """What zcat recovers: every complete line in the bytes that decompress before the break."""
    decompressor = zlib.decompressobj(wbits=31)
    return decompressor.decompress(compressed).count(b"\n")


@pytest.mark.parametrize(("records", "fraction"), [(200, 2 / 3), (2000, 1 / 2), (5, 0.9)])
def test_truncated_gzip_keeps_every_complete_line_and_rejects_the_break_once(records, fraction):
    whole = gzip.compress(b"".join(b'{"row": %d, "pad": "%s"}\n' % (i, b"y" * 50) for i in range(records)))
    cut = whole[: int(len(whole) * fraction)]
    *good, last = parse(cut, path="f.jsonl.gz")
    assert good and all(isinstance(item, RawRecord) for item in good)
    assert len(good) == complete_lines_before_the_cut(cut)
    assert [item.fields["row"] for item in good] == list(range(len(good)))
    assert isinstance(last, Reject) and last.reason == "truncated_gzip" and last.source_row == len(good) + 1


def test_gzip_members_concatenated_are_one_stream_and_trailing_garbage_is_a_break():
    two = gzip.compress(b'{"a": 1}\n') + gzip.compress(b'{"a": 2}\n')
    assert [item.fields["a"] for item in parse(two, path="f.jsonl.gz")] == [1, 2]
    assert reasons(parse(two + b"garbage", path="f.jsonl.gz")) == [("ok", 1), ("ok", 2), ("truncated_gzip", 3)]


def test_gz_name_without_gzip_bytes_is_not_gzip():
    assert reasons(parse(b'{"a": 1}\n', path="f.jsonl.gz")) == [("not_gzip", None)]
    assert parse(b"", path="f.jsonl.gz") == []


def test_byte_order_mark_and_deep_nesting():
    data = b'\xef\xbb\xbf{"a": 1}\n' + b"[" * 10_000 + b"\n" + b'{"b": ' + b"[" * 5000 + b"]" * 5000 + b"}\n"
    items = parse(data, max_chars=100_000)
    assert reasons(items) == [("ok", 1), ("invalid_json", 2), ("invalid_json", 3)]
    assert items[0].fields == {"a": 1} and "nested deeper" in items[1].detail
    header = parse(b"\xef\xbb\xbfprompt,response\np,r\n", "csv", "f.csv")
    assert header[0].fields == {"prompt": "p", "response": "r"}


def test_csv_field_over_pythons_limit_is_too_large_and_later_rows_are_read():
    data = b"prompt,response\np," + b"x" * 200_000 + b"\nq,short\n"
    items = parse(data, "csv", "f.csv", max_chars=1000)
    assert reasons(items) == [("record_too_large", 2), ("ok", 3)]
    assert items[1].fields == {"prompt": "q", "response": "short"}
    assert reasons(parse(data, "csv", "f.csv", max_chars=300_000)) == [("ok", 2), ("ok", 3)]


def test_csv_rows_checked_for_column_count_and_utf8():
    data = b'prompt,response,score\n"multi\nline",ok,1\na,b\nc,"\xfe",2\nd,e,3,extra\nf,g,4\n'
    items = parse(data, "csv", "f.csv")
    assert reasons(items) == [
        ("ok", 3),
        ("csv_column_count", 4),
        ("invalid_utf8", 5),
        ("csv_column_count", 6),
        ("ok", 7),
    ]
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


def test_one_inflated_line_is_rejected_in_bounded_memory_and_the_next_is_read():
    # Issue 20: 100 KB of gzip inflating to one 100 MB line peaked at 2.4 GB.
    import tracemalloc

    huge = b'{"prompt": "p", "response": "' + b"a" * 100_000_000 + b'"}\n' + b'{"prompt": "p", "response": "ok"}\n'
    packed = gzip.compress(huge, compresslevel=9)
    assert len(packed) < 200_000
    tracemalloc.start()
    try:
        records = list(iter_records(io.BytesIO(packed), "jsonl", "big.jsonl.gz", max_chars=100_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000, peak
    assert [type(record).__name__ for record in records] == ["Reject", "RawRecord"]
    assert records[0].reason == "record_too_large" and "100,000,031 bytes on one line" in records[0].detail
    assert len(records[0].record) == 400_004 and records[1].row == 2


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_oversized_line_never_swallows_the_rows_after_it(fmt):
    lines = (
        [b'"prompt","response"', b'"p","' + b'x"y' * 50 + b'"', b'"q","fine"']
        if fmt == "csv"
        else [b'{"a": "' + b"x" * 150 + b'"}', b'{"a": 1}']
    )
    records = list(iter_records(io.BytesIO(b"\n".join(lines) + b"\n"), fmt, f"f.{fmt}", max_chars=20))
    assert [getattr(record, "reason", "record") for record in records] == ["record_too_large", "record"]
    assert records[-1].row == len(lines)


def test_only_the_fingerprinted_bytes_are_read_whole_or_in_parts():
    # Issue 20: lines appended during the run were counted though the manifest recorded the old size.
    from mrtcurate.ingest.formats import RowTally

    original = b"".join(b'{"prompt": "p%d", "response": "r"}\n' % index for index in range(50))
    stream = io.BytesIO(original + b'{"prompt": "late", "response": "r"}\n')
    assert len(list(iter_records(stream, "jsonl", "a.jsonl", 1000, size=len(original)))) == 50
    for gz in (False, True):
        data = gzip.compress(original) if gz else original
        appended = data + (
            gzip.compress(b'{"prompt": "late", "response": "r"}\n') if gz else b'{"prompt": "late", "response": "r"}\n'
        )
        assert (
            len(
                list(
                    iter_records(io.BytesIO(appended), "jsonl", "a.jsonl.gz" if gz else "a.jsonl", 1000, size=len(data))
                )
            )
            == 50
        )
    half = len(original) // 2
    parts = [(0, half), (half, None)]
    rows = [
        list(
            iter_records(io.BytesIO(original + b"{}\n" * 5), "jsonl", "a.jsonl", 1000, part, RowTally(), len(original))
        )
        for part in parts
    ]
    assert sum(len(part) for part in rows) == 50
