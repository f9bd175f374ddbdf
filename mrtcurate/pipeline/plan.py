"""The planner's branch of the job: per-prompt sufficient statistics of the feature vectors (a combine per
prompt), summed over prompts into the sample's and the bootstrap replicates' moments (a global combine whose
accumulator does not grow with the prompt count: analysis/variance.py), the effective prompt count from
prompt embeddings (exact for small corpora, from a bounded sample above: vectors/redundancy.py), then one
planner summary (analysis/planner.py)."""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from mrtcurate.analysis.planner import plan
from mrtcurate.analysis.variance import Moments
from mrtcurate.ids import stable_hash
from mrtcurate.schemas.config import EmbeddingSettings, PlanSettings
from mrtcurate.vectors.redundancy import (
    EXACT_PROMPTS,
    SAMPLE_PROMPTS,
    exact_effective_prompts,
    links_to_sample,
    sampled_effective_prompts,
)


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
    """A response kept without a usable vector (a zero vector: pipeline/embed.py) says nothing of the
    variance components and is left out of them."""
    candidate, embedding = member
    if candidate.feature is not None:
        yield candidate.prompt_id, candidate.feature
    elif embedding is not None and embedding.any():
        yield candidate.prompt_id, embedding


class _SumMoments(beam.CombineFn):
    """(prompt id, (count, vector sum, squared norms)) in, Moments out: prompts are folded in BATCH at a time
    (one matrix product per batch for every replicate), so the accumulator holds at most BATCH prompts
    besides the moments."""

    BATCH = 4096

    def __init__(self, replicates: int, seed: int):
        self.replicates = replicates
        self.seed = seed

    def create_accumulator(self):
        return None, []

    def add_input(self, accumulator, keyed_stats):
        moments, pending = accumulator
        pending.append(keyed_stats)
        return (self._fold(moments, pending), []) if len(pending) >= self.BATCH else (moments, pending)

    def merge_accumulators(self, accumulators):
        total = None
        for moments, pending in accumulators:
            folded = self._fold(moments, pending)
            total = folded if total is None else total if folded is None else total + folded
        return total, []

    def extract_output(self, accumulator):
        return self._fold(*accumulator)

    def _fold(self, moments: Moments | None, pending: list) -> Moments | None:
        if not pending:
            return moments
        keys = np.array([stable_hash("planner", prompt_id) for prompt_id, _ in pending], dtype=np.uint64)
        counts = np.array([count for _, (count, _, _) in pending], dtype=np.float64)
        sums = np.stack([total for _, (_, total, _) in pending])
        squares = np.array([squares for _, (_, _, squares) in pending])
        folded = Moments.of_prompts(keys, counts, sums, squares, self.replicates, self.seed)
        return folded if moments is None else moments + folded


def _summarise(moments: Moments | None, basis: list, degrees: np.ndarray, settings: PlanSettings) -> dict:
    if moments is None:
        return plan(Moments.empty(settings.bootstrap, 1), settings, 0)
    if len(basis) <= EXACT_PROMPTS:
        effective = exact_effective_prompts(
            np.stack([vector for _, vector in sorted(basis, key=lambda item: item[0])]), settings.redundancy_threshold
        )
    else:
        effective = sampled_effective_prompts(degrees, round(moments.scalars[0, 0]), settings.ci_level)
    summary = plan(moments, settings, effective.count)
    summary.update(effective.as_dict())
    summary["redundancy_threshold"] = settings.redundancy_threshold
    return summary


def _redundancy_key(keyed_vector) -> int:
    return stable_hash("redundancy", keyed_vector[0])


class _LinksToSample(beam.DoFn):
    """Degrees of the sampled prompts, from one batch of all prompt vectors; nothing when the basis
    holds every prompt (then the count is exact)."""

    def __init__(self, tau: float):
        self.tau = tau
        self.sample = None  # stacked once per worker: the side input is the same for every batch

    def process(self, batch, basis):
        if len(basis) <= EXACT_PROMPTS:
            return
        if self.sample is None:
            self.sample = np.stack([vector for _, vector in basis[:SAMPLE_PROMPTS]])
        yield links_to_sample(np.stack([vector for _, vector in batch]), self.sample, self.tau)


class PlanVariance(beam.PTransform):
    """(candidate, embedding) in; a PCollection holding one planner summary dict out."""

    def __init__(self, embedding: EmbeddingSettings, settings: PlanSettings, seed: int, cache=None):
        super().__init__()
        # Beam's RunInference imports torch (a second and a half): imported only by jobs that embed.
        from mrtcurate.pipeline.embed import EmbedTexts

        self.embed_prompts = EmbedTexts(embedding, cache, "prompts")
        self.settings = settings
        self.seed = seed

    def expand(self, members):
        per_prompt = (
            members
            | "Feature" >> beam.FlatMap(_feature)
            | "PromptStats" >> beam.CombinePerKey(_PromptStats())
            | "Moments" >> beam.CombineGlobally(_SumMoments(self.settings.bootstrap, self.seed))
        )
        prompt_vectors = (
            members
            | "PromptText" >> beam.Map(lambda member: (member[0].prompt_id, member[0].prompt))
            | "DistinctPrompts" >> beam.CombinePerKey(min)
            | "EmbedPrompts" >> self.embed_prompts
        )
        # The EXACT_PROMPTS + 1 prompts of smallest hash: all of them when the corpus is small (exact
        # count), else a uniform sample whose first SAMPLE_PROMPTS the degree pass measures.
        basis = prompt_vectors | "RedundancyBasis" >> beam.combiners.Top.Smallest(
            EXACT_PROMPTS + 1, key=_redundancy_key
        )
        degrees = (
            prompt_vectors
            | "PromptBatches" >> beam.BatchElements(min_batch_size=256, max_batch_size=4096)
            | "LinksToSample"
            >> beam.ParDo(_LinksToSample(self.settings.redundancy_threshold), beam.pvalue.AsSingleton(basis))
            | "SampleDegrees" >> beam.CombineGlobally(sum)  # arrays add elementwise; 0 when nothing was sampled
        )
        return per_prompt | "Plan" >> beam.Map(
            _summarise, beam.pvalue.AsSingleton(basis), beam.pvalue.AsSingleton(degrees), self.settings
        )
