"""The report's statistics as combines, all in one (`JobInsights`). The Select stage folds a bucket's pools
into one accumulator of the pool statistics (pipeline/select.py) and the manifest merges the buckets'
accumulators (`OfAccumulators`), so they cross the engine once per bucket, not once per prompt."""

from __future__ import annotations

import heapq
import math
from collections import Counter

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from mrtcurate.ids import stable_hash
from mrtcurate.schemas.counts import EXAMPLE_PROMPTS, LENGTH_BINS, MERGES_SHOWN, SCORE_SAMPLE, Insight, QualityMeans


class SumProfiles(beam.CombineFn):
    """Candidates by source and by completion-length bin, summed over pools; and per source a sample of the
    pools' rewards (the SCORE_SAMPLE smallest response hashes, so the same whatever the order of pools)."""

    def create_accumulator(self):
        return {}, [0] * len(LENGTH_BINS), {}

    def add_input(self, accumulator, profile):
        pool_sources, pool_lengths, pool_rewards = profile
        by_source: dict[str, list] = {}
        for key, source, reward in pool_rewards:
            by_source.setdefault(source, []).append((key, reward))
        return self._add(accumulator, pool_sources, pool_lengths, by_source)

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for accumulator in accumulators:
            merged = self._add(merged, *accumulator)
        return merged

    @staticmethod
    def _add(accumulator, more_sources: dict, more_lengths: list, more_rewards: dict):
        """Adds in place: one pool's profile or a whole accumulator."""
        sources, lengths, rewards = accumulator
        for source, count in more_sources.items():
            sources[source] = sources.get(source, 0) + count
        for index, count in enumerate(more_lengths):
            lengths[index] += count
        for source, pairs in more_rewards.items():
            sample = rewards.setdefault(source, [])
            sample.extend(pairs)
            if len(sample) > 2 * SCORE_SAMPLE:
                sample[:] = heapq.nsmallest(SCORE_SAMPLE, sample)
        return accumulator

    def extract_output(self, accumulator):
        sources, lengths, rewards = accumulator
        return {
            "sources": dict(sorted(sources.items())),
            "length_bins": list(LENGTH_BINS),
            "length_counts": lengths,
            "reward_sample": {
                source: [reward for _, reward in heapq.nsmallest(SCORE_SAMPLE, sample)]
                for source, sample in sorted(rewards.items())
            },
        }


class NanMeans(beam.CombineFn):
    """Mean of each position of fixed-length tuples, ignoring NaNs position by position."""

    def __init__(self, width: int):
        self.width = width

    def create_accumulator(self):
        return [0.0] * self.width, [0] * self.width

    def add_input(self, accumulator, values):
        sums, counts = accumulator
        for position, value in enumerate(values):
            if not math.isnan(value):
                sums[position] += value
                counts[position] += 1
        return sums, counts

    def merge_accumulators(self, accumulators):
        sums, counts = self.create_accumulator()
        for other_sums, other_counts in accumulators:
            sums = [a + b for a, b in zip(sums, other_sums)]
            counts = [a + b for a, b in zip(counts, other_counts)]
        return sums, counts

    def extract_output(self, accumulator):
        sums, counts = accumulator
        return [total / count if count else None for total, count in zip(sums, counts)]


class OfAccumulators(beam.CombineFn):
    """`combine` over inputs that are already its accumulators (one per bucket, or per bundle: FoldPerBundle)."""

    def __init__(self, combine: beam.CombineFn):
        self.combine = combine

    def create_accumulator(self):
        return self.combine.create_accumulator()

    def add_input(self, accumulator, partial):
        return self.combine.merge_accumulators([accumulator, partial])

    def merge_accumulators(self, accumulators):
        return self.combine.merge_accumulators(accumulators)

    def extract_output(self, accumulator):
        return self.combine.extract_output(accumulator)


class FoldPerBundle(beam.DoFn):
    """Inputs of `combine` in; one (kind, compacted accumulator) per bundle out, for OfAccumulators(combine) in the
    job's combine of summaries. This is what Beam's combiner lifting does where a combine reads one stage's output,
    done by hand: the summaries meet through a Flatten of several stages' outputs, which Beam does not lift across
    and the local runner holds whole (per-prompt planner sums and frontier offers were gigabytes at 4M responses).
    With no `kind`, the bare accumulator: where a small, bounded one per bundle is read as a list side input and
    merged by its reader (`merged_output`), which spares the job the grouping a global combine costs."""

    def __init__(self, combine: beam.CombineFn, kind: str | None = None):
        self.combine = combine
        self.kind = kind

    def start_bundle(self):
        self.accumulator = None

    def process(self, value):
        if self.accumulator is None:
            self.accumulator = self.combine.create_accumulator()
        self.accumulator = self.combine.add_input(self.accumulator, value)

    def finish_bundle(self):
        if self.accumulator is not None:
            folded = self.combine.compact(self.accumulator)
            yield WindowedValue(folded if self.kind is None else (self.kind, folded), MIN_TIMESTAMP, [GlobalWindow()])
        self.accumulator = None


def merged_output(combine: beam.CombineFn, accumulators: list):
    """`combine`'s output over the accumulators FoldPerBundle made of every bundle (a list side input)."""
    return combine.extract_output(combine.merge_accumulators([combine.create_accumulator(), *accumulators]))


def _merge_order(cluster: dict) -> int:
    return stable_hash("merge", cluster["prompt_id"], cluster["kept_response_id"])


def _cluster_size(cluster: dict) -> tuple:
    return cluster["size"], -_merge_order(cluster)


def _dominates(cluster: dict) -> bool:
    return 2 * cluster["size"] > cluster["pool_size"]


class SummariseMerges(beam.CombineFn):
    """The near-duplicate clusters the report shows: the largest, a sample by id hash, and the prompts where
    one cluster absorbed more than half of the pool (counted, and a sample named). Each list is a bounded heap,
    so the accumulator never holds more than 3 x MERGES_SHOWN clusters."""

    def create_accumulator(self):
        return [], [], 0, []

    def add_input(self, accumulator, cluster: dict):
        dominant = _dominates(cluster)
        one = ([cluster], [cluster], int(dominant), [cluster] if dominant else [])
        return self.merge_accumulators([accumulator, one])

    def merge_accumulators(self, accumulators):
        largest, sample, dominant_count, dominant = [], [], 0, []
        for more_largest, more_sample, more_count, more_dominant in accumulators:
            largest = heapq.nlargest(MERGES_SHOWN, [*largest, *more_largest], key=_cluster_size)
            sample = heapq.nsmallest(MERGES_SHOWN, [*sample, *more_sample], key=_merge_order)
            dominant_count += more_count
            dominant = heapq.nsmallest(MERGES_SHOWN, [*dominant, *more_dominant], key=_merge_order)
        return largest, sample, dominant_count, dominant

    def extract_output(self, accumulator):
        largest, sample, dominant_count, dominant = accumulator
        return {
            "largest_clusters": largest,
            "sample_clusters": sample,
            "dominant_cluster_prompts": dominant_count,
            "dominant_clusters": dominant,
        }


def _example_key(keyed_example: tuple) -> int:
    return keyed_example[0]


class FirstExamples(beam.CombineFn):
    """The EXAMPLE_PROMPTS (key, example) pairs of smallest key, smallest first."""

    def create_accumulator(self):
        return []

    def add_input(self, accumulator, keyed_example):
        return heapq.nsmallest(EXAMPLE_PROMPTS, [*accumulator, keyed_example], key=_example_key)

    def merge_accumulators(self, accumulators):
        return heapq.nsmallest(EXAMPLE_PROMPTS, [item for part in accumulators for item in part], key=_example_key)

    def extract_output(self, accumulator):
        return accumulator


class SumPerKey(beam.CombineFn):
    """(key, n) pairs in, {key: summed n} out."""

    def create_accumulator(self):
        return Counter()

    def add_input(self, accumulator, keyed):
        key, n = keyed
        accumulator[key] += n
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = Counter()
        for accumulator in accumulators:
            merged.update(accumulator)
        return merged

    def extract_output(self, accumulator):
        return dict(accumulator)


class JobInsights(beam.CombineFn):
    """Every summary of the job in one combine, so that they cost the job one grouping and not one each: (kind,
    value) pairs in (kinds of schemas.counts.Insight), {kind: its combine's output} out. Besides the report's
    statistics and the counts: the output tables' sizes, which set their shard counts (the writer waits for this
    combine and has none of its own), and, given as `parts`, the planner's statistics and qd's frontier offers."""

    def __init__(self, parts: dict[str, beam.CombineFn]):
        self.parts = {
            **parts,
            Insight.QUALITY.value: OfAccumulators(NanMeans(len(QualityMeans._fields))),
            Insight.EXAMPLE.value: FirstExamples(),
            Insight.POOL_PROFILE.value: OfAccumulators(SumProfiles()),
            Insight.MERGE.value: SummariseMerges(),
            Insight.TALLY.value: SumPerKey(),
            Insight.TABLE_BYTES.value: SumPerKey(),
        }

    def create_accumulator(self):
        return {kind: part.create_accumulator() for kind, part in self.parts.items()}

    def add_input(self, accumulator, kind_value):
        kind, value = kind_value
        accumulator[kind] = self.parts[kind].add_input(accumulator[kind], value)
        return accumulator

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        return {
            kind: part.merge_accumulators([accumulator[kind] for accumulator in accumulators])
            for kind, part in self.parts.items()
        }

    def extract_output(self, accumulator):
        return {kind: part.extract_output(accumulator[kind]) for kind, part in self.parts.items()}
