"""Staging, locks and the atomic publish, on real directories."""

import os

import pytest

from mrtcurate.errors import UserError
from mrtcurate.runs.publish import publish, release, stage


def test_stage_locks_publish_replaces_release_cleans(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "old.txt").write_text("old")
    first = stage(str(output), overwrite=True)
    assert os.path.isdir(first.directory) and os.path.exists(first.directory + ".lock")
    second = stage(str(output), overwrite=True)  # a concurrent run: the first is alive, so not stale
    assert first.directory not in second.stale and first.directory + ".lock" not in second.stale
    release(second)
    (tmp_path / first.directory / "new.txt").write_text("new")
    publish(first)
    release(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in output.iterdir()) == ["new.txt"]


def test_a_released_run_leaves_its_staging_stale_for_the_next(tmp_path):
    output = tmp_path / "out"
    crashed = stage(str(output), overwrite=False)
    os.close(crashed.lock_fd)  # what the kernel does when the process dies; its folder and lock file stay
    later = stage(str(output), overwrite=False)
    assert sorted(later.stale) == sorted([crashed.directory, crashed.directory + ".lock"])
    publish(later)
    release(later)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_unwritable_parent_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot write to output location"):
        stage(str(tmp_path / "file" / "out"), overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
