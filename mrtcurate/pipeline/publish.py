"""Output appears only when complete. Local outputs: the job writes into a hidden staging sibling,
which the driver renames into place after the job succeeded. Object stores have no directory rename:
there the job writes in place and the manifest, written last, is what marks the output complete.

All of it goes through Beam's FileSystems, so local paths and gs:// take the same calls.
"""

from __future__ import annotations

import uuid

from apache_beam.io.filesystems import FileSystems

from mrtcurate.pipeline.manifest import MANIFEST_NAME


def is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


def staging_dir(output: str) -> str:
    if not is_local(output):
        return output
    parent, name = FileSystems.split(FileSystems.join(output.rstrip("/")))
    return FileSystems.join(parent, f".{name}.staging-{uuid.uuid4().hex[:12]}")


def clear_in_place(output: str) -> None:
    """Before an in-place overwrite on an object store: the manifest goes first, so no reader trusts
    the old dataset while its files are being replaced."""
    manifest = FileSystems.join(output, MANIFEST_NAME)
    if FileSystems.exists(manifest):
        FileSystems.delete([manifest])
    old = [metadata.path for metadata in FileSystems.match([FileSystems.join(output, "**")])[0].metadata_list]
    if old:
        FileSystems.delete(old)


def publish(staging: str, output: str) -> None:
    if staging == output:
        return
    retired = None
    if FileSystems.exists(output):
        retired = f"{staging}.retired"
        FileSystems.rename([output], [retired])
    FileSystems.rename([staging], [output])
    if retired:
        FileSystems.delete([retired])


def discard(staging: str, output: str) -> None:
    if staging != output and FileSystems.exists(staging):
        FileSystems.delete([staging])
