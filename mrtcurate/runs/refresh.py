"""`mrt refresh`: scheduled curation as versioned snapshots.

    ROOT/snapshots/<UTC timestamp>-<input fingerprint>/   complete datasets, each published by rename
    ROOT/LATEST                                           {"snapshot": ..., "fingerprint": ...}, replaced atomically
    ROOT/cache/                                           the content cache of `--cache` (pipeline/cache.py)

Order of a refresh: the run adds what it computes to the cache as it goes (each file by rename), publishes the
snapshot (and its report), then LATEST is replaced. A kill at any point leaves LATEST on a complete snapshot and
the cache made of complete files; the next refresh reuses what the killed one cached and redoes the rest. On a local ROOT a refresh holds ROOT/.refresh.lock (flock, dropped by the kernel when
the process dies): a second refresh of the same root is refused in one line, and the one holding the lock
removes what killed refreshes left (staging folders, incoming cache files, half-written pointers). On an
object store, schedule refreshes so that they do not overlap.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from mrtcurate.errors import UserError
from mrtcurate.ingest.files import ResolvedInputs, is_local, local_path
from mrtcurate.outputs import write_inside
from mrtcurate.runs.curate import RunOutcome, run
from mrtcurate.runs.preflight import resolve_inputs
from mrtcurate.schemas import RunConfig
from mrtcurate.schemas.manifest import read_manifest

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
        if (
            not isinstance(pointer["fingerprint"], str)
            or not _plain_name(name)
            or pointer["snapshot"] != f"snapshots/{name}"
        ):
            raise ValueError(f"it names {pointer['snapshot']!r}, not a snapshot under the root")
        read_manifest(FileSystems.join(root, pointer["snapshot"]))
    except (ValueError, KeyError, TypeError, AttributeError, UserError) as problem:
        log.warning(
            "%s does not hold (%s): curating again",
            path,
            str(problem).splitlines()[0] if str(problem) else type(problem).__name__,
        )
        return None
    return pointer


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def _write_latest(root: str, payload: bytes) -> None:
    """Locally a rename over the old file (atomic on POSIX); on object stores a copy over the old
    object, which readers see whole or not at all."""
    if is_local(root):
        write_inside(local_path(root), LATEST, payload)
        return
    path = FileSystems.join(root, LATEST)
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with FileSystems.create(temporary) as sink:
        sink.write(payload)
    FileSystems.rename([temporary], [path])


# What a killed refresh leaves: its snapshot's staging (folder, lock, folder renamed aside), cache files written
# but not yet renamed (and the incoming folders of versions before 0.3), a pointer not yet renamed over LATEST.
_LEFTOVERS = (
    ("snapshots", re.compile(r"\..+\.staging-[0-9a-f]{12}(\.lock|\.retired)?")),
    ("cache", re.compile(r"\.incoming-.+")),
    ("cache/*/*", re.compile(r"\.part-[0-9a-f]{24}\.parquet\..+")),
    ("", re.compile(rf"\.{LATEST}\..+")),
)


@contextlib.contextmanager
def _root_locked(root: str) -> Iterator[None]:
    if not is_local(root):
        yield
        return
    folder = local_path(root)
    os.makedirs(folder, exist_ok=True)
    descriptor = os.open(os.path.join(folder, ".refresh.lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another refresh of {root} is running; refreshes of one root take turns (schedule them apart)"
            ) from None
        removed = _remove_leftovers(folder)
        if removed:
            log.info("removed %d leftover(s) of interrupted refreshes under %s", removed, root)
        yield
    finally:
        os.close(descriptor)


def _remove_leftovers(folder: str) -> int:
    removed = 0
    for subfolders, pattern in _LEFTOVERS:
        for where in glob.glob(os.path.join(glob.escape(folder), subfolders)):
            for entry in os.listdir(where) if os.path.isdir(where) else ():
                if pattern.fullmatch(entry):
                    path = os.path.join(where, entry)
                    shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
                    removed += 1
    return removed


def _list(pattern: str) -> list[str]:
    return sorted(metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list)


def _snapshots(root: str) -> list[str]:
    names = {
        path[len(FileSystems.join(root, "snapshots")) + 1 :].split("/")[0]
        for path in _list(FileSystems.join(root, "snapshots", "*", "manifest.json"))
    }
    return sorted(name for name in names if not name.startswith("."))


def refresh(
    root: str, config: RunConfig, beam_args: list[str] | None = None, keep: int | None = None
) -> RefreshOutcome:
    with _root_locked(root):
        return _refresh(root, config, beam_args, keep)


def _refresh(root: str, config: RunConfig, beam_args: list[str] | None, keep: int | None) -> RefreshOutcome:
    inputs = resolve_inputs(config)
    current = fingerprint(config, inputs)
    latest = read_latest(root)
    if latest and latest.get("fingerprint") == current:
        return RefreshOutcome(None, current, None)

    # Microseconds in the name: snapshots sort by it, and two refreshes can land in one second.
    name = f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{current}"
    snapshot = FileSystems.join(root, "snapshots", name)
    cache = FileSystems.join(root, "cache")
    outcome = run(config.replace(output=snapshot, overwrite=False, cache=cache), beam_args, inputs)
    pointer = {
        "snapshot": f"snapshots/{name}",
        "fingerprint": current,
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    _write_latest(root, json.dumps(pointer, indent=2).encode())
    pruned = prune(root, keep) if keep else ()
    return RefreshOutcome(pointer["snapshot"], current, outcome, pruned)


def prune(root: str, keep: int) -> tuple[str, ...]:
    """Delete all but the newest `keep` snapshots, never the one LATEST points at."""
    latest = read_latest(root) or {}
    protected = latest.get("snapshot", "").split("/")[-1]
    names = _snapshots(root)
    doomed = [name for name in names[: max(0, len(names) - keep)] if name != protected]
    if doomed:
        FileSystems.delete([FileSystems.join(root, "snapshots", name) for name in doomed])
    return tuple(doomed)
