"""Progress of a local run: worker tallies in files, summed and described on the driver."""

import os

import pytest

from mrtcurate.pipeline import launch, progress
from mrtcurate.runs.curate import run
from mrtcurate.schemas import build_config
from tests.conftest import write_jsonl


def test_tallies_from_several_processes_add_up_and_describe_rates_and_time_left(tmp_path, monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_DIR, str(tmp_path))
    before = progress.snapshot(str(tmp_path))
    (tmp_path / "999999.json").write_text('{"read": 1000}')  # another worker process
    progress.add(progress.READ, 1000, flush_now=True)
    progress.add(progress.COVERED, 1000)
    progress.add(progress.TO_EMBED, 500)
    progress.add(progress.EMBEDDED, 250, flush_now=True)
    now = progress.snapshot(str(tmp_path))
    assert (now[progress.READ], now[progress.EMBEDDED]) == (2000, 250)
    now = progress.Snapshot(now.tallies, before.at + 10)
    line = progress.describe(now, before)
    # 2,000 records read, half the texts distinct: about 1,000 to embed, 750 left at 25/s.
    assert line == "read 2,000 records (200/s) · embedded 250 of about 1,000 texts (25/s, about 30 s left)"


@pytest.mark.slow
def test_a_local_run_reports_progress_that_ends_at_the_manifests_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "PROGRESS_INTERVAL_S", 0.2)
    records = [{"prompt": f"p{i % 50}", "response": f"r{i % 900}"} for i in range(1000)]
    data = write_jsonl(tmp_path / "a.jsonl", records)
    lines: list[str] = []
    config = build_config(
        {}, {"input": [str(data)], "output": str(tmp_path / "out"), "selector": "qd", "embedder": "hashing"}
    )
    outcome = run(config, on_progress=lines.append)
    assert lines, "no progress line during the run"
    counts = outcome.manifest["counts"]
    assert lines[-1].startswith(f"read {counts['input_records']:,} records")
    assert f"selected K for {counts['prompts']:,} prompts" in lines[-1]
    assert progress.PROGRESS_DIR not in os.environ


def test_the_final_line_states_what_was_done_without_an_estimate():
    before = progress.Snapshot({}, 0.0)
    done = progress.Snapshot(
        {
            progress.READ: 3788,
            progress.COVERED: 2705,
            progress.TO_EMBED: 884,
            progress.EMBEDDED: 884,
            progress.SELECTED: 241,
        },
        10.0,
    )
    assert (
        progress.describe(done, before, finished=True)
        == "read 3,788 records (379/s) · embedded 884 texts (88/s) · selected K for 241 prompts (24/s)"
    )
