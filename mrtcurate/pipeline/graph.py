"""The whole curation job in one place:

    Read -> Parse/Validate (rejects aside) -> [Merge near-duplicate prompts]
         -> Reject boilerplate (one text answering many prompts) -> Merge exact duplicates
         -> Embed (a text without a usable vector stays, counted) -> Planner (variance components, recommended K: feeds `--k auto`)
         -> Select K per prompt (near-duplicate clusters around representatives, then the selector)
         -> [qd's quality-diversity frontier on a sample of pools, when the responses are embedded]
         -> Shard and write Parquet (curated rows, rejects) -> Manifest (with the planner summary)

The driver around it (preflight, staging, report, atomic publish) is runs/curate.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers
from apache_beam.runners.portability.portable_runner import JobServiceHandle

from mrtcurate.errors import JobFailed
from mrtcurate.ingest.files import ResolvedInputs
from mrtcurate.pipeline import progress
from mrtcurate.pipeline.boilerplate import RejectBoilerplate
from mrtcurate.pipeline.coders import Member
from mrtcurate.pipeline.dedup import MergeExactDuplicates
from mrtcurate.pipeline.embed import EmbeddingCache, EmbedResponses
from mrtcurate.pipeline.frontier import MeasureFrontier
from mrtcurate.pipeline.manifest import ManifestSources, WriteManifest
from mrtcurate.pipeline.merge_prompts import MergeNearDuplicatePrompts
from mrtcurate.pipeline.plan import PlanVariance
from mrtcurate.pipeline.read import ReadCorpus
from mrtcurate.pipeline.select import SelectPerPrompt
from mrtcurate.pipeline.write import WriteParquetShards
from mrtcurate.schemas import REJECTS_SCHEMA, Candidate, RunConfig, curated_schema
from mrtcurate.schemas.counts import Count, Insight
from mrtcurate.schemas.manifest import AccountingError
from mrtcurate.selectors import SELECTORS


def needs_embeddings(config: RunConfig) -> bool:
    planner_needs_them = config.planner.plan and config.planner.feature_column is None
    selector_needs_them = SELECTORS[config.selection.selector].needs_embeddings
    return config.grouping.near_dup_embedding is not None or selector_needs_them or planner_needs_them


@dataclass
class _Members:
    rejects: beam.PCollection
    members: beam.PCollection  # Member: (candidate, embedding or None), one per unique response
    counts: list  # PCollections of (count name, n)
    rejected_by_reason: beam.PCollection  # (reason, n)


def read_and_embed(
    pipeline: beam.Pipeline, config: RunConfig, inputs: ResolvedInputs, cache: EmbeddingCache | None = None
) -> _Members:
    """The stages `mrt run` and `mrt plan` share: read, validate, merge prompts, dedup, embed."""
    candidates, rejects, read_counts, reasons = pipeline | "Read" >> ReadCorpus(inputs.files, inputs.mapping, config.ingest.max_chars)
    counts = [read_counts]
    if config.grouping.merge_prompts is not None:
        candidates, merge_counts = candidates | "MergePrompts" >> MergeNearDuplicatePrompts(config.embedding, config.grouping.merge_prompts)
        counts.append(merge_counts)
    if config.grouping.boilerplate_prompts is not None:
        candidates, boilerplate, boilerplate_counts, boilerplate_reasons = candidates | "RejectBoilerplate" >> RejectBoilerplate(config.grouping)
        rejects = (rejects, boilerplate) | "WithBoilerplate" >> beam.Flatten()
        reasons = (reasons, boilerplate_reasons) | "BoilerplateReasons" >> beam.Flatten()
        counts.append(boilerplate_counts)
    if needs_embeddings(config) or config.planner.plan:
        unique = candidates | "MergeExactDuplicates" >> MergeExactDuplicates()
    else:
        # Nothing to embed or plan: copies travel to their prompt's pool and merge there (select._pool),
        # which saves the job a shuffle of every record; the pool grouping is one anyway.
        unique = candidates
    if needs_embeddings(config):
        members, unembeddable, embed_counts = unique | "Embed" >> EmbedResponses(config.embedding, cache)
        counts.append(embed_counts)
        rejects = (rejects, unembeddable) | "AllRejects" >> beam.Flatten()
        counts.append(unembeddable | "CountUnembeddable" >> beam.Map(lambda _: (Count.REJECTED_UNEMBEDDABLE.value, 1)))
        reasons = (reasons, unembeddable | "UnembeddableReason" >> beam.Map(lambda reject: (reject.reason, 1))) | "AllReasons" >> beam.Flatten()
    else:
        members = unique | "NoEmbeddings" >> beam.Map(_without_embedding).with_output_types(Member)
    return _Members(rejects, members, counts, reasons)


def _without_embedding(candidate: Candidate) -> tuple[Candidate, None]:
    return candidate, None


def plan_variance(members: beam.PCollection, config: RunConfig, cache: EmbeddingCache | None = None) -> beam.PCollection:
    return members | "Planner" >> PlanVariance(config.embedding, config.planner, config.selection.seed, cache)


def build(
    pipeline: beam.Pipeline, config: RunConfig, inputs: ResolvedInputs, directory: str, cache: EmbeddingCache | None = None
) -> None:
    read = read_and_embed(pipeline, config, inputs, cache)
    planner = plan_variance(read.members, config, cache) if config.planner.plan else pipeline | "NoPlanner" >> beam.Create([])
    k = _k(pipeline, config, planner)
    rows, selection_counts, insights = read.members | "Select" >> SelectPerPrompt(
        config.selection, config.grouping, config.embedding, inputs.with_messages, inputs.mapping.reward_sign, k
    )
    if needs_embeddings(config):
        frontier = read.members | "QDFrontier" >> MeasureFrontier(config.selection, config.grouping, k)
        insights = (insights, frontier | "FrontierInsight" >> beam.Map(lambda found: (Insight.FRONTIER.value, found))) | "WithFrontier" >> beam.Flatten()
    shards = rows | "WriteCurated" >> WriteParquetShards(
        directory, "data", "part", curated_schema(inputs.with_messages),
        shard_key=_prompt_key, sort_key=_curated_order, shards=config.publish.shards,
    )
    reject_shards = (
        read.rejects
        | "RejectRows" >> beam.Map(asdict)
        | "WriteRejects" >> WriteParquetShards(directory, "rejects", "part", REJECTS_SCHEMA, shard_key=_source_key, sort_key=_reject_order, shards=None)
    )
    sources = ManifestSources(_sum_counts(read.counts, selection_counts), _sum_reasons(read.rejected_by_reason), shards, reject_shards, planner, k, insights)
    pipeline | "Manifest" >> WriteManifest(directory, config, inputs.files, sources, needs_embeddings(config))


def _k(pipeline: beam.Pipeline, config: RunConfig, planner: beam.PCollection) -> beam.PCollection:
    """K as a one-element PCollection: fixed, or the planner's recommendation from the same job."""
    if config.selection.k == "auto":
        return planner | "RecommendedK" >> beam.Map(lambda summary: summary["recommended_k"])
    return pipeline | "FixedK" >> beam.Create([config.selection.k])


def _sum_counts(counts: list, selection_counts: beam.PCollection) -> beam.PCollection:
    """Every count, from the data each stage emitted: per input file (parsed, rejected), per prompt group
    merged, per pool (exact and near duplicates, candidates, selected)."""
    return (*counts, selection_counts) | "AllCounts" >> beam.Flatten() | "SumCounts" >> beam.CombinePerKey(sum)


def _sum_reasons(reasons: beam.PCollection) -> beam.PCollection:
    return reasons | "SumReasons" >> beam.CombinePerKey(sum)


def _prompt_key(row: dict) -> str:
    return row["prompt_id"]


def _curated_order(row: dict) -> tuple:
    return row["prompt_id"], row["rank"]


def _source_key(row: dict) -> str:
    return row["source_file"]


def _reject_order(row: dict) -> tuple:
    return row["source_file"], row["source_row"] if row["source_row"] is not None else -1, row["reason"], row["detail"], row["record"]


def _names_a_runner(beam_args: list[str]) -> bool:
    return PipelineOptions(beam_args).view_as(StandardOptions).runner is not None


def new_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A pipeline on the runner the user named, or else on the local FnApiRunner, pinned.

    With no --runner, Beam's DirectRunner first tries Prism, a Go runner it downloads at run time, and
    falls back to the FnApiRunner only when that fails: a machine with internet would run on another
    engine than the one every test here runs on. This builds the FnApiRunner as DirectRunner's own
    fallback does (provision info carrying the options, which --direct_num_workers and
    --direct_running_mode reach), without the detour.
    """
    options = PipelineOptions(beam_args)
    if options.view_as(StandardOptions).runner is not None:
        return beam.Pipeline(options=options)
    _send_bundle_inputs_whole()
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    runner = fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))
    return beam.Pipeline(runner=runner, options=options)


def _send_bundle_inputs_whole() -> None:
    """Work around a Beam data-loss race on the local runner's multi-process and multi-thread modes.

    The FnApiRunner sends each bundle's input to gRPC workers through a stream that a timer thread
    flushes every DATA_BUFFER_TIME_LIMIT_MS (1 s). Its flush sends the buffer, then clears it; while the
    send blocks on a full queue (a busy worker, a loaded machine) the runner keeps writing into the
    buffer, and the clear drops those bytes unsent: whole elements vanish without an error. That is
    issue 12's miscount, one run in several at a million records under load; tests/pipeline/
    test_local_runner.py reproduces the race deterministically. With the limit at 0 the stream is
    flushed only when the bundle's input is complete, so nothing is written during a send."""
    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 0


def run_curation(
    config: RunConfig,
    inputs: ResolvedInputs,
    directory: str,
    beam_args: list[str],
    cache: EmbeddingCache | None,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """The curation job into `directory`, to completion; returns the job's mrtcurate counters. On the
    local runner, `on_progress` gets a line of progress every PROGRESS_INTERVAL_S seconds."""
    pipeline = new_pipeline(beam_args)
    build(pipeline, config, inputs, directory, cache)
    with _local_progress(beam_args, on_progress):
        try:
            result = pipeline.run()
            result.wait_until_finish()
        except Exception as error:
            accounting = _accounting_failure(error)
            if accounting is None:
                raise
            raise JobFailed(f"the job's counts do not add up, so nothing was published: {accounting}") from error
    return _counters(result)


def _accounting_failure(error: Exception) -> str | None:
    """The AccountingError's own line: the in-process runner re-raises it with a step name appended, a
    multi-process runner inside pages of the worker's traceback."""
    if isinstance(error, AccountingError):
        return str(error).split(" [while running")[0]
    found = re.search(r"AccountingError: ([^\n]*)", str(error))
    return found.group(1).split(" [while running")[0] if found else None


PROGRESS_INTERVAL_S = 10.0


@contextlib.contextmanager
def _local_progress(beam_args: list[str], on_progress: Callable[[str], None] | None):
    if on_progress is None or _names_a_runner(beam_args):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="mrt-progress-") as directory:
        previous = os.environ.get(progress.PROGRESS_DIR)
        os.environ[progress.PROGRESS_DIR] = directory
        try:
            with progress.ProgressMonitor(directory, on_progress, PROGRESS_INTERVAL_S):
                yield
        finally:
            if previous is None:
                os.environ.pop(progress.PROGRESS_DIR, None)
            else:
                os.environ[progress.PROGRESS_DIR] = previous


def run_planner(config: RunConfig, inputs: ResolvedInputs, target: str, beam_args: list[str]) -> None:
    """The shared front half and the planner; the summary is written to `target` as one JSON line."""
    pipeline = new_pipeline(beam_args)
    read = read_and_embed(pipeline, config, inputs)
    planner = plan_variance(read.members, config)
    frontier = read.members | "QDFrontier" >> MeasureFrontier(config.selection, config.grouping, _k(pipeline, config, planner))
    _ = (
        planner
        | "WithFrontier" >> beam.Map(lambda summary, found: {**summary, "qd_frontier": found}, beam.pvalue.AsSingleton(frontier))
        | "AsJson" >> beam.Map(json.dumps)
        | "WritePlan" >> beam.io.WriteToText(target, shard_name_template="")
    )
    pipeline.run().wait_until_finish()


def _counters(result) -> dict[str, int]:
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # noqa: BLE001 - some runners report no metrics; the manifest's counts are the authoritative ones
        return {}
    totals: dict[str, int] = {}
    for counter in counters:
        if counter.key.metric.namespace == "mrtcurate":
            totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (counter.committed or 0)
    return totals
