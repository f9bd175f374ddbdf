"""Output appears only when complete. Local outputs: the job writes into a hidden staging sibling,
which the driver renames into place after the job succeeded. Object stores have no directory rename:
there the job writes in place and the manifest, written last, is what marks the output complete.

Staging folders of killed runs: each local run holds an exclusive lock (flock) on `.NAME.staging-ID.lock`
beside its staging folder for as long as it lives, and the kernel drops the lock when the process dies. A
staging folder whose lock is free, or one without a lock file (written by mrtcurate 0.1) last modified
more than a day ago, is stale; the next run to the same output names them and removes them after it
has published. A live run's folder is never touched.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field

from apache_beam.io.filesystems import FileSystems

from mrtcurate.errors import UserError
from mrtcurate.ingest.files import is_local, local_path
from mrtcurate.outputs import make_parents, publish_folder, remove_made, remove_path, short_stem
from mrtcurate.schemas.manifest import MANIFEST_NAME

UNLOCKED_STALE_AFTER_S = 24 * 3600
_WRITE_CHECK = ".mrt-write-check"
log = logging.getLogger(__name__)


@dataclass
class Staging:
    directory: str
    output: str
    stale: list[str] = field(default_factory=list)  # staging leftovers of killed runs to this output
    lock_fd: int | None = None
    made: list[str] = field(default_factory=list)  # parent folders this run created, removed again if it fails
    overwrite: bool = False

    @property
    def in_place(self) -> bool:
        return self.directory == self.output


def stage(output: str, overwrite: bool) -> Staging:
    """Create where the job writes, so that an unwritable location fails now, in one line, not after the job."""
    if not is_local(output):
        _check_writable(output)
        if overwrite:
            clear_in_place(output)
        return Staging(output, output)
    parent, name = os.path.split(local_path(output))
    staging_id = uuid.uuid4().hex[:12]
    directory = os.path.join(parent, f".{short_stem(name)}.staging-{staging_id}")
    staging = Staging(directory, output, overwrite=overwrite)
    try:
        staging.made = make_parents(local_path(output))
        staging.lock_fd = os.open(directory + ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(staging.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.mkdir(directory)
    except OSError as error:
        release(staging)
        raise UserError(f"cannot write to output location {output}: {error.strerror or error}") from None
    staging.stale = _stale_siblings(parent, name, staging_id)
    if staging.stale:
        names = ", ".join(os.path.basename(path) for path in staging.stale[:3]) + (
            ", ..." if len(staging.stale) > 3 else ""
        )
        log.warning(
            "%d staging folder(s) of interrupted runs beside %s (%s); removed once this run publishes",
            len(staging.stale),
            output,
            names,
        )
    return staging


def publish(staging: Staging) -> None:
    if not staging.in_place:
        publish_folder(staging.directory, local_path(staging.output), staging.overwrite)
        staging.made = []
    for path in staging.stale:
        remove_path(path)
    if staging.stale:
        log.info("removed %d staging folder(s) of interrupted runs", len(staging.stale))


def release(staging: Staging) -> None:
    """After success or failure: no staging folder of ours is left behind."""
    if staging.in_place:
        return
    # Renamed aside first: a job thread still writing (an interrupt) cannot refill the folder being removed.
    if os.path.isdir(staging.directory):
        aside = f"{staging.directory}.retired"
        os.rename(staging.directory, aside)
        remove_path(aside)
    if staging.lock_fd is not None:
        remove_path(staging.directory + ".lock")
        os.close(staging.lock_fd)
        staging.lock_fd = None
    remove_made(staging.made)
    staging.made = []


def _stale_siblings(parent: str, name: str, own_id: str) -> list[str]:
    pattern = re.compile(rf"\.{re.escape(short_stem(name))}\.staging-([0-9a-f]{{12}})(\.lock|\.retired)?")
    by_id: dict[str, list[str]] = {}
    for entry in os.listdir(parent):
        match = pattern.fullmatch(entry)
        if match and match.group(1) != own_id:
            by_id.setdefault(match.group(1), []).append(os.path.join(parent, entry))
    return sorted(path for paths in by_id.values() if _is_stale(paths) for path in paths)


def _is_stale(paths: list[str]) -> bool:
    lock = next((path for path in paths if path.endswith(".lock")), None)
    if lock is None:
        return all(time.time() - os.lstat(path).st_mtime > UNLOCKED_STALE_AFTER_S for path in paths)
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True  # nobody holds it: its run is gone
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops our probe lock too


def _check_writable(output: str) -> None:
    probe = FileSystems.join(output, _WRITE_CHECK)
    try:
        with FileSystems.create(probe) as sink:
            sink.write(b"")
        FileSystems.delete([probe])
    except Exception as error:  # noqa: BLE001 - each object store raises its own error types through Beam
        raise UserError(f"cannot write to output location {output}: {str(error).splitlines()[0]}") from None


def clear_in_place(output: str) -> None:
    """Before an in-place overwrite on an object store: the manifest goes first, so no reader trusts
    the old dataset while its files are being replaced."""
    manifest = FileSystems.join(output, MANIFEST_NAME)
    if FileSystems.exists(manifest):
        FileSystems.delete([manifest])
    old = [metadata.path for metadata in FileSystems.match([FileSystems.join(output, "**")])[0].metadata_list]
    if old:
        FileSystems.delete(old)
