"""Turn one file's byte stream into records with their row numbers, or reject rows saying what was wrong.

Formats are read by hand (json, csv, pyarrow) rather than through Beam's text sources because every
bad line must become a reject with its row number, and a truncated gzip must end the file with a reject
instead of failing the whole job.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from mrtcurate.schemas import Reject, RejectReason

_CHUNK_BYTES = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
# Python's csv module stops the whole file at a field over 131,072 characters. Fields are bounded by
# --max-chars instead (a longer record becomes a record_too_large reject), as JSONL lines are.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class RawRecord:
    fields: dict
    text: str
    row: int


class TruncatedStream(Exception):
    def __init__(self, partial: bytes, cause: Exception | str, reason: RejectReason = RejectReason.TRUNCATED_GZIP):
        super().__init__(str(cause))
        self.partial = partial
        self.reason = reason


class OversizedLine(bytes):
    """A line longer than the read limit: only its first `limit` bytes were kept, `size` is its length."""

    size: int

    @classmethod
    def of(cls, head: bytes, size: int) -> OversizedLine:
        line = cls(head)
        line.size = size
        return line


def line_limit(max_chars: int) -> int:
    """Bytes of one line held in memory. UTF-8 spends at most 4 bytes per character, so a longer line holds
    more than --max-chars characters and is a record_too_large reject whatever the rest of it says."""
    return 4 * max_chars + 4


class _Line:
    """The pieces of one line as chunks bring them; past `limit` bytes only its head is kept."""

    def __init__(self, limit: int):
        self.limit, self.pieces, self.kept, self.size = limit, [], 0, 0

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.kept < self.limit:
            self.pieces.append(piece[: self.limit - self.kept])
            self.kept += len(self.pieces[-1])

    def take(self) -> tuple[bytes, int]:
        line, size = b"".join(self.pieces), self.size
        self.pieces, self.kept, self.size = [], 0, 0
        return line, size


def _finished(line: bytes, size: int, limit: int) -> bytes:
    if size <= limit:
        return line.removesuffix(b"\r")
    return OversizedLine.of(line[:limit], size)


class NotGzip(Exception):
    """A file named .gz whose first bytes are not gzip's magic number."""


def is_gzip_path(path: str) -> bool:
    return path.lower().endswith((".gz", ".gzip"))


def read_chunks(stream: BinaryIO, limit: int | None = None) -> Iterator[bytes]:
    """The stream's bytes; with `limit`, only its first `limit` (the size fingerprinted before the job: lines
    appended to the file during the run are not read, so the manifest's checksum describes what was)."""
    left = limit
    while left is None or left > 0:
        chunk = stream.read(_CHUNK_BYTES if left is None else min(_CHUNK_BYTES, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


def gunzip_chunks(stream: BinaryIO, size: int | None = None) -> Iterator[bytes]:
    """Decompressed bytes of a (possibly multi-member) gzip stream, as they come.

    Not gzip.GzipFile: on a truncated or corrupt stream its read() raises and drops what it had already
    decompressed for that call, so the complete lines just before the break were lost. zlib hands over
    every byte it could decompress before the error is raised.
    """
    decompressor, member_open, first = None, False, True
    for chunk in read_chunks(stream, size):
        if first and not chunk.startswith(_GZIP_MAGIC[: len(chunk)]):
            raise NotGzip(f"starts with bytes {chunk[:2].hex()}, not gzip's 1f8b")
        first = False
        while chunk:
            if not member_open:
                # Concatenated gzip files (cat a.gz b.gz) are one valid stream: each member starts afresh.
                decompressor, member_open = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), True
            try:
                # Bounded: 100 KB of gzip can inflate to 100 MB, and no more than a chunk is held at once.
                out = decompressor.decompress(chunk, _CHUNK_BYTES)
            except zlib.error as error:
                raise TruncatedStream(b"", f"corrupt gzip data: {error}") from error
            if out:
                yield out
            if decompressor.unconsumed_tail:
                chunk = decompressor.unconsumed_tail
                continue
            if not decompressor.eof:
                break
            chunk, member_open = decompressor.unused_data, False
    if member_open:
        raise TruncatedStream(b"", "compressed stream ended before its end marker")


def decompressed_chunks(stream: BinaryIO, path: str, size: int | None = None) -> Iterator[bytes]:
    """A file's content (its first `size` stored bytes) as stored or, for a name ending in .gz, unwrapped."""
    return gunzip_chunks(stream, size) if is_gzip_path(path) else read_chunks(stream, size)


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


@dataclass
class RowTally:
    """Rows a part of a file holds, blank lines included: the next part's rows start after them."""

    rows: int = 0


def iter_records(
    stream: BinaryIO,
    fmt: str,
    path: str,
    max_chars: int,
    part: tuple[int, int | None] = (0, None),
    tally: RowTally | None = None,
    size: int | None = None,
) -> Iterator[RawRecord | Reject]:
    """Records of one file as stored (gzip, by its name, is unwrapped here). Never raises on bad content:
    every problem is a reject, so one bad file or record never stops a job. `part`: JSONL lines that
    start in bytes [start, end), or Parquet row groups [start, end), rows numbered from 1 within it and
    counted into `tally`. `size`: read no further than this many stored bytes (the size fingerprinted)."""
    tally = tally or RowTally()
    try:
        if fmt == "parquet":
            yield from _iter_parquet(stream, path, max_chars, part, tally)
            return
        limit = line_limit(max_chars)
        whole = part == (0, None)
        lines = (
            iter_lines(decompressed_chunks(stream, path, size), limit)
            if whole
            else part_lines(stream, *part, tally, limit, size)
        )
        if fmt == "jsonl":
            yield from jsonl_records(lines, path, max_chars)
        elif fmt == "csv":
            yield from _iter_csv(lines, path, max_chars)
        else:
            raise ValueError(f"unknown format {fmt!r}")
    except NotGzip as error:
        yield _reject("", RejectReason.NOT_GZIP, f"named .gz but {error}", path, None)


def iter_lines(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """Lines without their terminator (and without a UTF-8 byte-order mark at the very start); a line over
    `limit` bytes as an OversizedLine. A stream that breaks off raises TruncatedStream carrying the partial
    line, after every complete line before it."""
    pending = _Line(limit)
    first = True
    try:
        for line, size in _complete_lines(chunks, pending):
            yield _finished(*(_without_bom(line, size) if first else (line, size)), limit)
            first = False
    except TruncatedStream as truncated:
        raise TruncatedStream(pending.take()[0], truncated, truncated.reason) from truncated
    except OSError as error:  # the storage failed mid-read: the rest of the file is unreadable, not truncated
        raise TruncatedStream(pending.take()[0], error, RejectReason.UNREADABLE_FILE) from error
    last, size = pending.take()
    if size:
        yield _finished(*(_without_bom(last, size) if first else (last, size)), limit)


def _complete_lines(chunks: Iterable[bytes], pending: _Line) -> Iterator[tuple[bytes, int]]:
    """Each complete line of the chunks with its whole size; the unfinished tail stays in `pending`. A line is
    joined only at its end, so one spanning many chunks costs its length once."""
    for chunk in chunks:
        *lines, tail = chunk.split(b"\n")
        for index, piece in enumerate(lines):
            if index == 0:
                pending.add(piece)
                yield pending.take()
            else:
                yield piece, len(piece)
        pending.add(tail)


def _without_bom(line: bytes, size: int) -> tuple[bytes, int]:
    """The file's first line without a UTF-8 byte-order mark (its size counted without it too)."""
    return (line[len(_UTF8_BOM) :], size - len(_UTF8_BOM)) if line.startswith(_UTF8_BOM) else (line, size)


def part_lines(
    stream: BinaryIO, start: int, end: int | None, tally: RowTally, limit: int, size: int | None = None
) -> Iterator[bytes]:
    """The lines whose first byte lies in [start, end) of an uncompressed file, as iter_lines gives them:
    the line running into `start` belongs to the part before, the line running past `end` to this one."""
    if start > 0:
        stream.seek(start - 1)  # from the byte before: a line that starts exactly at `start` is ours
    line_start = max(start - 1, 0)
    pending = _Line(limit)

    def ours(line: bytes, length: int) -> bytes:
        tally.rows += 1
        return _finished(*(_without_bom(line, length) if line_start == 0 else (line, length)), limit)

    try:
        for line, length in _complete_lines(read_chunks(stream, None if size is None else size - line_start), pending):
            if end is not None and line_start >= end:
                return
            if line_start >= start:
                yield ours(line, length)
            line_start += length + 1
    except OSError as error:
        raise TruncatedStream(pending.take()[0], error, RejectReason.UNREADABLE_FILE) from error
    last, length = pending.take()
    if length and line_start >= start and (end is None or line_start < end):
        yield ours(last, length)


def _reject(text: str, reason: RejectReason, detail: str, path: str, row: int | None) -> Reject:
    return Reject(record=text, reason=reason.value, detail=detail, source_file=path, source_row=row)


def _oversized_reject(line: OversizedLine, max_chars: int, path: str, row: int) -> Reject:
    return _reject(
        bytes(line).decode("utf-8", errors="replace"),
        RejectReason.RECORD_TOO_LARGE,
        f"{line.size:,} bytes on one line > --max-chars {max_chars} (only its first {len(line):,} bytes were read into memory and kept here)",
        path,
        row,
    )


def _truncation_reject(truncated: TruncatedStream, path: str, row: int) -> Reject:
    return _reject(
        truncated.partial.decode("utf-8", errors="replace"),
        truncated.reason,
        f"stream ended early after row {row - 1}: {truncated}",
        path,
        row,
    )


def jsonl_records(lines: Iterator[bytes], path: str, max_chars: int) -> Iterator[RawRecord | Reject]:
    row = 0
    try:
        for row, line in enumerate(lines, start=1):
            if isinstance(line, OversizedLine):
                yield _oversized_reject(line, max_chars, path, row)
                continue
            if not line.strip():
                continue  # blank lines separate nothing in JSONL and hold no record
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as error:
                yield _reject(line.decode("utf-8", errors="replace"), RejectReason.INVALID_UTF8, str(error), path, row)
                continue
            if len(text) > max_chars:
                yield _reject(
                    text, RejectReason.RECORD_TOO_LARGE, f"{len(text)} chars > --max-chars {max_chars}", path, row
                )
                continue
            try:
                fields = json.loads(text)
            except ValueError as error:  # JSONDecodeError, and an integer over Python's 4,300-digit conversion limit
                yield _reject(text, RejectReason.INVALID_JSON, str(error), path, row)
                continue
            except RecursionError:
                yield _reject(text, RejectReason.INVALID_JSON, "nested deeper than the JSON parser allows", path, row)
                continue
            if not isinstance(fields, dict):
                yield _reject(
                    text, RejectReason.NOT_AN_OBJECT, f"a JSON {type(fields).__name__}, not an object", path, row
                )
                continue
            yield RawRecord(fields=fields, text=text, row=row)
    except TruncatedStream as truncated:
        yield _truncation_reject(truncated, path, row + 1)


def csv_delimiter(path: str) -> str:
    return "\t" if path.lower().removesuffix(".gz").endswith(".tsv") else ","


def _iter_csv(lines: Iterator[bytes], path: str, max_chars: int) -> Iterator[RawRecord | Reject]:
    delimiter = csv_delimiter(path)
    fed: list[str] = []  # the physical lines of the row being parsed, for a reject's record text

    def decoded():
        for line in lines:
            if isinstance(line, OversizedLine):
                # Its head, longer than --max-chars so rejected as record_too_large, with no quote left open
                # to swallow the rows after it.
                line = bytes(line).replace(b'"', b"'")
            # surrogateescape keeps bad bytes visible as lone surrogates, so a bad row is rejected and the rest parse.
            fed.append(line.decode("utf-8", errors="surrogateescape") + "\n")
            yield fed[-1]

    reader = csv.reader(decoded(), delimiter=delimiter)
    header: list[str] | None = None
    while True:
        fed.clear()
        try:
            values = next(reader)
        except StopIteration:
            return
        except TruncatedStream as truncated:
            yield _truncation_reject(truncated, path, reader.line_num + 1)
            return
        except csv.Error as error:
            # One malformed row (a bare carriage return, say): the reader starts afresh at the next line.
            text = "".join(fed).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
            yield _reject(text, RejectReason.INVALID_CSV, f"CSV parser: {error}", path, reader.line_num)
            continue
        row = reader.line_num
        if header is None:
            header = values
            continue
        if not any(value.strip() for value in values):
            continue
        text = _csv_text(values, delimiter)
        if any(_has_surrogates(value) for value in values):
            yield _reject(text, RejectReason.INVALID_UTF8, "bytes that are not UTF-8", path, row)
        elif len(text) > max_chars:
            yield _reject(
                text, RejectReason.RECORD_TOO_LARGE, f"{len(text)} chars > --max-chars {max_chars}", path, row
            )
        elif len(values) != len(header):
            yield _reject(
                text, RejectReason.CSV_COLUMN_COUNT, f"{len(values)} columns, header has {len(header)}", path, row
            )
        else:
            yield RawRecord(fields=dict(zip(header, values)), text=text, row=row)


def csv_header(stream: BinaryIO, path: str) -> list[str]:
    """The header row of a CSV file: the fields a mapping can name, whatever its data rows hold."""
    lines = iter_lines(decompressed_chunks(stream, path), line_limit(1 << 20))
    delimiter = csv_delimiter(path)
    try:
        return next(
            csv.reader((line.decode("utf-8", errors="replace") + "\n" for line in lines), delimiter=delimiter), []
        )
    except (TruncatedStream, NotGzip, csv.Error):
        return []


def _csv_text(values: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(values)
    return buffer.getvalue().encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in value)


def _iter_parquet(
    stream: BinaryIO, path: str, max_chars: int, part: tuple[int, int | None], tally: RowTally
) -> Iterator[RawRecord | Reject]:
    row = 0
    try:
        if is_gzip_path(path):  # Parquet needs random access: a gzipped file is unwrapped into memory
            stream = pa.BufferReader(b"".join(gunzip_chunks(stream)))
        parquet = pq.ParquetFile(stream)
        start, end = part
        groups = range(start, parquet.num_row_groups if end is None else end)
        for batch in parquet.iter_batches(row_groups=list(groups)):
            for fields in batch.to_pylist():
                row += 1
                tally.rows += 1
                text = json.dumps(fields, ensure_ascii=False, default=str, allow_nan=True)
                if len(text) > max_chars:
                    yield _reject(
                        text, RejectReason.RECORD_TOO_LARGE, f"{len(text)} chars > --max-chars {max_chars}", path, row
                    )
                else:
                    yield RawRecord(fields=fields, text=text, row=row)
    except TruncatedStream as truncated:
        yield _reject("", truncated.reason, f"parquet file's gzip stream: {truncated}", path, None)
    except (OSError, ValueError) as error:  # pyarrow raises ArrowInvalid (a ValueError) or OSError on corrupt files
        yield _reject(
            "", RejectReason.UNREADABLE_FILE, f"parquet reader stopped after row {row}: {error}", path, row + 1
        )
