"""`mrt bench`: the structured multi-response benchmark (curate, train a tiny model, score exactly)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from mrtcurate.cli.common import require_train_extras, status
from mrtcurate.outputs import write_inside


def register(commands) -> None:
    bench = commands.add_parser(
        "bench", help="the structured multi-response benchmark: curate, train a tiny model, score on held-out prompts"
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="16 train and 4 held-out entities, one seed: a minute or two on a CPU (default: 40 and 8, three seeds, about 10 minutes)",
    )
    bench.add_argument("--json", action="store_true", help="print exactly one JSON object")
    bench.add_argument(
        "--out", default="mrt-bench", help="working directory: corpora, curated sets, models, plot (default: mrt-bench)"
    )
    bench.add_argument("--embedder", default="minilm", help="embedder for curation (default: minilm)")
    bench.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.bench.experiment import FULL, QUICK, run_bench
    from mrtcurate.cli.render import print_bench
    from mrtcurate.report.plots import structured_benchmark

    require_train_extras("bench")
    out_dir = Path(args.out)
    with status("benchmark: curate, train, score", args.quiet or args.json):
        result = run_bench(out_dir, QUICK if args.quick else FULL, args.embedder)
    result["plot"] = str(structured_benchmark(result, out_dir / "bench.png"))
    write_inside(str(out_dir), "bench.json", (json.dumps(result, indent=2) + "\n").encode())
    if args.json:
        print(json.dumps(result))
        return
    print_bench(result, Console())
