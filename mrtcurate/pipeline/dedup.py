"""Exact dedup in prompt buckets: candidates travel in batches to one grouping by a bucket of their prompt
(pipeline/batching.py), and each bucket merges the copies of one (prompt, response) into one candidate whose
multiplicity counts them, with the best reward among them. The same bucket drops the boilerplate responses
(pipeline/boilerplate.py) where the job found any, so that the candidates are never held for that split.

A keyed combine per (prompt, response), which this replaces, made exact dedup one shuffled element per record."""

from __future__ import annotations

from collections import Counter

import apache_beam as beam

from mrtcurate.pipeline.batching import PromptBucket
from mrtcurate.pipeline.boilerplate import boilerplate_rejects
from mrtcurate.pipeline.coders import CandidateCoder
from mrtcurate.pipeline.pools import distinct_candidates
from mrtcurate.pipeline.read import Locations
from mrtcurate.pipeline.spill import GroupBatches
from mrtcurate.schemas import Candidate
from mrtcurate.schemas.records import RecordLocator

BOILERPLATE = "boilerplate"
HOT = "hot"


class _MergeCopies(beam.DoFn):
    """A bucket holds every candidate of its prompts, so it also knows each pool's size: the pools over
    `hot_above` leave as (prompt id, size), for selection to split them without counting them again."""

    def __init__(self, hot_above: int, locator: RecordLocator):
        self.hot_above = hot_above
        self.locator = locator

    def process(self, bucket, boilerplate: dict[str, int], rows_before: dict):
        _, batches = bucket
        locator = self.locator.with_rows_before(rows_before)
        kept: list[Candidate] = []
        for batch in batches:
            for candidate in batch:
                prompts = boilerplate.get(candidate.response_id)
                if prompts is None:
                    kept.append(candidate)
                    continue
                for reject in boilerplate_rejects(candidate, prompts, locator):
                    yield beam.pvalue.TaggedOutput(BOILERPLATE, reject)
        merged = distinct_candidates(kept)
        sizes = Counter(candidate.prompt_id for candidate in merged)
        for prompt_id, size in sorted(sizes.items()):
            if size > self.hot_above:
                yield beam.pvalue.TaggedOutput(HOT, (prompt_id, size))
        yield from merged


class MergeExactDuplicates(beam.PTransform):
    """Candidates in; one candidate per (prompt, response) out, the boilerplate rejects where `boilerplate`, a
    PCollection of (response id, prompts answered), is given, and (prompt id, pool size) of the pools over
    `hot_above`."""

    def __init__(self, buckets: int, hot_above: int, locations: Locations, boilerplate=None, spill: str | None = None):
        super().__init__()
        self.locations = locations
        self.spill = spill
        self.buckets = buckets
        self.hot_above = hot_above
        self.boilerplate = {} if boilerplate is None else beam.pvalue.AsDict(boilerplate)

    def expand(self, candidates):
        merged = (
            candidates
            | "GroupBucket" >> GroupBatches(self.spill, CandidateCoder(), keyed=PromptBucket(self.buckets))
            | "MergeCopies"
            >> beam.ParDo(
                _MergeCopies(self.hot_above, self.locations.locator), self.boilerplate, self.locations.side_input()
            )
            .with_output_types(Candidate)
            .with_outputs(BOILERPLATE, HOT, main="unique")
        )
        return merged.unique, merged[BOILERPLATE], merged[HOT]
