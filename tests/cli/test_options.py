"""Flags, README table and template parameters come from the one declaration of each option."""

import logging
import typing

import pytest

from mrtcurate.cli import run_parser
from mrtcurate.cli.options import README, flag, readme_table, readme_with_table
from mrtcurate.schemas import build_config
from mrtcurate.schemas.config import OPTIONS, RunConfig, SelectionSettings
from mrtcurate.selectors import SELECTORS


def test_every_option_is_a_flag_with_its_description_and_default():
    actions = {action.dest: action for action in run_parser()._actions}
    for name, option in OPTIONS.items():
        action = actions[name]
        assert flag(option) in action.option_strings
        assert option.info.description in action.help.replace("%%", "%")
        assert "(default: " in action.help


def test_readme_table_is_generated_from_the_declarations():
    readme = README.read_text(encoding="utf-8")
    assert readme == readme_with_table(readme), "run: python -c 'from mrtcurate.cli.options import write; write()'"
    assert all(f"`{flag(option)}" in readme_table() for option in OPTIONS.values())


def test_selector_choices_are_the_registry():
    assert typing.get_args(SelectionSettings.model_fields["selector"].annotation) == tuple(SELECTORS)


def test_flat_and_nested_yaml_and_flags_reach_the_same_sections():
    flat = build_config({"input": ["a"], "k": 8, "lambda": 0.3, "near_dup": "off", "output": "o"}, {})
    nested = build_config(
        {"input": ["a"], "selection": {"k": 8, "qd": {"lambda": 0.3}}, "grouping": {"near_dup": False}}, {"output": "o"}
    )
    assert flat == nested
    assert (flat.selection.k, flat.selection.qd.lam, flat.grouping.near_dup, flat.publish.output) == (8, 0.3, None, "o")
    assert RunConfig.from_options(flat.options()) == flat and flat.replace(k=2).selection.k == 2


@pytest.mark.parametrize(
    ("options", "warning"),
    [
        ({"selector": "random", "lambda": 0.2}, "lambda applies only to --selector qd"),
        ({"layout": "flat", "messages_field": "turns"}, "messages_field only applies to --layout chat"),
    ],
)
def test_options_for_another_selector_or_layout_are_named(caplog, options, warning):
    with caplog.at_level(logging.WARNING, logger="mrtcurate"):
        build_config({"input": ["a"]}, options)
    assert warning in caplog.text


def test_train_flags_are_generated_from_the_train_config():
    import argparse

    from mrtcurate.cli.train import _add_train_options, train_options
    from mrtcurate.schemas.train_config import TrainConfig, build_train_config

    parser = argparse.ArgumentParser()
    _add_train_options(parser)
    flags = {action.dest: action for action in parser._actions if action.dest != "help"}
    assert set(flags) == set(TrainConfig.model_fields) - {"progress"} == {option.name for option in train_options()}
    for name, action in flags.items():
        info = TrainConfig.model_fields[name]
        assert action.default is None and info.description in action.help
        assert action.required == info.is_required()
    for name, shown in (
        ("batch_size", "8"),
        ("lr", "2e-05"),
        ("lora_targets", "all-linear"),
        ("pack", "off"),
        ("eval_steps", "none"),
        ("data", "required"),
    ):
        assert flags[name].help.endswith(f"(default: {shown})")
    args = parser.parse_args(["--data", "d", "--model", "m", "--output", "o", "--lr", "0.001", "--pack"])
    config = build_train_config(vars(args))
    assert (config.lr, config.pack, config.batch_size) == (0.001, True, TrainConfig.model_fields["batch_size"].default)


def test_no_option_description_holds_a_line_break():
    # Issue 20: the template's help held real line breaks, which broke `mrt run --help` and the README table.
    from mrtcurate.schemas.config import OPTIONS

    assert [name for name, option in OPTIONS.items() if "\n" in (option.info.description or "")] == []
