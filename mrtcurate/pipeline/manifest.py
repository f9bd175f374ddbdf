"""manifest.json: what went in, what came out, and counts that add up exactly (DESIGN.md section 4)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from mrtcurate import __version__
from mrtcurate.pipeline.preflight import InputFile
from mrtcurate.schemas import MANIFEST_SCHEMA_VERSION, RunConfig, ShardInfo

MANIFEST_NAME = "manifest.json"


class AccountingError(RuntimeError):
    """The counts do not add up: records were lost or invented somewhere. Always a bug, never bad input."""


def build_manifest(
    config: RunConfig,
    inputs: tuple[InputFile, ...],
    counts: dict[str, int],
    rejected_by_reason: dict[str, int],
    shards: list[ShardInfo],
    reject_shards: list[ShardInfo],
    planner: dict | None = None,
    k: int | None = None,
) -> dict:
    exact, near = counts.get("duplicates_exact", 0), counts.get("duplicates_near", 0)
    totals = {
        "input_records": counts.get("parsed_candidates", 0) + counts.get("rejected", 0),
        "rejected": counts.get("rejected", 0),
        "prompts": counts.get("prompts", 0),
        "candidates": counts.get("candidates", 0),
        "duplicates_merged": exact + near,
        "duplicates_merged_exact": exact,
        "duplicates_merged_near": near,
        "selected": counts.get("selected", 0),
    }
    for merge_count in ("prompts_before_merge", "prompt_groups_merged"):
        if merge_count in counts:
            totals[merge_count] = counts[merge_count]
    _check_accounting(totals, shards)
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mrtcurate_version": __version__,
        "config": config.hashed_fields(),
        "config_hash": config.config_hash(),
        "inputs": [{"path": f.path, "bytes": f.bytes, "checksum": f.checksum} for f in inputs],
        "counts": totals,
        "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
        "shards": [asdict(shard) for shard in sorted(shards, key=lambda shard: shard.path)],
        "rejects": [asdict(shard) for shard in sorted(reject_shards, key=lambda shard: shard.path)],
        "selection": _selection_notes(config, counts, k),
        "planner": planner,
    }


def _selection_notes(config: RunConfig, counts: dict[str, int], k: int | None) -> dict:
    notes = {"selector": config.selector, "k": k if k is not None else config.k}
    if config.k == "auto":
        notes["k_from"] = "planner recommended_k"
    if config.selector == "topk":
        unranked = counts.get("random_fallback_prompts", 0)
        notes["random_fallback_prompts"] = unranked
        notes["note"] = "reward top-K is biased towards high-reward modes"
        if unranked:
            notes["note"] += f"; {unranked} prompts with no reward among more than K candidates were chosen at random"
    if config.selector == "qd":
        diversity_only = counts.get("diversity_only_prompts", 0)
        notes["diversity_only_prompts"] = diversity_only
        if diversity_only:
            notes["note"] = f"qd ran diversity-only (lambda ignored) on {diversity_only} prompts that have no rewards"
    return notes


def _check_accounting(totals: dict[str, int], shards: list[ShardInfo]) -> None:
    accounted = totals["rejected"] + totals["duplicates_merged"] + totals["candidates"]
    if totals["input_records"] != accounted:
        raise AccountingError(f"input_records {totals['input_records']} != rejected + duplicates_merged + candidates {accounted}")
    if totals["selected"] > totals["candidates"] or totals["selected"] != sum(shard.rows for shard in shards):
        raise AccountingError(f"selected {totals['selected']} disagrees with candidates or shard rows")


class NanMeans(beam.CombineFn):
    """Mean of each position of fixed-length tuples, ignoring NaNs position by position."""

    def __init__(self, width: int):
        self.width = width

    def create_accumulator(self):
        return [0.0] * self.width, [0] * self.width

    def add_input(self, accumulator, values):
        sums, counts = accumulator
        for position, value in enumerate(values):
            if value == value:  # not NaN
                sums[position] += value
                counts[position] += 1
        return sums, counts

    def merge_accumulators(self, accumulators):
        sums, counts = self.create_accumulator()
        for other_sums, other_counts in accumulators:
            sums = [a + b for a, b in zip(sums, other_sums)]
            counts = [a + b for a, b in zip(counts, other_counts)]
        return sums, counts

    def extract_output(self, accumulator):
        sums, counts = accumulator
        return [total / count if count else None for total, count in zip(sums, counts)]


def selection_quality(means: list) -> dict | None:
    pool_quality, kept_quality, pool_diversity, kept_diversity = means
    if pool_diversity is None:
        return None
    return {
        "pool": {"quality": pool_quality, "diversity": pool_diversity},
        "selected": {"quality": kept_quality, "diversity": kept_diversity},
        "definition": "means over prompts: quality = reward min-max scaled within the pool; diversity = mean pairwise cosine distance (pool: up to 256 members)",
    }


class _WriteManifest(beam.DoFn):
    def __init__(self, directory: str, config: RunConfig, inputs: tuple[InputFile, ...]):
        self.directory = directory
        self.config = config
        self.inputs = inputs

    def process(self, _, counts, rejected_by_reason, shards, reject_shards, planner, k, quality_means, examples):
        manifest = build_manifest(
            self.config, self.inputs, counts, rejected_by_reason, shards, reject_shards, planner[0] if planner else None, k
        )
        manifest["selection_quality"] = selection_quality(quality_means)
        manifest["examples"] = [example for _, example in examples]
        with FileSystems.create(FileSystems.join(self.directory, MANIFEST_NAME)) as sink:
            sink.write(json.dumps(manifest, indent=2).encode("utf-8"))
        yield manifest


class WriteManifest(beam.PTransform):
    """Runs once, after every shard is written (its side inputs make it wait for them)."""

    def __init__(self, directory: str, config: RunConfig, inputs: tuple[InputFile, ...], counts, reasons, shards, reject_shards, planner, k, insights):
        super().__init__()
        self.directory = directory
        self.config = config
        self.inputs = inputs
        self.side_inputs = (
            beam.pvalue.AsDict(counts),
            beam.pvalue.AsDict(reasons),
            beam.pvalue.AsList(shards),
            beam.pvalue.AsList(reject_shards),
            beam.pvalue.AsList(planner),
            beam.pvalue.AsSingleton(k),
        )
        self.insights = insights

    def expand(self, pipeline):
        quality = (
            self.insights
            | "QualityOnly" >> beam.Filter(lambda item: item[0] == "quality")
            | "QualityValues" >> beam.Map(lambda item: item[1])
            | "QualityMeans" >> beam.CombineGlobally(NanMeans(4))
        )
        examples = (
            self.insights
            | "ExamplesOnly" >> beam.Filter(lambda item: item[0] == "example")
            | "ExampleValues" >> beam.Map(lambda item: item[1])
            | "FirstExamples" >> beam.combiners.Top.Smallest(5, key=lambda keyed: keyed[0])
        )
        side_inputs = (*self.side_inputs, beam.pvalue.AsSingleton(quality), beam.pvalue.AsSingleton(examples))
        return (
            pipeline
            | "Once" >> beam.Create([None])
            | "Write" >> beam.ParDo(_WriteManifest(self.directory, self.config, self.inputs), *side_inputs)
        )


def read_manifest(directory: str) -> dict:
    with FileSystems.open(FileSystems.join(directory, MANIFEST_NAME)) as source:
        return json.loads(source.read())
