"""manifest.json: what went in, what came out, and counts that add up exactly (DESIGN.md section 4).

The one reader and builder of the contract; the Beam stage that writes it is pipeline/manifest.py."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict

from apache_beam.io.filesystems import FileSystems

from mrtcurate import __version__
from mrtcurate.schemas.config import RunConfig
from mrtcurate.schemas.records import InputFile, ShardInfo
from mrtcurate.schemas.tables import MANIFEST_SCHEMA_VERSION

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
    selection: dict | None = None,
) -> dict:
    """`selection`: the selector's notes (name, K used, what it did on unrewarded pools), from the pipeline."""
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
        "selection": selection or {"selector": config.selection.selector, "k": config.selection.k},
        "planner": planner,
    }


def _check_accounting(totals: dict[str, int], shards: list[ShardInfo]) -> None:
    accounted = totals["rejected"] + totals["duplicates_merged"] + totals["candidates"]
    if totals["input_records"] != accounted:
        raise AccountingError(f"input_records {totals['input_records']} != rejected + duplicates_merged + candidates {accounted}")
    if totals["selected"] > totals["candidates"] or totals["selected"] != sum(shard.rows for shard in shards):
        raise AccountingError(f"selected {totals['selected']} disagrees with candidates or shard rows")


def selection_quality(means: list) -> dict | None:
    pool_quality, kept_quality, pool_diversity, kept_diversity = means
    if pool_diversity is None:
        return None
    return {
        "pool": {"quality": pool_quality, "diversity": pool_diversity},
        "selected": {"quality": kept_quality, "diversity": kept_diversity},
        "definition": "means over prompts: quality = reward min-max scaled within the pool; diversity = mean pairwise cosine distance (pool: up to 256 members)",
    }


def read_manifest(directory: str) -> dict:
    with FileSystems.open(FileSystems.join(directory, MANIFEST_NAME)) as source:
        return json.loads(source.read())
