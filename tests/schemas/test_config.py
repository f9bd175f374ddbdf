import pytest

from mrtcurate.errors import UserError
from mrtcurate.schemas import build_config, load_yaml


def test_cli_values_override_file_values_and_none_means_unset():
    config = build_config({"input": "a.jsonl", "output": "o", "k": 2, "seed": 5}, {"k": 8, "seed": None})
    assert (config.ingest.input, config.selection.k, config.selection.seed) == (["a.jsonl"], 8, 5)


def test_unknown_and_invalid_keys_are_one_line_errors():
    with pytest.raises(UserError, match="unknown option 'kk'"):
        build_config({"input": ["a"], "output": "o", "kk": 3}, {})
    with pytest.raises(UserError, match="k must be an integer from 1 to"):
        build_config({"input": ["a"], "output": "o", "k": 0}, {})


def test_near_dup_off_in_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input: [a.jsonl]\noutput: out\nnear_dup: off\nreward_field: score\n")
    config = build_config(load_yaml(path), {})
    assert config.grouping.near_dup is None and config.ingest.reward_field == "score"


def test_config_hash_ignores_where_output_goes():
    a = build_config({"input": ["a"], "output": "o1"}, {})
    b = build_config({"input": ["a"], "output": "o2", "overwrite": True}, {})
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != build_config({"input": ["a"], "output": "o1", "k": 3}, {}).config_hash()


def test_unreadable_yaml(tmp_path):
    with pytest.raises(UserError, match="cannot read config file"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("k: [1,\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")


def test_auto_k_without_the_planner_is_refused_up_front():
    with pytest.raises(UserError, match=r"^invalid configuration: k: auto takes K from the planner.*--no-plan"):
        build_config({"input": ["a"], "output": "o", "k": "auto", "plan": False}, {})
    assert build_config({"input": ["a"], "output": "o", "k": "auto"}, {}).planner.plan


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"input: [a]\nk: 2\n\xff\n", r"not UTF-8 text \(byte 0xff at offset 16\)"),
        (b"input: [a]\n1: 2\n", r"key 1 is not an option name$"),
        (b"input: [a]\non: yes\n", r"key True is not an option name \(YAML 1.1 reads unquoted on/off"),
    ],
)
def test_config_file_problems_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(text)
    with pytest.raises(UserError, match=message) as raised:
        load_yaml(path)
    assert "\n" not in str(raised.value)


def test_a_preset_sits_under_the_file_and_the_flags():
    config = build_config({"input": ["a"], "preset": "nectar", "prompt_field": "question"}, {"reward_order": "higher"})
    ingest = config.ingest
    assert (ingest.layout, ingest.response_field, ingest.reward_field) == (
        "grouped",
        "answers[*].answer",
        "answers[*].rank",
    )
    assert (ingest.prompt_field, ingest.reward_order) == ("question", "higher")
    assert config.replace(k=2).ingest == ingest  # the expanded options travel, not the name alone
    with pytest.raises(UserError, match="unknown preset 'nectr'; the presets are ultrafeedback, nectar"):
        build_config({"input": ["a"]}, {"preset": "nectr"})


def test_the_tree_layout_defaults_to_ranks_where_lower_is_better_unless_told_otherwise():
    tree = build_config({"input": ["a"], "layout": "tree"}, {}).ingest
    assert (tree.reward_field, tree.reward_order, tree.text_key) == ("rank", "lower", "text")
    told = build_config(
        {"input": ["a"], "layout": "tree", "reward_order": "higher", "reward_field": "score"}, {}
    ).ingest
    assert (told.reward_field, told.reward_order) == ("score", "higher")


def test_seed_and_k_out_of_range_are_refused_up_front():
    # Issue 20: --seed -1 failed in the planner after the whole job; a K past 64 bits in a coder.
    with pytest.raises(UserError, match="seed: Input should be greater than or equal to 0"):
        build_config({"input": ["a"], "output": "o", "seed": -1}, {})
    with pytest.raises(UserError, match="k must be an integer from 1 to 2,147,483,647"):
        build_config({"input": ["a"], "output": "o", "k": 99999999999999999999}, {})
