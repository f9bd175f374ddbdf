"""The planner's branch of the job: per-prompt sufficient statistics of the feature vectors (one entry per prompt of
a group, over the members' batches), summed over prompts into the sample's and the bootstrap replicates' moments
(one global combine whose accumulator does not grow with the prompt count: analysis/variance.py; the parts of a hot
pool meet there), the effective prompt count from prompt embeddings (exact for small corpora, from a bounded sample
above: vectors/redundancy.py), then one planner summary (analysis/planner.py)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from mrtcurate.analysis.planner import plan
from mrtcurate.analysis.variance import Moments
from mrtcurate.ids import stable_hash
from mrtcurate.pipeline.coders import PromptVectorCoder
from mrtcurate.pipeline.pools import add_to_prompt_entries, entry_texts
from mrtcurate.pipeline.select import is_hot_part
from mrtcurate.pipeline.spill import SpillBatches, batches_of
from mrtcurate.pipeline.statistics import FoldPerBundle, merged_output
from mrtcurate.schemas.config import EmbeddingSettings, PlanSettings
from mrtcurate.vectors.redundancy import (
    EXACT_PROMPTS,
    SAMPLE_PROMPTS,
    exact_effective_prompts,
    links_to_sample,
    sampled_effective_prompts,
)

_PROMPT_VECTORS = PromptVectorCoder()
_SAMPLE_DEGREES = beam.CombineFn.maybe_from_callable(sum)  # arrays add elementwise; 0 when nothing was sampled


def group_prompts(group) -> tuple:
    """(group key, per prompt of the group: [feature count, feature sum, sum of squared norms, prompt text (the
    smallest, where copies of a prompt differ)]). A group holds its prompts whole, or one part of a hot pool."""
    key, batches = group
    prompts: dict = {}
    for batch in batches:
        for candidate, embedding in batch:
            add_to_prompt_entries(prompts, candidate, embedding)
    return key, prompts


def _merge_entry(merged: dict, prompt_id: str, entry: list) -> None:
    """One part's entry of a hot prompt into the prompt's entry so far."""
    found = merged.get(prompt_id)
    if found is None:
        merged[prompt_id] = list(entry)
        return
    count, total, squares, text = entry
    found[0] += count
    found[1] = total if found[1] is None else found[1] if total is None else found[1] + total
    found[2] += squares
    found[3] = min(found[3], text)


def _prompt_texts(group) -> list:
    """(prompt id, text) of a group of whole prompts; a hot prompt's text comes from `SumStatistics`, where its
    parts meet."""
    key, prompts = group
    if is_hot_part(key):
        return []
    return entry_texts(prompts)


@dataclass
class PlannerStatistics:
    moments: Moments | None  # None: no prompt had a feature
    hot_texts: list  # (prompt id, text) of each hot prompt, its parts merged


class SumStatistics(beam.CombineFn):
    """Groups' prompt entries in, PlannerStatistics out, in one global combine: a whole prompt is folded into the
    moments BATCH prompts at a time (one matrix product per batch for every replicate); the parts of a hot prompt
    wait in the accumulator until every part has met (its sums are not additive in the moments: |s|^2 / n). The
    accumulator holds at most BATCH whole prompts and one entry per hot prompt (each over --hot-above responses)
    besides the moments. Merging the hot parts here and not by key, in the one combine for both kinds of group, saves
    the job three groupings. Where Select sends the entries, this is a part of the job's one combine of summaries
    (statistics.JobInsights)."""

    BATCH = 4096

    def __init__(self, replicates: int, seed: int):
        self.replicates = replicates
        self.seed = seed

    def create_accumulator(self):
        return None, [], {}

    def add_input(self, accumulator, group):
        moments, pending, hot = accumulator
        key, prompts = group
        if is_hot_part(key):
            for prompt_id, entry in prompts.items():
                _merge_entry(hot, prompt_id, entry)
            return accumulator
        pending.extend((prompt_id, entry) for prompt_id, entry in prompts.items() if entry[0])
        return (self._fold(moments, pending), [], hot) if len(pending) >= self.BATCH else (moments, pending, hot)

    def merge_accumulators(self, accumulators):
        total, hot = None, {}
        for moments, pending, part_hot in accumulators:
            folded = self._fold(moments, pending)
            total = folded if total is None else total if folded is None else total + folded
            for prompt_id, entry in part_hot.items():
                _merge_entry(hot, prompt_id, entry)
        return total, [], hot

    def compact(self, accumulator):
        moments, pending, hot = accumulator
        return self._fold(moments, pending), [], hot

    def extract_output(self, accumulator) -> PlannerStatistics:
        moments, pending, hot = accumulator
        moments = self._fold(moments, [*pending, *((prompt_id, entry) for prompt_id, entry in hot.items() if entry[0])])
        return PlannerStatistics(moments, sorted((prompt_id, entry[3]) for prompt_id, entry in hot.items()))

    def _fold(self, moments: Moments | None, pending: list) -> Moments | None:
        if not pending:
            return moments
        keys = np.array([stable_hash("planner", prompt_id) for prompt_id, _ in pending], dtype=np.uint64)
        counts = np.array([entry[0] for _, entry in pending], dtype=np.float64)
        sums = np.stack([entry[1] for _, entry in pending])
        squares = np.array([entry[2] for _, entry in pending])
        folded = Moments.of_prompts(keys, counts, sums, squares, self.replicates, self.seed)
        return folded if moments is None else moments + folded


def _summarise(statistics: PlannerStatistics, basis: list, degree_parts: list, settings: PlanSettings) -> dict:
    moments = statistics.moments
    if moments is None:
        return plan(Moments.empty(settings.bootstrap, 1), settings, 0)
    if len(basis) <= EXACT_PROMPTS:
        effective = exact_effective_prompts(
            np.stack([vector for _, vector in sorted(basis, key=lambda item: item[0])]), settings.redundancy_threshold
        )
    else:
        degrees = merged_output(_SAMPLE_DEGREES, degree_parts)
        effective = sampled_effective_prompts(degrees, round(moments.scalars[0, 0]), settings.ci_level)
    summary = plan(moments, settings, effective.count)
    summary.update(effective.as_dict())
    summary["redundancy_threshold"] = settings.redundancy_threshold
    return summary


def _redundancy_key(keyed_vector) -> int:
    return stable_hash("redundancy", keyed_vector[0])


class RedundancyBasis(beam.CombineFn):
    """Batches of (prompt id, vector) in; the EXACT_PROMPTS + 1 prompts of smallest hash out, smallest first: all of
    them when the corpus is small (the count is then exact), else a uniform sample whose first SAMPLE_PROMPTS the
    degree pass measures. Beam's Top.Smallest, taking a batch at a time, so that it can also be a part of the job's
    combine of summaries, where Select sends its buckets' prompt vectors (statistics.JobInsights)."""

    LIMIT = EXACT_PROMPTS + 1

    def create_accumulator(self) -> list:
        return []

    def add_input(self, accumulator: list, batch: list) -> list:
        accumulator.extend((_redundancy_key(pair), *pair) for pair in batch)
        return self.compact(accumulator) if len(accumulator) > 2 * self.LIMIT else accumulator

    def merge_accumulators(self, accumulators) -> list:
        return self.compact([item for accumulator in accumulators for item in accumulator])

    def compact(self, accumulator: list) -> list:
        # By (hash, prompt id): distinct prompts' hashes never tie in practice, and a vector is never compared.
        return heapq.nsmallest(self.LIMIT, accumulator, key=_hash_then_prompt)

    def extract_output(self, accumulator: list) -> list:
        return [(prompt_id, vector) for _, prompt_id, vector in self.compact(accumulator)]


def _hash_then_prompt(item: tuple) -> tuple:
    return item[0], item[1]


def _keyed_by_first_prompt(batch: list) -> Iterator[tuple]:
    if batch:  # a bucket whose every member was rejected has no prompt
        yield batch[0][0], batch


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
    complete when its group is read and the stage holds one group's (the parts of a hot pool meet in the combine).
    Summed in the embedding stage, every prompt's 384-d sum was held to its end: 1.2 GB at 400,000
    prompts."""

    def __init__(
        self,
        embedding: EmbeddingSettings,
        settings: PlanSettings,
        seed: int,
        cache=None,
        spill: str | None = None,
        statistics: beam.PCollection | None = None,
        prompt_vectors: beam.PCollection | None = None,
        basis: beam.PCollection | None = None,
    ):
        super().__init__()
        # PlannerStatistics summed elsewhere (one element: the job's combine of summaries), or None to sum them here.
        self.statistics = statistics
        # Batches of (prompt id, vector) made where the groups were read (Select embeds every prompt of its buckets,
        # all whole), or None to embed the prompts' texts here.
        self.prompt_vectors = prompt_vectors
        # The RedundancyBasis of those prompt vectors, found in the job's combine of summaries, or None to find it here.
        self.basis = basis
        # Where the prompt vectors wait for the redundancy basis as files (pipeline/spill.py), or None: held in
        # memory they were 1.7 KB a prompt.
        self.spill = spill
        if prompt_vectors is None:
            # Beam's RunInference imports torch (a second and a half): imported only by jobs that embed here.
            from mrtcurate.pipeline.embed import EmbedTexts

            self.embed_prompts = EmbedTexts(embedding, cache, "prompts")
        self.settings = settings
        self.seed = seed

    def expand(self, grouped):
        statistics = self.statistics or grouped | "Statistics" >> beam.CombineGlobally(
            SumStatistics(self.settings.bootstrap, self.seed)
        )
        if self.prompt_vectors is not None:
            batches = self.prompt_vectors
        else:
            texts = (
                grouped | "PromptTexts" >> beam.FlatMap(_prompt_texts),
                statistics | "HotPromptTexts" >> beam.FlatMap(lambda found: found.hot_texts),
            )
            batches = (
                texts
                | "AllPromptTexts" >> beam.Flatten()
                | "EmbedPrompts" >> self.embed_prompts
                | "PromptBatches" >> beam.BatchElements(min_batch_size=256, max_batch_size=4096)
            )
        basis = self.basis or batches | "RedundancyBasis" >> beam.CombineGlobally(RedundancyBasis())
        degrees = (
            batches
            | "Keyed" >> beam.FlatMap(_keyed_by_first_prompt)  # a segment per batch, by its first prompt
            | "SpillPromptBatches" >> SpillBatches(self.spill, _PROMPT_VECTORS)
            | "LinksToSample"
            >> beam.ParDo(
                _LinksToSample(self.settings.redundancy_threshold, self.spill), beam.pvalue.AsSingleton(basis)
            )
            # Summed per bundle, and over the bundles where the plan reads them: an array of SAMPLE_PROMPTS counts
            # per bundle, against the grouping a global combine would cost.
            | "DegreesPerBundle" >> beam.ParDo(FoldPerBundle(_SAMPLE_DEGREES))
        )
        return statistics | "Plan" >> beam.Map(
            _summarise, beam.pvalue.AsSingleton(basis), beam.pvalue.AsList(degrees), self.settings
        )
