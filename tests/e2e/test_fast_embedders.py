"""The fast embedders through the whole job: identity in the manifest, truncation counted and reported,
and a refresh that changes embedder never reuses the other one's vectors."""

import json

import pytest

from mrtcurate.cli import main
from tests.conftest import write_jsonl
from tests.helpers import curate, read_rows


def _rows() -> list[dict]:
    long_answer = " ".join(f"word{i}" for i in range(60))  # far over 16 tokens
    rows = []
    for prompt in range(12):
        for answer in range(5):
            text = (
                long_answer
                if answer == 0
                else f"Answer {answer} to question {prompt}: the {['cat', 'dog', 'fox', 'owl'][answer - 1]} says hello."
            )
            rows.append({"prompt": f"Question {prompt}?", "response": text, "score": float(answer)})
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("embedder", ["static", "minilm-int8"])
def test_a_fast_embedder_runs_the_job_and_the_manifest_says_which_and_what_was_cut(tmp_path, embedder):
    data = write_jsonl(tmp_path / "in.jsonl", _rows())
    # The long answer answers every prompt: boilerplate by default, kept here to be embedded once.
    outcome = curate(
        [data], tmp_path / "out", embedder=embedder, max_tokens=16, selector="qd", k=2, boilerplate_prompts="off"
    )
    embedding = outcome.manifest["embedding"]
    assert embedding["embedder"] == embedder and embedding["max_tokens"] == 16
    assert embedding["precision"] == ("int8" if embedder == "minilm-int8" else "fp32")
    # The long answer is cut as a response of each of the 12 prompts it answers, whichever stage embeds it; the
    # others fit in 16 tokens.
    assert embedding["texts_truncated"] == 12
    assert outcome.manifest["config"]["max_tokens"] == 16
    report = (tmp_path / "out" / "report.html").read_text()
    assert f"{embedder}: " in report and "embedded by their first 16: 12" in report


def test_runs_without_embeddings_record_no_embedder(tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", _rows())
    outcome = curate([data], tmp_path / "out", near_dup="off", plan=False, selector="random", k=2)
    assert "embedding" not in outcome.manifest


@pytest.mark.slow
def test_refresh_with_another_embedder_does_not_reuse_cached_vectors(tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", _rows())
    root = tmp_path / "root"
    for embedder in ("hashing", "static"):
        config = tmp_path / f"{embedder}.yaml"
        config.write_text(f"input: ['{data}']\nreward_field: score\nembedder: {embedder}\nk: 2\n")
        assert main(["-q", "refresh", "--root", str(root), "--config", str(config)]) == 0
    caches = sorted((root / "cache" / "embeddings").iterdir())
    assert len(caches) == 2  # one vector store per embedder identity
    latest = json.loads((root / "LATEST").read_text())
    manifest = json.loads((root / latest["snapshot"] / "manifest.json").read_text())
    assert manifest["embedding"]["embedder"] == "static"


@pytest.mark.slow
@pytest.mark.parametrize("embedder", ["hashing", "static", "minilm-int8", "minilm"])
def test_emoji_symbol_and_non_latin_answers_stay_candidates_under_every_embedder(tmp_path, embedder):
    odd = ["😀🎉🙌", "→ ★ ✓ ∑", "…!?", "Привет, как дела", "東京は日本の首都です", "مرحبا بالعالم"]
    rows = [{"prompt": f"Say something {p}", "response": text, "score": 0.5} for p in range(2) for text in odd]
    rows += [
        {"prompt": f"Say something {p}", "response": f"A plain English answer number {p}", "score": 0.9}
        for p in range(2)
    ]
    data = write_jsonl(tmp_path / "in.jsonl", rows)
    outcome = curate([data], tmp_path / "out", embedder=embedder, selector="qd", k=10, boilerplate_prompts="off")
    manifest = outcome.manifest
    assert manifest["rejected_by_reason"] == {}
    assert {row["completion"] for row in read_rows(tmp_path / "out")} == set(odd) | {
        "A plain English answer number 0",
        "A plain English answer number 1",
    }
    counts = manifest["counts"]
    assert counts["input_records"] == counts["candidates"] == counts["selected"] == len(rows)
