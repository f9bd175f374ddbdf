"""One prompt with 200,000 candidates goes through the whole job, split into parts, on the DirectRunner."""

import json

import pytest

from tests.helpers import curate, read_rows


@pytest.mark.slow
def test_200k_candidate_prompt(tmp_path):
    data = tmp_path / "hot.jsonl"
    with data.open("w", encoding="utf-8") as sink:
        for i in range(200_000):
            sink.write(
                json.dumps(
                    {
                        "prompt": "Write one sentence.",
                        "response": f"sentence {i} on theme {i % 501} in style {i % 13}",
                        "score": (i * 7919) % 1000 / 1000,
                    }
                )
                + "\n"
            )
        sink.write(json.dumps({"prompt": "A small prompt", "response": "only answer", "score": 1.0}) + "\n")
    outcome = curate(
        [data],
        tmp_path / "out",
        selector="qd",
        k=16,
        reward_field="score",
        near_dup="off",
    )  # the default --hot-above and --part-size: the pool is split into 25 parts
    counts = outcome.manifest["counts"]
    assert counts["input_records"] == 200_001 and counts["candidates"] == 200_001 and counts["prompts"] == 2
    rows = read_rows(tmp_path / "out")
    hot = [row for row in rows if row["prompt"] == "Write one sentence."]
    assert len(hot) == 16 and {row["pool_size"] for row in hot} == {200_000}
    assert len({row["response_id"] for row in hot}) == 16
