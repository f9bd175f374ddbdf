"""The whole curation job in one place:

    Read -> Parse/Validate (rejects aside) -> [Merge near-duplicate prompts]
         -> Count boilerplate (one text answering many prompts) -> Merge exact duplicates in prompt buckets, where the
            boilerplate is split off (in the Select stage instead, where nothing comes between)
         -> [Score each distinct response: a reward model or an LLM judge; --cache keeps the scores]
         -> Embed (--cache keeps the vectors; a text without a usable vector stays, counted) -> Planner (variance components, recommended K: feeds `--k auto`)
         -> Select K per prompt, a bucket of prompts at a time (members batched to one grouping per bucket;
            near-duplicate clusters around representatives, then the selector). Where no cache, scorer or
            `--k auto` needs them before (embeds_in_select), the exact dedup and the embedding happen here, per
            bucket, and the corpus crosses this one grouping without its vectors
         -> Every summary in one combine (report statistics, counts, the output tables' sizes, the planner's
            statistics and qd's frontier offers where Select sends them)
         -> [Planner from those statistics; qd's quality-diversity frontier on the sampled pools, when embedded]
         -> Shard and write Parquet (curated rows; rejects; dropped: every parsed response not kept, and why)
         -> Manifest (with the planner summary; data + dropped + rejects account for every input record)

On the local runner the groupings that carry the corpus cross as files, the shuffle carrying references
(pipeline/spill.py, `spill_folder`); Dataflow's own shuffle carries the batches.

Launching it (the runner, progress, failure messages, counters) is pipeline/launch.py; the driver around it
(preflight, staging, report, atomic publish) is runs/curate.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import StandardOptions

from mrtcurate.ingest.files import ResolvedInputs
from mrtcurate.pipeline.batching import BatchByKey, PromptBucket, bucket_count
from mrtcurate.pipeline.boilerplate import BoilerplateResponses, boilerplate_tallies
from mrtcurate.pipeline.cache import ContentCache
from mrtcurate.pipeline.coders import Member
from mrtcurate.pipeline.dedup import MergeExactDuplicates
from mrtcurate.pipeline.embed_responses import EmbedResponses
from mrtcurate.pipeline.frontier import MeasureFrontier, SmallestOffers, measured_frontier
from mrtcurate.pipeline.manifest import ManifestSources, WriteManifest
from mrtcurate.pipeline.merge_prompts import MergeNearDuplicatePrompts
from mrtcurate.pipeline.plan import PlanVariance, RedundancyBasis, SumStatistics, group_prompts
from mrtcurate.pipeline.read import Locations, ReadCorpus
from mrtcurate.pipeline.score import ScoreResponses
from mrtcurate.pipeline.select import GroupPools, SelectPerPrompt
from mrtcurate.pipeline.spill import SPILL_FOLDER
from mrtcurate.pipeline.statistics import FoldPerBundle, JobInsights, OfAccumulators
from mrtcurate.pipeline.write import Table, TableRows, WriteShards
from mrtcurate.schemas import DROPPED_SCHEMA, REJECTS_SCHEMA, Candidate, RunConfig, curated_schema
from mrtcurate.schemas.counts import Count, Insight
from mrtcurate.selectors import SELECTORS


def needs_embeddings(config: RunConfig) -> bool:
    planner_needs_them = config.planner.plan and config.planner.feature_column is None
    selector_needs_them = SELECTORS[config.selection.selector].needs_embeddings
    return config.grouping.near_dup_embedding is not None or selector_needs_them or planner_needs_them


def embeds_in_select(config: RunConfig) -> bool:
    """Whether Select embeds its own bucket's members (the texts of a bucket once each), so that the corpus crosses
    one grouping, by prompt bucket, without vectors: where nothing needs the vectors or the distinct responses
    before it (no cache to join by content, no scorer, no planner fixing K ahead of Select). A text answering prompts
    in several buckets is then encoded once per bucket."""
    k_waits_for_planner = config.planner.plan and config.selection.k == "auto"
    return (
        needs_embeddings(config) and not config.publish.cache and not config.scoring.scorer and not k_waits_for_planner
    )


@dataclass
class _Members:
    rejects: beam.PCollection
    members: beam.PCollection  # (group, [Member]): batches of (candidate, embedding or None) members (GroupPools)
    counts: list  # PCollections of (count name, n)
    rejected_by_reason: beam.PCollection  # (reason, n)
    locations: Locations  # what names the input file and row of a dropped or rejected record
    boilerplate: beam.PCollection | None = None  # (response id, prompts) for selection to split off, or None


def spill_folder(pipeline: beam.Pipeline, directory: str) -> str | None:
    """Where the groupings that carry the corpus cross as files (pipeline/spill.py): on the local runner, which
    holds each stage's whole input in memory. Any other runner's shuffle streams, and it is kept."""
    runner = pipeline.options.view_as(StandardOptions).runner
    if runner is not None and "Direct" not in str(runner):
        return None
    return FileSystems.join(directory, SPILL_FOLDER)


def content_cache(config: RunConfig) -> ContentCache | None:
    return ContentCache(config.publish.cache) if config.publish.cache else None


def read_and_embed(
    pipeline: beam.Pipeline, config: RunConfig, inputs: ResolvedInputs, scratch: str, embed_later: bool = False
) -> _Members:
    """The stages `mrt run` and `mrt plan` share: read, validate, merge prompts, dedup, score, embed (with
    `embed_later`, Select dedups and embeds instead: embeds_in_select). `scratch` is the job's own local folder
    (what the workers share, such as the judge's request count, lives there)."""
    cache = content_cache(config)
    spill = spill_folder(pipeline, scratch)
    read = pipeline | "Read" >> ReadCorpus(inputs.files, inputs.mapping, config.ingest.max_chars)
    candidates, rejects, reasons, locations = read.candidates, read.rejects, read.reasons, read.locations(inputs.files)
    counts = [read.counts]
    if config.grouping.merge_prompts is not None:
        candidates, merge_counts = candidates | "MergePrompts" >> MergeNearDuplicatePrompts(
            config.embedding, config.grouping.merge_prompts
        )
        counts.append(merge_counts)
    buckets = bucket_count(inputs.files)
    boilerplate, hot_sizes = None, None
    if config.grouping.boilerplate_prompts is not None:
        boilerplate = candidates | "BoilerplateResponses" >> BoilerplateResponses(config.grouping, buckets, spill)
    embed_now = needs_embeddings(config) and not embed_later
    if not embed_later and (needs_embeddings(config) or config.planner.plan or config.scoring.scorer):
        unique, boilerplate_rejects, hot_sizes = candidates | "MergeExactDuplicates" >> MergeExactDuplicates(
            buckets, config.selection.hot_above, locations, boilerplate, spill
        )
        if boilerplate is not None:
            boilerplate_counts, boilerplate_reasons = boilerplate_tallies(boilerplate_rejects)
            rejects = (rejects, boilerplate_rejects) | "WithBoilerplate" >> beam.Flatten()
            reasons = (reasons, boilerplate_reasons) | "BoilerplateReasons" >> beam.Flatten()
            counts.append(boilerplate_counts)
        boilerplate = None
    else:
        # Nothing to embed, score or plan before Select: candidates go straight to their prompt's pool, where copies merge
        # (pools.pool_of_members) and the boilerplate is split off; the pool grouping is the job's one shuffle.
        unique = candidates
    if config.scoring.scorer:
        unique, score_counts = unique | "ScoreResponses" >> ScoreResponses(config.scoring, cache, scratch)
        counts.append(score_counts)
    if embed_now:
        members, unembeddable, embed_counts = unique | "Embed" >> EmbedResponses(
            config.embedding, cache, buckets, locations, spill, hot_sizes, config.selection.part_size
        )
        counts.append(embed_counts)
        rejects, reasons = _with_unembeddable(rejects, reasons, counts, unembeddable, "")
    else:
        members = (
            unique
            | "NoEmbeddings" >> beam.Map(_without_embedding)
            | "IntoBuckets"
            >> beam.ParDo(BatchByKey(PromptBucket(buckets, member=True))).with_output_types(tuple[int, list[Member]])
        )
    return _Members(rejects, members, counts, reasons, locations, boilerplate)


def _with_unembeddable(rejects, reasons, counts: list, unembeddable, stage: str) -> tuple:
    """The rejects and reject reasons with those of texts that got no usable vector, which `counts` gets too."""
    rejects = (rejects, unembeddable) | f"{stage}AllRejects" >> beam.Flatten()
    counts.append(
        unembeddable | f"{stage}CountUnembeddable" >> beam.Map(lambda _: (Count.REJECTED_UNEMBEDDABLE.value, 1))
    )
    reasons = (
        reasons,
        unembeddable | f"{stage}UnembeddableReason" >> beam.Map(lambda reject: (reject.reason, 1)),
    ) | f"{stage}AllReasons" >> beam.Flatten()
    return rejects, reasons


def _without_embedding(candidate: Candidate) -> tuple[Candidate, None]:
    return candidate, None


def group_pools(pipeline: beam.Pipeline, read: _Members, config: RunConfig, scratch: str) -> beam.PCollection:
    """The members by groups of whole pools (or parts of hot ones): what the planner and Select read."""
    return read.members | "GroupPools" >> GroupPools(spill_folder(pipeline, scratch))


def plan_variance(
    entries: beam.PCollection,
    config: RunConfig,
    spill: str | None,
    statistics: beam.PCollection | None = None,
    prompt_vectors: beam.PCollection | None = None,
    basis: beam.PCollection | None = None,
) -> beam.PCollection:
    """The planner from each group's prompt entries (pipeline/plan.py `group_prompts`), their statistics summed
    here or given (summed in the job's combine of summaries), the prompts embedded here or given (by Select), with
    their redundancy basis (found in that combine)."""
    return entries | "Planner" >> PlanVariance(
        config.embedding,
        config.planner,
        config.selection.seed,
        content_cache(config),
        spill,
        statistics,
        prompt_vectors,
        basis,
    )


def build(
    pipeline: beam.Pipeline,
    config: RunConfig,
    inputs: ResolvedInputs,
    directory: str,
) -> None:
    embed_later = embeds_in_select(config)
    read = read_and_embed(pipeline, config, inputs, directory, embed_later)
    pools = group_pools(pipeline, read, config, directory)
    # The planner's prompt entries: from Select, which reads every member anyway, where K is fixed; where K is the
    # planner's (--k auto), Select waits for it, and the planner reads the pools itself.
    entries_from_select = config.planner.plan and config.selection.k != "auto"
    planner = pipeline | "NoPlanner" >> beam.Create([])
    if config.planner.plan and not entries_from_select:
        entries = pools | "GroupPrompts" >> beam.Map(group_prompts)
        planner = plan_variance(entries, config, spill_folder(pipeline, directory))
    k = _k(pipeline, config, planner)
    selected = pools | "Select" >> SelectPerPrompt(
        config.selection,
        config.grouping,
        config.embedding,
        inputs.with_messages,
        inputs.mapping.reward_sign,
        k,
        read.locations,
        config.publish.dropped_texts,
        read.boilerplate,
        offers_frontier=needs_embeddings(config),
        planner_entries=entries_from_select,
        embeds=embed_later,
    )
    rejects, reasons, counts = read.rejects, read.rejected_by_reason, [*read.counts, selected.counts]
    if read.boilerplate is not None:
        boilerplate_counts, boilerplate_reasons = boilerplate_tallies(selected.boilerplate_rejects)
        rejects = (rejects, selected.boilerplate_rejects) | "WithBoilerplate" >> beam.Flatten()
        reasons = (reasons, boilerplate_reasons) | "BoilerplateReasons" >> beam.Flatten()
        counts.append(boilerplate_counts)
    if embed_later:
        rejects, reasons = _with_unembeddable(rejects, reasons, counts, selected.unembeddable, "Selected")
    prompt_vectors = selected.prompt_vectors if entries_from_select and embed_later else None
    summaries, parts = _summaries(selected, config, _tallies(counts, reasons), entries_from_select, prompt_vectors)
    tables = {
        "data": Table("data", curated_schema(inputs.with_messages), "prompt_id", ("prompt_id", "rank"), config.publish.shards),
        "rejects": Table("rejects", REJECTS_SCHEMA, "source_file", ("source_file", "source_row", "reason", "detail", "record")),
        "dropped": Table("dropped", DROPPED_SCHEMA, "prompt_id", ("prompt_id", "reason", "response_id", "source_file", "source_row")),
    }  # fmt: skip
    spill = spill_folder(pipeline, directory)
    rows = {
        "data": selected.rows,
        # Batched as they become Arrow: one small table per reject cost 30 us each. The rows are sorted in their shard.
        "rejects": rejects
        | "RejectRows" >> beam.Map(asdict)
        | "RejectBatches" >> beam.BatchElements(min_batch_size=_REJECT_BATCH, max_batch_size=_REJECT_BATCH),
        "dropped": selected.dropped,
    } | "Rows" >> TableRows(tables, spill)
    insights = (
        (*summaries, rows.sizes)
        | "AllSummaries" >> beam.Flatten()
        | "Summaries" >> beam.CombineGlobally(JobInsights(parts))
    )
    table_bytes = insights | "TableBytes" >> beam.Map(_part, Insight.TABLE_BYTES.value)
    written = rows.pieces | "Write" >> WriteShards(directory, tables, table_bytes, spill=spill)
    if entries_from_select:
        statistics = insights | "PlannerStatistics" >> beam.Map(_part, Insight.PLANNER_ENTRIES.value)
        basis = None
        if prompt_vectors is not None:
            basis = insights | "RedundancyBasis" >> beam.Map(_part, Insight.REDUNDANCY_BASIS.value)
        planner = plan_variance(selected.planner_entries, config, spill, statistics, prompt_vectors, basis)
    frontier = pipeline | "NoFrontier" >> beam.Create([])
    if needs_embeddings(config):
        frontier = insights | "QDFrontier" >> beam.Map(
            _frontier, beam.pvalue.AsSingleton(k), config.selection, config.grouping
        )
    sources = ManifestSources(written["data"], written["rejects"], written["dropped"], planner, k, insights, frontier)
    pipeline | "Manifest" >> WriteManifest(directory, config, inputs.files, sources, needs_embeddings(config))


_REJECT_BATCH = 4096


def _summaries(
    selected, config: RunConfig, tallies: beam.PCollection, entries_from_select: bool, prompt_vectors
) -> tuple[list, dict]:
    """What goes into the job's one combine of summaries (statistics.JobInsights), and the combines it needs beyond
    its own: the report's statistics and the tallies as they are; the planner's per-prompt sums, the redundancy basis
    of the prompt vectors where Select makes them, and qd's frontier offers, which later stages read, folded per
    bundle where Select makes them (FoldPerBundle)."""
    summaries, parts, large = [selected.insights, tallies], {}, []
    if entries_from_select:
        statistics = SumStatistics(config.planner.bootstrap, config.selection.seed)
        large.append(("FoldEntries", Insight.PLANNER_ENTRIES.value, selected.planner_entries, statistics))
    if prompt_vectors is not None:
        large.append(("FoldBasis", Insight.REDUNDANCY_BASIS.value, prompt_vectors, RedundancyBasis()))
    if needs_embeddings(config):
        large.append(("FoldOffers", Insight.FRONTIER_OFFERS.value, selected.frontier_offers, SmallestOffers()))
    for label, kind, made, combine in large:
        parts[kind] = OfAccumulators(combine)
        summaries.append(made | label >> beam.ParDo(FoldPerBundle(combine, kind)))
    return summaries, parts


def _part(insights: dict, kind: str):
    return insights[kind]


def _frontier(insights: dict, k: int, selection, grouping) -> dict | None:
    return measured_frontier(insights[Insight.FRONTIER_OFFERS.value], k, selection, grouping)


def _k(pipeline: beam.Pipeline, config: RunConfig, planner: beam.PCollection) -> beam.PCollection:
    """K as a one-element PCollection: fixed, or the planner's recommendation from the same job."""
    if config.selection.k == "auto":
        return planner | "RecommendedK" >> beam.Map(lambda summary: summary["recommended_k"])
    return pipeline | "FixedK" >> beam.Create([config.selection.k])


def _tallies(counts: list, reasons: beam.PCollection) -> beam.PCollection:
    """Every count and every reject reason, from the data each stage emitted (per input file, per prompt group
    merged, per bucket of pools), as insights: the manifest's one combine sums them with the report's statistics."""
    keyed_counts = counts | "AllCounts" >> beam.Flatten() | "CountKeys" >> beam.Map(_tally, "count")
    keyed_reasons = reasons | "ReasonKeys" >> beam.Map(_tally, "reason")
    return (keyed_counts, keyed_reasons) | "AllTallies" >> beam.Flatten()


def _tally(pair: tuple[str, int], kind: str) -> tuple[str, tuple[tuple[str, str], int]]:
    name, n = pair
    return Insight.TALLY.value, ((kind, name), n)


def build_plan(pipeline: beam.Pipeline, config: RunConfig, inputs: ResolvedInputs, target: str) -> None:
    """`mrt plan`: the shared front half, the planner and qd's frontier, written to `target` as one JSON line."""
    scratch = os.path.dirname(target)
    read = read_and_embed(pipeline, config, inputs, scratch)
    entries = group_pools(pipeline, read, config, scratch) | "GroupPrompts" >> beam.Map(group_prompts)
    planner = plan_variance(entries, config, spill_folder(pipeline, scratch))
    frontier = read.members | "QDFrontier" >> MeasureFrontier(
        config.selection, config.grouping, _k(pipeline, config, planner), spill_folder(pipeline, scratch)
    )
    _ = (
        planner
        | "WithFrontier"
        >> beam.Map(lambda summary, found: {**summary, "qd_frontier": found}, beam.pvalue.AsSingleton(frontier))
        | "AsJson" >> beam.Map(json.dumps)
        | "WritePlan" >> beam.io.WriteToText(target, shard_name_template="")
    )
