"""`mrt push` with huggingface_hub's HfApi calls replaced by recorders: the exact operations and paths of the
commit, refusals of a damaged dataset, and one-line errors for a refused token and no network."""

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from mrtcurate.cli import main
from tests.conftest import write_jsonl
from tests.helpers import curate


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("push")
    data = write_jsonl(
        folder / "in.jsonl", [{"prompt": f"q{i % 5}", "response": f"answer {i}"} for i in range(40)] + [{"prompt": "x"}]
    )
    curate([data], folder / "curated", k=2)
    return folder / "curated"


class Recorder:
    def __init__(self, present=()):
        self.calls, self.present = [], list(present)

    def install(self, monkeypatch):
        monkeypatch.setattr(
            HfApi, "create_repo", lambda api, repo_id, **kw: self.calls.append(("create_repo", repo_id, kw))
        )
        monkeypatch.setattr(
            HfApi, "create_branch", lambda api, repo_id, **kw: self.calls.append(("create_branch", repo_id, kw))
        )
        monkeypatch.setattr(HfApi, "list_repo_files", lambda api, repo_id, **kw: self.present)
        monkeypatch.setattr(
            HfApi, "create_commit", lambda api, repo_id, operations, **kw: self.commit(api, repo_id, operations, **kw)
        )

    def commit(self, api, repo_id, operations, **kw):
        self.calls.append(("create_commit", repo_id, [(type(op).__name__, op.path_in_repo) for op in operations], kw))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/datasets/{repo_id}/commit/abc"})()


def test_push_commits_exactly_the_datasets_files_and_removes_an_earlier_runs_shards(dataset, monkeypatch, capsys):
    recorder = Recorder(
        present=[
            ".gitattributes",
            "README.md",
            "data/part-00000-of-00003.parquet",
            "rejects/part-00000-of-00001.parquet",
        ]
    )
    recorder.install(monkeypatch)
    (dataset / "notes.txt").write_text("not part of the dataset")
    (dataset / "data" / "stray.parquet").write_bytes(b"PAR1")
    try:
        assert main(["push", str(dataset), "org/name", "--private", "--revision", "v2", "--message", "first cut"]) == 0
    finally:
        (dataset / "notes.txt").unlink()
        (dataset / "data" / "stray.parquet").unlink()
    create, branch, commit = recorder.calls
    assert create == ("create_repo", "org/name", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert branch == ("create_branch", "org/name", {"branch": "v2", "repo_type": "dataset", "exist_ok": True})
    _, repo, operations, options = commit
    assert repo == "org/name"
    pngs = sorted(path.name for path in dataset.glob("*.png"))
    assert operations == [
        ("CommitOperationDelete", "data/part-00000-of-00003.parquet"),
        ("CommitOperationAdd", "manifest.json"),
        ("CommitOperationAdd", "README.md"),
        ("CommitOperationAdd", "report.html"),
        *[("CommitOperationAdd", name) for name in pngs],
        ("CommitOperationAdd", "data/part-00000-of-00001.parquet"),
        ("CommitOperationAdd", "rejects/part-00000-of-00001.parquet"),
        ("CommitOperationAdd", "dropped/part-00000-of-00001.parquet"),
    ]
    assert options == {"commit_message": "first cut", "repo_type": "dataset", "revision": "v2"}
    assert "pushed" in capsys.readouterr().out


def test_a_tampered_shard_is_refused_before_anything_is_sent(dataset, tmp_path, monkeypatch, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    shard = copy / "data" / "part-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:-9] + b"tampered!")
    recorder = Recorder()
    recorder.install(monkeypatch)
    assert main(["push", str(copy), "org/name"]) == 2
    error = capsys.readouterr().err.strip()
    assert "data/part-00000-of-00001.parquet does not match its checksum" in error and "\n" not in error
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            HfHubHTTPError(
                "401 Client Error",
                response=httpx.Response(401, request=httpx.Request("POST", "https://huggingface.co")),
            ),
            "the token was refused",
        ),
        (
            HfHubHTTPError(
                "403 Client Error",
                response=httpx.Response(403, request=httpx.Request("POST", "https://huggingface.co")),
            ),
            "the token may not write to it",
        ),
        (httpx.ConnectError("[Errno -3] Temporary failure in name resolution"), "cannot reach the Hugging Face Hub"),
    ],
)
def test_auth_and_network_failures_are_one_line(dataset, monkeypatch, capsys, failure, message):
    def refuse(api, repo_id, **kw):
        raise failure

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    assert main(["push", str(dataset), "org/name"]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert message in error and "Traceback" not in error
