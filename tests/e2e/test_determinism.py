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
    curate([ordered], tmp_path / "a", beam_args=["--direct_num_workers=1"], **OPTIONS)
    curate([ordered], tmp_path / "b", beam_args=["--direct_num_workers=1"], **OPTIONS)
    curate(
        [ordered],
        tmp_path / "two",
        beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        **OPTIONS,
    )
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b") == shard_bytes(tmp_path / "two")
    assert len(shard_bytes(tmp_path / "a")) == 3


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
@pytest.mark.parametrize(
    ("plan", "cached"),
    [(False, False), (True, False), (True, True)],
    ids=["straight-to-select", "embedded-in-select", "through-dedup-and-embedding"],
)
def test_buckets_hot_pools_and_workers_change_nothing(corpus, tmp_path, plan, cached):
    # Without the planner candidates go straight to the Select buckets, which split boilerplate off and count
    # the pools themselves; with it Select also merges copies and embeds its bucket, and with a cache as well they
    # pass the dedup buckets (which count the pools) and the content-bucket embedding (graph.embeds_in_select).
    # Pools over 20 members are split into parts (random's two-stage choice is exact), on one worker and on two
    # processes, whose buckets arrive in another order.
    ordered, _ = corpus
    options = {**OPTIONS, "plan": plan, "near_dup": "off", "selector": "random"}
    if cached:
        options["cache"] = str(tmp_path / "cache")
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


@pytest.mark.slow
def test_select_embedding_its_buckets_matches_the_content_joined_path(tmp_path):
    """Without a cache Select embeds each bucket's members itself (graph.embeds_in_select); with one, the vectors come
    from the content grouping. On copies, near duplicates, a hot pool, boilerplate and a text with no readable
    character, both give the same shards, the same counts, and the same planner summary and qd frontier (Select
    embeds the prompts too, the other path by prompt text, a hot prompt's after its parts meet)."""
    rows = [
        {"prompt": f"question {p}", "response": f"answer {i % 7} to {p}", "score": i % 5}
        for p in range(60)
        for i in range(9)
    ]
    rows += [{"prompt": "hot", "response": f"hot answer {i} " + "word " * (i % 11), "score": i % 3} for i in range(70)]
    base = "the hot question has a long answer that takes many words to state and explain with care and patience"
    rows += [
        {"prompt": prompt, "response": f"{base} {word}"} for prompt in ("hot", "question 3") for word in ("a", "b")
    ]
    rows += rows[:40]  # exact copies
    rows += [{"prompt": f"question {p}", "response": "I cannot help with that."} for p in range(30)]  # boilerplate
    rows += [{"prompt": "question 1", "response": "\u200b\u200b"}, {"prompt": "question 2", "response": "?!"}]
    corpus = write_jsonl(tmp_path / "in.jsonl", rows)
    options = {"reward_field": "score", "selector": "qd", "k": 3, "hot_above": 30, "part_size": 16, "shards": 2}
    in_select = curate([corpus], tmp_path / "in-select", boilerplate_prompts=20, **options)
    joined = curate([corpus], tmp_path / "joined", boilerplate_prompts=20, cache=str(tmp_path / "cache"), **options)
    for table in ("data", "dropped", "rejects"):
        assert shard_bytes(tmp_path / "in-select", table) == shard_bytes(tmp_path / "joined", table)
    counts = in_select.manifest["counts"]
    assert counts == joined.manifest["counts"]
    assert (
        in_select.manifest["planner"] == joined.manifest["planner"] and in_select.manifest["planner"]["prompts"] == 61
    )
    assert in_select.manifest["qd_frontier"] == joined.manifest["qd_frontier"] is not None
    assert in_select.manifest["rejected_by_reason"] == {"boilerplate_response": 30, "unembeddable_text": 1}
    assert counts["duplicates_merged_near"] >= 2
    assert in_select.manifest["embedding"]["embedding_fallback"] == 1
