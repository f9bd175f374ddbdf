"""`--input hf://datasets/ORG/NAME[@REVISION][/GLOB]`: a dataset repository on the Hugging Face Hub, resolved on
the driver by huggingface_hub into files of the local Hugging Face cache, which the job then reads as local
files. The manifest records where each came from: the repository, the commit the revision resolved to,
the file's path there and the Hub's own checksum of it (the LFS sha256, or the git blob id).

`mrt run` is offline unless told otherwise (the CLI sets HF_HUB_OFFLINE=1 when it is unset): a repository
comes from the cache, and HF_HUB_OFFLINE=0 lets huggingface_hub download what the cache lacks. Workers of a
remote runner cannot read the driver's cache: copy such inputs to object storage for Dataflow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mrtcurate.errors import UserError
from mrtcurate.ingest.files import within_deadline

HUB_PREFIX = "hf://datasets/"
# The files a repository's data comes in, when the pattern names none (README, scripts and images are not data).
DATA_PATTERNS = tuple(
    f"*{suffix}"
    for suffix in (".parquet", ".jsonl", ".jsonl.gz", ".ndjson", ".json", ".json.gz", ".csv", ".csv.gz", ".tsv")
)
RESOLVE_DEADLINE_S = 30.0


@dataclass(frozen=True)
class HubPattern:
    repo: str
    revision: str | None
    glob: str | None

    @property
    def text(self) -> str:
        return (
            f"{HUB_PREFIX}{self.repo}"
            + (f"@{self.revision}" if self.revision else "")
            + (f"/{self.glob}" if self.glob else "")
        )


@dataclass(frozen=True)
class HubFile:
    local_path: str
    origin: str  # hf://datasets/ORG/NAME@COMMIT/PATH
    checksum: str  # lfs-sha256:... or git-blob:...


def is_hub(pattern: str) -> bool:
    return pattern.startswith("hf://")


def parse(pattern: str) -> HubPattern:
    if not pattern.startswith(HUB_PREFIX):
        raise UserError(f"{pattern}: only dataset repositories are inputs, as hf://datasets/ORG/NAME[@REVISION][/GLOB]")
    parts = pattern[len(HUB_PREFIX) :].split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UserError(f"{pattern}: name the repository as hf://datasets/ORG/NAME[@REVISION][/GLOB]")
    name, _, revision = parts[1].partition("@")
    return HubPattern(f"{parts[0]}/{name}", revision or None, parts[2] if len(parts) > 2 and parts[2] else None)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve(pattern: str) -> list[HubFile]:
    """The repository's files that the pattern names, in the local cache (downloaded first when online)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import filter_repo_objects

    hub = parse(pattern)
    allow = [hub.glob] if hub.glob else list(DATA_PATTERNS)
    offline = _offline()

    def download() -> str:
        try:
            return snapshot_download(
                hub.repo, repo_type="dataset", revision=hub.revision, allow_patterns=allow, local_files_only=offline
            )
        except (RevisionNotFoundError, RepositoryNotFoundError, HFValidationError, LocalEntryNotFoundError) as error:
            raise _one_line(error, pattern, hub, offline) from None

    folder = within_deadline(download, pattern, RESOLVE_DEADLINE_S)
    root = Path(folder)
    commit = root.name
    present = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
    chosen = list(filter_repo_objects(present, allow_patterns=allow))
    if not chosen:
        raise UserError(
            f"{pattern} matches no file of {hub.repo}@{commit[:12]}"
            + ("" if hub.glob else " (give a /GLOB after the name)")
        )
    return [
        HubFile(str(root / name), f"{HUB_PREFIX}{hub.repo}@{commit}/{name}", _hub_checksum(root / name))
        for name in chosen
    ]


def _one_line(error: Exception, pattern: str, hub: HubPattern, offline: bool) -> UserError:
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(error, RevisionNotFoundError):
        return UserError(f"{pattern}: {hub.repo} has no revision {hub.revision!r}")
    if isinstance(error, RepositoryNotFoundError):
        return UserError(
            f"{pattern}: no dataset repository {hub.repo} on the Hub (or it is private and no token was given)"
        )
    if isinstance(error, HFValidationError):
        return UserError(f"{pattern}: {str(error).splitlines()[0]}")
    where = f"revision {hub.revision!r} of {hub.repo}" if hub.revision else hub.repo
    if offline:
        return UserError(
            f"{pattern}: {where} is not in the local Hugging Face cache, and HF_HUB_OFFLINE=1 forbids downloading it (set HF_HUB_OFFLINE=0)"
        )
    return UserError(f"{pattern}: cannot reach the Hugging Face Hub, and {where} is not in the local cache")


def _hub_checksum(path: Path) -> str:
    """The cache stores each file as blobs/<id>, named by the Hub: an LFS file's sha256, else its git blob id."""
    blob = Path(os.path.realpath(path)).name
    return f"lfs-sha256:{blob}" if len(blob) == 64 else f"git-blob:{blob}"
