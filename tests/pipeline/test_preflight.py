import os

import pytest

from mrtcurate.errors import UserError
from mrtcurate.pipeline.preflight import check_output, resolve_inputs
from mrtcurate.schemas import build_config
from tests.conftest import write_jsonl


def config(tmp_path, inputs, **options):
    return build_config({}, {"input": [str(p) for p in inputs], "output": str(tmp_path / "out"), **options})


def test_pattern_matching_nothing(tmp_path):
    with pytest.raises(UserError, match="matches no file"):
        resolve_inputs(config(tmp_path, [tmp_path / "nothing-*.jsonl"]))


def test_unknown_field_names_the_flag_and_the_fields(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", [{"question": "q", "answer": "a", "score": 1}])
    with pytest.raises(UserError, match=r"--prompt-field 'prompt' is not a field of .*fields: answer, question, score"):
        resolve_inputs(config(tmp_path, [data]))
    with pytest.raises(UserError, match="--reward-field 'scor'"):
        resolve_inputs(config(tmp_path, [data], prompt_field="question", response_field="answer", reward_field="scor"))
    resolved = resolve_inputs(config(tmp_path, [data], prompt_field="question", response_field="answer"))
    assert resolved.mapping.layout == "flat" and resolved.files[0].checksum.startswith("sha256:")


def test_unreadable_file(tmp_path):
    os.symlink(tmp_path / "gone.jsonl", tmp_path / "dangling.jsonl")
    with pytest.raises(UserError, match="dangling.jsonl"):
        resolve_inputs(config(tmp_path, [tmp_path / "dangling.jsonl"]))


def test_mixed_layouts_and_topk_without_rewards(tmp_path):
    flat = write_jsonl(tmp_path / "flat.jsonl", [{"prompt": "p", "response": "r"}])
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}])
    with pytest.raises(UserError, match="different layouts"):
        resolve_inputs(config(tmp_path, [flat, chat]))
    assert resolve_inputs(config(tmp_path, [chat])).with_messages
    with pytest.raises(UserError, match="--reward-field"):
        resolve_inputs(config(tmp_path, [flat], selector="topk"))


def test_non_empty_output_needs_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    check_output(str(tmp_path / "out"), overwrite=False)
    (tmp_path / "out" / "old.txt").write_text("x")
    with pytest.raises(UserError, match="--overwrite"):
        check_output(str(tmp_path / "out"), overwrite=False)
    check_output(str(tmp_path / "out"), overwrite=True)
