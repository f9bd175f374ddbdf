"""Whole runs on real corpora from ../shared/data with the real DirectRunner, Parquet and FAISS."""

import json
from collections import defaultdict

import pyarrow as pa
import pytest

from tests.conftest import read_jsonl_gz, shared_corpus, write_jsonl
from tests.helpers import curate, read_rows


def check_contract(outcome, output, k):
    rows = read_rows(output)
    counts = outcome.manifest["counts"]
    assert counts["input_records"] == counts["rejected"] + counts["duplicates_merged"] + counts["candidates"]
    assert len(rows) == counts["selected"] <= counts["candidates"]
    by_prompt = defaultdict(list)
    for row in rows:
        by_prompt[row["prompt_id"]].append(row)
    assert len(by_prompt) == counts["prompts"]
    for group in by_prompt.values():
        assert [row["rank"] for row in group] == list(range(len(group))) and 1 <= len(group) <= k
        assert all(row["k"] == len(group) and row["pool_size"] >= len(group) for row in group)
        assert sum(row["weight"] for row in group) == pytest.approx(1.0)
    return rows


@pytest.mark.slow
def test_instructgpt_flat_with_rewards_random(tmp_path):
    outcome = curate([shared_corpus("instructgpt_samples")], tmp_path / "out", reward_field="score", k=4)
    rows = check_contract(outcome, tmp_path / "out", 4)
    counts = outcome.manifest["counts"]
    # 1,300 prompt ids, but several share one prompt text: grouping is by normalised text unless --id-field.
    assert 0 < counts["prompts"] <= 1300 and counts["input_records"] == 15600
    assert {row["selector"] for row in rows} == {"random"}
    assert all(row["quality"] is None or 0.0 <= row["quality"] <= 1.0 for row in rows)


@pytest.mark.slow
def test_instructgpt_grouped_by_id_field(tmp_path):
    outcome = curate(
        [shared_corpus("instructgpt_samples")], tmp_path / "out", id_field="prompt_id", near_dup="off", plan=False, k=3
    )
    check_contract(outcome, tmp_path / "out", 3)
    # TruthfulQA's non-answer and a reading task's template answer each answer 50 or more prompts: boilerplate.
    # Three prompts had nothing else.
    boilerplate = {
        json.loads(row["record"])["response"]
        for row in read_rows(tmp_path / "out", "rejects")
        if row["reason"] == "boilerplate_response"
    }
    assert boilerplate == {"I have no comment.", "Not in background.", "I have no comment on this question."}
    assert outcome.manifest["counts"]["prompts"] == 1297
    assert outcome.metrics.get("embedded", 0) == 0  # nothing downstream needs embeddings: none computed


@pytest.mark.slow
def test_hh_rlhf_as_pairs_topk_keeps_the_chosen(tmp_path):
    rows = read_jsonl_gz(shared_corpus("hh_rlhf_harmless_test"))
    pairs = defaultdict(dict)
    for row in rows:
        pairs[row["prompt_id"]]["prompt"] = row["prompt"]
        pairs[row["prompt_id"]][row["label"]] = row["response"]
    data = write_jsonl(tmp_path / "pairs.jsonl", list(pairs.values()))
    outcome = curate([data], tmp_path / "out", selector="topk", k=1)
    curated = check_contract(outcome, tmp_path / "out", 1)
    assert outcome.manifest["config"]["layout"] == "auto"
    assert outcome.manifest["counts"]["input_records"] == 2 * len(pairs)
    # The corpus has a few blank chosen responses, rejected at reading, whose lone rejected side is kept; and
    # a few with no word character (":-(", "..."), to which the hashing embedder gives an all-zero vector:
    # readable texts, so they stay candidates, counted as embedding_fallback.
    assert outcome.manifest["rejected_by_reason"].get("empty_response", 0) > 0
    assert "unembeddable_text" not in outcome.manifest["rejected_by_reason"]
    assert outcome.manifest["embedding"]["embedding_fallback"] == 5
    lost_chosen = sum(not (pair.get("chosen") or "").strip() for pair in pairs.values())
    assert sum(row["reward"] != 1.0 for row in curated) == lost_chosen
    assert all(row["reward"] == 1.0 for row in curated if row["pool_size"] > 1)


@pytest.mark.slow
def test_gsm8k_with_real_minilm_and_datasets_compat(tmp_path):
    # 150 solutions of 30 problems: the real MiniLM takes 60 ms a gsm8k solution on one core.
    rows = read_jsonl_gz(shared_corpus("gsm8k_model_solutions"), limit=150)
    data = write_jsonl(tmp_path / "gsm8k.jsonl", rows)
    outcome = curate([data], tmp_path / "out", embedder="minilm", reward_field="score", selector="topk", k=2)
    check_contract(outcome, tmp_path / "out", 2)
    assert outcome.manifest["counts"]["prompts"] == 30
    assert outcome.metrics["embedded"] > 0

    datasets = pytest.importorskip("datasets")
    shards = [str(tmp_path / "out" / shard["path"]) for shard in outcome.manifest["shards"]]
    loaded = datasets.load_dataset("parquet", data_files=shards, split="train")
    assert loaded.num_rows == outcome.manifest["counts"]["selected"]
    assert {"prompt", "completion", "weight", "rank", "reward"} <= set(loaded.column_names)
    assert loaded.features["weight"].dtype == "float64" and loaded.features["rank"].dtype == "int32"


@pytest.mark.slow
def test_chat_layout_writes_messages_column(tmp_path):
    convo = [
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": f"Q{i % 3}"},
                {"role": "assistant", "content": f"A{i}"},
            ]
        }
        for i in range(9)
    ]
    data = write_jsonl(tmp_path / "chat.jsonl", convo)
    outcome = curate([data], tmp_path / "out", k=2)
    rows = check_contract(outcome, tmp_path / "out", 2)
    table = pa.parquet.read_table(tmp_path / "out" / outcome.manifest["shards"][0]["path"])
    assert table.schema.field("messages").type == pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    assert all(row["messages"][-1] == {"role": "assistant", "content": row["completion"]} for row in rows)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["prompts"] == 3
