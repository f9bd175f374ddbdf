"""manifest.json: what went in, what came out, and counts that add up exactly (DESIGN.md section 4).

The one reader and builder of the contract; the Beam stage that writes it is pipeline/manifest.py."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict

from mrtcurate import __version__
from mrtcurate.errors import UserError
from mrtcurate.schemas.config import RunConfig
from mrtcurate.schemas.counts import DIVERSITY_SAMPLE, QualityMeans, Totals
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
    dropped_shards: list[ShardInfo] | None = None,
    dropped_records: int | None = None,
) -> dict:
    """`selection`: the selector's notes (name, K used, what it did on unrewarded pools), from the pipeline.
    `dropped_records`: the sum of the written dropped/ table's `records` column, which must close the account."""
    totals = Totals.from_counts(counts)
    _check_accounting(totals, shards, reject_shards, counts)
    if dropped_records is not None:
        _check_lineage(totals, shards, reject_shards, dropped_records)
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mrtcurate_version": __version__,
        "config": config.hashed_fields(),
        "config_hash": config.config_hash(),
        "inputs": [
            {
                "path": f.path,
                "bytes": f.bytes,
                "checksum": f.checksum,
                "checksum_kind": f.checksum_kind,
                **({"origin": f.origin, "origin_checksum": f.origin_checksum} if f.origin else {}),
            }
            for f in inputs
        ],
        "counts": totals.as_dict(),
        "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
        "shards": [asdict(shard) for shard in sorted(shards, key=lambda shard: shard.path)],
        "rejects": [asdict(shard) for shard in sorted(reject_shards, key=lambda shard: shard.path)],
        "dropped": [asdict(shard) for shard in sorted(dropped_shards or [], key=lambda shard: shard.path)],
        "selection": selection or {"selector": config.selection.selector, "k": config.selection.k},
        "planner": planner,
    }


def _check_accounting(
    totals: Totals, shards: list[ShardInfo], reject_shards: list[ShardInfo], counts: dict[str, int]
) -> None:
    # Every raw count in the message: which stage's count is off is what tells a lost bundle from a double one.
    raw = ", ".join(f"{name} {value}" for name, value in sorted(counts.items()))
    if not totals.holds:
        raise AccountingError(
            f"input_records {totals.input_records} != rejected + duplicates_merged + candidates {totals.accounted} (counts: {raw})"
        )
    shard_rows = sum(shard.rows for shard in shards)
    if totals.selected > totals.candidates or totals.selected != shard_rows:
        raise AccountingError(
            f"selected {totals.selected} disagrees with candidates or shard rows {shard_rows} (counts: {raw})"
        )
    # The counts are summed per file and per pool; the shards are the data itself: both must agree.
    reject_rows = sum(shard.rows for shard in reject_shards)
    if totals.rejected != reject_rows:
        raise AccountingError(
            f"rejected {totals.rejected} disagrees with reject shard rows {reject_rows} (counts: {raw})"
        )


def _check_lineage(
    totals: Totals, shards: list[ShardInfo], reject_shards: list[ShardInfo], dropped_records: int
) -> None:
    """From the written tables: every input record is one data row, one reject row, or in one dropped row's records."""
    kept, rejected = sum(shard.rows for shard in shards), sum(shard.rows for shard in reject_shards)
    if kept + dropped_records + rejected != totals.input_records:
        raise AccountingError(
            f"input_records {totals.input_records} != data rows {kept} + dropped records {dropped_records} "
            f"+ reject rows {rejected}: a record is missing from the written tables or in two of them"
        )


def selection_quality(means: QualityMeans) -> dict | None:
    if means.pool_diversity is None:
        return None
    return {
        "pool": {"quality": means.pool_quality, "diversity": means.pool_diversity, "coverage": 1.0},
        "selected": {"quality": means.kept_quality, "diversity": means.kept_diversity, "coverage": means.kept_coverage},
        "definition": "means over prompts: quality = reward min-max scaled within the pool; "
        "coverage = the qd objective's diversity term, (1/W) sum_j w_j max_{i kept} max(cos_ij, 0) over the pool's members j "
        f"weighted by multiplicity (what qd maximises); diversity = mean pairwise cosine distance (pool: up to {DIVERSITY_SAMPLE} members)",
    }


def embedding_line(embedding: dict) -> str:
    """The manifest's embedder identity and its truncation count, in one sentence."""
    window = embedding.get("max_tokens")
    cut = (
        f"window {window} tokens; responses longer, embedded by their first {window}: {embedding['texts_truncated']:,}"
        if window
        else "no token window"
    )
    quantisation = f" ({embedding['quantisation']})" if embedding.get("quantisation") else ""
    return f"{embedding['embedder']}: {embedding['backend']}, {embedding['precision']}{quantisation}; {cut}"


def read_manifest(directory: str) -> dict:
    # Imported here: the trainer imports this module, and Beam (its import time, its gRPC threads) has no
    # place in torchrun's processes.
    from apache_beam.io.filesystems import FileSystems

    path = FileSystems.join(directory, MANIFEST_NAME)
    try:
        with FileSystems.open(path) as source:
            payload = source.read()
    except Exception as error:  # noqa: BLE001 - each backend raises its own kind of "not there"
        raise UserError(
            f"{directory} holds no readable {MANIFEST_NAME} ({type(error).__name__}): not a dataset written by mrt run"
        ) from None
    return parse_manifest(payload, path)


def parse_manifest(payload: bytes, where: str) -> dict:
    """The manifest's JSON, checked for what every reader relies on: a one-line error otherwise."""
    try:
        manifest = json.loads(payload)
    except ValueError as error:
        raise UserError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list):
        raise UserError(f"{where} lists no shards; is this a dataset written by mrt run?")
    return manifest
