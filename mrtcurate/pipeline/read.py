"""Read and parse: every input file becomes candidates (main output), rejects, and its counts (tagged outputs).

The counts leave once per file, as data: a million parsed records are summed in the DoFn, not carried
as a million (name, 1) elements through a combine."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import apache_beam as beam
from apache_beam.metrics import Metrics

from mrtcurate.errors import InputChanged
from mrtcurate.garbage import tune_collector
from mrtcurate.ingest.columnar import BLOCK_RECORDS, block_units, reads_by_column
from mrtcurate.ingest.files import open_binary, plan_splits
from mrtcurate.ingest.formats import RawRecord, RowTally, iter_records
from mrtcurate.ingest.layouts import FieldMapping, to_units
from mrtcurate.pipeline import (
    coders,  # noqa: F401 - registers the Candidate coder the main output's hint selects
    progress,
)
from mrtcurate.pipeline.trees import JoinMessageTrees
from mrtcurate.schemas import Candidate, FileSplit, InputFile, Reject, TreeMessage
from mrtcurate.schemas.counts import UnitTally
from mrtcurate.schemas.records import RecordLocator

REJECTS = "rejects"
COUNTS = "counts"
REASONS = "reasons"
PART_REJECTS = "part_rejects"
PART_ROWS = "part_rows"
MESSAGES = "messages"  # tree layout, one message per row: rows on their way to the join
_PROGRESS_EVERY = 10_000  # records between two progress tallies
log = logging.getLogger(__name__)


class _ParseSplit(beam.DoFn):
    """One part of one file. Rejects of a part after the first carry rows counted within the part, so
    they go out keyed by the part, and every part of a split file reports its row count."""

    def __init__(self, mapping: FieldMapping, max_chars: int, file_indices: dict[str, int]):
        self.mapping = mapping
        self.max_chars = max_chars
        self.file_indices = file_indices
        self.by_column = reads_by_column(mapping)
        self.records_read = Metrics.counter("mrtcurate", "records_read")
        self.rejected = Metrics.counter("mrtcurate", "rejected")

    def setup(self):
        tune_collector()  # a worker process of its own runs no CLI

    def process(self, split: FileSplit):
        file = split.file
        read = 0
        units_read = UnitTally()
        tally = RowTally()
        file_index = self.file_indices[file.path]
        try:
            opened = open_binary(file.path)
        except OSError as error:
            raise InputChanged(
                f"input {file.path} could not be opened during the run ({error.strerror or error}); it was listed before the job started"
            ) from None
        with opened as stream:
            records = iter_records(
                stream, file.format, file.path, self.max_chars, (split.start, split.end), tally, file.bytes
            )
            for record, units in self._units(records, file.path):
                read += 1
                if read % _PROGRESS_EVERY == 0:
                    progress.add(progress.READ, _PROGRESS_EVERY)
                for unit in units:
                    units_read.add(unit)
                    if isinstance(unit, TreeMessage):
                        yield beam.pvalue.TaggedOutput(MESSAGES, ((file.path, split.index), unit))
                    elif isinstance(unit, Reject):
                        yield (
                            beam.pvalue.TaggedOutput(REJECTS, unit)
                            if split.index == 0
                            else beam.pvalue.TaggedOutput(PART_REJECTS, ((file.path, split.index), unit))
                        )
                    elif isinstance(unit, Candidate):
                        # Set on the new, not yet shared candidate: dataclasses.replace would cost a second
                        # construction of every candidate the job reads.
                        object.__setattr__(unit, "origins", ((file_index, split.index, record.row),))
                        yield unit
        if not split.whole:
            yield beam.pvalue.TaggedOutput(PART_ROWS, ((file.path, split.index), tally.rows))
        progress.add(progress.READ, read % _PROGRESS_EVERY, flush_now=True)
        # A message table's context is counted where its trees are joined (pipeline/trees.py).
        for pair in units_read.counts(with_context=self.mapping.layout == "tree" and not self.mapping.message_rows):
            yield beam.pvalue.TaggedOutput(COUNTS, pair)
        for pair in units_read.reasons.items():
            yield beam.pvalue.TaggedOutput(REASONS, pair)
        rejected = units_read.rejected
        self.records_read.inc(read)
        self.rejected.inc(rejected)
        where = file.path if split.whole else f"{file.path} part {split.index + 1}"
        log.info("read %s records from %s (%s rejected)", f"{read:,}", where, f"{rejected:,}")

    def _units(self, records: Iterable[RawRecord | Reject], path: str) -> Iterator[tuple[RawRecord | Reject, list]]:
        """Each record with its units: a block of records at a time by column where the mapping allows
        (ingest/columnar.py), else record by record; a reject of the reader is its own unit."""
        if not self.by_column:
            for record in records:
                yield record, to_units(record, self.mapping, path) if isinstance(record, RawRecord) else [record]
            return
        block: list[RawRecord] = []
        for record in records:
            if not isinstance(record, RawRecord):
                yield record, [record]
                continue
            block.append(record)
            if len(block) == BLOCK_RECORDS:
                yield from zip(block, block_units(block, self.mapping, path))
                block = []
        if block:
            yield from zip(block, block_units(block, self.mapping, path))


def _rows_before(part_rows: list[tuple[tuple[str, int], int]]) -> dict[tuple[str, int], int]:
    """For each part of a split file, how many rows the parts before it hold."""
    before, running = {}, {}
    for (path, index), rows in sorted(part_rows):
        before[(path, index)] = running.get(path, 0)
        running[path] = running.get(path, 0) + rows
    return before


def _file_row(keyed_unit, rows_before: dict) -> Reject | TreeMessage:
    """A reject or a message with its row counted from the file's start (a whole file has no parts)."""
    part, unit = keyed_unit
    if unit.source_row is None:
        return unit
    return replace(unit, source_row=unit.source_row + rows_before.get(part, 0))


class ReadCorpus(beam.PTransform):
    """The files resolved on the driver, so the job reads exactly the files the manifest lists; large
    uncompressed JSONL and Parquet files in parts (ingest/files.py `plan_splits`), with the same rows."""

    def __init__(self, files: tuple[InputFile, ...], mapping: FieldMapping, max_chars: int):
        super().__init__()
        self.files = files
        self.mapping = mapping
        self.max_chars = max_chars

    def expand(self, pipeline):
        splits = [split for file in self.files for split in plan_splits(file)]
        parsed = (
            pipeline
            # Create reshuffles a list of more than one element itself: the parts spread over the workers.
            | "ListParts" >> beam.Create(splits)
            | "ParsePart"
            >> beam.ParDo(_ParseSplit(self.mapping, self.max_chars, file_indices(self.files)))
            .with_output_types(Candidate)
            .with_outputs(REJECTS, PART_REJECTS, PART_ROWS, COUNTS, REASONS, MESSAGES, main="candidates")
        )
        candidates, counts, reasons = parsed.candidates, parsed[COUNTS], parsed[REASONS]
        # With no file read in parts every row is already counted from its file's start: no count to wait for.
        rows_before = None
        if not all(split.whole for split in splits):
            rows_before = (
                parsed[PART_ROWS] | "AllPartRows" >> beam.combiners.ToList() | "RowsBefore" >> beam.Map(_rows_before)
            )
        later_parts = parsed[PART_REJECTS] | "FileRows" >> beam.Map(_file_row, rows_before_input(rows_before))
        if self.mapping.message_rows:
            messages = parsed[MESSAGES] | "MessageFileRows" >> beam.Map(_file_row, rows_before_input(rows_before))
            trees = messages | "JoinMessageTrees" >> JoinMessageTrees(self.mapping)
            candidates = (candidates, trees.candidates) | "AllCandidates" >> beam.Flatten()
            counts = (counts, trees.counts) | "AllReadCounts" >> beam.Flatten()
            reasons = (reasons, trees.reasons) | "AllReadReasons" >> beam.Flatten()
        rejects = [parsed[REJECTS], later_parts] + ([trees.rejects] if self.mapping.message_rows else [])
        all_rejects = tuple(rejects) | "AllRejects" >> beam.Flatten()
        return ReadOutputs(candidates, all_rejects, counts, reasons, rows_before)


@dataclass
class ReadOutputs:
    candidates: beam.PCollection
    rejects: beam.PCollection
    counts: beam.PCollection  # (count name, n)
    reasons: beam.PCollection  # (reject reason, n)
    rows_before: beam.PCollection | None  # one dict, (path, part) -> rows of the file's earlier parts; None: no split

    def locations(self, files: tuple[InputFile, ...]) -> Locations:
        return Locations(RecordLocator(tuple(file.path for file in files)), self.rows_before)


@dataclass(frozen=True)
class Locations:
    """What a step that names the input file and row of a record needs: the locator of the job's files and, as its
    side input, the rows of split files' earlier parts (`side_input`)."""

    locator: RecordLocator
    rows_before: beam.PCollection | None = None

    def side_input(self):
        return rows_before_input(self.rows_before)


def rows_before_input(rows_before: beam.PCollection | None):
    """The side argument of a step that names files and rows (RecordLocator): the rows of split files' earlier
    parts, or an empty dict, with nothing to wait for, where no file is read in parts."""
    return {} if rows_before is None else beam.pvalue.AsSingleton(rows_before)


def file_indices(files: tuple[InputFile, ...]) -> dict[str, int]:
    """An input's index in the job's file list: what a candidate's origin holds instead of its path."""
    return {file.path: index for index, file in enumerate(files)}
