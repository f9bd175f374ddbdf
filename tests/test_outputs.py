"""outputs.py on real folders: writes never go through a link, publishing decides at the rename itself,
folders a failed run made are removed again."""

import os

import pytest

from mrtcurate.errors import JobFailed
from mrtcurate.outputs import make_parents, publish_folder, refuse_holding, remove_made, short_stem, write_inside
from mrtcurate.runs.publish import publish, release, stage


def staged(tmp_path, name="staging"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    return folder


def test_write_inside_replaces_a_link_at_the_name_and_leaves_its_target(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "report.html").symlink_to(outside)
    write_inside(str(folder), "report.html", b"<html>")
    assert outside.read_text() == "keep me"
    assert not (folder / "report.html").is_symlink() and (folder / "report.html").read_bytes() == b"<html>"
    assert sorted(p.name for p in folder.iterdir()) == ["report.html"]


def test_an_output_filled_during_the_run_is_left_alone_and_nothing_is_published(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "users-file.txt").write_text("mine")
    with pytest.raises(JobFailed, match="filled while the job ran"):
        publish_folder(str(staged(tmp_path)), str(output), replace=False)
    assert sorted(p.name for p in output.iterdir()) == ["users-file.txt"]


def test_an_empty_folder_created_during_the_run_is_published_into(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    publish_folder(str(staged(tmp_path)), str(output), replace=False)
    assert sorted(p.name for p in output.iterdir()) == ["manifest.json"]


def test_a_link_or_file_appearing_at_the_output_is_never_replaced(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(JobFailed, match="file or link"):
        publish_folder(str(staged(tmp_path)), str(tmp_path / "out"), replace=True)
    assert (tmp_path / "out").is_symlink() and not any((tmp_path / "elsewhere").iterdir())


def test_replace_swaps_the_old_output_for_the_new(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "old.parquet").write_text("old")
    publish_folder(str(staged(tmp_path)), str(output), replace=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in output.iterdir()) == ["manifest.json"]


def test_two_runs_to_one_new_output_publish_once(tmp_path):
    output = str(tmp_path / "new")
    first, second = stage(output, overwrite=False), stage(output, overwrite=False)
    for run in (first, second):
        with open(os.path.join(run.directory, "manifest.json"), "w") as sink:
            sink.write(run.directory)
    publish(first)
    with pytest.raises(JobFailed):
        publish(second)
    release(first)
    release(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]
    assert (tmp_path / "new" / "manifest.json").read_text() == first.directory


def test_a_long_output_name_gets_a_staging_name_the_file_system_accepts(tmp_path):
    output = tmp_path / ("d" * 240)
    run = stage(str(output), overwrite=False)
    assert len(os.path.basename(run.directory + ".retired").encode()) <= 255
    (open(os.path.join(run.directory, "manifest.json"), "w")).close()
    publish(run)
    release(run)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d" * 240]
    assert short_stem("x" * 240) != short_stem("x" * 239 + "y")


def test_a_run_that_fails_to_stage_removes_the_parents_it_made(tmp_path):
    output = tmp_path.joinpath(*[f"{index:02d}" + "n" * 248 for index in range(17)], "out")  # past PATH_MAX
    with pytest.raises(Exception, match="cannot write to output location"):
        stage(str(output), overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_made_parents_are_removed_only_while_empty(tmp_path):
    made = make_parents(str(tmp_path / "a" / "b" / "out"))
    assert made == [str(tmp_path / "a" / "b"), str(tmp_path / "a")]
    (tmp_path / "a" / "keep.txt").write_text("x")
    remove_made(made)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["keep.txt"]


def test_an_output_holding_an_input_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(Exception, match="is or holds --data"):
        refuse_holding(str(tmp_path), [("--data", str(tmp_path / "data"))])
    refuse_holding(str(tmp_path / "elsewhere"), [("--data", str(tmp_path / "data"))])
