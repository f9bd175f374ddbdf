"""Output appears only when complete: the job writes into a staging directory beside the output,
and the driver renames it into place after the job succeeded."""

from __future__ import annotations

import os
import shutil
import uuid

from apache_beam.io.filesystems import FileSystems


def is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


def staging_dir(output: str) -> str:
    """Local outputs stage in a hidden sibling; object stores have no directory rename, so there the job
    writes in place and the manifest, written last, is what marks the output complete."""
    if not is_local(output):
        return output
    parent, name = os.path.split(os.path.abspath(output))
    return os.path.join(parent, f".{name}.staging-{uuid.uuid4().hex[:12]}")


def publish(staging: str, output: str) -> None:
    if staging == output:
        return
    output = os.path.abspath(output)
    retired = None
    if os.path.exists(output):
        retired = f"{staging}.retired"
        os.rename(output, retired)
    os.rename(staging, output)
    if retired:
        shutil.rmtree(retired)


def discard(staging: str, output: str) -> None:
    if staging != output and os.path.exists(staging):
        shutil.rmtree(staging)
