"""The whole curation job in one place:

    Read -> Parse/Validate (rejects aside) -> [Merge near-duplicate prompts] -> Merge exact duplicates
         -> Embed -> Planner (variance components, recommended K: feeds `--k auto`)
         -> Select K per prompt (near-duplicate collapse, then the selector)
         -> Shard and write Parquet (curated rows, rejects) -> Manifest (with the planner summary)

then, on the driver, an atomic publish of the finished output.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from mrtcurate.analysis.planner import PlanSettings
from mrtcurate.analysis.report import write_report
from mrtcurate.errors import UserError
from mrtcurate.pipeline.dedup import MergeExactDuplicates
from mrtcurate.pipeline.embed import EmbeddingCache, EmbedResponses
from mrtcurate.pipeline.manifest import WriteManifest, read_manifest
from mrtcurate.pipeline.merge_prompts import MergeNearDuplicatePrompts
from mrtcurate.pipeline.plan import PlanVariance
from mrtcurate.pipeline.preflight import ResolvedInputs, check_inputs_outside_output, check_output, resolve_inputs
from mrtcurate.pipeline.publish import publish, release, stage
from mrtcurate.pipeline.read import ReadCorpus
from mrtcurate.pipeline.select import SelectionSettings, SelectPerPrompt
from mrtcurate.pipeline.write import WriteParquetShards
from mrtcurate.schemas import REJECTS_SCHEMA, RunConfig, curated_schema
from mrtcurate.selectors import QDSettings


@dataclass(frozen=True)
class RunOutcome:
    output: str
    manifest: dict
    metrics: dict[str, int]
    report: str


def needs_embeddings(config: RunConfig) -> bool:
    planner_needs_them = config.plan and config.feature_column is None
    return config.near_dup is not None or config.selector == "qd" or planner_needs_them


@dataclass
class _Members:
    candidates: beam.PCollection
    rejects: beam.PCollection
    unique: beam.PCollection
    members: beam.PCollection  # (candidate, embedding or None)
    counts: list


def read_and_embed(
    pipeline: beam.Pipeline, config: RunConfig, inputs: ResolvedInputs, cache: EmbeddingCache | None = None
) -> _Members:
    """The stages `mrt run` and `mrt plan` share: read, validate, merge prompts, dedup, embed."""
    candidates, rejects = pipeline | "Read" >> ReadCorpus(inputs.files, inputs.mapping, config.max_chars)
    keyed, counts = candidates, []
    if config.merge_prompts is not None:
        keyed, merge_counts = candidates | "MergePrompts" >> MergeNearDuplicatePrompts(
            config.embedder, config.batch_size, config.merge_prompts
        )
        counts.append(merge_counts)
    unique = keyed | "MergeExactDuplicates" >> MergeExactDuplicates()
    if needs_embeddings(config):
        members = unique | "Embed" >> EmbedResponses(config.embedder, config.batch_size, cache)
    else:
        members = unique | "NoEmbeddings" >> beam.Map(lambda candidate: (candidate, None))
    return _Members(candidates, rejects, unique, members, counts)


def plan_variance(members: beam.PCollection, config: RunConfig, cache: EmbeddingCache | None = None) -> beam.PCollection:
    settings = PlanSettings(tolerance=config.tolerance, cost_ratio=config.cost_ratio, seed=config.seed)
    return members | "Planner" >> PlanVariance(config.embedder, config.batch_size, settings, config.redundancy_threshold, cache)


def build(
    pipeline: beam.Pipeline, config: RunConfig, inputs: ResolvedInputs, directory: str, cache: EmbeddingCache | None = None
) -> None:
    read = read_and_embed(pipeline, config, inputs, cache)
    planner = plan_variance(read.members, config, cache) if config.plan else pipeline | "NoPlanner" >> beam.Create([])
    if config.k == "auto":
        k = planner | "RecommendedK" >> beam.Map(lambda summary: summary["recommended_k"])
    else:
        k = pipeline | "FixedK" >> beam.Create([config.k])

    settings = SelectionSettings(
        selector=config.selector,
        seed=config.seed,
        weighting=config.weighting,
        near_dup=config.near_dup,
        with_messages=inputs.with_messages,
        qd=QDSettings(
            lam=config.lam,
            quality_norm=config.quality_norm,
            similarity=config.similarity,
            diversity=config.diversity,
            optimizer=config.optimizer,
            sparse_above=config.sparse_above,
            neighbours=config.neighbours,
        ),
        hot_above=config.hot_above,
        part_size=config.part_size,
    )
    rows, selection_counts, insights = read.members | "Select" >> SelectPerPrompt(settings, k)

    shards = rows | "WriteCurated" >> WriteParquetShards(
        directory,
        "data",
        "part",
        curated_schema(inputs.with_messages),
        shard_key=_prompt_key,
        sort_key=_curated_order,
        shards=config.shards,
    )
    reject_shards = (
        read.rejects
        | "RejectRows" >> beam.Map(asdict)
        | "WriteRejects"
        >> WriteParquetShards(
            directory, "rejects", "part", REJECTS_SCHEMA, shard_key=_source_key, sort_key=_reject_order, shards=None
        )
    )

    counts = (
        (
            read.candidates | "CountParsed" >> beam.Map(lambda _: ("parsed_candidates", 1)),
            read.rejects | "CountRejected" >> beam.Map(lambda _: ("rejected", 1)),
            read.unique | "CountExactDuplicates" >> beam.Map(lambda c: ("duplicates_exact", c.multiplicity - 1)),
            selection_counts,
            *read.counts,
        )
        | "AllCounts" >> beam.Flatten()
        | "SumCounts" >> beam.CombinePerKey(sum)
    )
    reasons = read.rejects | "ReasonOf" >> beam.Map(lambda reject: (reject.reason, 1)) | "SumReasons" >> beam.CombinePerKey(sum)
    pipeline | "Manifest" >> WriteManifest(
        directory, config, inputs.files, counts, reasons, shards, reject_shards, planner, k, insights
    )


def _prompt_key(row: dict) -> str:
    return row["prompt_id"]


def _curated_order(row: dict) -> tuple:
    return row["prompt_id"], row["rank"]


def _source_key(row: dict) -> str:
    return row["source_file"]


def _reject_order(row: dict) -> tuple:
    return row["source_file"], row["source_row"] if row["source_row"] is not None else -1, row["reason"], row["detail"], row["record"]


def run(
    config: RunConfig,
    beam_args: list[str] | None = None,
    cache: EmbeddingCache | None = None,
    inputs: ResolvedInputs | None = None,
) -> RunOutcome:
    """Validate, run the job, write the report, publish. Raises UserError for bad input, config or output
    location before any work starts; on any failure or interrupt nothing is published and staging is removed."""
    if not config.output:
        raise UserError("--output is required")
    check_output(config.output, config.overwrite)
    inputs = inputs or resolve_inputs(config)
    check_inputs_outside_output(config.output, inputs.files)
    staging = stage(config.output, config.overwrite)
    try:
        pipeline = beam.Pipeline(options=PipelineOptions(beam_args or []))
        build(pipeline, config, inputs, staging.directory, cache)
        result = pipeline.run()
        result.wait_until_finish()
        manifest = read_manifest(staging.directory)
        # Inside staging, so a published dataset always has its report.
        report = write_report(staging.directory)
        publish(staging)
    finally:
        release(staging)
    report_path = FileSystems.join(config.output, report.rsplit("/", 1)[-1])
    return RunOutcome(config.output, manifest, _counters(result), report_path)


def run_plan(config: RunConfig, beam_args: list[str] | None = None) -> dict:
    """The planner alone: read, dedup, embed and estimate, without selecting or writing a dataset."""
    config = config.model_copy(update={"plan": True})
    inputs = resolve_inputs(config)
    with tempfile.TemporaryDirectory(prefix="mrt-plan-") as scratch:
        target = os.path.join(scratch, "plan.json")
        pipeline = beam.Pipeline(options=PipelineOptions(beam_args or []))
        read = read_and_embed(pipeline, config, inputs)
        _ = (
            plan_variance(read.members, config)
            | "AsJson" >> beam.Map(json.dumps)
            | "WritePlan" >> beam.io.WriteToText(target, shard_name_template="")
        )
        pipeline.run().wait_until_finish()
        with open(target, encoding="utf-8") as source:
            return json.loads(source.read())


def _counters(result) -> dict[str, int]:
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # some runners report no metrics; the manifest's counts are the authoritative ones
        return {}
    totals: dict[str, int] = {}
    for counter in counters:
        if counter.key.metric.namespace == "mrtcurate":
            totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (counter.committed or 0)
    return totals
