"""The names of the job's counts and of its report statistics, defined once.

Stages emit `(Count.X.value, n)` pairs (plain strings travel through Beam's coders deterministically),
the manifest sums them into its `counts`, and the report and terminal summary read them back.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import NamedTuple

import numpy as np

from mrtcurate.schemas.records import Candidate, ContextTurns, Reject


class Count(str, Enum):
    PARSED_CANDIDATES = "parsed_candidates"  # valid units out of parsing, before any dedup
    REJECTED = "rejected"  # at reading: records that never became a candidate
    REJECTED_UNEMBEDDABLE = "rejected_unembeddable"  # records of parsed candidates whose text got no usable vector
    REJECTED_BOILERPLATE = "rejected_boilerplate"  # records of parsed candidates whose text answers too many prompts
    EMBEDDING_FALLBACK = "embedding_fallback"  # responses kept without a usable vector (similarity 0 to every other)
    DUPLICATES_EXACT = "duplicates_exact"
    DUPLICATES_NEAR = "duplicates_near"
    PROMPTS = "prompts"
    CANDIDATES = "candidates"  # after exact and near dedup: what selection chose from
    SELECTED = "selected"
    DIVERSITY_ONLY_PROMPTS = "diversity_only_prompts"  # qd on pools with no reward
    RANDOM_FALLBACK_PROMPTS = "random_fallback_prompts"  # topk on pools with no reward
    PROMPTS_BEFORE_MERGE = "prompts_before_merge"
    PROMPT_GROUPS_MERGED = "prompt_groups_merged"
    TEXTS_TRUNCATED = (
        "texts_truncated"  # responses (one per prompt a text answers) this run embedded, cut by the window
    )
    CONTEXT_MESSAGES = "context_messages"  # tree layout: valid user and system messages, read as prompt context
    SCORED_BY_MODEL = "scored_by_model"  # distinct responses --reward-model scored
    SCORES_TRUNCATED = "scores_truncated"  # of those, pairs longer than the model's window (prompt cut from its start)
    VECTORS_FROM_CACHE = "vectors_from_cache"  # distinct responses whose vector an earlier run computed (--cache)
    SCORES_FROM_CACHE = "scores_from_cache"  # distinct responses whose score an earlier run computed (--cache)
    JUDGE_REQUESTS = "judge_requests"  # --judge-url: requests made, retries included
    JUDGE_PROMPT_TOKENS = "judge_prompt_tokens"  # as the endpoint reported them
    JUDGE_COMPLETION_TOKENS = "judge_completion_tokens"
    JUDGE_UNPARSED = "judge_unparsed"  # replies with no grade by the parsing rule: null scores
    JUDGE_FAILED = "judge_failed"  # responses whose every attempt failed (timeouts, 429s, 5xx): null scores
    JUDGE_OVER_BUDGET = "judge_over_budget"  # responses left unscored once --judge-budget was spent


@dataclass
class UnitTally:
    """What a stream of parsed units adds to the counts: candidates, rejects by reason, and the tree
    layout's context messages. Reading, the message-table join and `mrt inspect` all count this way."""

    candidates: int = 0
    context: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, unit: object) -> None:
        if isinstance(unit, Candidate):
            self.candidates += 1
        elif isinstance(unit, Reject):
            self.reasons[unit.reason] += 1
        elif isinstance(unit, ContextTurns):
            self.context += unit.count

    @property
    def rejected(self) -> int:
        return self.reasons.total()

    def counts(self, with_context: bool) -> list[tuple[str, int]]:
        """(count name, n) pairs as the stages emit them."""
        pairs = [(Count.PARSED_CANDIDATES.value, self.candidates), (Count.REJECTED.value, self.rejected)]
        return pairs + [(Count.CONTEXT_MESSAGES.value, self.context)] if with_context else pairs


class Insight(str, Enum):
    """The kinds of statistics the stages send to the manifest, summarised in one combine (statistics.JobInsights)."""

    QUALITY = "quality"
    EXAMPLE = "example"
    POOL_PROFILE = "pool_profile"  # (candidates by source, completion-length histogram, hashed rewards) of one pool
    MERGE = "merge"  # one near-duplicate cluster: its representative, size, pool size and some merged texts
    FRONTIER_OFFERS = "frontier_offers"  # a pool offered to qd's frontier, of which the smallest are kept (frontier.py)
    PLANNER_ENTRIES = "planner_entries"  # a group's per-prompt feature sums, folded into the planner's moments
    REDUNDANCY_BASIS = "redundancy_basis"  # a bucket's prompt vectors, of which the smallest by hash are kept (plan.py)
    TALLY = "tally"  # (("count", name) or ("reason", reject reason), n): the manifest's counts, summed per key
    TABLE_BYTES = "table_bytes"  # (output table, estimated bytes of a batch of its rows): the shard counts (write.py)


class QualityMeans(NamedTuple):
    """Per prompt: mean quality and diversity of the pool and of the kept set (means over prompts in the manifest)."""

    pool_quality: float
    kept_quality: float
    pool_diversity: float
    kept_diversity: float
    kept_coverage: float  # the qd objective's diversity term: the pool's mass the kept set covers, in [0, 1]


# Completion-length bins (characters) shared by the pool profile (Select) and the kept rows (report);
# the last bin is open-ended.
LENGTH_BINS = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def length_histogram(lengths) -> list[int]:
    """Counts per LENGTH_BINS bin (a bin holds lengths from its edge up to the next one)."""
    bins = np.searchsorted(LENGTH_BINS, np.asarray(lengths, dtype=np.int64), side="right") - 1
    return np.bincount(bins, minlength=len(LENGTH_BINS)).tolist()


def length_bin_labels() -> list[str]:
    return [f"{low}-{high - 1}" for low, high in itertools.pairwise(LENGTH_BINS)] + [f"{LENGTH_BINS[-1]}+"]


EXAMPLE_PROMPTS = 5  # prompts (smallest id hash) on which the report shows what every selector keeps
MERGED_TEXTS_SHOWN = 3  # texts merged into a representative that the report shows, per cluster
MERGES_SHOWN = 10  # clusters the report lists: the largest, and as many more by id hash
SCORE_SAMPLE = 4000  # pool rewards per source (by response hash) the report draws the pools' distribution from
DIVERSITY_SAMPLE = 256  # pool members (by id hash) whose pairwise distances give the pool's diversity


@dataclass(frozen=True)
class Totals:
    """The manifest's `counts`: what the job's counts add up to, with the accounting identity
    input_records = rejected + duplicates_merged + candidates."""

    input_records: int
    rejected: int
    prompts: int
    candidates: int
    duplicates_merged: int
    duplicates_merged_exact: int
    duplicates_merged_near: int
    selected: int
    prompts_before_merge: int | None = None  # with --merge-prompts only
    prompt_groups_merged: int | None = None
    context_messages: int | None = None  # tree layout only: messages that are neither candidates nor rejects

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> Totals:
        def count(name: Count) -> int:
            return counts.get(name.value, 0)

        exact, near = count(Count.DUPLICATES_EXACT), count(Count.DUPLICATES_NEAR)
        return cls(
            input_records=count(Count.PARSED_CANDIDATES) + count(Count.REJECTED),
            rejected=count(Count.REJECTED) + count(Count.REJECTED_UNEMBEDDABLE) + count(Count.REJECTED_BOILERPLATE),
            prompts=count(Count.PROMPTS),
            candidates=count(Count.CANDIDATES),
            duplicates_merged=exact + near,
            duplicates_merged_exact=exact,
            duplicates_merged_near=near,
            selected=count(Count.SELECTED),
            prompts_before_merge=counts.get(Count.PROMPTS_BEFORE_MERGE.value),
            prompt_groups_merged=counts.get(Count.PROMPT_GROUPS_MERGED.value),
            context_messages=counts.get(Count.CONTEXT_MESSAGES.value),
        )

    @classmethod
    def from_manifest(cls, counts: dict) -> Totals:
        return cls(**counts)

    @property
    def accounted(self) -> int:
        return self.rejected + self.duplicates_merged + self.candidates

    @property
    def holds(self) -> bool:
        return self.input_records == self.accounted

    def identity(self) -> str:
        return (
            f"input_records {self.input_records:,} = rejected {self.rejected:,} + duplicates_merged "
            f"{self.duplicates_merged:,} + candidates {self.candidates:,}"
        )

    def as_dict(self) -> dict[str, int]:
        return {name: value for name, value in asdict(self).items() if value is not None}
