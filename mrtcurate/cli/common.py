"""What every subcommand shares: the stderr console, the one-line argument errors, status spinners."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from contextlib import nullcontext

from rich.console import Console

from mrtcurate.errors import UserError

console = Console(stderr=True)


class Parser(argparse.ArgumentParser):
    """argparse prints its usage block and exits on a bad value; ours is one line, exit code 2, like every
    other error before a job starts. Subcommand parsers inherit this class."""

    def error(self, message: str):
        console.print(f"[red]error:[/red] {self.prog}: {message}", highlight=False, soft_wrap=True)
        sys.exit(2)


def status(message: str, quiet: bool):
    return nullcontext() if quiet else console.status(message, spinner="dots")


def require_train_extras(command: str) -> None:
    missing = [name for name in ("transformers", "accelerate", "peft") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"mrt {command} needs the train extras ({', '.join(missing)} missing): pip install 'mrtcurate[train]'"
        )
