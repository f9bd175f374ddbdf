"""The `mrt` command. Options mirror RunConfig; everything after `--` goes to Beam's PipelineOptions."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import nullcontext

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from mrtcurate import __version__
from mrtcurate.errors import UserError

console = Console(stderr=True)


class _Parser(argparse.ArgumentParser):
    """argparse prints its usage block and exits on a bad value; ours is one line, exit code 2, like every
    other error before a job starts. Subcommand parsers inherit this class."""

    def error(self, message: str):
        console.print(f"[red]error:[/red] {self.prog}: {message}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _k_value(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number or auto") from None


def _threshold_or_off(value: str) -> float | str:
    if value.lower() == "off":
        return "off"
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number or off") from None


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    # Every default is None so that only flags the user typed override the --config file.
    add = parser.add_argument
    add("--config", help="YAML file whose keys are these options' long names with - as _")
    add("--input", action="append", help="file pattern (local glob or gs://...); repeatable")
    add("--output", help="output directory")
    add("--format", choices=["auto", "jsonl", "parquet", "csv"], help="input format (default: by extension)")
    add("--layout", choices=["auto", "flat", "grouped", "chat", "pairs"], help="record layout (default: auto)")
    add("--prompt-field", help="field holding the prompt (default: prompt)")
    add("--response-field", help="field holding the response, or a list of them (default: response)")
    add("--reward-field", help="field holding a numeric reward (default: none)")
    add("--id-field", help="field holding a prompt id to group by (default: the prompt text's hash)")
    add("--source-field", help="field naming each record's source (default: the file name)")
    add("--messages-field", help="chat layout: the list of {role, content} turns (default: messages)")
    add("--chosen-field", help="pairs layout: preferred response (default: chosen)")
    add("--rejected-field", help="pairs layout: dispreferred response (default: rejected)")
    add("--max-chars", type=int, help="records longer than this are rejected (default: 100000)")
    add("--selector", choices=["random", "topk", "qd"], help="random (unbiased), topk (reward, biased) or qd (quality-diversity) (default: random)")
    add("--k", type=_k_value, help="responses kept per prompt, or auto for the planner's recommended K (default: 4)")
    add("--seed", type=int, help="seed of every random choice (default: 0)")
    add("--lambda", type=float, help="qd: weight of quality against diversity, in [0, 1] (default: 0.5)")
    add("--quality-norm", choices=["rank", "minmax"], help="qd: reward to quality within a pool (default: rank)")
    add("--similarity", choices=["cosine", "shifted"], help="qd: max(cos, 0) or (1 + cos) / 2 (default: cosine)")
    add("--diversity", choices=["facility", "logdet"], help="qd: facility location or DPP log-det (default: facility)")
    add("--optimizer", choices=["lazy", "naive", "stochastic"], help="qd: greedy variant (default: lazy)")
    add("--sparse-above", type=int, help="qd: pools larger than this use a FAISS kNN graph (default: 4096)")
    add("--neighbours", type=int, help="qd: neighbours per candidate in the kNN graph (default: 32)")
    add("--hot-above", type=int, help="pools larger than this are split and selected in two stages (default: 50000)")
    add("--part-size", type=int, help="candidates per part of a split pool (default: 8192)")
    add("--weighting", choices=["prompt", "row"], help="row weights: sum to 1 per prompt, or 1 each (default: prompt)")
    add("--near-dup", type=_threshold_or_off, help="cosine at which responses to one prompt merge, or off (default: 0.95)")
    add("--merge-prompts", type=_threshold_or_off, help="cosine at which prompts merge into one group, or off (default: off)")
    add("--embedder", help="minilm (default), hashing, or a sentence-transformers path or name")
    add("--batch-size", type=int, help="embedding batch size (default: 64)")
    add("--shards", type=int, help="number of output shards (default: by size, ~256 MB each)")
    add("--overwrite", action="store_true", default=None, help="replace a non-empty output directory")
    _add_plan_options(parser)


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--plan", action=argparse.BooleanOptionalAction, default=None, help="run the variance-budget planner (default: on)")
    add("--feature-column", help="planner feature: a column holding a list of floats per row (default: the response embeddings)")
    add("--tolerance", type=float, help="planner: recommended K is the smallest within this of V(inf) (default: 0.1)")
    add("--cost-ratio", type=float, help="planner: c_p / c_r; given, the recommendation is K* (default: none)")
    add("--redundancy-threshold", type=float, help="planner: prompt cosine that counts as the same prompt (default: 0.95)")


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    # Defaults live in TrainConfig; None here means "not given".
    add = parser.add_argument
    add("--data", required=True, help="a dataset written by mrt run (manifest and checksums verified), or Parquet with prompt/completion")
    add("--model", required=True, help="a causal LM: local path or name (loaded offline unless HF_HUB_OFFLINE=0)")
    add("--output", required=True, help="local directory for checkpoints, the final model and train_summary.json")
    add("--eval-data", help="held-out prompts with several references each: multi-reference NLL")
    add("--epochs", type=float, help="passes over the data (default: 1)")
    add("--max-steps", type=int, help="optimizer steps; overrides --epochs (default: -1, off)")
    add("--batch-size", type=int, help="sequences per device per step (default: 8)")
    add("--grad-accum", type=int, help="gradient accumulation steps (default: 1)")
    add("--lr", type=float, help="peak learning rate (default: 2e-5)")
    add("--lr-scheduler", choices=["cosine", "linear", "constant", "constant_with_warmup"], help="(default: cosine)")
    add("--warmup-ratio", type=float, help="share of steps warming up (default: 0.03)")
    add("--weight-decay", type=float, help="(default: 0)")
    add("--max-length", type=int, help="tokens per example or packed sequence; longer completions are cut (default: 1024)")
    add("--pack", action=argparse.BooleanOptionalAction, default=None, help="pack examples into --max-length sequences (default: off)")
    add("--precision", choices=["auto", "bf16", "fp16", "fp32"], help="auto: bf16 on CUDA GPUs that support it, else fp32")
    add("--gradient-checkpointing", action="store_true", default=None, help="trade compute for activation memory")
    add("--lora-r", type=int, help="LoRA rank; 0 fine-tunes every weight (default: 0)")
    add("--lora-alpha", type=int, help="(default: 16)")
    add("--lora-dropout", type=float, help="(default: 0.05)")
    add("--lora-targets", help="all-linear or comma-separated module names (default: all-linear)")
    add("--logging-steps", type=int, help="(default: 10)")
    add("--save-steps", type=int, help="checkpoint every N steps (default: 500)")
    add("--save-total-limit", type=int, help="checkpoints kept (default: 2)")
    add("--eval-steps", type=int, help="evaluate every N steps as well as at the end (default: end only)")
    add("--eval-batch-size", type=int, help="(default: 16)")
    add("--resume", action="store_true", default=None, help="continue from the last checkpoint in --output")
    add("--overwrite", action="store_true", default=None, help="replace a non-empty --output")
    add("--seed", type=int, help="(default: 0)")


def run_parser() -> argparse.ArgumentParser:
    """The options of `mrt run` alone (the flex template launcher maps its parameters onto these)."""
    parser = _Parser(prog="mrt run", add_help=False)
    _add_run_options(parser)
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mrt", description="Curate prompt-response corpora into multi-response fine-tuning sets.")
    parser.add_argument("--version", action="version", version=f"mrtcurate {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="curate a corpus: mrt run --input PATTERN --output DIR [options] [-- beam options]")
    _add_run_options(run)
    plan = commands.add_parser("plan", help="is K > 1 worth it, and which K: mrt plan --input PATTERN [ingest options] [--json]")
    _add_run_options(plan)
    plan.add_argument("--json", action="store_true", help="print exactly one JSON object")
    refresh = commands.add_parser("refresh", help="publish a new snapshot under ROOT if inputs or config changed")
    refresh.add_argument("--root", required=True, help="ROOT holding snapshots/, LATEST and cache/ (local or gs://)")
    refresh.add_argument("--config", required=True, help="the run's YAML config (its output is ignored)")
    refresh.add_argument("--keep", type=int, help="after publishing, keep only the newest N snapshots")
    report = commands.add_parser("report", help="write DIR/report.html for a dataset written by mrt run")
    report.add_argument("directory")
    simulate = commands.add_parser("simulate", help="controlled simulations of the theory: variance or selection")
    simulate.add_argument("experiment", choices=["variance", "selection"])
    simulate.add_argument("--json", action="store_true", help="print exactly one JSON object")
    simulate.add_argument("--out", help="directory for the plot (default: none)")
    simulate.add_argument("--trials", type=int, help="Monte-Carlo trials (default: 2000 for variance, 5 for selection)")
    simulate.add_argument("--seed", type=int, default=0)
    _add_train_options(commands.add_parser("train", help="fine-tune a causal LM on a curated dataset: mrt train --data DIR --model NAME_OR_PATH --output DIR"))
    bench = commands.add_parser("bench", help="the structured multi-response benchmark: curate, train a tiny model, score on held-out prompts")
    bench.add_argument("--quick", action="store_true", help="16 train and 4 held-out entities, one seed: a minute or two on a CPU (default: 40 and 8, three seeds, about 10 minutes)")
    bench.add_argument("--json", action="store_true", help="print exactly one JSON object")
    bench.add_argument("--out", default="mrt-bench", help="working directory: corpora, curated sets, models, plot (default: mrt-bench)")
    bench.add_argument("--embedder", default="minilm", help="embedder for curation (default: minilm)")
    demo = commands.add_parser("demo", help="curate a built-in sample corpus into ./mrt-demo/")
    demo.add_argument("--dir", default="mrt-demo", help="where the sample and its curated output go")
    demo.add_argument("--embedder", default="minilm", help="embedder for the demo (default: minilm)")
    return parser


def _run_options(args: argparse.Namespace) -> dict:
    skip = {"command", "config", "quiet", "dir", "json", "directory", "experiment", "out", "trials"}
    return {name: value for name, value in vars(args).items() if name not in skip}


def _curate(config, beam_args: list[str], quiet: bool) -> None:
    from mrtcurate.pipeline.graph import run
    from mrtcurate.summary import print_summary

    with console.status("curating: read, dedup, embed, select, write", spinner="dots") if not quiet else nullcontext():
        outcome = run(config, beam_args)
    print_summary(outcome, Console())
    Console().print(f"report: {outcome.report}", highlight=False)


def _refresh(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.pipeline.refresh import refresh
    from mrtcurate.schemas import build_config, load_yaml
    from mrtcurate.summary import print_summary

    config = build_config({**load_yaml(args.config), "output": None}, {})
    with console.status("refreshing", spinner="dots") if not args.quiet else nullcontext():
        outcome = refresh(args.root, config, beam_args, args.keep)
    out = Console()
    if outcome.run is None:
        out.print(f"unchanged: inputs and config match LATEST (fingerprint {outcome.fingerprint}); nothing to do", highlight=False)
        return
    print_summary(outcome.run, out)
    out.print(f"published {outcome.snapshot}; LATEST updated" + (f"; pruned {', '.join(outcome.pruned)}" if outcome.pruned else ""), highlight=False)


def _require_train_extras(command: str) -> None:
    import importlib.util

    missing = [name for name in ("transformers", "accelerate", "peft") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"mrt {command} needs the train extras ({', '.join(missing)} missing): pip install 'mrtcurate[train]'")


def _train(args: argparse.Namespace) -> None:
    from mrtcurate.schemas.train_config import build_train_config
    from mrtcurate.train.job import SUMMARY_FILE, train

    _require_train_extras("train")
    values = {name: value for name, value in vars(args).items() if name not in ("command", "quiet")}
    outcome = train(build_train_config({**values, "progress": not args.quiet}))
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, one process reports
    table = Table(title=f"mrt train: {outcome.output}", title_justify="left", show_header=False)
    for name, value in {**outcome.train_metrics, **outcome.eval_metrics}.items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    out = Console()
    out.print(table)
    out.print(f"model and tokenizer: {outcome.output}; summary: {outcome.output / SUMMARY_FILE}", highlight=False)


def _bench(args: argparse.Namespace) -> None:
    from pathlib import Path

    from mrtcurate.analysis.plots import structured_benchmark
    from mrtcurate.bench.experiment import FULL, QUICK, run_bench
    from mrtcurate.summary import print_bench

    _require_train_extras("bench")
    out_dir = Path(args.out)
    with console.status("benchmark: curate, train, score", spinner="dots") if not (args.quiet or args.json) else nullcontext():
        result = run_bench(out_dir, QUICK if args.quick else FULL, args.embedder)
    result["plot"] = str(structured_benchmark(result, out_dir / "bench.png"))
    (out_dir / "bench.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
        return
    print_bench(result, Console())


def _simulate(args: argparse.Namespace) -> None:
    from pathlib import Path

    from mrtcurate.analysis import plots, simulate

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
            table.add_row(str(row["P"]), str(row["K"]), str(row["budget"]), f"{row['predicted']:.5f}", f"{row['observed']:.5f}")
        footer = f"max relative error {result['max_relative_error']:.2%} over {result['trials']} trials"
    else:
        for column in ("strategy", "grad cosine", "cosine of mean", "bias norm", "mode coverage"):
            table.add_column(column, justify="right")
        for name, metrics in result["strategies"].items():
            table.add_row(name, *(f"{metrics[key]:.3f}" for key in ("grad_cosine", "mean_grad_cosine", "bias_norm", "mode_coverage")))
        footer = f"mode probabilities {result['probabilities']}, reward prefers modes {result['preferred_modes']}"
    out = Console()
    out.print(table)
    out.print(footer + (f"; plot: {result['plot']}" if "plot" in result else ""), highlight=False)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    beam_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, beam_args = argv[:split], argv[split + 1 :]
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads at run time
    logging.basicConfig(
        level=logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )
    logging.getLogger("mrtcurate").setLevel(logging.WARNING if args.quiet else logging.INFO)
    if args.quiet:
        _silence_model_loading()
    # Beam warns at import about optional GCP clients that local runs never use.
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    try:
        from mrtcurate.schemas import build_config, load_yaml

        if args.command == "run":
            file_values = load_yaml(args.config) if args.config else {}
            _curate(build_config(file_values, _run_options(args)), beam_args, args.quiet)
        elif args.command == "plan":
            from mrtcurate.pipeline.graph import run_plan
            from mrtcurate.summary import print_plan

            file_values = load_yaml(args.config) if args.config else {}
            with console.status("planning: read, dedup, embed, estimate", spinner="dots") if not args.quiet else nullcontext():
                summary = run_plan(build_config(file_values, _run_options(args)), beam_args)
            if args.json:
                print(json.dumps(summary))
            else:
                print_plan(summary, Console())
        elif args.command == "refresh":
            _refresh(args, beam_args)
        elif args.command == "report":
            from mrtcurate.analysis.report import write_report

            print(write_report(args.directory))
        elif args.command == "bench":
            _bench(args)
        elif args.command == "train":
            _train(args)
        elif args.command == "simulate":
            _simulate(args)
        elif args.command == "demo":
            from mrtcurate.demo import demo_config

            _curate(demo_config(args.dir, args.embedder), beam_args, args.quiet)
    except UserError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        # The run's own cleanup (staging removed, nothing published) has already happened on the way out.
        console.print("interrupted: nothing was published", highlight=False)
        return 130
    return 0


def _silence_model_loading() -> None:
    """-q: no progress bars from the libraries that load models (environment variables, so that Beam's
    worker processes inherit them too)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    os.environ["TQDM_DISABLE"] = "1"


if __name__ == "__main__":
    sys.exit(main())
