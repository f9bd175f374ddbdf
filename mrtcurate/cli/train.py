"""`mrt train`: fine-tune a causal LM on a curated dataset (options: schemas/train_config.py)."""

from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.table import Table

from mrtcurate.cli.common import require_train_extras


def register(commands) -> None:
    train = commands.add_parser("train", help="fine-tune a causal LM on a curated dataset: mrt train --data DIR --model NAME_OR_PATH --output DIR")
    _add_train_options(train)
    train.set_defaults(handler=_train)


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
