"""Exact dedup per prompt as a combine: copies of one (prompt, response) become one candidate
whose multiplicity counts them, with the best reward among them."""

from __future__ import annotations

import apache_beam as beam

from mrtcurate.pipeline.coders import OptionalCandidateCoder
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

    def get_accumulator_coder(self):
        # The lifted combine shuffles accumulators, not inputs: without this they would be pickled.
        return OptionalCandidateCoder()


def _by_prompt_and_response(candidate: Candidate) -> tuple[tuple[str, str], Candidate]:
    return (candidate.prompt_id, candidate.response_id), candidate


class MergeExactDuplicates(beam.PTransform):
    def expand(self, candidates):
        return (
            candidates
            | "KeyByPromptAndResponse"
            >> beam.Map(_by_prompt_and_response).with_output_types(tuple[tuple[str, str], Candidate])
            | "MergeCopies" >> beam.CombinePerKey(_MergeCopies())
            | "DropKeys" >> beam.Values().with_output_types(Candidate)
        )
