"""Input files as the job sees them: resolved on the driver, opened through Beam's FileSystems (local
paths and object stores take the same calls)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from mrtcurate.errors import UserError
from mrtcurate.ids import stream_sha256
from mrtcurate.ingest.formats import is_gzip_path
from mrtcurate.ingest.layouts import FieldMapping
from mrtcurate.schemas import FileSplit, InputFile
from mrtcurate.schemas.records import CONTENT_CHECKSUM

# How long the driver waits for an object store's first answer: its client retries an unreachable
# store for minutes before it raises, while a reachable one answers in well under a second.
STORAGE_TIMEOUT_S = 30.0
# Uncompressed JSONL larger than this is read as several parts by several workers, and Parquet as groups
# of row groups of about this size. Gzip has no random access: a .gz file is one part.
SPLIT_BYTES = 64 << 20
T = TypeVar("T")


@dataclass(frozen=True)
class ResolvedInputs:
    files: tuple[InputFile, ...]
    mapping: FieldMapping
    with_messages: bool


def is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


def local_path(path: str) -> str:
    """The real absolute path behind a local path or file:// URL: one spelling per file, links resolved."""
    return os.path.realpath(path.removeprefix("file://"))


def open_binary(path: str):
    """A file's stored bytes. Gzip is unwrapped by the parser, not by Beam, so a truncated stream reaches
    it as a reject at a known row instead of ending the job."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def within_deadline(call: Callable[[], T], location: str, timeout_s: float | None = None) -> T:
    """`call()`'s result, or one-line UserError if it fails or gives no answer in time (no network, no
    credentials, a missing bucket). A daemon thread, so a client stuck in its retry loop cannot hold
    the process at exit."""
    timeout_s = STORAGE_TIMEOUT_S if timeout_s is None else timeout_s
    outcome: dict = {}

    def attempt():
        try:
            outcome["value"] = call()
        except Exception as error:  # noqa: BLE001 - each store's client raises its own error types
            outcome["error"] = error

    worker = threading.Thread(target=attempt, name=f"reach {location}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise UserError(
            f"cannot reach {location}: no answer within {timeout_s:g} s (network, credentials, or the bucket?)"
        )
    if isinstance(outcome.get("error"), UserError):
        raise outcome["error"]  # already the one line, from the call itself
    if "error" in outcome:
        first_line = (str(outcome["error"]).strip().splitlines() or [type(outcome["error"]).__name__])[0]
        raise UserError(f"cannot reach {location}: {first_line[:300]}")
    return outcome["value"]


def checksum(path: str, size: int, last_updated: float | None) -> str:
    """A fingerprint that changes when the file does, without reading a remote object on the driver:
    local files get the sha256 of their bytes; object-store files the store's own checksum (GCS crc32c,
    S3 ETag), or their size and modification time where the store keeps none."""
    if is_local(path):
        with open_binary(path) as stream:
            return f"{CONTENT_CHECKSUM}{stream_sha256(stream)}"
    scheme = FileSystems.get_scheme(path)
    try:
        stored = within_deadline(lambda: FileSystems.checksum(path), path)
    except UserError:
        stored = None
    if stored:
        return f"object:{scheme}:{stored}"
    return f"object:{scheme}:size={size},updated={last_updated}"


def plan_splits(file: InputFile) -> list[FileSplit]:
    """The parts one input file is read in (on the driver: for Parquet, its footer is read here)."""
    if is_gzip_path(file.path) or file.bytes <= SPLIT_BYTES:
        return [FileSplit(file)]
    if file.format == "jsonl":
        starts = range(0, file.bytes, SPLIT_BYTES)
        ends = [*starts[1:], None]
        return [FileSplit(file, index, start, end) for index, (start, end) in enumerate(zip(starts, ends))]
    if file.format == "parquet":
        return _row_group_splits(file)
    return [FileSplit(file)]  # CSV: a quoted field may hold newlines, so no byte offset is known to start a row


def _row_group_splits(file: InputFile) -> list[FileSplit]:
    with open_binary(file.path) as stream:
        metadata = pq.ParquetFile(stream).metadata
    splits, start, size = [], 0, 0
    for group in range(metadata.num_row_groups):
        size += metadata.row_group(group).total_byte_size
        if size >= SPLIT_BYTES or group == metadata.num_row_groups - 1:
            splits.append(FileSplit(file, len(splits), start, group + 1))
            start, size = group + 1, 0
    return splits or [FileSplit(file)]
