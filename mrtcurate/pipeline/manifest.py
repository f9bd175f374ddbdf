"""The Beam stage that writes manifest.json once every shard is written (the contract: schemas/manifest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import apache_beam as beam
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from mrtcurate.pipeline.job_files import new_file
from mrtcurate.pipeline.score import JUDGE_TALLY, scorer_identity
from mrtcurate.schemas import InputFile, RunConfig, ShardInfo
from mrtcurate.schemas.config import SelectionSettings
from mrtcurate.schemas.counts import (
    Count,
    Insight,
    QualityMeans,
)
from mrtcurate.schemas.manifest import MANIFEST_NAME, build_manifest, selection_quality
from mrtcurate.selectors import SELECTORS
from mrtcurate.vectors.embedders import describe_embedder
from mrtcurate.vectors.reward_model import identity


@dataclass(frozen=True)
class ManifestSources:
    """The job's outputs that the manifest summarises, each a PCollection."""

    shards: beam.PCollection  # ShardInfo of the curated rows
    reject_shards: beam.PCollection  # ShardInfo of the rejects
    dropped_shards: beam.PCollection  # ShardInfo of the dropped rows
    planner: beam.PCollection  # the planner summary, or nothing with --no-plan
    k: beam.PCollection  # the one K used
    insights: beam.PCollection  # one {Insight: summary} of the report's statistics and the tallies (JobInsights)
    frontier: beam.PCollection  # qd's frontier dict (or None), or nothing where the responses are not embedded


def selection_notes(selection: SelectionSettings, counts: dict[str, int], k: int) -> dict:
    """What the manifest says of the selection, from the selector registry."""
    spec = SELECTORS[selection.selector]
    notes: dict = {"selector": spec.name, "k": k}
    if selection.k == "auto":
        notes["k_from"] = "planner recommended_k"
    remarks = [spec.label] if spec.label else []
    if spec.unrewarded_count:
        unrewarded = counts.get(spec.unrewarded_count.value, 0)
        notes[spec.unrewarded_count.value] = unrewarded
        if unrewarded:
            remarks.append(f"{unrewarded} {spec.unrewarded_note}")
    if remarks:
        notes["note"] = "; ".join(remarks)
    return notes


def near_duplicate_rule(config: RunConfig) -> dict:
    grouping = config.grouping
    return {
        "rule": "clusters around representatives, best first; a member is linked to its representative itself (no chaining)",
        "lexical": None if grouping.near_dup is None else {
            "test": "word-sequence LCS ratio (NFKC, case-folded words) and the same set of numbers", "threshold": grouping.near_dup,
        },
        "embedding": None if grouping.near_dup_embedding is None else {
            "test": "cosine, both texts within the embedder's token window", "threshold": grouping.near_dup_embedding,
        },
        "boilerplate_prompts": grouping.boilerplate_prompts,
    }  # fmt: skip


def reward_source(config: RunConfig, counts: dict, judge=None) -> dict | None:
    """Where the rewards came from: a model or a judge (its identity, what it scored, what the cache gave), a
    field, or none. `judge`: the judge's identity, read on the driver. A judge's API key is never here: only
    the name of the variable that held it."""
    scored = {
        "rescore": config.scoring.rescore,
        "scored": counts.get(Count.SCORED_BY_MODEL.value, 0),
        "from_cache": counts.get(Count.SCORES_FROM_CACHE.value, 0),
    }
    if config.scoring.reward_model:
        model = identity(config.scoring.reward_model, config.scoring.reward_label)
        return {
            "kind": "model",
            "path": model.path,
            "config_sha256": model.config_sha256,
            "dtype": model.dtype,
            "label": model.label,
            **scored,
            "truncated": counts.get(Count.SCORES_TRUNCATED.value, 0),
        }
    if judge is not None:
        return {
            "kind": "judge",
            "url": judge.url,
            "model": judge.model,
            "template_sha256": judge.template_sha256,
            "key_env": judge.key_env,
            "budget": judge.budget,
            **scored,
            **{count.value.removeprefix("judge_"): counts.get(count.value, 0) for count in JUDGE_TALLY.values()},
        }
    if config.ingest.reward_field:
        return {"kind": "field", "field": config.ingest.reward_field, "order": config.ingest.reward_order}
    return None


def _records(directory: str, dropped_shards: list[ShardInfo]) -> int:
    """The input records the written dropped/ table stands for, read back from its files."""
    total = 0
    for shard in dropped_shards:
        with FileSystems.open(FileSystems.join(directory, shard.path)) as source:
            total += pc.sum(pq.read_table(source, columns=["records"]).column("records")).as_py() or 0
    return total


class _WriteManifest(beam.DoFn):
    def __init__(self, directory: str, config: RunConfig, inputs: tuple[InputFile, ...], embeds: bool):
        self.directory = directory
        self.config = config
        self.inputs = inputs
        self.embeds = embeds
        # Built on the driver: a worker has neither the template file nor, needing none, the key variable.
        self.judge = scorer_identity(config.scoring) if config.scoring.judge_url else None

    def process(
        self,
        _,
        shards,
        reject_shards,
        dropped_shards,
        planner,
        k,
        frontier,
        insights,
    ):
        tallies = insights[Insight.TALLY.value]
        counts = {name: n for (kind, name), n in tallies.items() if kind == "count"}
        rejected_by_reason = {reason: n for (kind, reason), n in tallies.items() if kind == "reason"}
        manifest = build_manifest(
            self.config,
            self.inputs,
            counts,
            rejected_by_reason,
            shards,
            reject_shards,
            planner[0] if planner else None,
            selection_notes(self.config.selection, counts, k),
            dropped_shards,
            _records(self.directory, dropped_shards),
        )
        manifest["selection_quality"] = selection_quality(QualityMeans(*insights[Insight.QUALITY.value]))
        manifest["examples"] = [example for _, example in insights[Insight.EXAMPLE.value]]
        manifest["pool_profile"] = insights[Insight.POOL_PROFILE.value]
        manifest["near_duplicates"] = {**near_duplicate_rule(self.config), **insights[Insight.MERGE.value]}
        manifest["qd_frontier"] = frontier[0] if frontier else None
        manifest["reward_source"] = reward_source(self.config, counts, self.judge)
        if self.embeds:
            # Described here, on a worker: the precision is the one the workers' device gave.
            embedding = self.config.embedding
            manifest["embedding"] = {
                **describe_embedder(embedding.embedder, embedding.max_tokens),
                "texts_truncated": counts.get(Count.TEXTS_TRUNCATED.value, 0),
                "embedding_fallback": counts.get(Count.EMBEDDING_FALLBACK.value, 0),
                "from_cache": counts.get(Count.VECTORS_FROM_CACHE.value, 0),
            }
        with new_file(FileSystems.join(self.directory, MANIFEST_NAME)) as sink:
            sink.write(json.dumps(manifest, indent=2).encode("utf-8"))
        yield manifest


class WriteManifest(beam.PTransform):
    """Runs once, after every shard is written (its side inputs make it wait for them)."""

    def __init__(
        self, directory: str, config: RunConfig, inputs: tuple[InputFile, ...], sources: ManifestSources, embeds: bool
    ):
        super().__init__()
        self.embeds = embeds
        self.directory = directory
        self.config = config
        self.inputs = inputs
        self.side_inputs = (
            beam.pvalue.AsList(sources.shards),
            beam.pvalue.AsList(sources.reject_shards),
            beam.pvalue.AsList(sources.dropped_shards),
            beam.pvalue.AsList(sources.planner),
            beam.pvalue.AsSingleton(sources.k),
            beam.pvalue.AsList(sources.frontier),
        )
        self.insights = sources.insights

    def expand(self, pipeline):
        return (
            pipeline
            | "Once" >> beam.Create([None])
            | "Write"
            >> beam.ParDo(
                _WriteManifest(self.directory, self.config, self.inputs, self.embeds),
                *self.side_inputs,
                beam.pvalue.AsSingleton(self.insights),
            )
        )
