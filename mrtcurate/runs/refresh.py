"""`mrt refresh`: scheduled curation as versioned snapshots.

    ROOT/snapshots/<UTC timestamp>-<input fingerprint>/   complete datasets, each published by rename
    ROOT/LATEST                                           {"snapshot": ..., "fingerprint": ...}, replaced atomically
    ROOT/cache/embeddings/<embedder key>/*.parquet        response_id -> vector, only ever added by rename

Order of a refresh: publish the snapshot (and its report), move the new cache files in, then replace LATEST. A kill at
any point leaves LATEST on a complete snapshot and the cache made of complete files; the next refresh
redoes what was lost. One refresh at a time per ROOT (schedule them, do not overlap them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from mrtcurate.errors import UserError
from mrtcurate.ingest.files import ResolvedInputs, is_local
from mrtcurate.pipeline.embed import EmbeddingCache
from mrtcurate.runs.curate import RunOutcome, run
from mrtcurate.runs.preflight import resolve_inputs
from mrtcurate.schemas import RunConfig
from mrtcurate.schemas.manifest import read_manifest
from mrtcurate.vectors.embedders import embedder_key

LATEST = "LATEST"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshOutcome:
    snapshot: str | None  # None: nothing changed
    fingerprint: str
    run: RunOutcome | None
    pruned: tuple[str, ...] = ()


def fingerprint(config: RunConfig, inputs: ResolvedInputs) -> str:
    listing = sorted((file.path, file.checksum) for file in inputs.files)
    return hashlib.sha256(json.dumps([config.config_hash(), listing]).encode()).hexdigest()[:12]


def read_latest(root: str) -> dict | None:
    """The pointer LATEST holds, when it holds: a JSON object naming a snapshot directly under ROOT/snapshots/
    whose manifest reads and checks. Anything else (garbage, an empty file, a path outside the root, a deleted
    snapshot) is as if there were no LATEST: the refresh curates again and writes a good one."""
    path = FileSystems.join(root, LATEST)
    if not FileSystems.exists(path):
        return None
    try:
        with FileSystems.open(path) as source:
            pointer = json.loads(source.read())
        name = pointer["snapshot"].removeprefix("snapshots/")
        if not isinstance(pointer["fingerprint"], str) or not _plain_name(name) or pointer["snapshot"] != f"snapshots/{name}":
            raise ValueError(f"it names {pointer['snapshot']!r}, not a snapshot under the root")
        read_manifest(FileSystems.join(root, pointer["snapshot"]))
    except (ValueError, KeyError, TypeError, AttributeError, UserError) as problem:
        log.warning("%s does not hold (%s): curating again", path, str(problem).splitlines()[0] if str(problem) else type(problem).__name__)
        return None
    return pointer


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def _write_atomically(path: str, payload: bytes) -> None:
    """Locally a rename over the old file (atomic on POSIX); on object stores a copy over the old
    object, which readers see whole or not at all."""
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with FileSystems.create(temporary) as sink:
        sink.write(payload)
    FileSystems.rename([temporary], [path])


def _cache_dir(root: str, config: RunConfig) -> str:
    return FileSystems.join(root, "cache", "embeddings", embedder_key(config.embedding.embedder, config.embedding.max_tokens))


def _list(pattern: str) -> list[str]:
    return sorted(metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list)


def _snapshots(root: str) -> list[str]:
    names = {path[len(FileSystems.join(root, "snapshots")) + 1 :].split("/")[0] for path in _list(FileSystems.join(root, "snapshots", "*", "manifest.json"))}
    return sorted(name for name in names if not name.startswith("."))


def refresh(root: str, config: RunConfig, beam_args: list[str] | None = None, keep: int | None = None) -> RefreshOutcome:
    inputs = resolve_inputs(config)
    current = fingerprint(config, inputs)
    latest = read_latest(root)
    if latest and latest.get("fingerprint") == current:
        return RefreshOutcome(None, current, None)

    # Microseconds in the name: snapshots sort by it, and two refreshes can land in one second.
    name = f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{current}"
    snapshot = FileSystems.join(root, "snapshots", name)
    cache_dir = _cache_dir(root, config)
    new_vectors = FileSystems.join(root, "cache", f".incoming-{name}")
    cache = EmbeddingCache(files=tuple(_list(FileSystems.join(cache_dir, "*.parquet"))), new_dir=new_vectors)
    outcome = run(config.replace(output=snapshot, overwrite=False), beam_args, cache, inputs)

    for path in _list(FileSystems.join(new_vectors, "*", "*.parquet")):
        kind, file_name = path.rsplit("/", 2)[-2:]
        _move(path, FileSystems.join(cache_dir, f"{name}-{kind}-{file_name}"))
    if FileSystems.exists(new_vectors):
        FileSystems.delete([new_vectors])
    pointer = {"snapshot": f"snapshots/{name}", "fingerprint": current, "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    _write_atomically(FileSystems.join(root, LATEST), json.dumps(pointer, indent=2).encode())
    pruned = prune(root, keep) if keep else ()
    return RefreshOutcome(pointer["snapshot"], current, outcome, pruned)


def _move(path: str, target: str) -> None:
    """One complete file into the cache: a rename, so readers see all of it or none of it."""
    directory = FileSystems.split(target)[0]
    if is_local(target) and not FileSystems.exists(directory):
        FileSystems.mkdirs(directory)
    FileSystems.rename([path], [target])


def prune(root: str, keep: int) -> tuple[str, ...]:
    """Delete all but the newest `keep` snapshots, never the one LATEST points at."""
    latest = read_latest(root) or {}
    protected = latest.get("snapshot", "").split("/")[-1]
    names = _snapshots(root)
    doomed = [name for name in names[: max(0, len(names) - keep)] if name != protected]
    if doomed:
        FileSystems.delete([FileSystems.join(root, "snapshots", name) for name in doomed])
    return tuple(doomed)
