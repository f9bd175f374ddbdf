"""Flags, the README option table and the flex-template parameters, all generated from the option
declarations in schemas/config.py, so that none of them can drift from the others.

Values reach pydantic as the strings the user typed: one validator (pydantic's, with the model's bounds)
judges `--k 8`, `k: 8` in YAML and a template parameter alike.

`python -c "from mrtcurate.cli.options import write; write()"` rewrites the README table and
docker/flex-template/metadata.json; a test fails when either has drifted.
"""

from __future__ import annotations

import argparse
import json
import typing
from pathlib import Path

from mrtcurate.schemas.config import OPTIONS, Option
from mrtcurate.schemas.presets import PRESETS

# Options a user must give to `mrt run` (the model allows `output` to be empty for `mrt plan`).
REQUIRED_FOR_RUN = ("input", "output")
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
METADATA = ROOT / "docker" / "flex-template" / "metadata.json"
_TABLE_START, _TABLE_END = "<!-- options:start -->", "<!-- options:end -->"
_PRESETS_START, _PRESETS_END = "<!-- presets:start -->", "<!-- presets:end -->"


def flag(option: Option) -> str:
    return "--" + option.name.replace("_", "-")


def choices(option: Option) -> tuple | None:
    annotation = option.info.annotation
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else None


def default_text(option: Option) -> str:
    default = option.info.default
    if option.info.is_required():
        return "required"
    if default is None:
        return (
            "off"
            if option.name in ("near_dup", "near_dup_embedding", "merge_prompts", "boilerplate_prompts")
            else "none"
        )
    if isinstance(default, bool):
        return "on" if default else "off"
    return f"{default:,}" if isinstance(default, int) else str(default)


def metavar(option: Option) -> str:
    """How the README spells an option's value: its choices, a declared placeholder, or its type's."""
    if choices(option):
        return "{" + ",".join(choices(option)) + "}"
    extra = option.info.json_schema_extra or {}
    if "metavar" in extra:
        return extra["metavar"]
    kinds = typing.get_args(option.info.annotation) or (option.info.annotation,)
    return "N" if int in kinds else "X" if float in kinds else "NAME"


def is_switch(option: Option) -> bool:
    return option.info.annotation is bool


def add_config_options(parser: argparse.ArgumentParser, section: str | None = None) -> None:
    """Every option as a flag, or only those of one section (`mrt inspect` takes the ingest ones)."""
    add_flags(parser, [option for option in OPTIONS.values() if section is None or option.section[:1] == (section,)])


def add_flags(parser: argparse.ArgumentParser, options: list[Option], required_flags: bool = False) -> None:
    """One flag per option, its help from the declaration. Every default is None so that only flags the user
    typed override a config file or the model's own defaults; `required_flags` makes the options the model
    requires required flags (`mrt train`, which reads no config file)."""
    for option in options:
        help_text = f"{option.info.description} (default: {default_text(option)})".replace("%", "%%")
        required = {"required": True} if required_flags and option.info.is_required() else {}
        if is_switch(option):
            action = argparse.BooleanOptionalAction if option.info.default else "store_true"
            parser.add_argument(flag(option), dest=option.name, action=action, default=None, help=help_text)
        elif typing.get_origin(option.info.annotation) is list:
            parser.add_argument(
                flag(option), dest=option.name, action="append", metavar=metavar(option), help=help_text, **required
            )
        else:
            parser.add_argument(
                flag(option),
                dest=option.name,
                choices=choices(option),
                metavar=None if choices(option) else metavar(option),
                help=help_text,
                **required,
            )


def option_values(args: argparse.Namespace) -> dict:
    return {name: getattr(args, name) for name in OPTIONS if hasattr(args, name)}


def readme_table() -> str:
    rows = ["| option | meaning (default) |", "|---|---|"]
    for option in OPTIONS.values():
        spelled = f"`{flag(option)}`" if is_switch(option) else f"`{flag(option)} {metavar(option)}`"
        if is_switch(option) and option.info.default:
            spelled = f"`{flag(option)}` / `--no-{option.name.replace('_', '-')}`"
        rows.append(f"| {spelled} | {option.info.description.replace('|', '/')} ({default_text(option)}) |")
    return "\n".join(rows)


def template_metadata() -> dict:
    """The Dataflow flex template's parameters: `mrt run`'s options, one string each, but the local runner's own
    (Dataflow scales its workers itself)."""
    parameters = []
    for option in OPTIONS.values():
        if option.section[:1] == ("execution",):
            continue
        help_text = option.info.description
        if option.name == "input":
            help_text = "file patterns (gs://...), comma-separated"
        parameters.append(
            {
                "name": option.name,
                "label": option.name.replace("_", " "),
                "helpText": help_text,
                "isOptional": option.name not in REQUIRED_FOR_RUN,
            }
        )
    return {
        "name": "mrtcurate",
        "description": "Curate raw prompt-response corpora into multi-response fine-tuning sets (mrt run).",
        "parameters": parameters,
    }


def presets_table() -> str:
    rows = ["| preset | reads | example | sets |", "|---|---|---|---|"]
    for name, preset in PRESETS.items():
        sets = " ".join(
            f"`{flag(OPTIONS[option])} {value!r}`" if "\n" in str(value) else f"`{flag(OPTIONS[option])} {value}`"
            for option, value in preset.options.items()
        )
        rows.append(f"| `{name}` | {preset.shape} | `{preset.example}` | {sets.replace('|', '/')} |")
    return "\n".join(rows)


def readme_with_table(readme: str) -> str:
    for start_mark, end_mark, table in (
        (_TABLE_START, _TABLE_END, readme_table()),
        (_PRESETS_START, _PRESETS_END, presets_table()),
    ):
        start, end = readme.index(start_mark) + len(start_mark), readme.index(end_mark)
        readme = readme[:start] + "\n" + table + "\n" + readme[end:]
    return readme


def write() -> None:
    README.write_text(readme_with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    METADATA.write_text(json.dumps(template_metadata(), indent=2) + "\n", encoding="utf-8")
