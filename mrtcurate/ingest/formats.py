"""Turn one file's byte stream into records with their row numbers, or reject rows saying what was wrong.

Formats are read by hand (json, csv, pyarrow) rather than through Beam's text sources because every
bad line must become a reject with its row number, and a truncated gzip must end the file with a reject
instead of failing the whole job.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import pyarrow.parquet as pq

from mrtcurate.schemas import Reject, RejectReason

_CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class RawRecord:
    fields: dict
    text: str
    row: int


class TruncatedStream(Exception):
    def __init__(self, partial: bytes, cause: Exception):
        super().__init__(str(cause))
        self.partial = partial


def format_for_path(path: str) -> str:
    name = path.lower()
    for suffix in (".gz", ".gzip"):
        name = name.removesuffix(suffix)
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise ValueError(f"cannot tell the format of {path} from its name; pass --format jsonl|parquet|csv")


def iter_records(stream: BinaryIO, fmt: str, path: str, max_chars: int) -> Iterator[RawRecord | Reject]:
    if fmt == "jsonl":
        yield from _iter_jsonl(stream, path, max_chars)
    elif fmt == "csv":
        yield from _iter_csv(stream, path, max_chars)
    elif fmt == "parquet":
        yield from _iter_parquet(stream, path, max_chars)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def iter_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines without their terminator; a stream that ends early raises TruncatedStream with the partial line."""
    pending = b""
    while True:
        try:
            chunk = stream.read(_CHUNK_BYTES)
        except (EOFError, zlib.error, OSError) as error:
            raise TruncatedStream(pending, error) from error
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r")
    if pending:
        yield pending.removesuffix(b"\r")


def _reject(text: str, reason: RejectReason, detail: str, path: str, row: int | None) -> Reject:
    return Reject(record=text, reason=reason.value, detail=detail, source_file=path, source_row=row)


def _truncation_reject(truncated: TruncatedStream, path: str, row: int) -> Reject:
    return _reject(
        truncated.partial.decode("utf-8", errors="replace"),
        RejectReason.TRUNCATED_GZIP,
        f"stream ended early after row {row - 1}: {truncated}",
        path,
        row,
    )


def _iter_jsonl(stream: BinaryIO, path: str, max_chars: int) -> Iterator[RawRecord | Reject]:
    row = 0
    try:
        for row, line in enumerate(iter_lines(stream), start=1):
            if not line.strip():
                continue  # blank lines separate nothing in JSONL and hold no record
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as error:
                yield _reject(line.decode("utf-8", errors="replace"), RejectReason.INVALID_UTF8, str(error), path, row)
                continue
            if len(text) > max_chars:
                yield _reject(text, RejectReason.RECORD_TOO_LARGE, f"{len(text)} chars > --max-chars {max_chars}", path, row)
                continue
            try:
                fields = json.loads(text)
            except json.JSONDecodeError as error:
                yield _reject(text, RejectReason.INVALID_JSON, str(error), path, row)
                continue
            if not isinstance(fields, dict):
                yield _reject(text, RejectReason.NOT_AN_OBJECT, f"a JSON {type(fields).__name__}, not an object", path, row)
                continue
            yield RawRecord(fields=fields, text=text, row=row)
    except TruncatedStream as truncated:
        yield _truncation_reject(truncated, path, row + 1)


def _iter_csv(stream: BinaryIO, path: str, max_chars: int) -> Iterator[RawRecord | Reject]:
    # surrogateescape keeps bad bytes visible as lone surrogates, so a bad row is rejected and the rest parse.
    lines = (line.decode("utf-8", errors="surrogateescape") + "\n" for line in iter_lines(stream))
    delimiter = "\t" if path.lower().removesuffix(".gz").endswith(".tsv") else ","
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    try:
        for values in reader:
            row = reader.line_num
            if header is None:
                header = values
                continue
            if not any(value.strip() for value in values):
                continue
            text = _csv_text(values, delimiter)
            if any(_has_surrogates(value) for value in values):
                yield _reject(text, RejectReason.INVALID_UTF8, "bytes that are not UTF-8", path, row)
            elif len(values) != len(header):
                yield _reject(text, RejectReason.CSV_COLUMN_COUNT, f"{len(values)} columns, header has {len(header)}", path, row)
            elif len(text) > max_chars:
                yield _reject(text, RejectReason.RECORD_TOO_LARGE, f"{len(text)} chars > --max-chars {max_chars}", path, row)
            else:
                yield RawRecord(fields=dict(zip(header, values)), text=text, row=row)
    except TruncatedStream as truncated:
        yield _truncation_reject(truncated, path, reader.line_num + 1)
    except csv.Error as error:
        yield _reject("", RejectReason.UNREADABLE_FILE, f"CSV parser stopped: {error}", path, reader.line_num)


def _csv_text(values: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(values)
    return buffer.getvalue().encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in value)


def _iter_parquet(stream: BinaryIO, path: str, max_chars: int) -> Iterator[RawRecord | Reject]:
    row = 0
    try:
        for batch in pq.ParquetFile(stream).iter_batches():
            for fields in batch.to_pylist():
                row += 1
                text = json.dumps(fields, ensure_ascii=False, default=str, allow_nan=True)
                if len(text) > max_chars:
                    yield _reject(text, RejectReason.RECORD_TOO_LARGE, f"{len(text)} chars > --max-chars {max_chars}", path, row)
                else:
                    yield RawRecord(fields=fields, text=text, row=row)
    except (OSError, ValueError) as error:  # pyarrow raises ArrowInvalid (a ValueError) or OSError on corrupt files
        yield _reject("", RejectReason.UNREADABLE_FILE, f"parquet reader stopped after row {row}: {error}", path, row + 1)

