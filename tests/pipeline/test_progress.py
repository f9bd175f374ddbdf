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
    progress.add(progress.TO_EMBED_CHARS, 50_000)
    progress.add(progress.EMBEDDED_CHARS, 25_000)
    progress.add(progress.EMBEDDED, 250, flush_now=True)
    now = progress.snapshot(str(tmp_path))
    assert (now[progress.READ], now[progress.EMBEDDED]) == (2000, 250)
    now = progress.Snapshot(now.tallies, before.at + 10)
    line = progress.describe(now, before)
    # 2,000 records read, half the texts distinct: about 1,000 to embed (100,000 characters), 75,000 left at 2,500/s.
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


def test_the_time_left_follows_characters_so_short_texts_first_do_not_make_it_hopeful():
    # Issue 20: the time left was three times too optimistic on a 25-minute embedding run. Here 1,000 texts
    # come shortest first (10 to 1,000 characters) and encode at 10,000 characters a second; at every
    # line the estimate must be within 20% of the truth.
    lengths = [10 + index * 990 // 999 for index in range(1000)]
    total_chars, char_speed = sum(lengths), 10_000
    base = {progress.READ: 1000, progress.COVERED: 1000, progress.TO_EMBED: 1000, progress.TO_EMBED_CHARS: total_chars}
    start = progress.Snapshot({**base, progress.EMBEDDED: 0, progress.EMBEDDED_CHARS: 0}, 0.0)
    before, done, embedded = start, 0, 0
    for step in range(1, 8):
        while embedded < len(lengths) and (done + lengths[embedded]) / char_speed <= step * 5:
            done += lengths[embedded]
            embedded += 1
        now = progress.Snapshot({**base, progress.EMBEDDED: embedded, progress.EMBEDDED_CHARS: done}, step * 5.0)
        line = progress.describe(now, before, embedding_since=start)
        true_left = (total_chars - done) / char_speed
        shown = (
            float(line.split("about ")[-1].split(" s left")[0])
            if " s left" in line
            else float(line.split("about ")[-1].split(" min left")[0]) * 60
        )
        assert abs(shown - true_left) <= 0.2 * true_left + 1, (line, true_left)
        before = now


def test_a_line_comes_every_interval_even_while_nothing_moves(tmp_path):
    # Issue 20: lines came every 30 s, not every 10 s, because a tick where no tally had moved printed nothing.
    import time

    (tmp_path / "1.json").write_text('{"read": 10, "embedded": 5}')
    lines: list[str] = []
    with progress.ProgressMonitor(str(tmp_path), lines.append, interval=0.05):
        time.sleep(0.5)
    assert len(lines) >= 5 and lines[0].startswith("read 10 records")
