"""Exact dedup per prompt as a combine: copies of one (prompt, response) become one candidate
whose multiplicity counts them, with the best reward among them."""

from __future__ import annotations

import apache_beam as beam

from mrtcurate.schemas import Candidate


class _MergeCopies(beam.CombineFn):
    def create_accumulator(self):
        return None

    def add_input(self, merged: Candidate | None, copy: Candidate) -> Candidate:
        return copy if merged is None else merged.merged_with(copy)

    def merge_accumulators(self, accumulators):
        merged = None
        for accumulator in accumulators:
            if accumulator is not None:
                merged = self.add_input(merged, accumulator)
        return merged

    def extract_output(self, merged: Candidate) -> Candidate:
        return merged


class MergeExactDuplicates(beam.PTransform):
    def expand(self, candidates):
        return (
            candidates
            | "KeyByPromptAndResponse" >> beam.Map(lambda c: ((c.prompt_id, c.response_id), c))
            | "MergeCopies" >> beam.CombinePerKey(_MergeCopies())
            | "DropKeys" >> beam.Values()
        )
