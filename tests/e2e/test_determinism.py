"""Same input, config and seed give byte-identical shards, whatever the workers or the input order."""

import random

import pytest

from tests.conftest import read_jsonl_gz, shared_corpus, write_jsonl
from tests.helpers import curate, read_rows, shard_bytes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rows = read_jsonl_gz(shared_corpus("instructgpt_samples"), limit=1200)
    directory = tmp_path_factory.mktemp("corpus")
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    # A few bad lines so that rejects (and their source rows) are part of the comparison.
    bad = [{"prompt": "p", "response": ""}, {"prompt": None, "response": "r"}]
    return write_jsonl(directory / "data.jsonl", rows + bad), write_jsonl(
        directory / "data_shuffled.jsonl", bad + shuffled
    )


OPTIONS = {"reward_field": "score", "k": 3, "seed": 11, "shards": 3}


@pytest.mark.slow
def test_repeat_runs_and_worker_counts_give_identical_shards(corpus, tmp_path):
    ordered, _ = corpus
    curate([ordered], tmp_path / "a", **OPTIONS)
    curate([ordered], tmp_path / "b", **OPTIONS)
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b")
    assert len(shard_bytes(tmp_path / "a")) == 3


@pytest.mark.slow
def test_multi_process_runner_gives_identical_shards(corpus, tmp_path):
    ordered, _ = corpus
    curate([ordered], tmp_path / "one", beam_args=["--direct_num_workers=1"], **OPTIONS)
    curate(
        [ordered],
        tmp_path / "two",
        beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        **OPTIONS,
    )
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "two")


@pytest.mark.slow
def test_input_order_changes_only_source_rows(corpus, tmp_path):
    ordered, shuffled = corpus
    # Same file name for both runs: the default `source` column is the file name.
    first, second = tmp_path / "in1" / "data.jsonl", tmp_path / "in2" / "data.jsonl"
    for target, origin in ((first, ordered), (second, shuffled)):
        target.parent.mkdir()
        target.write_bytes(origin.read_bytes())
    curate([first], tmp_path / "x", **OPTIONS)
    curate([second], tmp_path / "y", **OPTIONS)
    assert shard_bytes(tmp_path / "x") == shard_bytes(tmp_path / "y")
    strip = lambda rows: sorted((r["reason"], r["record"]) for r in rows)
    rejects_x, rejects_y = read_rows(tmp_path / "x", "rejects"), read_rows(tmp_path / "y", "rejects")
    assert strip(rejects_x) == strip(rejects_y)
    assert [r["source_row"] for r in rejects_x] != [r["source_row"] for r in rejects_y]


@pytest.mark.slow
@pytest.mark.parametrize("plan", [False, True], ids=["straight-to-select", "through-dedup-and-embedding"])
def test_buckets_hot_pools_and_workers_change_nothing(corpus, tmp_path, plan):
    # Without the planner candidates go straight to the Select buckets, which split boilerplate off and count
    # the pools themselves; with it they pass the dedup buckets (which count the pools) and the embedding.
    # Pools over 20 members are split into parts (random's two-stage choice is exact), on one worker and on two
    # processes, whose buckets arrive in another order.
    ordered, _ = corpus
    options = {**OPTIONS, "plan": plan, "near_dup": "off", "selector": "random"}
    curate([ordered], tmp_path / "whole", **options)
    curate([ordered], tmp_path / "hot", hot_above=20, part_size=8, **options)
    curate(
        [ordered],
        tmp_path / "hot-two",
        beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        hot_above=20,
        part_size=8,
        **options,
    )
    whole = shard_bytes(tmp_path / "whole")
    assert whole == shard_bytes(tmp_path / "hot") == shard_bytes(tmp_path / "hot-two")
    assert {row["pool_size"] for row in read_rows(tmp_path / "whole")} & set(range(21, 10_000))  # some pools were hot
