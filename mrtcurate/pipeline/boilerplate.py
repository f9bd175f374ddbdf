"""Boilerplate across prompts (DESIGN.md 2.2): one normalised response answering many distinct prompts (a
null model's output, a refusal template) is not an answer to any of them. A keyed count over the whole
corpus, inside the job: (response id, hashed prompt) pairs travel in batches to one grouping by a bucket of
response ids, where each response's distinct prompts are counted; responses at or over the threshold leave
as one `boilerplate_response` reject per record they stand for. The split itself happens where the candidates
are grouped anyway: the exact-dedup buckets (pipeline/dedup.py), or the Select stage's buckets when nothing
comes between. Holding every candidate for a split of its own had cost a third of a plain random run.
"""

from __future__ import annotations

import re

import apache_beam as beam

from mrtcurate.ids import stable_hash
from mrtcurate.pipeline.batching import BatchByKey, content_bucket
from mrtcurate.pipeline.coders import PlainValuesCoder
from mrtcurate.pipeline.spill import GroupBatches
from mrtcurate.pipeline.statistics import FoldPerBundle, merged_output
from mrtcurate.schemas import Candidate, Reject, RejectReason
from mrtcurate.schemas.config import AUTO_BOILERPLATE_PROMPTS, GroupingSettings
from mrtcurate.schemas.counts import Count
from mrtcurate.schemas.records import RecordLocator

MIN_WORDS = 3  # "Yes", "No", "42": short answers many prompts share legitimately are never boilerplate
COUNT_CAP = 10_000  # distinct prompts counted per response; the detail of a response past it says "at least"


class _DistinctUpTo(beam.CombineFn):
    """How many distinct values (inputs are sets of values), counted exactly up to `cap`: min(distinct, cap)
    whatever the bundling."""

    def __init__(self, cap: int):
        self.cap = cap

    def create_accumulator(self) -> set:
        return set()

    def add_input(self, seen: set, values: set) -> set:
        return self.merge_accumulators([seen, values])

    def merge_accumulators(self, accumulators) -> set:
        merged: set = set()
        for seen in accumulators:
            merged |= seen
        return merged if len(merged) <= self.cap else set(sorted(merged)[: self.cap])

    def extract_output(self, seen: set) -> int:
        return len(seen)


# The threshold needs the prompt count only below 4 x AUTO_BOILERPLATE_PROMPTS: counting that far is enough.
_PROMPT_COUNT = _DistinctUpTo(4 * AUTO_BOILERPLATE_PROMPTS)
_HEX_ID = re.compile("[0-9a-f]{16}")


def _prompt_hash(prompt_id: str) -> int:
    """The prompt travels as a signed 64-bit integer (a VarInt crosses the shuffle cheaper than an id of any
    length). A prompt id that is already a 64-bit hash in hex (ids.stable_id, unless --id-field) is read as
    one, distinct ids to distinct integers; any other id is hashed (a cache of the hash did not hold at a
    million prompts)."""
    if _HEX_ID.fullmatch(prompt_id):
        value = int(prompt_id, 16)
        return value - (1 << 64) if value >= 1 << 63 else value
    return stable_hash("boilerplate", prompt_id) >> 1


def _long_enough(candidate: Candidate) -> bool:
    return len(candidate.completion.split(None, MIN_WORDS - 1)) >= MIN_WORDS  # no need to split a long text whole


def boilerplate_rejects(candidate: Candidate, prompts: int, locator: RecordLocator) -> list[Reject]:
    """One `boilerplate_response` reject per record the candidate stands for."""
    how_many = f"at least {COUNT_CAP:,}" if prompts >= COUNT_CAP else str(prompts)
    return candidate.rejected(
        RejectReason.BOILERPLATE_RESPONSE.value, f"the same response answers {how_many} distinct prompts", locator
    )


class _ResponseBucket:
    """A candidate to (bucket of its response id, (response id, hashed prompt)); the response id is None where the
    response is too short to be boilerplate (its prompt still counts among the corpus's prompts)."""

    def __init__(self, buckets: int):
        self.buckets = buckets

    def __call__(self, candidate: Candidate):
        prompt = _prompt_hash(candidate.prompt_id)
        if not _long_enough(candidate):
            return 0, (None, prompt)
        return content_bucket(candidate.response_id, self.buckets), (candidate.response_id, prompt)


def _prompts_of(keyed_batch) -> set[int]:
    return {prompt for _, prompt in keyed_batch[1]}


class _OverThreshold(beam.DoFn):
    """The responses of one bucket at or over the threshold, with how many distinct prompts they answer (counted
    exactly up to COUNT_CAP). The threshold depends on the corpus's prompt count, from each bundle's distinct prompts
    (a list side input, the same for every bucket: merged once per worker)."""

    def __init__(self, grouping: GroupingSettings):
        self.grouping = grouping
        self.threshold = None

    def process(self, bucket, prompts_per_bundle: list):
        if self.threshold is None:
            self.threshold = self.grouping.boilerplate_threshold(merged_output(_PROMPT_COUNT, prompts_per_bundle))
        yield from _over_threshold_in(bucket, self.threshold)


def _over_threshold_in(bucket, threshold: int):
    _, batches = bucket
    answered: dict[str, set] = {}
    for batch in batches:
        for response_id, prompt in batch:
            if response_id is None:
                continue
            seen = answered.setdefault(response_id, set())
            if len(seen) < COUNT_CAP:
                seen.add(prompt)
    for response_id in sorted(answered):
        if len(answered[response_id]) >= threshold:
            yield response_id, len(answered[response_id])


class BoilerplateResponses(beam.PTransform):
    """Candidates in; (response id, distinct prompts it answers) out, for the responses at or over the threshold.
    (response id, hashed prompt) pairs travel in batches to one grouping by a bucket of response ids: a keyed
    combine per response had made the count one shuffled element per distinct response. Prompts are told apart by
    their 64-bit hash (a collision among a corpus's prompts has odds below 2^-30 at a million prompts)."""

    def __init__(self, grouping: GroupingSettings, buckets: int, spill: str | None = None):
        super().__init__()
        self.grouping = grouping
        self.buckets = buckets
        self.spill = spill  # where the pairs cross the grouping as files (pipeline/spill.py), or None

    def expand(self, candidates):
        pairs = candidates | "ResponsePrompts" >> beam.ParDo(
            BatchByKey(_ResponseBucket(self.buckets))
        ).with_output_types(tuple[int, list[tuple[str | None, int]]])
        # Counted per bundle and merged where read: at most 4 x AUTO_BOILERPLATE_PROMPTS prompts per bundle, against
        # the grouping a global combine would cost.
        prompts = (
            pairs
            | "PromptsOfBatch" >> beam.Map(_prompts_of)
            | "PromptsPerBundle" >> beam.ParDo(FoldPerBundle(_PROMPT_COUNT))
        )
        return (
            pairs
            | "ByResponseBucket" >> GroupBatches(self.spill, PlainValuesCoder())
            | "Boilerplate" >> beam.ParDo(_OverThreshold(self.grouping), beam.pvalue.AsList(prompts))
        )


def boilerplate_tallies(rejects) -> tuple:
    """(count pairs, reason pairs) of the boilerplate rejects."""
    counts = rejects | "CountBoilerplate" >> beam.Map(lambda _: (Count.REJECTED_BOILERPLATE.value, 1))
    reasons = rejects | "BoilerplateReason" >> beam.Map(lambda reject: (reject.reason, 1))
    return counts, reasons
