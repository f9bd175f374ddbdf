"""Inputs and outputs on object stores, through Beam FileSystems registered by scheme: the driver
fingerprints remote inputs by the store's own checksum (never reading them whole), and a store that
does not answer is a one-line error within the deadline, not minutes of retries."""

import os
import time

import pytest
from apache_beam.io.localfilesystem import LocalFileSystem

from mrtcurate.cli import main
from mrtcurate.errors import UserError
from mrtcurate.ingest import files
from mrtcurate.runs.preflight import check_output, resolve_inputs
from mrtcurate.schemas import build_config
from tests.conftest import write_jsonl
from tests.helpers import curate


class FakeStore(LocalFileSystem):
    """fakestore://PATH is the local PATH; its checksum is stored metadata, as GCS's crc32c is, and its
    reads are logged so a test can see what the driver read."""

    @classmethod
    def scheme(cls):
        return "fakestore"

    @staticmethod
    def local(path: str) -> str:
        return path.removeprefix("fakestore://")

    def match(self, patterns, limits=None):
        results = super().match([self.local(pattern) for pattern in patterns], limits)
        for result in results:
            for metadata in result.metadata_list:
                metadata.path = "fakestore://" + metadata.path
        return results

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        with open(os.environ["MRT_TEST_FAKESTORE_LOG"], "a") as log:
            log.write(path + "\n")
        return super().open(self.local(path), mime_type, compression_type)

    def checksum(self, path):
        return f"crc32c-of-{os.path.getsize(self.local(path))}-bytes"


class SilentStore(LocalFileSystem):
    """A store that never answers, as an unreachable bucket behaves behind a client's retry loop."""

    @classmethod
    def scheme(cls):
        return "silentstore"

    def match(self, patterns, limits=None):
        time.sleep(60)

    def exists(self, path):
        time.sleep(60)


class RefusingStore(LocalFileSystem):
    @classmethod
    def scheme(cls):
        return "refusingstore"

    def match(self, patterns, limits=None):
        raise PermissionError("403 Forbidden\n  a page of details from the client")


@pytest.fixture
def read_log(tmp_path, monkeypatch):
    log = tmp_path / "reads.log"
    log.touch()
    monkeypatch.setenv("MRT_TEST_FAKESTORE_LOG", str(log))
    return log


@pytest.mark.slow
def test_remote_inputs_are_fingerprinted_by_the_stores_checksum_not_read_whole(tmp_path, read_log):
    records = [{"prompt": f"p{i % 5}", "response": f"r{i}"} for i in range(200)]
    data = write_jsonl(tmp_path / "a.jsonl", records)
    remote = f"fakestore://{data}"
    resolved = resolve_inputs(build_config({}, {"input": [remote], "output": str(tmp_path / "out")}))
    (file,) = resolved.files
    # Opened once on the driver, for the probe of its first records; the checksum read nothing.
    assert read_log.read_text().splitlines() == [remote]
    assert file.path == remote and file.checksum == f"object:fakestore:crc32c-of-{os.path.getsize(data)}-bytes"
    outcome = curate([remote], tmp_path / "out")
    (listed,) = outcome.manifest["inputs"]
    assert listed["checksum_kind"] == "object-store-metadata" and listed["checksum"] == file.checksum
    assert outcome.manifest["counts"]["input_records"] == 200
    local = curate([data], tmp_path / "local")
    assert local.manifest["inputs"][0]["checksum_kind"] == "content-sha256"


def test_an_unreachable_store_is_one_line_within_the_deadline(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(files, "STORAGE_TIMEOUT_S", 1.0)
    started = time.monotonic()
    with pytest.raises(UserError, match=r"cannot reach silentstore://bucket/out: no answer within 1 s"):
        check_output("silentstore://bucket/out", overwrite=False)
    data = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "response": "r"}])
    code = main(["run", "--input", str(data), "--output", "silentstore://bucket/out", "--embedder", "hashing"])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("error: cannot reach silentstore://bucket/out") and "Traceback" not in "\n".join(error)
    code = main(
        ["run", "--input", "silentstore://bucket/*.jsonl", "--output", str(tmp_path / "out"), "--embedder", "hashing"]
    )
    assert code == 2 and "cannot reach silentstore://bucket/*.jsonl" in capsys.readouterr().err
    assert time.monotonic() - started < 15


def test_a_store_error_is_one_line():
    with pytest.raises(UserError, match=r"^cannot reach refusingstore://bucket/\*.jsonl: 403 Forbidden$"):
        resolve_inputs(build_config({}, {"input": ["refusingstore://bucket/*.jsonl"], "output": "/tmp/unused"}))
