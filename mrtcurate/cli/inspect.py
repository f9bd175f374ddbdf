"""`mrt inspect`: the first records of each input as the job would read them, on one screen."""

from __future__ import annotations

import argparse
import json
import shlex

from rich.console import Console
from rich.markup import escape

from mrtcurate.cli.common import status
from mrtcurate.cli.options import add_config_options, option_values
from mrtcurate.schemas import build_config, load_yaml


def register(commands) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="what the job would read: mrt inspect --input PATTERN [--preset NAME | mapping options] [--json]",
    )
    inspect.add_argument("--config", help="YAML file of options (only the ingest ones are read)")
    inspect.add_argument(
        "--records", type=int, default=200, metavar="N", help="records read from the head of each file (default: 200)"
    )
    inspect.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_config_options(inspect, section="ingest")
    inspect.set_defaults(handler=_inspect)


def _inspect(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.runs.inspect import inspect

    config = build_config(load_yaml(args.config) if args.config else {}, option_values(args))
    with status("inspecting", args.quiet or args.json):
        found = inspect(config.ingest, max(args.records, 1))
    if args.json:
        print(json.dumps(found, ensure_ascii=False))
    else:
        _render(found, Console())


def _render(found: dict, console: Console) -> None:
    width = max(console.width, 40)
    sample = found["sample"]
    files = found["files"]
    console.print(
        f"[bold]{len(files)} file{'s' if len(files) > 1 else ''}[/bold], {found['records_per_file']:,} records of each:",
        highlight=False,
    )
    for file, how in list(zip(files, found["sampled"]))[:5]:
        console.print(
            f"  {_cut(file['path'], width - 20)}  {file['format']}, {file['bytes']:,} bytes, {how}",
            highlight=False,
            markup=False,
        )
    if len(files) > 5:
        console.print(f"  ... and {len(files) - 5} more", highlight=False)
    how = "detected" if found["layout_detected"] else "as given"
    preset = f", preset {found['preset']}" if found["preset"] else ""
    console.print(f"[bold]layout[/bold] {found['layout']} ({how}{preset})", highlight=False)
    # soft_wrap: no line break inserted into a command a user will paste
    console.print("[bold]mapping[/bold] " + escape(as_flags(found["mapping"])), highlight=False, soft_wrap=True)
    line = f"[bold]sample[/bold] {sample['records']:,} records: {sample['candidates']:,} candidates, {sample['rejected']:,} rejected"
    if "context_messages" in sample:
        line += f", {sample['context_messages']:,} context messages"
    console.print(line, highlight=False)
    if sample["rejected_by_reason"]:
        console.print(
            "  rejects: " + ", ".join(f"{reason} {count:,}" for reason, count in sample["rejected_by_reason"].items()),
            highlight=False,
        )
    if spread := sample["responses_per_prompt"]:
        console.print(
            f"  {sample['prompts']:,} prompts, {spread['mean']:.1f} responses per prompt (min {spread['min']}, max {spread['max']})",
            highlight=False,
        )
    for index, example in enumerate(found["examples"], start=1):
        reward = "" if example["reward"] is None else f"  [dim]reward {example['reward']:g}[/dim]"
        console.print(f"[bold]example {index}[/bold]{reward}", highlight=False)
        console.print(f"  prompt:     {_cut(example['prompt'], width - 14)}", highlight=False, markup=False)
        console.print(f"  completion: {_cut(example['completion'], width - 14)}", highlight=False, markup=False)
    if not found["examples"]:
        console.print("[yellow]no candidate in the sample: check the mapping against the rejects above[/yellow]")


def _cut(text: str, width: int) -> str:
    flat = _visible(" ".join(text.split()))
    return flat if len(flat) <= width else flat[: max(width - 1, 1)] + "…"


def _visible(text: str) -> str:
    """Control characters from the data (an escape sequence that colours, clears the screen or sets the window
    title) are shown escaped, never sent to the terminal."""
    return "".join(
        character if character.isprintable() else character.encode("unicode_escape").decode("ascii")
        for character in text
    )


def as_flags(mapping: dict) -> str:
    """The mapping as flags a POSIX shell accepts and that reproduce it: values quoted, a newline in a
    template written `\\n` as the flag reads it, a true switch as the bare flag, a false one left out."""
    flags = []
    for name, value in mapping.items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            flags += [flag] if value else []
        else:
            flags.append(f"{flag} {shlex.quote(str(value).replace(chr(10), chr(92) + 'n'))}")
    return " ".join(flags)
