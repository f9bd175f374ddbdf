"""The `mrt` command: one module per family of subcommands, each registering its parsers. Everything
after `--` goes to Beam's PipelineOptions."""

from __future__ import annotations

import logging
import os
import sys

from rich.logging import RichHandler
from rich.markup import escape

from mrtcurate import __version__, interrupts
from mrtcurate.cli import bench, curate, embedders, explore, inspect, simulate, train
from mrtcurate.cli.common import Parser, console
from mrtcurate.errors import JobFailed, UserError
from mrtcurate.garbage import tune_collector

run_parser = curate.run_parser


def _parser() -> Parser:
    parser = Parser(prog="mrt", description="Curate prompt-response corpora into multi-response fine-tuning sets.")
    parser.add_argument("--version", action="version", version=f"mrtcurate {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    commands = parser.add_subparsers(dest="command", required=True)
    for family in (curate, inspect, explore, embedders, simulate, train, bench):
        family.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    beam_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, beam_args = argv[:split], argv[split + 1 :]
    args = _parser().parse_args(argv)
    tune_collector(freeze=True)
    if args.command != "push":  # pushing is the one command whose point is the Hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads at run time
    logging.basicConfig(
        level=logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )
    logging.getLogger("mrtcurate").setLevel(logging.WARNING if args.quiet else logging.INFO)
    # Beam warns at import about optional GCP clients that local runs never use, and logs a failing DoFn's
    # traceback before re-raising it: the failure reaches the user once, as one line (launch.py) or as
    # the exception itself.
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    # ... and some of its modules warn on the root logger at import (apitools, bigquery clients).
    if _not_beams_import_noise not in logging.getLogger().filters:
        logging.getLogger().addFilter(_not_beams_import_noise)
    if args.quiet:
        _silence_model_loading()
    try:
        with interrupts.handled():
            args.handler(args, beam_args)
    except UserError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    except JobFailed as error:
        console.print(f"[red]job failed:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 1
    return 0


def _not_beams_import_noise(record: logging.LogRecord) -> bool:
    return not (
        record.name == "root" and f"{os.sep}apache_beam{os.sep}" in record.pathname and record.levelno < logging.ERROR
    )


def _silence_model_loading() -> None:
    """-q: no progress bars from the libraries that load models (environment variables, so that Beam's
    worker processes inherit them too)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    os.environ["TQDM_DISABLE"] = "1"
