"""`--input hf://datasets/...` from an offline Hugging Face cache the test builds (the layout huggingface_hub
writes: blobs named by the Hub's checksum, a snapshot folder per commit, refs/main naming the commit)."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from mrtcurate.cli import main
from tests.helpers import shard_bytes

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ROWS = [{"prompt": f"question {i % 5}", "response": f"answer {i}", "score": i % 3} for i in range(30)]


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    repo = cache / "datasets--acme--answers"
    content = "".join(json.dumps(row) + "\n" for row in ROWS).encode()
    blob = hashlib.sha256(content).hexdigest()
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / blob).write_bytes(content)
    (repo / "blobs" / ("f" * 40)).write_text("# Answers\n")
    snapshot = repo / "snapshots" / COMMIT
    (snapshot / "data").mkdir(parents=True)
    (snapshot / "data" / "train.jsonl").symlink_to(f"../../../blobs/{blob}")
    (snapshot / "README.md").symlink_to(f"../../blobs/{'f' * 40}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return snapshot, blob


def test_a_hub_dataset_is_read_from_the_cache_as_its_files_would_be(hub_cache, tmp_path):
    snapshot, blob = hub_cache
    assert (
        main(
            [
                "-q",
                "run",
                "--input",
                "hf://datasets/acme/answers",
                "--output",
                str(tmp_path / "from-hub"),
                "--embedder",
                "hashing",
                "--reward-field",
                "score",
            ]
        )
        == 0
    )
    local = tmp_path / "copy" / "train.jsonl"  # the same name: it is each row's source
    local.parent.mkdir()
    local.write_bytes((snapshot / "data" / "train.jsonl").read_bytes())
    assert (
        main(
            [
                "-q",
                "run",
                "--input",
                str(local),
                "--output",
                str(tmp_path / "direct"),
                "--embedder",
                "hashing",
                "--reward-field",
                "score",
            ]
        )
        == 0
    )
    assert shard_bytes(tmp_path / "from-hub") == shard_bytes(tmp_path / "direct")
    (entry,) = json.loads((tmp_path / "from-hub" / "manifest.json").read_text())["inputs"]
    assert entry["origin"] == f"hf://datasets/acme/answers@{COMMIT}/data/train.jsonl"
    assert entry["origin_checksum"] == f"lfs-sha256:{blob}" and entry["checksum"] == f"sha256:{blob}"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (
            "hf://datasets/acme/missing",
            "acme/missing is not in the local Hugging Face cache, and HF_HUB_OFFLINE=1 forbids downloading it",
        ),
        ("hf://datasets/acme/answers@v9", "revision 'v9' of acme/answers is not in the local Hugging Face cache"),
        ("hf://datasets/acme/answers/*.csv", "matches no file of acme/answers@0123456789ab"),
        ("hf://models/acme/answers", "only dataset repositories are inputs"),
    ],
)
def test_missing_repositories_revisions_and_files_are_one_line(hub_cache, tmp_path, capsys, pattern, expected):
    assert main(["-q", "run", "--input", pattern, "--output", str(tmp_path / "out"), "--embedder", "hashing"]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert expected in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_a_revision_by_commit_and_a_glob_choose_the_files(hub_cache, tmp_path):
    from mrtcurate.ingest.hub import resolve

    (found,) = resolve(f"hf://datasets/acme/answers@{COMMIT}/data/*.jsonl")
    assert found.local_path.endswith(os.path.join(COMMIT, "data", "train.jsonl")) and Path(found.local_path).exists()
    assert [file.origin.rsplit("/", 1)[-1] for file in resolve("hf://datasets/acme/answers/README.md")] == ["README.md"]
