"""`mrt train`: fine-tune a causal LM on a curated dataset (options: schemas/train_config.py)."""

from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.table import Table

from mrtcurate.cli.common import require_train_extras
from mrtcurate.cli.options import add_flags
from mrtcurate.schemas.config import Option
from mrtcurate.schemas.train_config import TrainConfig


def register(commands) -> None:
    train = commands.add_parser(
        "train",
        help="fine-tune a causal LM on a curated dataset: mrt train --data DIR --model NAME_OR_PATH --output DIR",
    )
    _add_train_options(train)
    train.set_defaults(handler=_train)


def train_options() -> list[Option]:
    """`mrt train`'s flags: every TrainConfig field but those declared as no flag."""
    return [
        Option(name, (), name, info)
        for name, info in TrainConfig.model_fields.items()
        if (info.json_schema_extra or {}).get("flag", True)
    ]


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, train_options(), required_flags=True)


def _train(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.schemas.train_config import build_train_config
    from mrtcurate.train.job import SUMMARY_FILE, train

    require_train_extras("train")
    values = {name: value for name, value in vars(args).items() if name not in ("command", "quiet", "handler")}
    outcome = train(build_train_config({**values, "progress": not args.quiet}))
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, one process reports
    table = Table(title=f"mrt train: {outcome.output}", title_justify="left", show_header=False)
    for name, value in {**outcome.train_metrics, **outcome.eval_metrics}.items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    out = Console()
    out.print(table)
    out.print(f"model and tokenizer: {outcome.output}; summary: {outcome.output / SUMMARY_FILE}", highlight=False)
