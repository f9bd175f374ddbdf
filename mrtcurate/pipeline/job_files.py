"""Files the job makes in its own folder (staging): spill segments, shards, the manifest."""

from __future__ import annotations

from apache_beam.io.filesystems import FileSystems

from mrtcurate import interrupts


def new_file(path: str, **options):
    """FileSystems.create, which makes the folders above the file too, made where an interrupt's cleanups cannot
    run at the same moment (interrupts.cleanups_held_off): a job thread still writing cannot bring back a staging
    folder an interrupt removed. The writer it returns is the caller's to close."""
    with interrupts.cleanups_held_off():
        return FileSystems.create(path, **options)
