"""Files built once per machine from the shipped model (ONNX graphs, static embeddings), kept in a
content-addressed cache: `$MRT_CACHE_DIR` (default `$XDG_CACHE_HOME/mrtcurate`, else `~/.cache/mrtcurate`).

An artifact's directory is named by a digest of everything that determines its bytes (the recipe's
version, the model package's version, the versions of the libraries that build it, the CPU features a
quantisation was chosen for), so an upgrade builds a new one beside the old instead of reusing a stale
one. Builds happen in a temporary directory next to the cache and appear by one atomic rename, so no reader
ever sees a half-written directory. Processes of one machine that need the same artifact at once take turns on
its lock file (`.NAME.lock` beside it): the first builds, the others find it built. Without the lock each built
its own copy, for one rename to win: two pytest workers on a fresh machine each spent the static table's
half-minute MiniLM pass, slowing each other. Where the lock cannot be taken (a file system without flock), the
builds race as before and the rename still decides.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mrtcurate.ids import stable_id

CACHE_ENV = "MRT_CACHE_DIR"
log = logging.getLogger(__name__)
_KEY_FILE = "artifact.json"


def cache_root() -> Path:
    if configured := os.environ.get(CACHE_ENV):
        return Path(configured)
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mrtcurate"
    if _writable(default):
        return default
    # A read-only home (some CI and batch machines): a per-user temporary cache still works, rebuilt per boot.
    fallback = Path(tempfile.gettempdir()) / f"mrtcurate-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    log.warning("%s is not writable; embedder artifacts go to %s (set %s to choose)", default, fallback, CACHE_ENV)
    return fallback


def _writable(directory: Path) -> bool:
    existing = next((parent for parent in (directory, *directory.parents) if parent.exists()), None)
    return existing is not None and os.access(existing, os.W_OK | os.X_OK)


def package_versions(*packages: str) -> dict[str, str]:
    """The installed versions of the libraries an artifact is built with: part of its key."""
    from importlib.metadata import version

    return {package: version(package) for package in packages}


@dataclass(frozen=True)
class Artifact:
    """`key`: what determines the artifact's bytes; `build(directory)` writes it into an empty directory."""

    name: str
    key: dict[str, str]
    build: Callable[[Path], None]

    @property
    def path(self) -> Path:
        return cache_root() / f"{self.name}-{stable_id(json.dumps(self.key, sort_keys=True))}"

    def is_built(self) -> bool:
        return (self.path / _KEY_FILE).is_file()

    def size_bytes(self) -> int:
        return sum(file.stat().st_size for file in self.path.rglob("*") if file.is_file()) if self.is_built() else 0

    def ensure(self) -> Path:
        """The artifact's directory, built first if this machine has none yet."""
        final = self.path
        if self.is_built():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        with _turn(final.parent / f".{final.name}.lock"):
            if not self.is_built():  # built by another process while this one waited
                self._build_into(final)
        return final

    def _build_into(self, final: Path) -> None:
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            self.build(staging)
            # Written last: its presence is what marks a directory as complete.
            (staging / _KEY_FILE).write_text(json.dumps(self.key, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            staging.chmod(0o755)  # mkdtemp's 0700 would hide an image's prebuilt cache from a non-root worker
            os.rename(staging, final)
        except OSError:
            if not self.is_built():
                raise
            # Another process renamed its copy into place first; ours is the same bytes.
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _turn(lock_path: Path) -> Iterator[None]:
    """This machine's processes one at a time (fcntl.flock, released when the file closes, also by a killed process)."""
    try:
        lock = open(lock_path, "a")  # noqa: SIM115 - held open for the block
    except OSError:
        yield
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:
            pass  # no flock here: the builds race, and the rename decides
        yield
