"""`mrt refresh`: snapshots, LATEST, no-change detection, the embedding cache, pruning, and SIGKILL safety."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mrtcurate.cli import main


def corpus_rows(start, stop):
    return [
        {
            "prompt": f"question {i % 40}",
            "response": f"answer {i} mentions item {i % 97} and colour {i % 13}",
            "score": (i % 10) / 10,
        }
        for i in range(start, stop)
    ]


def write_corpus(path: Path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def setup_root(tmp_path, rows):
    data = tmp_path / "data"
    data.mkdir()
    write_corpus(data / "part-0.jsonl", rows)
    config = tmp_path / "refresh.yaml"
    config.write_text(f"input: ['{data}/*.jsonl']\nreward_field: score\nembedder: hashing\nk: 3\n")
    return tmp_path / "root", config, data


def latest(root: Path) -> dict:
    return json.loads((root / "LATEST").read_text())


def snapshots(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "snapshots").iterdir() if not p.name.startswith("."))


def cached_vectors(root: Path) -> int:
    return sum(pq.read_metadata(path).num_rows for path in (root / "cache" / "embeddings").rglob("*.parquet"))


@pytest.mark.slow
def test_refresh_publishes_skips_unchanged_embeds_only_new_and_prunes(tmp_path, capsys):
    root, config, data = setup_root(tmp_path, corpus_rows(0, 500))
    assert main(["-q", "refresh", "--root", str(root), "--config", str(config)]) == 0
    first = latest(root)["snapshot"]
    # 500 response vectors and 40 prompt vectors (the planner's), both content-addressed.
    assert (root / first / "manifest.json").exists() and cached_vectors(root) == 540

    capsys.readouterr()
    assert main(["-q", "refresh", "--root", str(root), "--config", str(config)]) == 0
    assert "unchanged" in capsys.readouterr().out and latest(root)["snapshot"] == first and len(snapshots(root)) == 1

    write_corpus(data / "part-1.jsonl", corpus_rows(500, 550))
    capsys.readouterr()
    assert main(["-q", "refresh", "--root", str(root), "--config", str(config), "--keep", "1"]) == 0
    second = latest(root)["snapshot"]
    assert second != first and snapshots(root) == [second.split("/")[1]]  # the older one pruned
    assert "texts embedded" in capsys.readouterr().out
    manifest = json.loads((root / second / "manifest.json").read_text())
    assert manifest["counts"]["input_records"] == 550 and cached_vectors(root) == 590


@pytest.mark.slow
def test_new_snapshot_embeds_only_unseen_responses(tmp_path):
    from mrtcurate.runs.refresh import refresh
    from mrtcurate.schemas import build_config, load_yaml

    root, config_path, data = setup_root(tmp_path, corpus_rows(0, 300))
    config = build_config({**load_yaml(config_path), "output": None}, {})
    cold = refresh(str(root), config)
    assert cold.run.metrics["embedded"] == 300
    write_corpus(data / "part-1.jsonl", corpus_rows(300, 330) + corpus_rows(0, 10))  # 30 new, 10 seen again
    warm = refresh(str(root), config)
    # Only the 30 new responses are encoded; the 300 known responses and the 40 prompts come from the cache.
    assert warm.run.metrics["embedded"] == 30 and warm.run.metrics.get("embedded_prompts", 0) == 0
    assert warm.run.metrics["cache_hits"] == 340


@pytest.mark.slow
def test_sigkill_at_any_point_leaves_a_consistent_root(tmp_path):
    root, config, data = setup_root(tmp_path, corpus_rows(0, 400))
    command = [sys.executable, "-m", "mrtcurate.cli", "-q", "refresh", "--root", str(root), "--config", str(config)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(command, check=True, env=env, capture_output=True)
    complete = latest(root)["snapshot"]
    for round_number, delay in enumerate((0.5, 1.5, 2.5, 3.5, 4.5, 6.0)):
        write_corpus(
            data / f"more-{round_number}.jsonl", corpus_rows(1000 * (round_number + 1), 1000 * (round_number + 1) + 40)
        )
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        pointer = latest(root)
        assert (root / pointer["snapshot"] / "manifest.json").exists()  # LATEST always names a complete snapshot
        assert pointer["snapshot"] == complete or pointer["snapshot"] in {
            f"snapshots/{name}" for name in snapshots(root)
        }
        for name in snapshots(root):  # anything a reader can see under snapshots/ is complete
            manifest = json.loads((root / "snapshots" / name / "manifest.json").read_text())
            for shard in manifest["shards"]:
                assert pq.read_metadata(root / "snapshots" / name / shard["path"]).num_rows == shard["rows"]
        for path in (root / "cache" / "embeddings").rglob("*.parquet"):
            pq.read_table(path)  # every cache file is whole
        complete = pointer["snapshot"]
    subprocess.run(command, check=True, env=env, capture_output=True)
    final = json.loads((root / latest(root)["snapshot"] / "manifest.json").read_text())
    assert final["counts"]["input_records"] == 400 + 6 * 40


@pytest.mark.slow
def test_a_latest_that_does_not_hold_is_curated_again_and_rewritten(tmp_path):
    # Issue 20: LATEST naming a deleted snapshot or a path outside the root passed as "unchanged"; garbage,
    # an empty file or a JSON list in it gave a traceback and blocked refresh until edited by hand.
    root, config, _ = setup_root(tmp_path, corpus_rows(0, 120))
    assert main(["-q", "refresh", "--root", str(root), "--config", str(config)]) == 0
    good = latest(root)
    broken = [
        json.dumps({**good, "snapshot": "snapshots/../../../etc"}),
        json.dumps({**good, "snapshot": "snapshots/20990101T000000.000000Z-gone"}),
        "not json at all",
        "",
        "[1, 2]",
        json.dumps({"fingerprint": good["fingerprint"]}),
    ]
    for content in broken:
        (root / "LATEST").write_text(content)
        assert main(["-q", "refresh", "--root", str(root), "--config", str(config)]) == 0
        repaired = latest(root)
        assert (
            repaired["fingerprint"] == good["fingerprint"] and (root / repaired["snapshot"] / "manifest.json").exists()
        )
    with pytest.raises(SystemExit) as exited:  # argparse's own check exits from the parser
        main(["-q", "refresh", "--root", str(root), "--config", str(config), "--keep", "0"])
    assert exited.value.code == 2


@pytest.mark.slow  # three refresh runs: 8.5-12.5 s alone on a 2-core machine
def test_one_refresh_per_root_and_leftovers_of_killed_ones_are_removed(tmp_path, capsys):
    # Issue 20: killed refreshes left staging folders, locks and incoming cache files forever; two
    # refreshes of one root both ran.
    import fcntl

    root, config, _ = setup_root(tmp_path, corpus_rows(0, 80))
    assert main(["-q", "refresh", "--root", str(root), "--config", str(config)]) == 0
    leftovers = [
        root / "snapshots" / ".20260101T000000.000000Z-abc.staging-0123456789ab",
        root / "cache" / ".incoming-20260101T000000.000000Z-abc",
    ]
    for folder in leftovers:
        folder.mkdir(parents=True)
        (folder / "part.parquet").write_text("half")
    (root / "snapshots" / ".20260101T000000.000000Z-abc.staging-0123456789ab.lock").write_text("")
    (root / ".LATEST.k2j3h4").write_text("{")
    cache_folder = next((root / "cache" / "embeddings").iterdir())
    (cache_folder / f".part-{'0' * 24}.parquet.x8d7f2").write_text("half")  # killed while writing a cache file
    with open(root / ".refresh.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a refresh running elsewhere
        assert main(["-q", "refresh", "--root", str(root), "--config", str(config)]) == 2
        assert "another refresh of" in capsys.readouterr().err
    assert all(folder.exists() for folder in leftovers)
    write_corpus(tmp_path / "data" / "part-1.jsonl", corpus_rows(80, 120))
    assert main(["-q", "refresh", "--root", str(root), "--config", str(config), "--keep", "1"]) == 0
    hidden = sorted(p.name for p in root.rglob(".*"))
    assert hidden == [".refresh.lock"], hidden
