"""Training rows from a dataset written by `mrt run` (manifest and checksums verified) or from any Parquet."""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mrtcurate.errors import UserError
from mrtcurate.ids import identity_key, stable_id, stream_sha256
from mrtcurate.schemas.manifest import parse_manifest


@dataclass(frozen=True)
class TrainingData:
    rows: pa.Table
    manifest: dict | None  # the curated dataset's manifest; None for plain Parquet


def load_data(location: str) -> TrainingData:
    """Rows with columns prompt_id, prompt, completion, weight, rank and, for chat data, messages; weight-0 rows dropped.

    A directory holding manifest.json is a curated dataset: every shard it lists must exist with the
    recorded sha256 and row count, or nothing trains. Anything else must be Parquet with prompt and
    completion columns (a file, a directory of files, or a glob).
    """
    filesystem, path = _filesystem(location)
    manifest_path = posixpath.join(path, "manifest.json")
    if filesystem.get_file_info(manifest_path).type == pafs.FileType.File:
        manifest = _read_manifest(filesystem, manifest_path)
        table = _read_curated(filesystem, path, manifest)
    else:
        manifest, table = None, _read_plain_parquet(filesystem, path, location)
    return TrainingData(_normalise(table, location), manifest)


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(location)
    except (pa.ArrowInvalid, ValueError):
        return pafs.LocalFileSystem(), location


def _read_manifest(filesystem: pafs.FileSystem, manifest_path: str) -> dict:
    # Read through pyarrow's filesystems, like the shards; what a manifest must hold is checked in one place.
    with filesystem.open_input_stream(manifest_path) as stream:
        return parse_manifest(stream.read(), manifest_path)


def _read_curated(filesystem: pafs.FileSystem, root: str, manifest: dict) -> pa.Table:
    shards = manifest["shards"]
    tables = []
    for shard in shards:
        relative = posixpath.normpath(shard["path"])
        if posixpath.isabs(relative) or relative == ".." or relative.startswith("../"):
            raise UserError(
                f"shard path {shard['path']!r} in the manifest leads outside {root}; nothing outside the dataset is read"
            )
        shard_path = posixpath.join(root, relative)
        if filesystem.get_file_info(shard_path).type != pafs.FileType.File:
            raise UserError(f"shard {shard['path']} listed in the manifest is missing from {root}")
        with filesystem.open_input_stream(shard_path) as stream:
            digest = stream_sha256(stream)
        if digest != shard["sha256"]:
            raise UserError(
                f"shard {shard['path']} fails its checksum: manifest sha256 {shard['sha256'][:12]}..., file {digest[:12]}..."
            )
        table = pq.read_table(shard_path, filesystem=filesystem)
        if table.num_rows != shard["rows"]:
            raise UserError(f"shard {shard['path']} holds {table.num_rows} rows, the manifest says {shard['rows']}")
        tables.append(table)
    if not tables:
        raise UserError(f"{root} holds no curated rows (the manifest lists no shards)")
    return pa.concat_tables(tables, promote_options="default")


def _read_plain_parquet(filesystem: pafs.FileSystem, path: str, location: str) -> pa.Table:
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        selector = pafs.FileSelector(path, recursive=True)
        files = sorted(f.path for f in filesystem.get_file_info(selector) if f.is_file and f.path.endswith(".parquet"))
    elif info.type == pafs.FileType.File:
        files = [path]
    else:
        raise UserError(f"training data {location} does not exist")
    if not files:
        raise UserError(f"training data {location} holds no .parquet files and no manifest.json")
    try:
        return pa.concat_tables([pq.read_table(f, filesystem=filesystem) for f in files], promote_options="default")
    except pa.ArrowInvalid as error:
        raise UserError(f"cannot read training data {location}: {error}") from None


def _normalise(table: pa.Table, location: str) -> pa.Table:
    missing = {"prompt", "completion"} - set(table.column_names)
    if missing:
        raise UserError(
            f"training data {location} lacks column(s) {', '.join(sorted(missing))}; it needs prompt and completion"
        )
    rows = table.num_rows
    columns = {
        "prompt_id": table["prompt_id"]
        if "prompt_id" in table.column_names
        else pa.array([stable_id(identity_key(p)) for p in table["prompt"].to_pylist()]),
        "prompt": table["prompt"].cast(pa.string()),
        "completion": table["completion"].cast(pa.string()),
        "weight": table["weight"].cast(pa.float64()) if "weight" in table.column_names else pa.array([1.0] * rows),
        "rank": table["rank"].cast(pa.int32()) if "rank" in table.column_names else pa.array([0] * rows, pa.int32()),
    }
    if "messages" in table.column_names:
        columns["messages"] = table["messages"]
    normalised = pa.table(columns)
    weights = normalised["weight"].to_pylist()
    bad = next((w for w in weights if w is None or not math.isfinite(w) or w < 0), "ok")
    if bad != "ok":
        raise UserError(f"training data {location} has a row weight of {bad}; weights must be finite and >= 0")
    if pc.any(pc.is_null(normalised["prompt"])).as_py() or pc.any(pc.is_null(normalised["completion"])).as_py():
        raise UserError(f"training data {location} has rows without a prompt or completion")
    # A weight-0 row adds nothing to the loss; dropping it also keeps it from shifting which rows share a batch.
    kept = normalised.filter(pc.greater(normalised["weight"], 0.0))
    if kept.num_rows == 0:
        raise UserError(f"training data {location} has no row with a positive weight")
    return kept
