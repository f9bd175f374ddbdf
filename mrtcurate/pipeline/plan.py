"""The planner's branch of the job: per-prompt sufficient statistics of the feature vectors (a combine per
prompt bucket, over the members' batches), summed over prompts into the sample's and the bootstrap replicates' moments (a global combine whose
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


class _BucketPrompts(beam.CombineFn):
    """Per prompt of one prompt bucket, from its members' batches: [feature count, feature sum, sum of squared
    norms, prompt text (the smallest, where copies of a prompt differ)]. One accumulator per bucket, so the
    members never travel one by one to a per-prompt combine."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, prompts: dict, batch: list) -> dict:
        for candidate, embedding in batch:
            entry = prompts.get(candidate.prompt_id)
            if entry is None:
                entry = prompts[candidate.prompt_id] = [0, None, 0.0, candidate.prompt]
            elif candidate.prompt < entry[3]:
                entry[3] = candidate.prompt
            feature = _feature(candidate, embedding)
            if feature is not None:
                entry[0] += 1
                entry[1] = feature if entry[1] is None else entry[1] + feature
                entry[2] += float(feature @ feature)
        return prompts

    def merge_accumulators(self, accumulators) -> dict:
        merged: dict = {}
        for prompts in accumulators:
            for prompt_id, (count, total, squares, text) in prompts.items():
                entry = merged.get(prompt_id)
                if entry is None:
                    merged[prompt_id] = [count, total, squares, text]
                    continue
                entry[0] += count
                entry[1] = total if entry[1] is None else entry[1] if total is None else entry[1] + total
                entry[2] += squares
                entry[3] = min(entry[3], text)
        return merged

    def extract_output(self, prompts: dict) -> dict:
        return prompts


def _feature(candidate, embedding) -> np.ndarray | None:
    """A response kept without a usable vector (a zero vector: pipeline/embed_responses.py) says nothing of
    the variance components and is left out of them."""
    if candidate.feature is not None:
        return np.asarray(candidate.feature, dtype=np.float64)
    if embedding is not None and embedding.any():
        return np.asarray(embedding, dtype=np.float64)
    return None


def _prompt_stats(bucket_prompts) -> list:
    """(prompt id, (count, vector sum, squared norms)) of a bucket's prompts with at least one feature."""
    _, prompts = bucket_prompts
    return [(prompt_id, (count, total, squares)) for prompt_id, (count, total, squares, _) in prompts.items() if count]


def _prompt_texts(bucket_prompts) -> list:
    _, prompts = bucket_prompts
    return [(prompt_id, entry[3]) for prompt_id, entry in sorted(prompts.items())]


class _SumMoments(beam.CombineFn):
    """Lists of (prompt id, (count, vector sum, squared norms)) in, Moments out: prompts are folded in BATCH at a time
    (one matrix product per batch for every replicate), so the accumulator holds at most BATCH prompts
    besides the moments."""

    BATCH = 4096

    def __init__(self, replicates: int, seed: int):
        self.replicates = replicates
        self.seed = seed

    def create_accumulator(self):
        return None, []

    def add_input(self, accumulator, prompt_stats: list):
        moments, pending = accumulator
        pending.extend(prompt_stats)
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
    """(prompt bucket, members) batches in; a PCollection holding one planner summary dict out."""

    def __init__(self, embedding: EmbeddingSettings, settings: PlanSettings, seed: int, cache=None):
        super().__init__()
        # Beam's RunInference imports torch (a second and a half): imported only by jobs that embed.
        from mrtcurate.pipeline.embed import EmbedTexts

        self.embed_prompts = EmbedTexts(embedding, cache, "prompts")
        self.settings = settings
        self.seed = seed

    def expand(self, batches):
        prompts = batches | "BucketPrompts" >> beam.CombinePerKey(_BucketPrompts())
        per_prompt = (
            prompts
            | "PromptStats" >> beam.Map(_prompt_stats)
            | "Moments" >> beam.CombineGlobally(_SumMoments(self.settings.bootstrap, self.seed))
        )
        prompt_vectors = prompts | "PromptTexts" >> beam.FlatMap(_prompt_texts) | "EmbedPrompts" >> self.embed_prompts
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
