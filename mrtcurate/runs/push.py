"""`mrt push DIR ORG/NAME`: a published dataset to the Hugging Face Hub, as one commit through huggingface_hub's
commit API.

What goes: the manifest, the dataset card, the report and its images at the top of DIR, and exactly the
shards the manifest lists (data/, rejects/, dropped/), each checked against its checksum first; a dataset that does
not check is refused. Nothing else: no staging folder, lock or stray file, and no path that leads out of
DIR through a link. Shards an earlier push left in the repository that this dataset does not list are
deleted in the same commit, so the repository never mixes two runs' shards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mrtcurate.errors import UserError
from mrtcurate.ids import stream_sha256
from mrtcurate.ingest.files import is_local, local_path
from mrtcurate.report import REPORT_NAME
from mrtcurate.report.card import CARD_NAME
from mrtcurate.schemas.manifest import MANIFEST_NAME, read_manifest

TABLE_FOLDERS = ("data/", "rejects/", "dropped/")


@dataclass(frozen=True)
class PushOutcome:
    repo_id: str
    revision: str
    added: tuple[str, ...]
    deleted: tuple[str, ...]
    commit_url: str


def dataset_files(directory: str) -> list[str]:
    """The paths (relative to DIR) a push uploads, after checking every shard against the manifest."""
    if not is_local(directory):
        raise UserError(f"mrt push reads a local dataset; copy {directory} to a local folder first")
    root = local_path(directory)
    manifest = read_manifest(root)
    files = []
    for shard in [*manifest["shards"], *manifest["rejects"], *manifest.get("dropped", [])]:
        path = _inside(root, shard["path"])
        with open(path, "rb") as source:
            digest = stream_sha256(source)
        if digest != shard["sha256"]:
            raise UserError(
                f"{shard['path']} does not match its checksum in the manifest; refusing to push a damaged dataset (curate it again)"
            )
        files.append(shard["path"])
    top = [MANIFEST_NAME, CARD_NAME, REPORT_NAME, *sorted(name for name in os.listdir(root) if name.endswith(".png"))]
    return [
        name
        for name in top
        if os.path.isfile(os.path.join(root, name)) and not os.path.islink(os.path.join(root, name))
    ] + files


def _inside(root: str, relative: str) -> str:
    path = os.path.realpath(os.path.join(root, relative))
    if os.path.isabs(relative) or not path.startswith(root.rstrip("/") + "/") or not os.path.isfile(path):
        raise UserError(f"the manifest lists {relative}, which is not a file inside {root}; refusing to push")
    return path


def push(
    directory: str, repo_id: str, private: bool = False, revision: str | None = None, message: str | None = None
) -> PushOutcome:
    import httpx
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    files = dataset_files(directory)
    root = local_path(directory)
    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
        present = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
        stale = sorted(path for path in present if path.startswith(TABLE_FOLDERS) and path not in files)
        operations = [CommitOperationDelete(path_in_repo=path) for path in stale]
        operations += [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=os.path.join(root, path)) for path in files
        ]
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=message or f"mrtcurate dataset from {os.path.basename(root)}: {len(files)} files",
            repo_type="dataset",
            revision=revision,
        )
    except OfflineModeIsEnabled:
        raise UserError("HF_HUB_OFFLINE=1 is set: unset it to push to the Hub") from None
    except HFValidationError as error:
        raise UserError(f"{repo_id} is not a valid repository name: {str(error).splitlines()[0]}") from None
    except HfHubHTTPError as error:
        status = getattr(error.response, "status_code", None)
        why = {
            401: "the token was refused (log in with `hf auth login` or set HF_TOKEN)",
            403: "the token may not write to it",
        }.get(status, str(error).splitlines()[0])
        raise UserError(f"cannot push to {repo_id}: {why}") from None
    except (
        OSError,
        httpx.TransportError,
    ) as error:  # no network, DNS, a refused connection (requests' errors are OSErrors)
        raise UserError(
            f"cannot reach the Hugging Face Hub to push {repo_id}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None
    return PushOutcome(
        repo_id, revision or "main", tuple(files), tuple(stale), getattr(commit, "commit_url", str(commit))
    )
