"""`mrt run`, `mrt plan`, `mrt refresh`, `mrt report` and `mrt demo`: the curation commands."""

from __future__ import annotations

import argparse
import json
import logging

from rich.console import Console

from mrtcurate.cli.common import Parser, status
from mrtcurate.cli.options import add_config_options, option_values
from mrtcurate.cli.render import print_plan, print_summary
from mrtcurate.schemas import RunConfig, build_config, load_yaml


def register(commands) -> None:
    run = commands.add_parser(
        "run", help="curate a corpus: mrt run --input PATTERN --output DIR [options] [-- beam options]"
    )
    _add_run_options(run)
    run.set_defaults(handler=_run)
    plan = commands.add_parser(
        "plan", help="is K > 1 worth it, and which K: mrt plan --input PATTERN [ingest options] [--json]"
    )
    _add_run_options(plan)
    plan.add_argument("--json", action="store_true", help="print exactly one JSON object")
    plan.set_defaults(handler=_plan)
    refresh = commands.add_parser("refresh", help="publish a new snapshot under ROOT if inputs or config changed")
    refresh.add_argument("--root", required=True, help="ROOT holding snapshots/, LATEST and cache/ (local or gs://)")
    refresh.add_argument("--config", required=True, help="the run's YAML config (its output is ignored)")
    refresh.add_argument(
        "--keep", type=_at_least_one, metavar="N", help="after publishing, keep only the newest N snapshots (N >= 1)"
    )
    refresh.set_defaults(handler=_refresh)
    report = commands.add_parser(
        "report", help="write DIR/report.html and DIR/README.md (the dataset card) for a dataset written by mrt run"
    )
    report.add_argument("directory")
    report.add_argument(
        "--license", metavar="ID", help="the licence the card names (default: the one it names already)"
    )
    report.set_defaults(handler=_report)
    push = commands.add_parser("push", help="publish a dataset to the Hugging Face Hub: mrt push DIR ORG/NAME")
    push.add_argument("directory")
    push.add_argument("repo_id", metavar="ORG/NAME")
    push.add_argument(
        "--private", action="store_true", help="create the repository private (an existing one keeps its visibility)"
    )
    push.add_argument(
        "--revision", metavar="BRANCH", help="the branch to commit to, created from main if missing (default: main)"
    )
    push.add_argument("--message", metavar="TEXT", help="the commit message")
    push.set_defaults(handler=_push)
    demo = commands.add_parser("demo", help="curate a built-in sample corpus into ./mrt-demo/")
    demo.add_argument("--dir", default="mrt-demo", help="where the sample and its curated output go")
    demo.add_argument("--embedder", default="auto", help="embedder for the demo (default: auto, as mrt run)")
    demo.add_argument(
        "--overwrite",
        action="store_true",
        help="replace DIR/sample.jsonl.gz and DIR/curated/ even when an earlier demo did not write them",
    )
    demo.set_defaults(handler=_demo)


def run_parser() -> argparse.ArgumentParser:
    """The options of `mrt run` alone (the flex template launcher maps its parameters onto these)."""
    parser = Parser(prog="mrt run", add_help=False)
    _add_run_options(parser)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file whose keys are these options' long names with - as _")
    add_config_options(parser)


def _config(args: argparse.Namespace) -> RunConfig:
    return build_config(load_yaml(args.config) if args.config else {}, option_values(args))


def curate(config: RunConfig, beam_args: list[str], quiet: bool) -> None:
    from mrtcurate.runs.curate import run

    with status("curating: read, dedup, embed, select, write", quiet):
        outcome = run(config, beam_args, on_progress=None if quiet else _show_progress)
    print_summary(outcome, Console())
    Console().print(f"report: {outcome.report}", highlight=False)


def _show_progress(line: str) -> None:
    logging.getLogger("mrtcurate.progress").info(line)


def _run(args: argparse.Namespace, beam_args: list[str]) -> None:
    curate(_config(args), beam_args, args.quiet)


def _plan(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.runs.curate import run_plan

    with status("planning: read, dedup, embed, estimate", args.quiet):
        summary = run_plan(_config(args), beam_args)
    if args.json:
        print(json.dumps(summary))
    else:
        print_plan(summary, Console())


def _refresh(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.runs.refresh import refresh

    config = build_config({**load_yaml(args.config), "output": None}, {})
    with status("refreshing", args.quiet):
        outcome = refresh(args.root, config, beam_args, args.keep)
    out = Console()
    if outcome.run is None:
        out.print(
            f"unchanged: inputs and config match LATEST (fingerprint {outcome.fingerprint}); nothing to do",
            highlight=False,
        )
        return
    print_summary(outcome.run, out)
    out.print(
        f"published {outcome.snapshot}; LATEST updated"
        + (f"; pruned {', '.join(outcome.pruned)}" if outcome.pruned else ""),
        highlight=False,
    )


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{value} keeps no snapshot: give 1 or more (LATEST's snapshot is always kept)"
        )
    return value


def _report(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.report import write_card, write_report

    print(write_report(args.directory))
    print(write_card(args.directory, args.license))


def _push(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.runs.push import push

    with status(f"pushing {args.directory} to {args.repo_id}", args.quiet):
        outcome = push(args.directory, args.repo_id, args.private, args.revision, args.message)
    deleted = f"; removed {len(outcome.deleted)} shard(s) of an earlier push" if outcome.deleted else ""
    print(f"pushed {len(outcome.added)} files to {outcome.repo_id} ({outcome.revision}){deleted}: {outcome.commit_url}")


def _demo(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.bench.demo import demo_config

    curate(demo_config(args.dir, args.embedder, args.overwrite), beam_args, args.quiet)
