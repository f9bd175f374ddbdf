import os

import pytest

from mrtcurate.errors import UserError
from mrtcurate.runs.preflight import check_output, resolve_inputs
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
    chat = write_jsonl(
        tmp_path / "chat.jsonl",
        [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
    )
    with pytest.raises(UserError, match=r"disagree on the record layout .*flat.jsonl: flat .*chat.jsonl: chat"):
        resolve_inputs(config(tmp_path, [flat, chat]))
    assert resolve_inputs(config(tmp_path, [chat])).with_messages
    with pytest.raises(UserError, match="--reward-field"):
        resolve_inputs(config(tmp_path, [flat], selector="topk"))


def test_output_holding_only_subfolders_is_not_empty(tmp_path):
    (tmp_path / "out" / "keep").mkdir(parents=True)
    with pytest.raises(UserError, match="not empty; pass --overwrite"):
        check_output(str(tmp_path / "out"), overwrite=False)


def test_non_empty_output_needs_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    check_output(str(tmp_path / "out"), overwrite=False)
    (tmp_path / "out" / "old.txt").write_text("x")
    with pytest.raises(UserError, match="--overwrite"):
        check_output(str(tmp_path / "out"), overwrite=False)
    check_output(str(tmp_path / "out"), overwrite=True)


def test_layout_is_detected_per_file_and_records_that_disagree_are_refused(tmp_path):
    flat = [{"prompt": f"p{i}", "response": f"r{i}"} for i in range(20)]
    first_is_a_list = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "response": ["x", "y"]}, *flat])
    with pytest.raises(
        UserError, match=r"a.jsonl: flat \(20 of the first records, e.g. row 2\), grouped \(1 .* row 1\)"
    ):
        resolve_inputs(config(tmp_path, [first_is_a_list]))
    assert resolve_inputs(config(tmp_path, [first_is_a_list], layout="flat")).mapping.layout == "flat"
    # One pattern matching a chat file and a flat file: the flat file is not read as chat.
    (tmp_path / "d").mkdir()
    write_jsonl(tmp_path / "d" / "b.jsonl", flat)
    write_jsonl(
        tmp_path / "d" / "c.jsonl",
        [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
    )
    with pytest.raises(UserError, match=r"b.jsonl: flat .*c.jsonl: chat"):
        resolve_inputs(config(tmp_path, [tmp_path / "d" / "*.jsonl"]))


def test_csv_header_is_checked_even_when_every_sampled_row_is_a_reject(tmp_path):
    tsv_named_csv = tmp_path / "a.csv"
    tsv_named_csv.write_text("prompt\tresponse\np\tr, with a comma\nq\ts\n")
    with pytest.raises(
        UserError, match=r"--prompt-field 'prompt' is not a field .*the header is one column: is the delimiter right"
    ):
        resolve_inputs(config(tmp_path, [tsv_named_csv]))


def test_overlapping_patterns_read_each_file_once(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "response": "r"}])
    resolved = resolve_inputs(config(tmp_path, [data, tmp_path / "*.jsonl", f"{tmp_path}/./a.jsonl"]))
    assert [file.path for file in resolved.files] == [str(data)]


def test_inputs_are_checked_before_an_embedder_artifact_is_built(tmp_path, monkeypatch):
    from mrtcurate.runs import preflight

    built = []
    monkeypatch.setattr(preflight, "prepare_embedder", built.append)
    data = write_jsonl(tmp_path / "a.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(UserError, match="--prompt-field 'prompt' is not a field"):
        resolve_inputs(config(tmp_path, [data], embedder="minilm-int8", selector="qd"))
    assert built == []  # a wrong field fails in a second, not after minutes of building the int8 model
    resolve_inputs(
        config(
            tmp_path, [data], embedder="minilm-int8", selector="qd", prompt_field="question", response_field="answer"
        )
    )
    assert built == ["minilm-int8"]


def test_a_csv_header_that_repeats_a_column_is_refused_in_one_line(tmp_path):
    # Issue 20: the last of two same-named columns was kept silently.
    data = tmp_path / "a.csv"
    data.write_text("prompt,response,response\nq,first,second\n")
    with pytest.raises(UserError, match=r"a.csv: the CSV header names 'response' more than once"):
        resolve_inputs(config(tmp_path, [data]))


def test_the_working_directory_as_output_is_refused_before_the_job(tmp_path, monkeypatch):
    # Issue 20: `--output .` failed at the rename after the whole job, with a traceback.
    (tmp_path / "work" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work" / "sub")
    for output in (".", "..", str(tmp_path / "work")):
        with pytest.raises(UserError, match="is the working directory or holds it"):
            check_output(output, overwrite=True)


def test_a_name_with_a_backslash_is_matched_and_a_fifo_is_refused_not_waited_on(tmp_path):
    # Issue 20: a file whose name holds a backslash was skipped by the glob that matched it, silently; a FIFO
    # matched by --input blocked the driver forever in open().
    (tmp_path / "a\\b.jsonl").write_text('{"prompt": "p", "response": "r"}\n')
    (tmp_path / "c.jsonl").write_text('{"prompt": "q", "response": "s"}\n')
    resolved = resolve_inputs(config(tmp_path, [tmp_path / "*.jsonl"]))
    assert [os.path.basename(file.path) for file in resolved.files] == ["a\\b.jsonl", "c.jsonl"]
    os.mkfifo(tmp_path / "d.jsonl")
    with pytest.raises(UserError, match="d.jsonl is not a regular file"):
        resolve_inputs(config(tmp_path, [tmp_path / "*.jsonl"]))


def test_a_file_reached_through_a_symbolic_link_too_is_read_once(tmp_path):
    # Issue 20: an input matched both as itself and through a link alias was read twice.
    (tmp_path / "data").mkdir()
    data = write_jsonl(tmp_path / "data" / "a.jsonl", [{"prompt": "p", "response": "r"}])
    (tmp_path / "data" / "alias.jsonl").symlink_to(data)
    (tmp_path / "linked").symlink_to(tmp_path / "data")
    files = resolve_inputs(config(tmp_path, [tmp_path / "data" / "*.jsonl", tmp_path / "linked" / "a.jsonl"])).files
    assert [file.path for file in files] == [str(data)]
