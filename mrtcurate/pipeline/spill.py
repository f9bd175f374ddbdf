"""Groupings whose items cross as files: on the local runner, a shuffle carries (key, file segment) references,
and the items themselves are written once, in segment files under the job's scratch folder, and read back by
the stage that holds the key.

Why not a plain GroupByKey: the local FnApiRunner materialises every stage's whole input in memory, as
encoded bytes, before the stage runs (memray on a 200,000-response qd run: 1.57 GB of the pipeline's 1.88 GB
peak sat in `FnApiRunner._send_input_to_worker`), so its peak grew with the corpus, not with a bucket.
Through files, what it holds is the references; a stage holds one key's items at a time. Dataflow streams
its shuffles and keeps them: `directory` None there, and the grouping is the plain one (graph.py decides).

Segments are pickles of the items' plain tuples (coders.PlainCoder): Beam's coders encode one element at a time in
Python, and decoding a million candidates' tuples took 2.6 us each against pickle's 0.8 us. A segment is read only by
the job that wrote it, with the same Python, so pickle's format is never a contract here.

Every file gets a new random name and is never rewritten: a retried bundle writes files of its own, and only the
references a committed bundle emitted are ever read. The folder goes with the job's staging folder."""

from __future__ import annotations

import pickle
import typing
import uuid
from collections.abc import Callable, Iterable, Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from mrtcurate.garbage import tune_collector
from mrtcurate.pipeline.batching import BatchByKey
from mrtcurate.pipeline.coders import PlainCoder
from mrtcurate.pipeline.job_files import new_file

SPILL_FOLDER = ".shuffle"  # inside the job's staging folder; the driver removes it before publishing
# Items a writer holds, over all its keys, before it writes them out as one file: with a key's items in one
# segment each, a file has as many segments as keys.
ITEMS_PER_FILE = 100_000

Segment = tuple[str, int, int]  # (path, offset, length) of one key's encoded items in a segment file


class SegmentWriter:
    """Items held by key, written as one file of one segment per key once ITEMS_PER_FILE are held (and at the
    end of a bundle): each write yields (key, segment) pairs."""

    def __init__(self, directory: str, item_coder: PlainCoder):
        self.directory = directory
        self.item_coder = item_coder
        self.pending: dict = {}
        self.held = 0

    def add(self, key, items: list) -> Iterator[tuple[object, Segment]]:
        self.pending.setdefault(key, []).extend(items)
        self.held += self.item_coder.weight(items)
        if self.held >= ITEMS_PER_FILE:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[object, Segment]]:
        if not self.pending:
            return
        payloads = [(key, encoded_segment(items, self.item_coder)) for key, items in self.pending.items()]
        self.pending, self.held = {}, 0
        path = FileSystems.join(self.directory, f"{uuid.uuid4().hex}.segments")
        offset = 0
        with new_file(path, compression_type=CompressionTypes.UNCOMPRESSED) as sink:
            for _, payload in payloads:
                sink.write(payload)
        for key, payload in payloads:
            yield key, (path, offset, len(payload))
            offset += len(payload)


def encoded_segment(items: list, item_coder: PlainCoder) -> bytes:
    return pickle.dumps([item_coder.to_plain(item) for item in items], protocol=pickle.HIGHEST_PROTOCOL)


def decoded_segment(payload: bytes, item_coder: PlainCoder) -> list:
    return [item_coder.from_plain(plain) for plain in pickle.loads(payload)]


def read_segments(segments: Iterable[Segment], item_coder: PlainCoder) -> Iterator[list]:
    """The batches behind references, one per segment, in the order given."""
    for path, offset, length in segments:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as source:
            source.seek(offset)
            yield decoded_segment(source.read(length), item_coder)


class SpilledBatches:
    """What a grouping through files gives for a key: iterating reads the key's batches back, one at a time, as
    a GroupByKey's iterable of batches would give them."""

    def __init__(self, segments: list[Segment], item_coder: PlainCoder):
        self.segments = segments
        self.item_coder = item_coder

    def __iter__(self) -> Iterator[list]:
        return read_segments(self.segments, self.item_coder)


class _WriteSegments(beam.DoFn):
    """(key, items) batches, or single items keyed by `keyed`, in; (key, segment) out."""

    def __init__(self, directory: str, item_coder: PlainCoder, keyed: Callable | None = None):
        self.directory = directory
        self.item_coder = item_coder
        self.keyed = keyed

    def setup(self):
        tune_collector()  # a worker process of its own runs no CLI

    def start_bundle(self):
        self.writer = SegmentWriter(self.directory, self.item_coder)

    def process(self, element):
        if self.keyed is None:
            key, items = element
            yield from self.writer.add(key, items)
            return
        pair = self.keyed(element)
        if pair is not None:
            yield from self.writer.add(pair[0], [pair[1]])

    def finish_bundle(self):
        for pair in self.writer.flush():
            yield WindowedValue(pair, MIN_TIMESTAMP, [GlobalWindow()])


class SpillBatches(beam.PTransform):
    """(key, items) batches in, or single items keyed by `keyed` ((key, item), or None for an item that does not
    travel); out, with a `directory`, (key, segment) references to the items written there, and without one
    the (key, items) batches themselves (of BatchByKey's size), for a grouping to carry. `batches_of` reads
    either back."""

    def __init__(self, directory: str | None, item_coder: PlainCoder, keyed: Callable | None = None):
        super().__init__()
        self.directory = directory
        self.item_coder = item_coder
        self.keyed = keyed

    def expand(self, elements):
        if self.directory is not None:
            return elements | "WriteSegments" >> beam.ParDo(_WriteSegments(self.directory, self.item_coder, self.keyed))
        if self.keyed is None:
            return elements
        batch_type = tuple[typing.Any, list[self.item_coder.to_type_hint()]]
        return elements | "Batch" >> beam.ParDo(BatchByKey(self.keyed)).with_output_types(batch_type)


def batches_of(grouped: Iterable, directory: str | None, item_coder: PlainCoder) -> Iterable[list]:
    """A grouping's values for one key, as batches: read back from their segments where they were spilled."""
    return grouped if directory is None else SpilledBatches(list(grouped), item_coder)


class GroupBatches(SpillBatches):
    """SpillBatches, grouped by key: (key, iterable of batches) out, as a GroupByKey of batches gives them."""

    def expand(self, elements):
        grouped = (
            elements
            | "Spill" >> SpillBatches(self.directory, self.item_coder, self.keyed)
            | "Group" >> beam.GroupByKey()
        )
        if self.directory is None:
            return grouped
        return grouped | "ReadBack" >> beam.Map(_spilled, self.directory, self.item_coder)


def _spilled(grouped: tuple, directory: str, item_coder: PlainCoder) -> tuple:
    key, segments = grouped
    return key, batches_of(segments, directory, item_coder)
