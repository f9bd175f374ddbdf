"""We never replace what the user did not ask us to replace, and never publish half a dataset (DESIGN.md 5):
real directories, the real `mrt run`."""

import fcntl
import os
import time

import pytest

from mrtcurate.cli import main
from mrtcurate.runs import curate, publish
from tests.conftest import write_jsonl

ROWS = [{"prompt": f"question {i % 4}", "response": f"answer {i}"} for i in range(16)]


def mrt_run(data, output, *extra):
    return main(
        [
            "-q",
            "run",
            "--input",
            str(data),
            "--output",
            str(output),
            "--embedder",
            "hashing",
            "--near-dup",
            "off",
            *extra,
        ]
    )


def one_line_error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "\n" not in error
    return error


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_existing_file_is_never_replaced_by_the_dataset(tmp_path, capsys, overwrite):
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    precious = tmp_path / "t.txt"
    precious.write_text("precious")
    assert mrt_run(data, precious, *overwrite) == 2
    assert "is a file, not a directory" in one_line_error(capsys)
    assert precious.read_text() == "precious"


def test_a_symbolic_link_as_output_is_refused(tmp_path, capsys):
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert mrt_run(data, tmp_path / "link", "--overwrite") == 2
    assert "is a symbolic link" in one_line_error(capsys)
    assert (tmp_path / "link").is_symlink() and not any((tmp_path / "real").iterdir())


def test_a_folder_holding_only_subfolders_is_not_wiped(tmp_path, capsys):
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    (tmp_path / "out" / "keep").mkdir(parents=True)
    (tmp_path / "out" / "keep" / "notes.txt").write_text("x")
    assert mrt_run(data, tmp_path / "out") == 2
    assert "not empty" in one_line_error(capsys)
    assert (tmp_path / "out" / "keep" / "notes.txt").read_text() == "x"


@pytest.mark.parametrize("where", ["same", "parent"])
def test_overwrite_never_deletes_an_input(tmp_path, capsys, where):
    inputs = tmp_path / "corpus"
    inputs.mkdir()
    data = write_jsonl(inputs / "in.jsonl", ROWS)
    output = inputs if where == "same" else tmp_path
    assert mrt_run(data, output, "--overwrite") == 2
    assert f"holds input {data}" in one_line_error(capsys)
    assert data.exists() and sorted(p.name for p in inputs.iterdir()) == ["in.jsonl"]


def test_unwritable_output_fails_before_any_work(tmp_path, capsys, monkeypatch):
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(curate, "run_curation", lambda *args: pytest.fail("the job started"))
    assert mrt_run(data, tmp_path / "file" / "out") == 2
    assert "cannot write to output location" in one_line_error(capsys)
    if os.geteuid() != 0:  # root writes through permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert mrt_run(data, locked / "out") == 2
        assert "cannot write to output location" in one_line_error(capsys)


def fake_staging(parent, name, staging_id, locked_by=None, age_s=0):
    directory = parent / f".{name}.staging-{staging_id}"
    (directory / "data").mkdir(parents=True)
    if locked_by is not False:
        lock = os.open(f"{directory}.lock", os.O_CREAT | os.O_RDWR)
        if locked_by:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return directory, lock
        os.close(lock)
    old = time.time() - age_s
    os.utime(directory, (old, old))
    return directory, None


@pytest.mark.slow
def test_stale_staging_of_killed_runs_is_named_and_removed_after_publish_and_live_ones_are_kept(tmp_path, caplog):
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    killed, _ = fake_staging(tmp_path, "out", "a" * 12, locked_by=None)
    old_unlocked, _ = fake_staging(
        tmp_path, "out", "b" * 12, locked_by=False, age_s=publish.UNLOCKED_STALE_AFTER_S + 60
    )
    recent_unlocked, _ = fake_staging(tmp_path, "out", "c" * 12, locked_by=False)
    live, live_lock = fake_staging(tmp_path, "out", "d" * 12, locked_by=True)
    other_output, _ = fake_staging(tmp_path, "other", "e" * 12, locked_by=None)
    try:
        with caplog.at_level("INFO", logger="mrtcurate"):
            assert mrt_run(data, tmp_path / "out") == 0
        assert "3 staging folder(s) of interrupted runs" in caplog.text
        remaining = sorted(p.name for p in tmp_path.iterdir())
        assert remaining == sorted(
            [
                "in.jsonl",
                "out",
                recent_unlocked.name,
                live.name,
                live.name + ".lock",
                other_output.name,
                other_output.name + ".lock",
            ]
        )
        assert not killed.exists() and not old_unlocked.exists()
    finally:
        os.close(live_lock)


@pytest.mark.slow
def test_report_is_inside_the_dataset_when_it_is_published(tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    real_publish = curate.publish

    def publish_checking_staging(staging):
        assert {"manifest.json", "report.html"} <= set(os.listdir(staging.directory))
        real_publish(staging)

    monkeypatch.setattr(curate, "publish", publish_checking_staging)
    assert mrt_run(data, tmp_path / "out") == 0
    assert (tmp_path / "out" / "report.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out"]


@pytest.mark.slow
def test_a_failed_job_publishes_nothing_and_leaves_no_staging(tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    monkeypatch.setattr(curate, "write_report", lambda directory: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        mrt_run(data, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_a_run_with_no_candidate_fails_in_one_line_unless_empty_is_allowed(tmp_path):
    # Issue 20: a mapping that matched nothing published an empty dataset with exit 0.
    from mrtcurate.errors import JobFailed
    from tests.helpers import curate

    data = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "response": " "}, {"prompt": "q", "response": ""}])
    with pytest.raises(
        JobFailed, match=r"no candidate came out of 2 input records: every one was rejected \(empty_response 2\)"
    ):
        curate([data], tmp_path / "out", near_dup="off", plan=False)
    assert not (tmp_path / "out").exists()
    outcome = curate([data], tmp_path / "out", near_dup="off", plan=False, allow_empty=True)
    assert outcome.manifest["counts"]["candidates"] == 0 and (tmp_path / "out" / "rejects").is_dir()


def test_a_folder_filled_at_the_output_during_the_run_is_kept_and_nothing_is_published(tmp_path, monkeypatch, capsys):
    # Issue 20: the emptiness check ran before the job only; a user's file created meanwhile was deleted.
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    real_write_report = curate.write_report

    def user_creates_the_output(directory):
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "notes.txt").write_text("mine")
        return real_write_report(directory)

    monkeypatch.setattr(curate, "write_report", user_creates_the_output)
    assert mrt_run(data, tmp_path / "out") == 1
    assert "nothing was published" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out"]


def test_an_output_name_the_file_system_cannot_hold_is_refused_before_the_job(tmp_path, capsys):
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    assert mrt_run(data, tmp_path / "deeper" / ("n" * 300)) == 2
    assert "300 bytes; this file system allows 255" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    assert mrt_run(data, tmp_path / ("d" * 240)) == 0  # the staging name beside it is shortened
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d" * 240, "in.jsonl"]


def test_an_input_deleted_during_the_run_is_one_line_and_nothing_is_published(tmp_path, capsys, monkeypatch):
    from mrtcurate.runs import preflight

    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    real_resolve = preflight.resolve_inputs

    def resolve_then_delete(config):
        resolved = real_resolve(config)
        data.unlink()
        return resolved

    monkeypatch.setattr(curate, "resolve_inputs", resolve_then_delete)
    assert mrt_run(data, tmp_path / "out") == 1
    error = " ".join(capsys.readouterr().err.split())
    assert f"job failed: input {data} could not be opened during the run (No such file or directory)" in error
    assert "Traceback" not in error and error.endswith("nothing was published")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_one_line_and_leaves_no_staging(tmp_path, capsys, monkeypatch):
    import errno

    from mrtcurate.pipeline import write

    data = write_jsonl(tmp_path / "in.jsonl", ROWS)

    def full(rows):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "data" / "part.parquet"))

    monkeypatch.setattr(write, "parquet_bytes", full)
    assert mrt_run(data, tmp_path / "out") == 1
    error = " ".join(capsys.readouterr().err.split())
    assert "job failed: the disk filled up while the job wrote" in error and "Traceback" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
