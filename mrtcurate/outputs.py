"""Every command that writes where a user pointed (run, refresh, report, train, demo, bench) writes through
these, on local disks:

- never through a symbolic link out of the target: files are written beside their name and renamed over it,
  so a link at the name is replaced, not followed;
- never over what the user did not ask to replace: whether the output is empty or replaceable is decided
  at the publishing rename itself, under a lock on the parent folder, so no window remains between a check
  and the write;
- never an output that is, or holds, one of the command's inputs;
- nothing of its own left behind when it fails or is interrupted (interrupts.made_and_undone_on_interrupt).

Object stores have no rename or lock; the callers write there in place (runs/publish.py). Nothing here
imports Beam: the trainer uses it too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator

from mrtcurate.errors import JobFailed, UserError
from mrtcurate.interrupts import deferred, mark_published

# Linux allows 255 bytes per name; a staging name adds a prefix and suffixes to the output's.
_LONGEST_STEM = 200
# mkstemp makes files only their owner may read; a written file gets what open() would give it. Read once,
# at import, while nothing else runs (os.umask can only be read by setting it).
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_inside(folder: str, name: str, data: bytes) -> str:
    """FOLDER/name with `data`, whole or not at all, replacing a link at that name instead of writing through it."""
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{short_stem(name)}.")
    try:
        os.fchmod(descriptor, 0o666 & ~_UMASK)
        with os.fdopen(descriptor, "wb") as sink:
            sink.write(data)
        os.replace(temporary, os.path.join(folder, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    return os.path.join(folder, name)


def short_stem(name: str) -> str:
    """A name short enough to prefix and suffix, still recognisably the output's."""
    if len(name.encode()) <= _LONGEST_STEM:
        return name
    return (
        name.encode()[: _LONGEST_STEM - 9].decode(errors="ignore") + "~" + hashlib.sha256(name.encode()).hexdigest()[:8]
    )


def refuse_holding(output: str, inputs: Iterable[tuple[str, str]]) -> None:
    """`inputs` are (what, path) pairs; an output that is or holds one of them would overwrite it."""
    root = os.path.realpath(output)
    for what, path in inputs:
        target = os.path.realpath(path)
        if target == root or target.startswith(root.rstrip("/") + "/"):
            raise UserError(
                f"output {output} is or holds {what} {path}; writing there would delete it: choose another output"
            )


def remove_path(path: str) -> None:
    """A folder with everything in it, or a file; a link is removed itself, never followed."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def replace_folder(path: str) -> None:
    """An existing output folder the user asked to replace (--overwrite)."""
    with deferred():
        remove_path(path)


def make_parents(path: str) -> list[str]:
    """Creates the missing folders above `path`; returns them, deepest first, for `remove_made`."""
    missing = []
    parent = os.path.dirname(path)
    while parent and not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    made: list[str] = []
    try:
        for folder in reversed(missing):
            os.mkdir(folder)
            made.insert(0, folder)
    except OSError:
        remove_made(made)
        raise
    return made


def remove_made(folders: list[str]) -> None:
    """The folders make_parents created, where they are still empty."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return


@contextlib.contextmanager
def _parent_locked(path: str) -> Iterator[None]:
    # A lock on the folder itself leaves no lock file beside every output.
    descriptor = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def publish_folder(staging: str, output: str, replace: bool) -> None:
    """Renames the complete `staging` folder to `output`. Without `replace` an output that exists and is not
    empty at this moment (a user's folder, another run's dataset published meanwhile) is left as it is and
    this run fails; with it, the old output is renamed aside, the new one in, and the old one removed.
    Runs of mrtcurate publishing beside each other take turns on the parent's lock; anyone else creating
    the output in between meets the rename, which never replaces a folder that has anything in it."""
    retired = f"{staging}.retired"
    with _parent_locked(output), deferred():
        if os.path.islink(output) or (os.path.lexists(output) and not os.path.isdir(output)):
            raise JobFailed(
                f"{output} appeared as a file or link while the job ran; nothing was published and it was left as it is"
            )
        if os.path.isdir(output) and any(os.scandir(output)):
            if not replace:
                raise JobFailed(
                    f"{output} was created and filled while the job ran (by another run?); nothing was published and it was left as it is"
                )
            os.rename(output, retired)
        try:
            os.rename(staging, output)
        except OSError as error:
            if os.path.isdir(retired):
                with contextlib.suppress(OSError):
                    os.rename(retired, output)
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise JobFailed(
                    f"{output} was filled while the job was publishing; nothing was published and it was left as it is"
                ) from None
            raise
        mark_published()
        if os.path.isdir(retired):
            shutil.rmtree(retired, ignore_errors=True)
