"""The report's pool statistics as combines. The Select stage folds a bucket's pools into one accumulator of
each (pipeline/select.py) and the manifest merges the buckets' accumulators (`OfAccumulators`), so they cross
the engine once per bucket, not once per prompt."""

from __future__ import annotations

import heapq
import math

import apache_beam as beam

from mrtcurate.schemas.counts import LENGTH_BINS, SCORE_SAMPLE


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
    """`combine` over inputs that are already its accumulators (one per bucket)."""

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
