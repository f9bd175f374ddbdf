import json

import pytest

from mrtcurate.cli import main


def test_mrt_embedders_lists_each_with_its_artifact_state(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MRT_CACHE_DIR", str(tmp_path))
    assert main(["embedders", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["cache_dir"] == str(tmp_path)
    by_name = {row["embedder"]: row for row in listed["embedders"]}
    assert list(by_name) == ["minilm", "minilm-int8", "static", "hashing"]
    assert by_name["minilm"]["artifact"] is None and by_name["static"]["artifact"]["built"] is False
    assert not any(tmp_path.iterdir())  # listing builds nothing


@pytest.mark.slow
def test_mrt_embedders_measure_builds_and_times_every_one(capsys):
    assert main(["-q", "embedders", "--measure", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["embedders"]
    assert all(row["texts_per_second"] > 0 for row in rows)
    assert all(row["artifact"]["built"] and row["artifact"]["bytes"] > 10 * 2**20 for row in rows if row["artifact"])
