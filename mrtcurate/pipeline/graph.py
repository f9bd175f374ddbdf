"""The whole curation job in one place:

    Read -> Parse/Validate (rejects aside) -> [Merge near-duplicate prompts] -> Merge exact duplicates
         -> Embed -> Select K per prompt (near-duplicate collapse, then the selector)
         -> Shard and write Parquet (curated rows, rejects) -> Manifest

then, on the driver, an atomic publish of the finished output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from mrtcurate.pipeline.dedup import MergeExactDuplicates
from mrtcurate.pipeline.embed import EmbedResponses
from mrtcurate.pipeline.manifest import WriteManifest, read_manifest
from mrtcurate.pipeline.merge_prompts import MergeNearDuplicatePrompts
from mrtcurate.pipeline.preflight import ResolvedInputs, check_output, resolve_inputs
from mrtcurate.pipeline.publish import discard, publish, staging_dir
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


def needs_embeddings(config: RunConfig) -> bool:
    return config.near_dup is not None or config.selector == "qd"


def build(pipeline: beam.Pipeline, config: RunConfig, inputs: ResolvedInputs, directory: str) -> None:
    candidates, rejects = pipeline | "Read" >> ReadCorpus(inputs.files, inputs.mapping, config.max_chars)

    keyed = candidates
    extra_counts = []
    if config.merge_prompts is not None:
        keyed, merge_counts = candidates | "MergePrompts" >> MergeNearDuplicatePrompts(
            config.embedder, config.batch_size, config.merge_prompts
        )
        extra_counts.append(merge_counts)

    unique = keyed | "MergeExactDuplicates" >> MergeExactDuplicates()
    if needs_embeddings(config):
        members = unique | "Embed" >> EmbedResponses(config.embedder, config.batch_size)
    else:
        members = unique | "NoEmbeddings" >> beam.Map(lambda candidate: (candidate, None))

    settings = SelectionSettings(
        selector=config.selector,
        k=config.k,
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
    rows, selection_counts = members | "Select" >> SelectPerPrompt(settings)

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
        rejects
        | "RejectRows" >> beam.Map(asdict)
        | "WriteRejects"
        >> WriteParquetShards(
            directory, "rejects", "part", REJECTS_SCHEMA, shard_key=_source_key, sort_key=_reject_order, shards=None
        )
    )

    counts = (
        (
            candidates | "CountParsed" >> beam.Map(lambda _: ("parsed_candidates", 1)),
            rejects | "CountRejected" >> beam.Map(lambda _: ("rejected", 1)),
            unique | "CountExactDuplicates" >> beam.Map(lambda c: ("duplicates_exact", c.multiplicity - 1)),
            selection_counts,
            *extra_counts,
        )
        | "AllCounts" >> beam.Flatten()
        | "SumCounts" >> beam.CombinePerKey(sum)
    )
    reasons = rejects | "ReasonOf" >> beam.Map(lambda reject: (reject.reason, 1)) | "SumReasons" >> beam.CombinePerKey(sum)
    pipeline | "Manifest" >> WriteManifest(directory, config, inputs.files, counts, reasons, shards, reject_shards)


def _prompt_key(row: dict) -> str:
    return row["prompt_id"]


def _curated_order(row: dict) -> tuple:
    return row["prompt_id"], row["rank"]


def _source_key(row: dict) -> str:
    return row["source_file"]


def _reject_order(row: dict) -> tuple:
    return row["source_file"], row["source_row"] if row["source_row"] is not None else -1, row["reason"], row["detail"], row["record"]


def run(config: RunConfig, beam_args: list[str] | None = None) -> RunOutcome:
    """Validate, run the job, publish. Raises UserError for bad input or config before any work starts."""
    check_output(config.output, config.overwrite)
    inputs = resolve_inputs(config)
    directory = staging_dir(config.output)
    options = PipelineOptions(beam_args or [])
    try:
        pipeline = beam.Pipeline(options=options)
        build(pipeline, config, inputs, directory)
        result = pipeline.run()
        result.wait_until_finish()
        manifest = read_manifest(directory)
        publish(directory, config.output)
    finally:
        discard(directory, config.output)
    return RunOutcome(config.output, manifest, _counters(result))


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
