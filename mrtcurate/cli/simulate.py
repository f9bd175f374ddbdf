"""`mrt simulate`: controlled simulations of the theory (variance components, selection bias)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table


def register(commands) -> None:
    simulate = commands.add_parser("simulate", help="controlled simulations of the theory: variance or selection")
    simulate.add_argument("experiment", choices=["variance", "selection"])
    simulate.add_argument("--json", action="store_true", help="print exactly one JSON object")
    simulate.add_argument("--out", help="directory for the plot (default: none)")
    simulate.add_argument("--trials", type=int, help="Monte-Carlo trials (default: 2000 for variance, 5 for selection)")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.analysis import simulate
    from mrtcurate.report import plots

    if args.experiment == "variance":
        result = simulate.variance_grid(trials=args.trials or 2000, seed=args.seed)
        draw = plots.variance_simulation
    else:
        result = simulate.selection_bias(trials=args.trials or 5, seed=args.seed)
        draw = plots.selection_simulation
    if args.out:
        result["plot"] = str(draw(result, Path(args.out) / f"simulate_{args.experiment}.png"))
    if args.json:
        print(json.dumps(result))
        return
    table = Table(title=f"mrt simulate {args.experiment}", title_justify="left")
    if args.experiment == "variance":
        for column in ("P", "K", "P*K", "predicted", "observed"):
            table.add_column(column, justify="right")
        for row in result["grid"]:
            table.add_row(
                str(row["P"]), str(row["K"]), str(row["budget"]), f"{row['predicted']:.5f}", f"{row['observed']:.5f}"
            )
        footer = f"max relative error {result['max_relative_error']:.2%} over {result['trials']} trials"
    else:
        for column in ("strategy", "grad cosine", "cosine of mean", "bias norm", "mode coverage"):
            table.add_column(column, justify="right")
        for name, metrics in result["strategies"].items():
            table.add_row(
                name,
                *(f"{metrics[key]:.3f}" for key in ("grad_cosine", "mean_grad_cosine", "bias_norm", "mode_coverage")),
            )
        footer = f"mode probabilities {result['probabilities']}, reward prefers modes {result['preferred_modes']}"
    out = Console()
    out.print(table)
    out.print(footer + (f"; plot: {result['plot']}" if "plot" in result else ""), highlight=False)
