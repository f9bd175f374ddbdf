"""The qd frontier (analysis/frontier.py) measured inside the job, on FRONTIER_POOLS pools chosen by prompt
id hash, each of at most FRONTIER_MEMBERS members (by response id hash, kept by a combine, so a hot prompt
of 200,000 candidates is never gathered): the cost does not grow with the corpus."""

from __future__ import annotations

import apache_beam as beam

from mrtcurate.analysis.frontier import FRONTIER_MEMBERS, FRONTIER_POOLS, qd_frontier
from mrtcurate.ids import stable_hash
from mrtcurate.pipeline.coders import Member
from mrtcurate.pipeline.select import pool_of_members
from mrtcurate.schemas.config import GroupingSettings, SelectionSettings
from mrtcurate.selectors import NearDuplicateRule, Pool, collapse_near_duplicates


def _frontier_key(prompt_id: str) -> int:
    return stable_hash("frontier", prompt_id)


def _member_order(member) -> int:
    return -stable_hash("frontier", member[0].response_id)  # Top keeps the largest: the smallest hashes


def _in_sample(member, sample: list[str]) -> bool:
    return member[0].prompt_id in sample


def _pool(prompt_members, rule: NearDuplicateRule) -> Pool:
    """The pool as selection sees it: exact copies merged (pipeline/select.py), lexical near-duplicates
    collapsed (the embedding test, opt-in, is left out: the frontier compares selectors, not duplicate rules)."""
    pool, candidates, _ = pool_of_members(*prompt_members)
    return collapse_near_duplicates(pool, [candidate.completion for candidate in candidates], rule).pool


def _frontier(pools: list[Pool], k: int, selection: SelectionSettings) -> dict | None:
    return qd_frontier(sorted(pools, key=lambda pool: pool.prompt_id), k, selection.qd, selection.seed)


class MeasureFrontier(beam.PTransform):
    """(candidate, embedding) members in; one element out: the frontier dict, or None where no sampled pool
    has rewards and more than K candidates."""

    def __init__(self, selection: SelectionSettings, grouping: GroupingSettings, k):
        super().__init__()
        self.selection = selection
        self.rule = NearDuplicateRule(grouping.near_dup)
        self.k = beam.pvalue.AsSingleton(k)

    def expand(self, members):
        sample = (
            members
            | "PromptIds" >> beam.Map(lambda member: member[0].prompt_id)
            | "Distinct" >> beam.Distinct()
            | "Sample" >> beam.combiners.Top.Smallest(FRONTIER_POOLS, key=_frontier_key)
        )
        return (
            members
            | "InSample" >> beam.Filter(_in_sample, beam.pvalue.AsSingleton(sample))
            | "ByPrompt" >> beam.Map(lambda member: (member[0].prompt_id, member)).with_output_types(tuple[str, Member])
            | "CapPools" >> beam.combiners.Top.PerKey(FRONTIER_MEMBERS, key=_member_order)
            | "Pools" >> beam.Map(_pool, self.rule)
            | "All" >> beam.combiners.ToList()
            | "Frontier" >> beam.Map(_frontier, self.k, self.selection)
        )
