"""Select K per prompt through the selector interface and turn the choice into curated rows.

Hot keys: a prompt with more than `hot_above` candidates is split by response-id hash into parts of
about `part_size`; each part keeps `_OVERSAMPLE * K` by the same selector on whichever worker holds it,
and K are then chosen from the union (distributed greedy, "GreeDi"). The split depends on ids only,
so the result is the same whatever the runner's bundling. For random and topk the two-stage choice
is exact (bottom-K and top-K merge exactly); for qd it is GreeDi's approximation.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass, replace

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from mrtcurate import selectors
from mrtcurate.analysis.frontier import kept_coverage
from mrtcurate.garbage import tune_collector
from mrtcurate.ids import stable_hash, stable_hashes
from mrtcurate.pipeline import progress
from mrtcurate.pipeline.boilerplate import boilerplate_rejects
from mrtcurate.pipeline.coders import MemberCoder
from mrtcurate.pipeline.embed_responses import UNUSABLE, BucketEmbedder
from mrtcurate.pipeline.frontier import frontier_offer, smallest_offers
from mrtcurate.pipeline.pools import (
    add_to_prompt_entries,
    distinct_candidates,
    entry_texts,
    hot_parts,
    pool_of_members,
)
from mrtcurate.pipeline.read import Locations
from mrtcurate.pipeline.spill import GroupBatches
from mrtcurate.pipeline.statistics import NanMeans, SumProfiles
from mrtcurate.schemas import Candidate, DropReason
from mrtcurate.schemas.config import EmbeddingSettings, GroupingSettings, SelectionSettings
from mrtcurate.schemas.counts import (
    DIVERSITY_SAMPLE,
    EXAMPLE_PROMPTS,
    MERGED_TEXTS_SHOWN,
    Count,
    Insight,
    QualityMeans,
    length_histogram,
)
from mrtcurate.schemas.records import Origin, RecordLocator
from mrtcurate.vectors.embedders import window_fit

COUNTS = "counts"
PARTIAL = "partial"
INSIGHTS = "insights"
EXAMPLE_POOLS = "example_pools"  # within a bucket only: its smallest become report examples there
DROPPED = "dropped"
REJECTS = "rejects"
FRONTIER_OFFERS = "frontier_offers"
PLANNER_ENTRIES = "planner_entries"
PROMPT_VECTORS = "prompt_vectors"
_MEMBER_PROFILE = "member_profile"  # within a bucket only: its members' sources, lengths and rewards
_OVERSAMPLE = 4  # each part of a split pool keeps this many times K for the second stage
_QUALITY_MEANS = NanMeans(len(QualityMeans._fields))
_PROFILES = SumProfiles()


@dataclass(frozen=True)
class _SelectStage:
    """What the Select DoFns read: the run's selection section plus two facts of the run."""

    selection: SelectionSettings
    grouping: GroupingSettings
    embedding: EmbeddingSettings
    with_messages: bool
    reward_sign: (
        float  # -1 with --reward-order lower: rewards travel oriented (larger is better) and are written as given
    )
    locator: RecordLocator  # the input file and row of each dropped record
    dropped_texts: bool = False  # dropped/ rows carry their completion
    offers_frontier: bool = False  # pools offer themselves to qd's frontier (pipeline/frontier.py)
    planner_entries: bool = False  # each group's prompt entries for the planner (pipeline/plan.py)

    def reward_as_given(self, oriented: float) -> float | None:
        return _finite_or_none(self.reward_sign * oriented)

    @property
    def near_duplicates(self) -> selectors.NearDuplicateRule:
        return selectors.NearDuplicateRule(self.grouping.near_dup, self.grouping.near_dup_embedding)


class _Selecting(beam.DoFn):
    def __init__(self, stage: _SelectStage):
        self.stage = stage
        self.settings = stage.selection
        self.selected = Metrics.counter("mrtcurate", "selected")
        # With the rows of split files' earlier parts once a process call brings them (`locating`).
        self.locator = stage.locator

    def locating(self, rows_before: dict) -> None:
        self.locator = self.stage.locator.with_rows_before(rows_before)

    def location(self, candidate: Candidate, origin: Origin | None = None) -> tuple[str | None, int | None]:
        """The input file and row of `origin`, by default of the earliest record the candidate stands for (a
        candidate's other records are its exact copies)."""
        if origin is None and candidate.origins:
            origin = candidate.origins[0]
        return (None, None) if origin is None else self.locator.locate(origin)

    @property
    def spec(self) -> selectors.SelectorSpec:
        return selectors.SELECTORS[self.settings.selector]

    def setup(self):
        tune_collector()  # a worker process of its own runs no CLI
        self.select_k = self.spec.build(self.settings.qd)
        rule = self.stage.near_duplicates
        self.fits_window = (
            None
            if rule.embedding is None
            else window_fit(self.stage.embedding.embedder, self.stage.embedding.max_tokens)
        )

    def finish_bundle(self):
        progress.flush()

    def collapse(self, pool: selectors.Pool, candidates: list[Candidate]) -> selectors.Collapsed:
        by_id = {c.response_id: c for c in candidates}
        texts = [by_id[response_id].completion for response_id in pool.response_ids]
        fits = None if self.fits_window is None or len(pool) < 2 else self.fits_window(texts)
        return selectors.collapse_near_duplicates(pool, texts, self.stage.near_duplicates, fits)

    def finish_prompt(
        self, pool: selectors.Pool, candidates: list[Candidate], pool_size: int, near_merged: int, k: int
    ):
        """Select K of the pool; yield its rows and its counts."""
        selection = selectors.select(self.select_k, pool, k, self.settings.seed)
        by_id = {c.response_id: c for c in candidates}
        quality = selectors.minmax_quality(pool.rewards)
        yield from self._rows(pool, selection, by_id, pool_size, quality)
        yield from _dropped_batch(self.not_selected(pool, selection.indices, by_id))
        yield from self._insights(pool, selection, quality)
        self.selected.inc(len(selection.indices))
        progress.add(progress.SELECTED, 1)
        counts = [
            (Count.PROMPTS, 1),
            (Count.CANDIDATES, pool_size),
            (Count.DUPLICATES_NEAR, near_merged),
            (Count.SELECTED, len(selection.indices)),
        ]
        if self.spec.unrewarded_count:
            counts.append((self.spec.unrewarded_count, int(len(pool) > k and not pool.has_rewards)))
        for name, value in counts:
            yield beam.pvalue.TaggedOutput(COUNTS, (name.value, value))

    def _dropped(
        self,
        pool: selectors.Pool,
        index: int,
        by_id: dict,
        reason: DropReason,
        records: int,
        origin: Origin | None = None,
        **lineage,
    ):
        """`origin`: the record the row stands for; by default the earliest of the candidate's copies (the others
        are its exact_duplicate rows)."""
        candidate = by_id[pool.response_ids[index]]
        source_file, source_row = self.location(candidate, origin)
        row = {
            "prompt_id": pool.prompt_id,
            "response_id": candidate.response_id,
            "reason": reason.value,
            "records": records,
            "merged_into": None,
            "cosine": None,
            "pool_rank": None,
            "pool_size": len(pool),
            "reward": self.stage.reward_as_given(pool.rewards[index]),
            "source": candidate.source,
            "source_file": source_file,
            "source_row": source_row,
            "completion": candidate.completion if self.stage.dropped_texts else None,
            **lineage,
        }
        return row

    def exact_copies(self, pool: selectors.Pool, by_id: dict):
        """One row per copy of a response, where it was read (the response itself, its earliest copy, is kept or
        dropped); one row standing for every copy of a candidate whose records are not known."""
        for index in np.flatnonzero(pool.multiplicities > 1):
            response_id = pool.response_ids[index]
            copies = int(pool.multiplicities[index]) - 1
            origins = by_id[response_id].origins
            if len(origins) != copies + 1:
                yield self._dropped(pool, index, by_id, DropReason.EXACT_DUPLICATE, copies, merged_into=response_id)
                continue
            for origin in origins[1:]:
                yield self._dropped(
                    pool, index, by_id, DropReason.EXACT_DUPLICATE, 1, origin=origin, merged_into=response_id
                )

    def near_duplicates(self, pool: selectors.Pool, collapsed: selectors.Collapsed, by_id: dict):
        for representative, merged in collapsed.clusters:
            for index in merged:
                cosine = (
                    None
                    if pool.embeddings is None
                    else round(float(pool.embeddings[index] @ pool.embeddings[representative]), 6)
                )
                yield self._dropped(
                    pool,
                    index,
                    by_id,
                    DropReason.NEAR_DUPLICATE,
                    1,
                    merged_into=pool.response_ids[representative],
                    cosine=cosine,
                )

    def not_selected(self, pool: selectors.Pool, chosen: np.ndarray, by_id: dict):
        ranks = _reward_ranks(pool)
        # A set, not np.setdiff1d: on pools of a few members numpy's fixed cost per call was 3% of a random run.
        kept = set(chosen.tolist())
        for index in (index for index in range(len(pool)) if index not in kept):
            rank = None if ranks is None else int(ranks[index])
            yield self._dropped(pool, index, by_id, DropReason.NOT_SELECTED, 1, pool_rank=rank)

    def every_choice(self, example_pool: tuple, k: int):
        """What each selector would keep on one example prompt's (near-dup collapsed) pool: for the report."""
        example_key, prompt_id, members = example_pool
        whole, candidates, _ = pool_of_members(prompt_id, members)
        collapsed = self.collapse(whole, candidates)
        pool = collapsed.pool
        by_id = {c.response_id: c for c in candidates}
        choices, not_chosen = {}, []
        for name, spec in selectors.SELECTORS.items():
            if (spec.needs_rewards and not pool.has_rewards) or (spec.needs_embeddings and pool.embeddings is None):
                continue
            chosen = selectors.select(spec.build(self.settings.qd), pool, k, self.settings.seed)
            choices[name] = [
                {
                    "completion": by_id[pool.response_ids[i]].completion,
                    "reward": self.stage.reward_as_given(pool.rewards[i]),
                }
                for i in chosen.indices
            ]
            if name == self.settings.selector:
                not_chosen = self.not_selected(pool, chosen.indices, by_id)
        example = {
            "prompt": candidates[0].prompt,
            "pool_size": len(pool),
            "choices": choices,
            "not_kept": _not_kept_examples(self.near_duplicates(whole, collapsed, by_id), not_chosen, by_id),
        }
        yield beam.pvalue.TaggedOutput(INSIGHTS, (Insight.EXAMPLE.value, (example_key, example)))

    def _insights(self, pool: selectors.Pool, selection: selectors.Selection, quality: np.ndarray):
        """Quality and diversity of the pool and of the kept set."""
        if pool.embeddings is None:
            return
        # Every member where the pool is within the sample size (no hashing to pick them): most pools.
        sample = (
            np.arange(len(pool))
            if len(pool) <= DIVERSITY_SAMPLE
            else np.argsort(list(stable_hashes(("diversity",), pool.response_ids)))[:DIVERSITY_SAMPLE]
        )
        means = QualityMeans(
            pool_quality=_nan_mean(quality),
            kept_quality=_nan_mean(quality[selection.indices]),
            pool_diversity=_mean_distance(pool.embeddings[sample]),
            kept_diversity=_mean_distance(pool.embeddings[selection.indices]),
            kept_coverage=kept_coverage(pool.embeddings, pool.multiplicities, sample, selection.indices),
        )
        yield beam.pvalue.TaggedOutput(INSIGHTS, (Insight.QUALITY.value, tuple(means)))

    def _rows(self, pool, selection, by_id: dict[str, Candidate], pool_size: int, quality: np.ndarray):
        total_draws = selection.draws.sum()
        for rank, index in enumerate(selection.indices):
            candidate = by_id[pool.response_ids[index]]
            row = {
                "prompt_id": pool.prompt_id,
                "prompt": candidate.prompt,
                "completion": candidate.completion,
                "response_id": candidate.response_id,
                "rank": rank,
                "k": len(selection.indices),
                "pool_size": pool_size,
                "multiplicity": int(pool.multiplicities[index]),
                "weight": float(selection.draws[rank] / total_draws) if self.settings.weighting == "prompt" else 1.0,
                "reward": self.stage.reward_as_given(pool.rewards[index]),
                "quality": _finite_or_none(quality[index]),
                "selector": self.settings.selector,
                "gain": None if selection.gains is None else _finite_or_none(selection.gains[rank]),
                "source": candidate.source,
            }
            if self.stage.with_messages:
                row["messages"] = (
                    None
                    if candidate.messages is None
                    else [{"role": turn.role, "content": turn.content} for turn in candidate.messages]
                )
            yield row


class _PoolOutputs:
    """What one bucket's pools send on, gathered so that each kind leaves the bucket as one element: rows and
    dropped rows as lists, counts summed, the report's pool statistics combined, the example pools cut to the
    EXAMPLE_PROMPTS smallest keys. Per-pool elements had cost the engine more than the selection itself."""

    def __init__(self):
        self.rows: list[dict] = []
        self.dropped: list[dict] = []
        self.counts: Counter = Counter()
        self.quality = _QUALITY_MEANS.create_accumulator()
        self.member_sources: list[str] = []
        self.member_lengths: list[int] = []
        self.member_rewards: list = []  # (response id, source, reward as given)
        self.examples: list = []
        self.frontier_offers: list = []
        self.passed_on: list = []  # merges, hot parts and boilerplate rejects, which travel one by one

    def take(self, outputs):
        for output in outputs:
            if not isinstance(output, beam.pvalue.TaggedOutput):
                self.rows.append(output)
            elif output.tag == COUNTS:
                self.counts[output.value[0]] += output.value[1]
            elif output.tag == DROPPED:
                self.dropped.extend(output.value)
            elif output.tag == FRONTIER_OFFERS:
                self.frontier_offers.append(output.value)
            elif output.tag == EXAMPLE_POOLS:
                self.examples.append(output.value)
                if len(self.examples) > 4 * EXAMPLE_PROMPTS:  # pruned now and then, not on every pool
                    self.examples = heapq.nsmallest(EXAMPLE_PROMPTS, self.examples, key=_example_key)
            elif output.tag == INSIGHTS and output.value[0] == Insight.QUALITY.value:
                self.quality = _QUALITY_MEANS.add_input(self.quality, output.value[1])
            elif output.tag == _MEMBER_PROFILE:
                sources, lengths, rewarded = output.value
                self.member_sources.extend(sources)
                self.member_lengths.extend(lengths)
                self.member_rewards.extend(rewarded)
            else:
                self.passed_on.append(output)

    def smallest_examples(self) -> list:
        return heapq.nsmallest(EXAMPLE_PROMPTS, self.examples, key=_example_key)

    def emit(self):
        if self.rows:
            yield self.rows
        if self.dropped:
            yield beam.pvalue.TaggedOutput(DROPPED, self.dropped)
        for name, value in sorted(self.counts.items()):
            yield beam.pvalue.TaggedOutput(COUNTS, (name, value))
        for offer in smallest_offers(self.frontier_offers):
            yield beam.pvalue.TaggedOutput(FRONTIER_OFFERS, offer)
        yield beam.pvalue.TaggedOutput(INSIGHTS, (Insight.QUALITY.value, self.quality))
        profile = _PROFILES.add_input(
            _PROFILES.create_accumulator(),
            _bucket_profile(self.member_sources, self.member_lengths, self.member_rewards),
        )
        yield beam.pvalue.TaggedOutput(INSIGHTS, (Insight.POOL_PROFILE.value, profile))
        yield from self.passed_on


class _SelectBucket(_Selecting):
    """A bucket's whole pools: select K in each. One part of a hot pool: keep _OVERSAMPLE * K for the second stage.
    A group keyed by the bucket alone holds whole prompts (the path with no dedup stage, which counted no hot pools
    before the grouping): its pools over `hot_above` are split into parts here, as pools.into_groups would have.
    With an `embedder`, its members arrive without vectors, copies unmerged, and are embedded here (graph.py)."""

    def __init__(self, stage: _SelectStage, embedder: BucketEmbedder | None):
        super().__init__(stage)
        self.embedder = embedder

    def setup(self):
        super().setup()
        if self.embedder is not None:
            self.embedder.setup()

    def process(self, group, k, boilerplate: dict[str, int], rows_before: dict):
        self.locating(rows_before)
        key, batches = group
        outputs = _PoolOutputs()
        members, sizes = [], Counter()
        for member in (member for batch in batches for member in batch):
            sizes[member[0].prompt_id] += 1  # copies and boilerplate included, where no dedup stage counted
            prompts = boilerplate.get(member[0].response_id)
            if prompts is None:
                members.append(member)
            else:
                outputs.take(
                    beam.pvalue.TaggedOutput(REJECTS, r) for r in boilerplate_rejects(member[0], prompts, self.locator)
                )
        if self.embedder is not None:
            # The pools' sizes as the dedup stage counts them: distinct responses, the boilerplate left out.
            members = [(candidate, None) for candidate in distinct_candidates(candidate for candidate, _ in members)]
            sizes = Counter(candidate.prompt_id for candidate, _ in members)
        self.planner_entries: dict = {}
        if is_hot_part(key):
            outputs.take(self.pool_or_part(key[1], members, k, hot=True))
        else:
            by_prompt: dict[str, list] = {}
            for member in members:
                by_prompt.setdefault(member[0].prompt_id, []).append(member)
            whole = {p for p in by_prompt if isinstance(key, tuple) or sizes[p] <= self.settings.hot_above}
            if self.embedder is not None:  # the whole pools' texts in one go; a hot pool's a part at a time
                embedded = self.embedded(
                    [member for prompt_id in sorted(whole) for member in by_prompt[prompt_id]], outputs
                )
                by_prompt.update((prompt_id, embedded.get(prompt_id, [])) for prompt_id in whole)
            # Prompt order is fixed so that nothing downstream can see the order the runner delivered members in.
            for prompt_id in sorted(by_prompt):
                pool = by_prompt[prompt_id]
                if prompt_id in whole:
                    outputs.take(self.pool_or_part(prompt_id, pool, k, hot=False))
                    continue
                for _, part in sorted(hot_parts(pool, sizes[prompt_id], self.settings.part_size).items()):
                    if self.embedder is not None:
                        part = self.embedded(part, outputs).get(prompt_id, [])
                    outputs.take(self.pool_or_part(prompt_id, part, k, hot=True))
        if self.stage.planner_entries:
            yield beam.pvalue.TaggedOutput(PLANNER_ENTRIES, (key, self.planner_entries))
            if self.embedder is not None:
                # The group is a bucket of whole prompts (hot ones split here), so each prompt's text is final: the
                # planner's prompt vectors are made here, and no grouping by prompt text is needed to make them.
                texts = entry_texts(self.planner_entries)
                vectors = self.embedder.encode_texts([text for _, text in texts])
                yield beam.pvalue.TaggedOutput(
                    PROMPT_VECTORS, [(prompt_id, vector) for (prompt_id, _), vector in zip(texts, vectors)]
                )
        # The bucket's own example pools, worked out here: the job's are the EXAMPLE_PROMPTS smallest of all buckets'
        # (statistics.FirstExamples), so no grouping gathers the pools first.
        for example_pool in outputs.smallest_examples():
            yield from self.every_choice(example_pool, k)
        yield from outputs.emit()

    def embedded(self, members: list, outputs: _PoolOutputs) -> dict[str, list]:
        """Members without vectors to members with them, by prompt (a member whose text got no usable vector and has
        no readable character leaves as a reject); the counts and rejects go to `outputs`."""
        embedded, rejects, counts = self.embedder.embed([candidate for candidate, _ in members], self.locator)
        outputs.take(beam.pvalue.TaggedOutput(UNUSABLE, reject) for reject in rejects)
        outputs.take(beam.pvalue.TaggedOutput(COUNTS, pair) for pair in counts)
        by_prompt: dict[str, list] = {}
        for member in embedded:
            by_prompt.setdefault(member[0].prompt_id, []).append(member)
        return by_prompt

    def pool_or_part(self, prompt_id: str, members: list, k: int, hot: bool):
        if not members:  # a part whose every member was boilerplate, or a text with no readable character
            return
        if self.stage.planner_entries:
            for member in members:
                add_to_prompt_entries(self.planner_entries, *member)
        if self.stage.offers_frontier:
            yield beam.pvalue.TaggedOutput(FRONTIER_OFFERS, frontier_offer(prompt_id, members))
        pool, candidates, members = pool_of_members(prompt_id, members)
        # Counted here, from the pool's own members, not by a pass over every candidate.
        yield beam.pvalue.TaggedOutput(
            COUNTS, (Count.DUPLICATES_EXACT.value, int(pool.multiplicities.sum()) - len(pool))
        )
        by_id = {c.response_id: c for c in candidates}
        collapsed = self.collapse(pool, candidates)
        yield from _merges(pool, collapsed, candidates)
        yield from _dropped_batch([*self.exact_copies(pool, by_id), *self.near_duplicates(pool, collapsed, by_id)])
        pool, near_merged = collapsed.pool, collapsed.merged
        yield _pool_profile(pool, candidates, self.stage)
        if not hot:
            # Every whole pool offers itself as an example; the EXAMPLE_PROMPTS with smallest hash are kept.
            yield beam.pvalue.TaggedOutput(EXAMPLE_POOLS, (stable_hash("example", prompt_id), prompt_id, members))
            yield from self.finish_prompt(pool, candidates, len(pool), near_merged, k)
            return
        selection = selectors.select(self.select_k, pool, _OVERSAMPLE * k, self.settings.seed)
        yield from _dropped_batch(self.not_selected(pool, selection.indices, by_id))
        member_by_id = {member[0].response_id: member for member in members}
        kept = []
        for index in selection.indices:
            candidate, vector = member_by_id[pool.response_ids[index]]
            kept.append((replace(candidate, multiplicity=int(pool.multiplicities[index])), vector))
        yield beam.pvalue.TaggedOutput(PARTIAL, (prompt_id, (len(pool), near_merged, kept)))


class _SelectFromParts(_Selecting):
    def process(self, group, k, rows_before: dict):
        self.locating(rows_before)
        prompt_id, partials = group
        outputs = _PoolOutputs()
        outputs.take(self.from_parts(prompt_id, list(partials), k))
        yield from outputs.emit()

    def from_parts(self, prompt_id: str, partials: list, k: int):
        members = [member for _, _, kept in partials for member in kept]
        pool, candidates, _ = pool_of_members(prompt_id, members)
        collapsed = self.collapse(pool, candidates)
        yield from _merges(pool, collapsed, candidates)
        yield from _dropped_batch(self.near_duplicates(pool, collapsed, {c.response_id: c for c in candidates}))
        pool, near_merged_across = collapsed.pool, collapsed.merged
        pool_size = sum(size for size, _, _ in partials) - near_merged_across
        near_merged = sum(merged for _, merged, _ in partials) + near_merged_across
        yield from self.finish_prompt(pool, candidates, pool_size, near_merged, k)


def _pool_profile(pool: selectors.Pool, candidates: list[Candidate], stage: _SelectStage):
    """Which sources, completion lengths and rewards a pool (or one part of a hot pool) offers, to set the kept
    rows against in the report: its members' plain values, which _PoolOutputs profiles once per bucket (per pool, the
    histogram's and the hashes' fixed costs were 5% of a random run)."""
    by_id = {c.response_id: c for c in candidates}
    members = [by_id[response_id] for response_id in pool.response_ids]
    rewarded = [
        (candidate.response_id, candidate.source, stage.reward_as_given(reward))
        for candidate, reward in zip(members, pool.rewards.tolist(), strict=True)
        if math.isfinite(reward)
    ]
    sources = [candidate.source for candidate in members]
    return beam.pvalue.TaggedOutput(_MEMBER_PROFILE, (sources, [len(c.completion) for c in members], rewarded))


def _bucket_profile(sources: list, lengths: list[int], rewarded: list) -> tuple:
    """A bucket's members profiled as SumProfiles takes a pool: rewards travel with a hash of their response, by which
    the manifest keeps a bounded sample per source."""
    hashes = stable_hashes(("score",), (response_id for response_id, _, _ in rewarded))
    rewards = [(score_hash, source, reward) for score_hash, (_, source, reward) in zip(hashes, rewarded)]
    return dict(Counter(sources)), length_histogram(lengths), rewards


def _merges(pool: selectors.Pool, collapsed: selectors.Collapsed, candidates: list[Candidate]):
    """Each near-duplicate cluster of the pool, for the report: its representative, its size, the pool's
    size and a few of the texts merged into it."""
    by_id = {c.response_id: c for c in candidates}
    for representative, merged in collapsed.clusters:
        kept = by_id[pool.response_ids[representative]]
        texts = [by_id[pool.response_ids[i]].completion for i in merged[:MERGED_TEXTS_SHOWN]]
        cluster = {
            "prompt_id": pool.prompt_id, "prompt": kept.prompt, "kept": kept.completion, "kept_response_id": kept.response_id,
            "size": 1 + len(merged), "pool_size": len(pool), "merged": texts,
        }  # fmt: skip
        yield beam.pvalue.TaggedOutput(INSIGHTS, (Insight.MERGE.value, cluster))


def _not_kept_examples(merged, not_chosen, by_id: dict) -> list[dict]:
    """A few of an example pool's dropped rows with their texts: near duplicates with what they merged into, and
    the best-ranked responses the run's selector did not choose."""
    best_first = sorted(
        not_chosen, key=lambda row: (row["pool_rank"] is None, row["pool_rank"] or 0, row["response_id"])
    )
    rows = [*list(merged)[:MERGED_TEXTS_SHOWN], *best_first[:MERGED_TEXTS_SHOWN]]
    return [
        {
            "reason": row["reason"],
            "completion": by_id[row["response_id"]].completion,
            "reward": row["reward"],
            "pool_rank": row["pool_rank"],
            "merged_into": None if row["merged_into"] is None else by_id[row["merged_into"]].completion,
            "source_file": row["source_file"],
            "source_row": row["source_row"],
        }
        for row in rows
    ]


def _dropped_batch(rows) -> list:
    """A pool's dropped rows as one element: the table is written by pool, and one element per row would cost
    the job a shuffle element per response not kept."""
    rows = list(rows)
    return [beam.pvalue.TaggedOutput(DROPPED, rows)] if rows else []


def _reward_ranks(pool: selectors.Pool) -> np.ndarray | None:
    """Each candidate's rank by reward in its pool (0 = best; ties by id, no reward last), or None without rewards."""
    if not pool.has_rewards:
        return None
    rewards = np.where(np.isfinite(pool.rewards), pool.rewards, -np.inf)
    order = sorted(range(len(pool)), key=lambda i: (-rewards[i], pool.response_ids[i]))
    ranks = np.empty(len(pool), dtype=np.int64)
    ranks[order] = np.arange(len(pool))
    return ranks


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _nan_mean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _mean_distance(embeddings: np.ndarray) -> float:
    """1 - the mean cosine over pairs i < j of unit vectors, without the n x n matrix: the sum over every ordered pair
    is |sum of the vectors|^2, less the n self-pairs (each |e_i|^2)."""
    count = len(embeddings)
    if count < 2:
        return float("nan")
    vectors = embeddings.astype(np.float64)
    total = vectors.sum(axis=0)
    return float(1.0 - (total @ total - np.einsum("ij,ij->", vectors, vectors)) / (count * (count - 1)))


def _example_key(example_pool: tuple) -> int:
    return example_pool[0]


@dataclass
class Selected:
    """What the Select stage sends on."""

    rows: tuple  # curated rows in lists, one per bucket: whole pools', then hot pools' PCollection
    counts: beam.PCollection  # (count name, n), per bucket
    insights: beam.PCollection  # (kind, value) report statistics
    dropped: tuple  # dropped rows in lists, as `rows`
    boilerplate_rejects: beam.PCollection  # where the candidates came straight from the read
    unembeddable: beam.PCollection  # rejects of texts with no usable vector, where Select embedded its members
    frontier_offers: beam.PCollection  # pools offered to qd's frontier (pipeline/frontier.py)
    planner_entries: beam.PCollection  # (group key, prompt entries) with `planner_entries` (pipeline/plan.py)
    prompt_vectors: beam.PCollection  # per bucket, [(prompt id, vector)] of its prompts, where Select embeds


class GroupPools(beam.PTransform):
    """(group, members) batches in; (group, iterable of member batches) out: what Select and the planner read. A
    group is a prompt bucket, whose whole pools Select reads and whose hot pools it splits, or, where the embedding
    stage split them already (pools.into_groups), a bucket's whole pools or one part of a hot pool. The members
    cross as files where `spill` is given (pipeline/spill.py)."""

    def __init__(self, spill: str | None):
        super().__init__()
        self.spill = spill

    def expand(self, batches):
        return batches | "GroupBucket" >> GroupBatches(self.spill, MemberCoder())


def is_hot_part(group_key) -> bool:
    return isinstance(group_key, tuple) and bool(group_key[1])


class SelectPerPrompt(beam.PTransform):
    """GroupPools' groups in; `Selected` out (the boilerplate rejects where `boilerplate` is given, the frontier offers
    with `offers_frontier`). K arrives as a one-element PCollection, so that `--k auto` can take it from the
    planner in the same job.

    One call selects in every pool of a group (a bucket of prompts, by a hash of the prompt: batching.PromptBucket),
    and what leaves a group is one element of each kind."""

    def __init__(
        self,
        selection: SelectionSettings,
        grouping: GroupingSettings,
        embedding: EmbeddingSettings,
        with_messages: bool,
        reward_sign: float,
        k,
        locations: Locations,
        dropped_texts: bool = False,
        boilerplate=None,
        offers_frontier: bool = False,
        planner_entries: bool = False,
        embeds: bool = False,
    ):
        super().__init__()
        # Members arrive without vectors, and each bucket embeds its own (graph.embeds_in_select)
        self.embedder = BucketEmbedder(embedding) if embeds else None
        self.settings = selection
        self.locations = locations
        self.stage = _SelectStage(
            selection,
            grouping,
            embedding,
            with_messages,
            reward_sign,
            locations.locator,
            dropped_texts,
            offers_frontier,
            planner_entries,
        )
        self.k = beam.pvalue.AsSingleton(k)
        # (response id, prompts) of the boilerplate responses, for a job that did not split them off before
        self.boilerplate = {} if boilerplate is None else beam.pvalue.AsDict(boilerplate)

    def expand(self, pools):
        first = pools | "SelectK" >> beam.ParDo(
            _SelectBucket(self.stage, self.embedder), self.k, self.boilerplate, self.locations.side_input()
        ).with_outputs(
            COUNTS,
            PARTIAL,
            INSIGHTS,
            DROPPED,
            REJECTS,
            UNUSABLE,
            FRONTIER_OFFERS,
            PLANNER_ENTRIES,
            PROMPT_VECTORS,
            main="rows",
        )
        second = (
            first[PARTIAL]
            | "GroupParts" >> beam.GroupByKey()
            | "SelectFromParts"
            >> beam.ParDo(_SelectFromParts(self.stage), self.k, self.locations.side_input()).with_outputs(
                COUNTS, INSIGHTS, DROPPED, main="rows"
            )
        )
        counts = (first[COUNTS], second[COUNTS]) | "AllSelectCounts" >> beam.Flatten()
        insights = (first[INSIGHTS], second[INSIGHTS]) | "AllInsights" >> beam.Flatten()
        # Rows and dropped rows go on as each stage's own PCollection: a Flatten would be held whole (write.py).
        rows, dropped = (first.rows, second.rows), (first[DROPPED], second[DROPPED])
        return Selected(
            rows,
            counts,
            insights,
            dropped,
            first[REJECTS],
            first[UNUSABLE],
            first[FRONTIER_OFFERS],
            first[PLANNER_ENTRIES],
            first[PROMPT_VECTORS],
        )
