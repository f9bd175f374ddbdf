"""The qd frontier (analysis/frontier.py) measured inside the job, on FRONTIER_POOLS pools chosen by prompt
id hash, each of at most FRONTIER_MEMBERS members (by response id hash): the cost does not grow with the
corpus. Each bucket of prompts offers its pools of smallest hash (a part of a hot pool offers its members);
one combine keeps the FRONTIER_POOLS smallest over the buckets, merging the offers of one prompt, so members
never travel one by one and a hot prompt of 200,000 candidates is never gathered."""

from __future__ import annotations

import heapq

import apache_beam as beam

from mrtcurate.analysis.frontier import FRONTIER_MEMBERS, FRONTIER_POOLS, qd_frontier
from mrtcurate.ids import stable_hash, stable_hashes
from mrtcurate.pipeline.coders import MemberCoder
from mrtcurate.pipeline.pools import pool_of_members
from mrtcurate.pipeline.spill import GroupBatches
from mrtcurate.schemas.config import GroupingSettings, SelectionSettings
from mrtcurate.selectors import NearDuplicateRule, Pool, collapse_near_duplicates


def frontier_key(prompt_id: str) -> int:
    return stable_hash("frontier", prompt_id)


def _member_order(member) -> int:
    return stable_hash("frontier", member[0].response_id)


def frontier_offer(prompt_id: str, members: list) -> tuple[int, str, list]:
    """(prompt key, prompt id, its FRONTIER_MEMBERS members of smallest response hash)."""
    # The prefix hashed once for the pool (ids.stable_hashes): every member of every pool is hashed here.
    keys = stable_hashes(("frontier",), (member[0].response_id for member in members))
    smallest = heapq.nsmallest(FRONTIER_MEMBERS, zip(keys, range(len(members))))
    return frontier_key(prompt_id), prompt_id, [members[index] for _, index in smallest]


def smallest_offers(offers: list) -> list:
    """The offers of the FRONTIER_POOLS smallest prompt keys, a prompt's offers merged into one."""
    by_prompt: dict[str, tuple[int, list]] = {}
    for key, prompt_id, members in offers:
        _, seen = by_prompt.get(prompt_id, (key, []))
        by_prompt[prompt_id] = (key, [*seen, *members])
    kept = heapq.nsmallest(FRONTIER_POOLS, by_prompt.items(), key=lambda item: item[1][0])
    return [
        (key, prompt_id, heapq.nsmallest(FRONTIER_MEMBERS, members, key=_member_order))
        for prompt_id, (key, members) in kept
    ]


class SmallestOffers(beam.CombineFn):
    """Offers in; the FRONTIER_POOLS smallest (smallest_offers) out: a part of the job's one combine of summaries
    (statistics.JobInsights), or a combine of its own for `mrt plan`."""

    def create_accumulator(self):
        return []

    def add_input(self, accumulator, offer):
        return self.merge_accumulators([accumulator, [offer]])

    def merge_accumulators(self, accumulators):
        return smallest_offers([offer for offers in accumulators for offer in offers])

    def extract_output(self, accumulator):
        return accumulator


def _pool(offer, rule: NearDuplicateRule) -> Pool:
    """The pool as selection sees it: exact copies merged (pipeline/select.py), lexical near-duplicates
    collapsed (the embedding test, opt-in, is left out: the frontier compares selectors, not duplicate rules)."""
    _, prompt_id, members = offer
    pool, candidates, _ = pool_of_members(prompt_id, members)
    return collapse_near_duplicates(pool, [candidate.completion for candidate in candidates], rule).pool


def measured_frontier(offers: list, k: int, selection: SelectionSettings, grouping: GroupingSettings) -> dict | None:
    """The frontier dict of SmallestOffers' output, or None where no sampled pool has rewards and more than K
    candidates."""
    rule = NearDuplicateRule(grouping.near_dup)
    pools = [_pool(offer, rule) for offer in offers]
    return qd_frontier(sorted(pools, key=lambda pool: pool.prompt_id), k, selection.qd, selection.seed)


def _bucket_offers(bucket) -> list:
    _, batches = bucket
    by_prompt: dict[str, list] = {}
    for member in (member for batch in batches for member in batch):
        by_prompt.setdefault(member[0].prompt_id, []).append(member)
    return smallest_offers([frontier_offer(prompt_id, members) for prompt_id, members in by_prompt.items()])


class MeasureFrontier(beam.PTransform):
    """(prompt bucket, members) batches in, for a job without the Select stage (`mrt plan`); one element out, the
    frontier dict or None (measured_frontier). `mrt run` sums Select's offers in its combine of summaries."""

    def __init__(self, selection: SelectionSettings, grouping: GroupingSettings, k, spill: str | None = None):
        super().__init__()
        self.selection = selection
        self.grouping = grouping
        self.k = beam.pvalue.AsSingleton(k)
        self.spill = spill  # where the members cross the grouping as files (pipeline/spill.py), or None

    def expand(self, batches):
        return (
            batches
            | "GroupBucket" >> GroupBatches(self.spill, MemberCoder())
            | "Offers" >> beam.FlatMap(_bucket_offers)
            | "SmallestOffers" >> beam.CombineGlobally(SmallestOffers())
            | "Frontier" >> beam.Map(measured_frontier, self.k, self.selection, self.grouping)
        )
