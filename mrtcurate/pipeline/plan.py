"""The planner's branch of the job: per-prompt sufficient statistics of the feature vectors (one map per group of
whole prompts, over the members' batches), summed over prompts into the sample's and the bootstrap replicates' moments (a global combine whose
accumulator does not grow with the prompt count: analysis/variance.py), the effective prompt count from
prompt embeddings (exact for small corpora, from a bounded sample above: vectors/redundancy.py), then one
planner summary (analysis/planner.py)."""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from mrtcurate.analysis.planner import plan
from mrtcurate.analysis.variance import Moments
from mrtcurate.ids import stable_hash
from mrtcurate.pipeline.coders import PromptVectorCoder
from mrtcurate.pipeline.pools import add_to_prompt_entries
from mrtcurate.pipeline.select import is_hot_part
from mrtcurate.pipeline.spill import SpillBatches, batches_of
from mrtcurate.schemas.config import EmbeddingSettings, PlanSettings
from mrtcurate.vectors.redundancy import (
    EXACT_PROMPTS,
    SAMPLE_PROMPTS,
    exact_effective_prompts,
    links_to_sample,
    sampled_effective_prompts,
)

_PROMPT_VECTORS = PromptVectorCoder()


def group_prompts(group) -> tuple:
    """(group key, per prompt of the group: [feature count, feature sum, sum of squared norms, prompt text (the
    smallest, where copies of a prompt differ)]). A group holds its prompts whole, or one part of a hot pool."""
    key, batches = group
    prompts: dict = {}
    for batch in batches:
        for candidate, embedding in batch:
            add_to_prompt_entries(prompts, candidate, embedding)
    return key, prompts


def _merge_entries(entries) -> list:
    """One hot prompt's entries from its parts, as one."""
    count, total, squares, text = 0, None, 0.0, None
    for part_count, part_total, part_squares, part_text in entries:
        count += part_count
        total = part_total if total is None else total if part_total is None else total + part_total
        squares += part_squares
        text = part_text if text is None else min(text, part_text)
    return [count, total, squares, text]


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


def _add_moments(moments) -> Moments | None:
    present = [found for found in moments if found is not None]
    return sum(present[1:], present[0]) if present else None


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
    """Degrees of the sampled prompts, from one batch of all prompt vectors (read back from its segment where it
    waited for the basis as a file); nothing when the basis holds every prompt (then the count is exact)."""

    def __init__(self, tau: float, spill: str | None):
        self.tau = tau
        self.spill = spill
        self.sample = None  # stacked once per worker: the side input is the same for every batch

    def process(self, keyed_batch, basis):
        if len(basis) <= EXACT_PROMPTS:
            return
        if self.sample is None:
            self.sample = np.stack([vector for _, vector in basis[:SAMPLE_PROMPTS]])
        (batch,) = batches_of([keyed_batch[1]], self.spill, _PROMPT_VECTORS)
        yield links_to_sample(np.stack([vector for _, vector in batch]), self.sample, self.tau)


class PlanVariance(beam.PTransform):
    """Each group's prompt entries (`group_prompts` of GroupPools' groups, or Select's own, pipeline/select.py) in; a
    PCollection holding one planner summary dict out. A group holds whole prompts, so each prompt's sums are
    complete when its group is read and the stage holds one group's (the parts of a hot pool are merged by prompt
    first). Summed in the embedding stage, every prompt's 384-d sum was held to its end: 1.2 GB at 400,000
    prompts."""

    def __init__(
        self, embedding: EmbeddingSettings, settings: PlanSettings, seed: int, cache=None, spill: str | None = None
    ):
        super().__init__()
        # Where the prompt vectors wait for the redundancy basis as files (pipeline/spill.py), or None: held in
        # memory they were 1.7 KB a prompt.
        self.spill = spill
        # Beam's RunInference imports torch (a second and a half): imported only by jobs that embed.
        from mrtcurate.pipeline.embed import EmbedTexts

        self.embed_prompts = EmbedTexts(embedding, cache, "prompts")
        self.settings = settings
        self.seed = seed

    def expand(self, grouped):
        whole, parts = grouped | "HotParts" >> beam.Partition(lambda group, _: int(is_hot_part(group[0])), 2)
        hot = (
            parts
            | "PartEntries" >> beam.FlatMap(lambda group: group[1].items())
            | "MergeParts" >> beam.CombinePerKey(_merge_entries)
            | "AsGroup" >> beam.Map(lambda entry: (entry[0], {entry[0]: entry[1]}))
        )
        # Each branch folded on its own: a Flatten of every prompt's sums would be held whole by the local runner.
        moments = [
            prompts
            | f"PromptStats{name}" >> beam.Map(_prompt_stats)
            | f"Moments{name}" >> beam.CombineGlobally(_SumMoments(self.settings.bootstrap, self.seed))
            for name, prompts in (("", whole), ("OfHotPools", hot))
        ]
        per_prompt = moments | "BothMoments" >> beam.Flatten() | "SumMoments" >> beam.CombineGlobally(_add_moments)
        texts = [
            prompts | f"PromptTexts{name}" >> beam.FlatMap(_prompt_texts)
            for name, prompts in (("", whole), ("OfHotPools", hot))
        ]
        prompt_vectors = texts | "AllPromptTexts" >> beam.Flatten() | "EmbedPrompts" >> self.embed_prompts
        # The EXACT_PROMPTS + 1 prompts of smallest hash: all of them when the corpus is small (exact
        # count), else a uniform sample whose first SAMPLE_PROMPTS the degree pass measures.
        basis = prompt_vectors | "RedundancyBasis" >> beam.combiners.Top.Smallest(
            EXACT_PROMPTS + 1, key=_redundancy_key
        )
        degrees = (
            prompt_vectors
            | "PromptBatches" >> beam.BatchElements(min_batch_size=256, max_batch_size=4096)
            | "Keyed" >> beam.Map(lambda batch: (batch[0][0], batch))  # a segment per batch, by its first prompt
            | "SpillPromptBatches" >> SpillBatches(self.spill, _PROMPT_VECTORS)
            | "LinksToSample"
            >> beam.ParDo(
                _LinksToSample(self.settings.redundancy_threshold, self.spill), beam.pvalue.AsSingleton(basis)
            )
            | "SampleDegrees" >> beam.CombineGlobally(sum)  # arrays add elementwise; 0 when nothing was sampled
        )
        return per_prompt | "Plan" >> beam.Map(
            _summarise, beam.pvalue.AsSingleton(basis), beam.pvalue.AsSingleton(degrees), self.settings
        )
