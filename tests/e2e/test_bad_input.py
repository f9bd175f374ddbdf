"""Corpora holding every reject reason, through the real pipeline: the job completes, each bad record is
rejected once with its reason at its row, every readable record is kept, and the counts add up."""

import gzip
import io
import json
import zlib
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrtcurate.schemas import RejectReason
from tests.conftest import write_jsonl
from tests.e2e.test_public_shapes import EXPECTED as PUBLIC_SHAPES
from tests.helpers import curate, read_rows

MAX_CHARS = 2500
GOOD = [{"prompt": f"Question {i % 4}", "response": f"Answer number {i}", "score": i / 10} for i in range(12)]
# Prompts whose candidates all lack a reward: topk has nothing to rank them by and draws them at random.
UNSCORED = [{"prompt": "Unscored question", "response": f"Unscored answer {i}"} for i in range(4)]

BAD_JSONL = [
    (b'{"prompt": "p", "response": ', "invalid_json"),
    (b"[" * 2000, "invalid_json"),  # deeper than the JSON parser recurses
    (b"[1, 2, 3]", "not_an_object"),
    (b'{"prompt": "p", "response": "\xff\xfe"}', "invalid_utf8"),
    (b'{"prompt": "\\ud800 p", "response": "r"}', "invalid_unicode"),  # a lone surrogate escape
    (b'{"prompt": "p", "response": "r \\udc00"}', "invalid_unicode"),
    (json.dumps({"prompt": "p", "response": "x" * (MAX_CHARS + 100)}).encode(), "record_too_large"),
    (json.dumps({"response": "r"}).encode(), "missing_prompt"),
    (json.dumps({"prompt": None, "response": "r"}).encode(), "missing_prompt"),
    (json.dumps({"prompt": "p"}).encode(), "missing_response"),
    (json.dumps({"prompt": ["p"], "response": "r"}).encode(), "prompt_not_string"),
    (json.dumps({"prompt": "p", "response": 42}).encode(), "response_not_string"),
    (json.dumps({"prompt": " \t", "response": "r"}).encode(), "empty_prompt"),
    (json.dumps({"prompt": "p", "response": "  \n "}).encode(), "empty_response"),
    (b'{"prompt": "p", "response": "r", "score": NaN}', "invalid_reward"),
    (b'{"prompt": "p", "response": "r", "score": Infinity}', "invalid_reward"),
    (json.dumps({"prompt": "p", "response": "r", "score": "great"}).encode(), "invalid_reward"),
    # Issue 20: only JSON numbers and plain decimal strings are rewards.
    (json.dumps({"prompt": "p", "response": "r", "score": True}).encode(), "invalid_reward"),
    (json.dumps({"prompt": "p", "response": "r", "score": "1_000"}).encode(), "invalid_reward"),
    (json.dumps({"prompt": "p", "response": "r", "score": "\u0661\u0662"}).encode(), "invalid_reward"),
]


def jsonl_bytes(rows) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def write_flat_corpus(tmp_path):
    lines = [(json.dumps(row).encode(), None) for row in GOOD + UNSCORED]
    for offset, bad in enumerate(BAD_JSONL):
        lines.insert(2 * offset + 1, bad)
    (tmp_path / "a.jsonl").write_bytes(
        b"\xef\xbb\xbf" + b"\n".join(line for line, _ in lines) + b"\n"
    )  # with a byte-order mark
    expected = [(row, reason) for row, (_, reason) in enumerate(lines, start=1) if reason]
    (tmp_path / "b.csv").write_bytes(
        b"prompt,response,score\nQuestion 9,csv answer,0.3\nQuestion 9,too,many,columns\nQuestion 9,\xff bad bytes,1\n"
        b"Question 9,"
        + b"z" * 200_000
        + b",1\nQuestion 9,read after the long field,0.5\nQuestion 9,bare\rreturn,1\nQuestion 9,last,1\n"
    )
    whole = gzip.compress(jsonl_bytes({"prompt": f"Long {i}", "response": "y" * 300 + str(i)} for i in range(400)))
    (tmp_path / "c.jsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])
    (tmp_path / "d.jsonl.gz").write_bytes(jsonl_bytes(GOOD[:2]))  # named .gz, not gzip
    buffer = io.BytesIO()
    pq.write_table(pa.table({"prompt": ["x"], "response": ["y"]}), buffer)
    (tmp_path / "e.parquet").write_bytes(buffer.getvalue()[:40])
    return [tmp_path / name for name in ("a.jsonl", "b.csv", "c.jsonl.gz", "d.jsonl.gz", "e.parquet")], expected


def rejects_of(rejects, suffix):
    return sorted((r["source_row"] or 0, r["reason"]) for r in rejects if r["source_file"].endswith(suffix))


def assert_counts_add_up(outcome, output, rejects):
    counts = outcome.manifest["counts"]
    assert counts["input_records"] == counts["rejected"] + counts["duplicates_merged"] + counts["candidates"]
    assert counts["rejected"] == len(rejects)
    assert outcome.manifest["rejected_by_reason"] == dict(sorted(Counter(r["reason"] for r in rejects).items()))
    assert sum(pq.read_metadata(output / s["path"]).num_rows for s in outcome.manifest["shards"]) == counts["selected"]
    assert all(r["detail"] for r in rejects)


@pytest.mark.slow
def test_flat_corpus_every_bad_record_rejected_once_with_its_reason(tmp_path):
    inputs, expected_jsonl = write_flat_corpus(tmp_path)
    outcome = curate(
        inputs, tmp_path / "out", reward_field="score", max_chars=MAX_CHARS, k=2, selector="topk", layout="flat"
    )
    rejects = read_rows(tmp_path / "out", "rejects")

    assert rejects_of(rejects, "a.jsonl") == expected_jsonl
    assert rejects_of(rejects, "b.csv") == [
        (3, "csv_column_count"),
        (4, "invalid_utf8"),
        (5, "record_too_large"),
        (7, "invalid_csv"),
    ]
    gz_rejects = rejects_of(rejects, "c.jsonl.gz")
    recoverable = zlib.decompressobj(wbits=31).decompress((tmp_path / "c.jsonl.gz").read_bytes()).count(b"\n")
    assert gz_rejects == [(recoverable + 1, "truncated_gzip")]  # every complete line before the break was kept
    assert rejects_of(rejects, "d.jsonl.gz") == [(0, "not_gzip")]
    assert rejects_of(rejects, "e.parquet") == [(1, "unreadable_file")]
    assert (
        next(r["detail"] for r in rejects if r["record"] == '{"prompt": null, "response": "r"}') == "'prompt' is null"
    )

    counts = outcome.manifest["counts"]
    good_records = len(GOOD) + len(UNSCORED) + 3 + recoverable  # 3 good CSV rows, two after the long field
    assert counts["input_records"] == good_records + len(rejects)
    assert_counts_add_up(outcome, tmp_path / "out", rejects)
    assert outcome.manifest["selection"]["random_fallback_prompts"] == 1
    kept = [row for row in read_rows(tmp_path / "out") if row["prompt"] == "Unscored question"]
    assert len(kept) == 2 and all(row["reward"] is None for row in kept)
    assert "read after the long field" in {row["completion"] for row in read_rows(tmp_path / "out")}


def write_mapped_corpus(tmp_path):
    good = [
        {"pid": f"q{i % 3}", "prompt": f"Question {i % 3}", "response": f"Answer {i}", "f": [i, 1.0], "src": "web"}
        for i in range(9)
    ]
    bad = [
        ({"prompt": "p", "response": "r", "f": [1, 2]}, "missing_id"),
        ({"pid": "q0", "prompt": "p", "response": "r", "f": [1]}, "invalid_feature"),
        ({"pid": "q0", "prompt": "p", "response": "r", "f": [1, "x"]}, "invalid_feature"),
    ]
    lines = [json.dumps(row).encode() for row in good] + [json.dumps(row).encode() for row, _ in bad]
    lines.append(b'{"pid": "q1", "prompt": "p", "response": "r", "f": [1, 2], "src": "\\udfff"}')
    return write_lines(tmp_path / "mapped.jsonl", lines), [reason for _, reason in bad] + ["invalid_unicode"]


def write_grouped_corpus(tmp_path):
    rows = [
        ({"prompt": "g", "response": ["a", "b", "c"], "score": [1, 2, 3]}, []),
        ({"prompt": "h", "response": ["a", "b"], "score": [1]}, ["reward_length_mismatch"]),
        ({"prompt": "i", "response": ["a", 7, " "], "score": [1, 2, "x"]}, ["response_not_string", "empty_response"]),
        ({"prompt": "j", "response": []}, ["missing_response"]),
    ]
    return write_lines(tmp_path / "grouped.jsonl", [json.dumps(row).encode() for row, _ in rows]), [
        r for _, rs in rows for r in rs
    ]


def write_chat_corpus(tmp_path):
    def turns(*pairs):
        return [{"role": role, "content": content} for role, content in pairs]

    rows = [
        ({"messages": turns(("user", "q"), ("assistant", "a1"))}, None),
        ({"messages": turns(("system", "s"), ("user", "q"), ("assistant", "a2"))}, None),
        ({"messages": turns(("user", "q"))}, "invalid_messages"),
        ({"messages": [{"role": "user"}]}, "invalid_messages"),
        ({"messages": "q"}, "invalid_messages"),
        ({"messages": turns(("user", "q"), ("assistant", " "))}, "empty_response"),
        ({"messages": turns(("user", "\ud800"), ("assistant", "a"))}, "invalid_unicode"),
    ]
    lines = [json.dumps(row).encode() for row, _ in rows]
    return write_lines(tmp_path / "chat.jsonl", lines), [reason for _, reason in rows if reason]


def write_lines(path, lines):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(
    ("writer", "options"),
    [
        (write_mapped_corpus, {"id_field": "pid", "feature_column": "f", "source_field": "src"}),
        (write_grouped_corpus, {"reward_field": "score"}),
        (write_chat_corpus, {}),
    ],
)
def test_layout_specific_reasons(tmp_path, writer, options):
    data, expected = writer(tmp_path)
    outcome = curate([data], tmp_path / "out", k=2, **options)
    rejects = read_rows(tmp_path / "out", "rejects")
    assert sorted(r["reason"] for r in rejects) == sorted(expected)
    assert_counts_add_up(outcome, tmp_path / "out", rejects)


def test_every_reject_reason_is_exercised_above():
    """A new reason code needs a case in one of the corpora above."""
    covered = {reason for _, reason in BAD_JSONL} | {
        "csv_column_count",
        "invalid_csv",
        "truncated_gzip",
        "not_gzip",
        "unreadable_file",
    }
    covered |= {
        "missing_id",
        "invalid_feature",
        "reward_length_mismatch",
        "invalid_messages",
        "response_not_string",
        "empty_response",
    }
    covered |= {
        "unembeddable_text"
    }  # test_texts_without_a_usable_vector_stay_candidates_and_unreadable_ones_are_rejects
    covered |= {"boilerplate_response"}  # test_boilerplate_across_prompts_is_rejected_with_its_count
    covered |= {
        reason for _, reasons, _, _ in PUBLIC_SHAPES.values() for reason in reasons
    }  # tests/e2e/test_public_shapes.py
    covered |= {"no_root"}  # tests/pipeline/test_trees.py: chains deeper than the join's rounds, and cycles
    assert covered == {reason.value for reason in RejectReason}


def test_texts_without_a_usable_vector_stay_candidates_and_unreadable_ones_are_rejects(tmp_path):
    # The hashing embedder reads word characters only: "!!!", "???" and an emoji embed to all-zero vectors,
    # but they are readable texts, so they stay (embedding_fallback); zero-width marks alone are not readable.
    records = [{"prompt": f"q{i % 4}", "response": f"answer number {i}"} for i in range(40)]
    records += [
        {"prompt": "q0", "response": "!!!"},
        {"prompt": "q0", "response": "!!!"},
        {"prompt": "q1", "response": "???"},
    ]
    records += [{"prompt": "q2", "response": "🎉🎉"}, {"prompt": "q3", "response": "\u200b\u2060"}]
    data = write_jsonl(tmp_path / "a.jsonl", records)
    outcome = curate([data], tmp_path / "out", selector="qd", k=20)
    manifest = outcome.manifest
    assert manifest["rejected_by_reason"] == {"unembeddable_text": 1}
    assert manifest["embedding"]["embedding_fallback"] == 3  # distinct texts per prompt: "!!!" twice is one candidate
    counts = manifest["counts"]
    assert counts["input_records"] == 45 == counts["rejected"] + counts["duplicates_merged"] + counts["candidates"]
    kept = {row["completion"] for row in read_rows(tmp_path / "out")}
    assert {"!!!", "???", "🎉🎉"} <= kept
    assert manifest["planner"]["sigma_w2"] is not None


@pytest.mark.slow
@pytest.mark.parametrize("plan", [True, False], ids=["split-before-dedup", "split-in-select"])
def test_boilerplate_across_prompts_is_rejected_with_its_count(tmp_path, plan):
    # 40 prompts: a null model's output answers every one, a refusal 30% of them; short shared answers stay.
    # Without the planner the candidates go straight to selection, which splits the boilerplate off itself.
    records = []
    for i in range(40):
        records += [
            {"prompt": f"question {i}", "response": f"a real answer to question {i}"},
            {"prompt": f"question {i}", "response": "Yes"},
        ]
        records.append({"prompt": f"question {i}", "response": "Lorem ipsum dolor sit amet"})
        if i % 10 < 3:
            records += [{"prompt": f"question {i}", "response": "I'm sorry, but I can't help with that."}] * 2
    data = write_jsonl(tmp_path / "a.jsonl", records)
    outcome = curate([data], tmp_path / "out", k=4, near_dup="off", plan=plan)
    manifest = outcome.manifest
    assert manifest["rejected_by_reason"] == {"boilerplate_response": 40 + 24}
    details = {json.loads(row["record"])["response"]: row["detail"] for row in read_rows(tmp_path / "out", "rejects")}
    assert details["Lorem ipsum dolor sit amet"] == "the same response answers 40 distinct prompts"
    assert details["I'm sorry, but I can't help with that."] == "the same response answers 12 distinct prompts"
    assert {row["completion"] for row in read_rows(tmp_path / "out")} == {
        f"a real answer to question {i}" for i in range(40)
    } | {"Yes"}
    counts = manifest["counts"]
    assert counts["input_records"] == counts["rejected"] + counts["duplicates_merged"] + counts["candidates"]
    kept = curate([data], tmp_path / "kept", k=4, near_dup="off", boilerplate_prompts="off", plan=plan)
    assert kept.manifest["rejected_by_reason"] == {}


def test_an_integer_over_pythons_digit_limit_is_one_reject_not_the_end_of_the_job(tmp_path):
    # Issue 20: a JSON integer of over 4,300 digits, even in a field the run does not read, aborted the job.
    data = tmp_path / "a.jsonl"
    data.write_bytes(
        b'{"prompt": "p", "response": "r", "unused": ' + b"7" * 5000 + b'}\n{"prompt": "p", "response": "s"}\n'
    )
    outcome = curate([data], tmp_path / "out", near_dup="off", plan=False)
    assert outcome.manifest["rejected_by_reason"] == {"invalid_json": 1}
    assert outcome.manifest["counts"]["candidates"] == 1
    [reject] = read_rows(tmp_path / "out", "rejects")
    assert "4300 digits" in reject["detail"] and reject["source_row"] == 1
