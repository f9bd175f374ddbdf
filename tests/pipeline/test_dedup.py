"""Exact dedup in prompt buckets: copies become one candidate, whatever the order or bundling."""

import itertools

import apache_beam as beam

from mrtcurate.pipeline.dedup import MergeExactDuplicates
from mrtcurate.schemas import Candidate
from tests.helpers import collect_to, collected, local_pipeline, no_files


def copy(prompt_id, response_id, reward, source):
    return Candidate(prompt_id, response_id, "prompt", f"text {response_id}", reward, source)


COPIES = [
    copy("p", "r1", 0.2, "b.jsonl"),
    copy("p", "r1", None, "a.jsonl"),
    copy("p", "r1", 0.7, "c.jsonl"),
    copy("p", "r2", None, "a.jsonl"),
    copy("q", "r1", 1.0, "a.jsonl"),
]


def merged(tmp_path, items, label):
    with local_pipeline() as pipeline:
        out, _, _ = (
            pipeline
            | beam.Create(items, reshuffle=True)
            | MergeExactDuplicates(buckets=3, hot_above=50_000, locations=no_files())
        )
        collect_to(
            out | beam.Map(lambda c: [c.prompt_id, c.response_id, c.multiplicity, c.reward, c.source]),
            tmp_path / label,
            label,
        )
    return sorted(collected(tmp_path / label))


def test_copies_merge_with_multiplicity_best_reward_and_a_stable_representative(tmp_path):
    expected = [["p", "r1", 3, 0.7, "a.jsonl"], ["p", "r2", 1, None, "a.jsonl"], ["q", "r1", 1, 1.0, "a.jsonl"]]
    for index, order in enumerate(itertools.islice(itertools.permutations(COPIES), 0, 120, 40)):
        assert merged(tmp_path, list(order), f"order{index}") == expected


def test_the_buckets_count_each_pool_over_the_hot_limit_after_merging_copies(tmp_path):
    # Pool "p": 3 distinct responses (r1 three times), "q": 1. With a limit of 2 only "p" is hot, with size 3.
    with local_pipeline() as pipeline:
        _, _, hot = (
            pipeline
            | beam.Create(COPIES + [copy("p", "r3", None, "a.jsonl")], reshuffle=True)
            | MergeExactDuplicates(buckets=3, hot_above=2, locations=no_files())
        )
        collect_to(hot | beam.Map(list), tmp_path / "hot", "hot")
    assert collected(tmp_path / "hot") == [["p", 3]]
