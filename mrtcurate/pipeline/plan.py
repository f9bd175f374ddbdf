"""The planner's branch of the job: per-prompt sufficient statistics of the feature vectors (a
combine), prompt embeddings for redundancy, then one planner summary (analysis/planner.py)."""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from mrtcurate.analysis.planner import plan
from mrtcurate.analysis.variance import PromptStats
from mrtcurate.pipeline.embed import EmbedTexts
from mrtcurate.schemas.config import EmbeddingSettings, PlanSettings
from mrtcurate.vectors.components import near_duplicate_components


class _PromptStats(beam.CombineFn):
    """(count, vector sum, sum of squared norms) of one prompt's features: mergeable."""

    def create_accumulator(self):
        return 0, None, 0.0

    def add_input(self, accumulator, vector):
        count, total, squares = accumulator
        vector = np.asarray(vector, dtype=np.float64)
        return count + 1, vector if total is None else total + vector, squares + float(vector @ vector)

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for count, total, squares in accumulators:
            if count:
                merged = (merged[0] + count, total if merged[1] is None else merged[1] + total, merged[2] + squares)
        return merged

    def extract_output(self, accumulator):
        return accumulator


def _feature(member):
    candidate, embedding = member
    return candidate.prompt_id, candidate.feature if candidate.feature is not None else embedding


def _summarise(per_prompt: list, prompt_vectors: list, settings: PlanSettings, seed: int) -> dict:
    if not per_prompt:
        return plan(PromptStats(np.zeros(0), np.zeros((0, 1)), np.zeros(0)), settings, seed, 0)
    per_prompt = sorted(per_prompt, key=lambda item: item[0])
    stats = PromptStats(
        counts=np.array([count for _, (count, _, _) in per_prompt], dtype=np.float64),
        sums=np.stack([total for _, (_, total, _) in per_prompt]),
        square_norms=np.array([squares for _, (_, _, squares) in per_prompt]),
    )
    vectors = np.stack([vector for _, vector in sorted(prompt_vectors, key=lambda item: item[0])])
    effective = int(near_duplicate_components(vectors, settings.redundancy_threshold).max() + 1)
    summary = plan(stats, settings, seed, effective)
    summary["redundancy_threshold"] = settings.redundancy_threshold
    return summary


class PlanVariance(beam.PTransform):
    """(candidate, embedding) in; a PCollection holding one planner summary dict out."""

    def __init__(self, embedding: EmbeddingSettings, settings: PlanSettings, seed: int, cache=None):
        super().__init__()
        self.embed_prompts = EmbedTexts(embedding, cache, "prompts")
        self.settings = settings
        self.seed = seed

    def expand(self, members):
        per_prompt = (
            members
            | "Feature" >> beam.Map(_feature)
            | "PromptStats" >> beam.CombinePerKey(_PromptStats())
            | "AllPrompts" >> beam.combiners.ToList()
        )
        prompt_vectors = (
            members
            | "PromptText" >> beam.Map(lambda member: (member[0].prompt_id, member[0].prompt))
            | "DistinctPrompts" >> beam.CombinePerKey(min)
            | "EmbedPrompts" >> self.embed_prompts
            | "AllPromptVectors" >> beam.combiners.ToList()
        )
        return per_prompt | "Plan" >> beam.Map(
            _summarise, beam.pvalue.AsSingleton(prompt_vectors), self.settings, self.seed
        )
