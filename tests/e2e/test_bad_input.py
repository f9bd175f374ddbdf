"""A corpus with every reject reason: the job completes, each bad record is rejected once, nothing is lost."""

import gzip
import json
from collections import Counter

import pyarrow.parquet as pq

from tests.helpers import curate, read_rows

GOOD = [{"prompt": f"Question {i % 4}", "response": f"Answer number {i}", "score": i / 10} for i in range(12)]

BAD_JSONL = [
    (b'{"prompt": "p", "response": ', "invalid_json"),
    (b"[1, 2, 3]", "not_an_object"),
    (b'{"prompt": "p", "response": "\xff\xfe"}', "invalid_utf8"),
    (json.dumps({"prompt": "p", "response": "x" * 600}).encode(), "record_too_large"),
    (json.dumps({"response": "r"}).encode(), "missing_prompt"),
    (json.dumps({"prompt": "p"}).encode(), "missing_response"),
    (json.dumps({"prompt": ["p"], "response": "r"}).encode(), "prompt_not_string"),
    (json.dumps({"prompt": "p", "response": 42}).encode(), "response_not_string"),
    (json.dumps({"prompt": "p", "response": "  \n "}).encode(), "empty_response"),
    (b'{"prompt": "p", "response": "r", "score": NaN}', "invalid_reward"),
    (b'{"prompt": "p", "response": "r", "score": Infinity}', "invalid_reward"),
    (json.dumps({"prompt": "p", "response": "r", "score": "great"}).encode(), "invalid_reward"),
]


def write_corpus(tmp_path):
    lines = [json.dumps(row).encode() for row in GOOD]
    for offset, (line, _) in enumerate(BAD_JSONL):
        lines.insert(2 * offset + 1, line)
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "b.csv").write_bytes(
        b"prompt,response,score\nQuestion 9,csv answer,0.3\nQuestion 9,too,many,columns\nQuestion 9,\xff bad bytes,1\n"
    )
    whole = gzip.compress(b"".join(json.dumps({"prompt": f"Long {i}", "response": "y" * 300 + str(i)}).encode() + b"\n" for i in range(400)))
    (tmp_path / "c.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    return [tmp_path / "a.jsonl", tmp_path / "b.csv", tmp_path / "c.jsonl.gz"]


def test_every_bad_record_rejected_once_with_its_reason(tmp_path):
    inputs = write_corpus(tmp_path)
    outcome = curate(inputs, tmp_path / "out", reward_field="score", max_chars=500, k=2)
    rejects = read_rows(tmp_path / "out", "rejects")

    jsonl_rejects = sorted((r["source_row"], r["reason"]) for r in rejects if r["source_file"].endswith("a.jsonl"))
    assert jsonl_rejects == [(2 * offset + 2, reason) for offset, (_, reason) in enumerate(BAD_JSONL)]
    csv_rejects = sorted((r["source_row"], r["reason"]) for r in rejects if r["source_file"].endswith("b.csv"))
    assert csv_rejects == [(3, "csv_column_count"), (4, "invalid_utf8")]
    gz_rejects = [r for r in rejects if r["source_file"].endswith("c.jsonl.gz")]
    assert [r["reason"] for r in gz_rejects] == ["truncated_gzip"]
    assert all(r["detail"] for r in rejects)

    counts = outcome.manifest["counts"]
    truncated_after = gz_rejects[0]["source_row"] - 1
    assert counts["input_records"] == len(GOOD) + len(BAD_JSONL) + 3 + truncated_after + 1
    assert counts["rejected"] == len(rejects) == len(BAD_JSONL) + 3
    assert counts["input_records"] == counts["rejected"] + counts["duplicates_merged"] + counts["candidates"]
    assert outcome.manifest["rejected_by_reason"] == dict(sorted(Counter(r["reason"] for r in rejects).items()))
    assert sum(pq.read_metadata(tmp_path / "out" / s["path"]).num_rows for s in outcome.manifest["shards"]) == counts["selected"]
