"""`mrt explore DIR`: one self-contained HTML file to browse what was kept, per prompt, and why."""

from __future__ import annotations

import argparse
import os

from mrtcurate.cli.common import status


def register(commands) -> None:
    explore = commands.add_parser(
        "explore", help="write an HTML explorer of a dataset: mrt explore DIR [--out FILE] [--prompts N]"
    )
    explore.add_argument("directory")
    explore.add_argument("--out", metavar="FILE", help="where the page goes (default: DIR/explorer.html)")
    explore.add_argument(
        "--prompts",
        type=int,
        default=2_000,
        metavar="N",
        help="at most N prompts: the largest pools, the named ones and a seeded sample (default: 2000)",
    )
    explore.add_argument(
        "--prompt-id", action="append", default=[], metavar="ID", help="a prompt the page must show (repeatable)"
    )
    explore.add_argument("--seed", type=int, default=0, help="the sample's seed (default: 0)")
    explore.set_defaults(handler=_explore)


def _explore(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.errors import UserError
    from mrtcurate.outputs import write_inside
    from mrtcurate.report.explorer import render_explorer
    from mrtcurate.runs.explore import explore_data

    if args.prompts < 1:
        raise UserError("--prompts must be 1 or more")
    with status("gathering the pools", args.quiet):
        data = explore_data(args.directory, args.prompts, tuple(args.prompt_id), args.seed)
    page = render_explorer(data).encode("utf-8")
    target = os.path.abspath(args.out or os.path.join(args.directory, "explorer.html"))
    written = write_inside(os.path.dirname(target), os.path.basename(target), page)
    shown, total = data["dataset"]["prompts_shown"], data["dataset"]["prompts_total"]
    sample = f"{shown:,} prompts" if shown == total else f"a sample of {shown:,} of {total:,} prompts"
    pools = {
        "dropped": "pools from the dataset (--dropped-texts)",
        "inputs": "pools rebuilt from the inputs",
        None: f"kept answers only ({data['why_kept_only']})",
    }[data["pools_from"]]
    print(f"{written}: {len(page) / 1e6:.1f} MB, {sample}, {pools}")
