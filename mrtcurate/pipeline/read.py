"""Read and parse: every input file becomes candidates (main output), rejects, and its counts (tagged outputs).

The counts leave once per file, as data: a million parsed records are summed in the DoFn, not carried
as a million (name, 1) elements through a combine."""

from __future__ import annotations

import logging
from collections import Counter

import apache_beam as beam
from apache_beam.metrics import Metrics

from mrtcurate.ingest.files import open_binary
from mrtcurate.ingest.formats import RawRecord, iter_records
from mrtcurate.ingest.layouts import FieldMapping, to_candidates
from mrtcurate.pipeline import (
    coders,  # noqa: F401 - registers the Candidate coder the main output's hint selects
    progress,
)
from mrtcurate.schemas import Candidate, InputFile, Reject
from mrtcurate.schemas.counts import Count

REJECTS = "rejects"
COUNTS = "counts"
REASONS = "reasons"
_PROGRESS_EVERY = 10_000  # records between two progress tallies
log = logging.getLogger(__name__)


class _ParseFile(beam.DoFn):
    def __init__(self, mapping: FieldMapping, max_chars: int):
        self.mapping = mapping
        self.max_chars = max_chars
        self.records_read = Metrics.counter("mrtcurate", "records_read")
        self.rejected = Metrics.counter("mrtcurate", "rejected")

    def process(self, file: InputFile):
        read = parsed = 0
        reasons: Counter[str] = Counter()
        with open_binary(file.path) as stream:
            for record in iter_records(stream, file.format, file.path, self.max_chars):
                read += 1
                if read % _PROGRESS_EVERY == 0:
                    progress.add(progress.READ, _PROGRESS_EVERY)
                units = to_candidates(record, self.mapping, file.path) if isinstance(record, RawRecord) else [record]
                for unit in units:
                    if isinstance(unit, Reject):
                        reasons[unit.reason] += 1
                        yield beam.pvalue.TaggedOutput(REJECTS, unit)
                    else:
                        parsed += 1
                        yield unit
        progress.add(progress.READ, read % _PROGRESS_EVERY, flush_now=True)
        rejected = reasons.total()
        yield beam.pvalue.TaggedOutput(COUNTS, (Count.PARSED_CANDIDATES.value, parsed))
        yield beam.pvalue.TaggedOutput(COUNTS, (Count.REJECTED.value, rejected))
        for reason, count in reasons.items():
            yield beam.pvalue.TaggedOutput(REASONS, (reason, count))
        self.records_read.inc(read)
        self.rejected.inc(rejected)
        log.info("read %s records from %s (%s rejected)", f"{read:,}", file.path, f"{rejected:,}")


class ReadCorpus(beam.PTransform):
    """The files resolved on the driver, so the job reads exactly the files the manifest lists."""

    def __init__(self, files: tuple[InputFile, ...], mapping: FieldMapping, max_chars: int):
        super().__init__()
        self.files = files
        self.mapping = mapping
        self.max_chars = max_chars

    def expand(self, pipeline):
        parsed = (
            pipeline
            | "ListFiles" >> beam.Create(self.files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ParseFile"
            >> beam.ParDo(_ParseFile(self.mapping, self.max_chars)).with_output_types(Candidate).with_outputs(REJECTS, COUNTS, REASONS, main="candidates")
        )
        return parsed.candidates, parsed[REJECTS], parsed[COUNTS], parsed[REASONS]
