"""Input files as the job sees them: resolved on the driver, opened through Beam's FileSystems (local
paths and object stores take the same calls)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from mrtcurate.ingest.layouts import FieldMapping
from mrtcurate.schemas import InputFile


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
