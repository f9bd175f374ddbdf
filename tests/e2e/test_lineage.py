"""Lineage: every input record is a data row, a reject row, or stands in one dropped/ row's `records`, with the
reason and the kept response it was merged into checked on hand-made cases and on real corpora."""

import gzip
import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from mrtcurate.ids import identity_key, stable_id
from tests.conftest import shared_corpus, write_jsonl
from tests.helpers import curate, read_rows

pytestmark = pytest.mark.slow


def tables(output: Path) -> tuple[list[dict], list[dict], list[dict]]:
    def read(subdir):
        return read_rows(output, subdir) if list((output / subdir).glob("*.parquet")) else []

    return read("data"), read("dropped"), read("rejects")


def assert_every_record_accounted(output: Path, input_records: int) -> None:
    data, dropped, rejects = tables(output)
    assert len(data) + sum(row["records"] for row in dropped) + len(rejects) == input_records
    # Each distinct response of a pool is kept or dropped once (its exact copies aside).
    distinct = Counter((row["prompt_id"], row["response_id"]) for row in data)
    distinct.update((row["prompt_id"], row["response_id"]) for row in dropped if row["reason"] != "exact_duplicate")
    assert set(distinct.values()) <= {1}
    for row in dropped:
        if row["reason"] != "not_selected":
            assert (row["prompt_id"], row["merged_into"]) in distinct  # merged into a response that is accounted
    manifest = json.loads((output / "manifest.json").read_text())
    counts = manifest["counts"]
    by_reason = Counter()
    for row in dropped:
        by_reason[row["reason"]] += row["records"]
    assert by_reason["exact_duplicate"] == counts["duplicates_merged_exact"]
    assert by_reason["near_duplicate"] == counts["duplicates_merged_near"]
    assert by_reason["not_selected"] == counts["candidates"] - counts["selected"]


def assert_rows_named(output: Path, corpus: Path) -> None:
    """One flat JSONL file in: every dropped and rejected row names a line of it, no line twice, and a dropped row's
    line holds its prompt and response; the lines no row names are the kept responses."""
    opener = gzip.open if corpus.suffix == ".gz" else open
    with opener(corpus, "rt", encoding="utf-8") as stream:
        lines = stream.read().split("\n")
    data, dropped, rejects = tables(output)
    named = Counter((row["source_file"], row["source_row"]) for row in [*dropped, *rejects])
    assert set(named.values()) == {1} and {path for path, _ in named} == {str(corpus)}
    assert sum(1 for line in lines if line.strip()) - len(named) == len(data)
    kept_prompts = {row["prompt_id"]: row["prompt"] for row in data}
    for row in dropped:
        record = json.loads(lines[row["source_row"] - 1])
        assert stable_id(identity_key(record["response"])) == row["response_id"]
        assert identity_key(record["prompt"]) == identity_key(kept_prompts[row["prompt_id"]])


def test_exact_copies_near_duplicates_and_the_unselected_each_have_their_row(tmp_path):
    rows = [{"prompt": "name a fruit", "response": "apple", "score": 0.9} for _ in range(3)]
    rows += [{"prompt": "name a fruit", "response": f"fruit number {i}", "score": i / 10} for i in range(6)]
    # A near-duplicate of the best answer to the second prompt (one word apart), and two distinct others.
    long = "the capital of france is paris and it lies on the river seine in the north of the country"
    rows += [
        {"prompt": "capital of france?", "response": long, "score": 1.0},
        {"prompt": "capital of france?", "response": long.replace("north", "northern part"), "score": 0.5},
        {"prompt": "capital of france?", "response": "paris", "score": 0.7},
        {"prompt": "capital of france?", "response": "it is paris, city of light", "score": 0.2},
    ]
    rows += [{"prompt": "broken", "response": ""}]  # a reject
    data_file = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out"
    curate([data_file], output, reward_field="score", selector="topk", k=2, plan=False)
    assert_every_record_accounted(output, len(rows))
    data, dropped, rejects = tables(output)
    assert len(rejects) == 1 and all(row["completion"] is None for row in dropped)  # no texts unless asked
    kept = {row["completion"]: row for row in data}
    assert set(kept) == {"apple", "fruit number 5", long, "paris"}
    # The first "apple" (row 1) is the kept one; each later copy is a row of its own, named by its line.
    exact = [row for row in dropped if row["reason"] == "exact_duplicate"]
    assert [(row["source_row"], row["records"]) for row in exact] == [(2, 1), (3, 1)]
    assert {row["merged_into"] for row in exact} == {kept["apple"]["response_id"]}
    assert {row["source_row"] for row in dropped if row["reason"] == "near_duplicate"} == {11}
    assert rejects[0]["source_row"] == 14
    assert_rows_named(output, data_file)
    near = [row for row in dropped if row["reason"] == "near_duplicate"]
    assert (
        len(near) == 1 and near[0]["merged_into"] == kept[long]["response_id"] and near[0]["cosine"] is None
    )  # found by words; nothing was embedded
    unselected = [row for row in dropped if row["reason"] == "not_selected"]
    # topk keeps the two best: the rest rank 2 and below, in reward order.
    fruit = sorted(
        (row["pool_rank"], row["reward"]) for row in unselected if row["prompt_id"] == kept["apple"]["prompt_id"]
    )
    assert fruit == [(2, 0.4), (3, 0.3), (4, 0.2), (5, 0.1), (6, 0.0)]
    # With --dropped-texts, the rows carry their text; polars reads the table as it is.
    curate([data_file], tmp_path / "texts", reward_field="score", selector="topk", k=2, plan=False, dropped_texts=True)
    texts = pl.read_parquet(tmp_path / "texts" / "dropped" / "*.parquet")
    assert "it is paris, city of light" in texts["completion"].to_list() and texts["records"].sum() == 9


def test_a_hot_pool_split_in_parts_accounts_for_every_record(tmp_path):
    rows = [
        {"prompt": "hot", "response": f"answer {i} " + "word " * (i % 13), "score": (i * 7) % 11} for i in range(90)
    ]
    rows += rows[:10]  # copies, in the same part as their original (parts go by response hash)
    base = "the hot question has a long answer that takes many words to state and explain with care and patience"
    rows += [{"prompt": "hot", "response": f"{base} {word}", "score": 5} for word in ("indeed", "surely", "truly")]
    rows += [{"prompt": "cold", "response": f"reply {i}"} for i in range(5)]
    data_file = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out"
    curate([data_file], output, reward_field="score", selector="qd", k=3, hot_above=20, part_size=16, plan=False)
    assert_every_record_accounted(output, len(rows))
    assert_rows_named(output, data_file)
    _, dropped, _ = tables(output)
    assert {row["reason"] for row in dropped} == {"exact_duplicate", "not_selected", "near_duplicate"}
    assert all(row["cosine"] is not None for row in dropped if row["reason"] == "near_duplicate")  # embedded: qd


def test_bad_input_and_real_corpora_account_for_every_record(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "a", "response": "one"}\nnot json\n{"prompt": "a", "response": "one"}\n'
        '{"prompt": 3, "response": "x"}\n{"prompt": "a", "response": "two"}\n{"prompt": "b"}\n'
    )
    curate([bad], tmp_path / "bad-out", k=1, plan=False)
    assert_every_record_accounted(tmp_path / "bad-out", 6)
    rows_named = {(row["source_row"], row["reason"]) for table in tables(tmp_path / "bad-out")[1:] for row in table}
    # K=1 of "one" (rows 1 and 3, copies) and "two" (row 5): the one not kept is named by its first row.
    fixed = {(2, "invalid_json"), (3, "exact_duplicate"), (4, "prompt_not_string"), (6, "missing_response")}
    assert rows_named - fixed in ({(1, "not_selected")}, {(5, "not_selected")}) and fixed <= rows_named
    corpus = shared_corpus("gsm8k_model_solutions")
    output = tmp_path / "gsm8k"
    outcome = curate([corpus], output, reward_field="score", selector="qd", k=2)
    assert_every_record_accounted(output, outcome.manifest["counts"]["input_records"])
    assert len(outcome.manifest["dropped"]) >= 1
    assert_rows_named(output, corpus)
