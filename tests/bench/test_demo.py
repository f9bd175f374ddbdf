"""The demo corpus: deterministic, several answer modes per prompt, and a known set of bad records."""

import json
from collections import Counter

from mrtcurate.bench.demo import RESPONSES_PER_PROMPT, demo_config, sample_records


def parsed(lines):
    good, bad = [], []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad.append(line)
            continue
        ok = (
            isinstance(record, dict)
            and isinstance(record.get("prompt"), str)
            and isinstance(record.get("response"), str)
        )
        ok = (
            ok
            and record["response"].strip() != ""
            and isinstance(record.get("score"), float)
            and record["score"] == record["score"]
        )
        (good if ok else bad).append(record)
    return good, bad


def test_sample_is_seeded_with_many_modes_per_prompt_and_56_bad_records():
    lines = sample_records(0)
    assert lines == sample_records(0) and lines != sample_records(1)
    good, bad = parsed(lines)
    assert len(bad) == 7 * 8
    per_prompt = Counter(record["prompt"] for record in good)
    # Each drawn prompt gets RESPONSES_PER_PROMPT responses; a number range drawn twice is one prompt with twice as many.
    assert all(count % RESPONSES_PER_PROMPT == 0 for count in per_prompt.values())
    modes = Counter(len({r["response"] for r in good if r["prompt"] == prompt}) for prompt in list(per_prompt)[:50])
    assert min(modes) >= 2  # every prompt has more than one distinct response: the multi-response case


def test_demo_config_curates_the_written_sample(tmp_path):
    config = demo_config(str(tmp_path), "hashing")
    assert (tmp_path / "sample.jsonl.gz").exists()
    assert config.ingest.input == [str(tmp_path / "sample.jsonl.gz")] and config.ingest.reward_field == "score"
    assert config.ingest.layout == "flat"  # the sample holds a list-valued response on purpose: not a grouped file
    assert config.publish.output == str(tmp_path / "curated") and config.publish.overwrite


def test_the_demo_replaces_only_what_an_earlier_demo_wrote(tmp_path):
    # Issue 20: `mrt demo --dir D` silently replaced D/curated/ and D/sample.jsonl.gz.
    import pytest

    from mrtcurate.errors import UserError

    demo_config(str(tmp_path), "hashing")
    assert demo_config(str(tmp_path), "hashing").publish.overwrite  # its own sample again: fine
    (tmp_path / "curated").mkdir()
    (tmp_path / "curated" / "notes.txt").write_text("the user's")
    with pytest.raises(UserError, match="curated exists and is not an earlier demo's output"):
        demo_config(str(tmp_path), "hashing")
    (tmp_path / "sample.jsonl.gz").write_bytes(b"the user's data")
    with pytest.raises(UserError, match="sample.jsonl.gz exists and is not the demo's sample"):
        demo_config(str(tmp_path), "hashing")
    assert (tmp_path / "sample.jsonl.gz").read_bytes() == b"the user's data"
    demo_config(str(tmp_path), "hashing", overwrite=True)  # asked for: replaced
