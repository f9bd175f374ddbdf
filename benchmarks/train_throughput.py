"""Training throughput: `mrt train` (weighted completion-only loss, packed) against plain TRL SFTTrainer
(packed, prompt-completion) on the same curated data, model, sequence length, batch size and device.

    .venv/bin/python benchmarks/train_throughput.py [--size 0.5b|tiny] [--steps 40] [--batch-size 4] [--max-length 2048]

The model is randomly initialised from a config (Qwen2.5-0.5B's shape for 0.5b: 494M parameters), the
tokenizer a word-level one trained on the data (nothing downloads). The data is instructgpt_samples from
../shared/data curated by `mrt run` (K=4, hashing embedder). Prints tokens/s for both, their ratio
(ours / TRL), and MFU where the GPU's peak bf16 rate is known. Needs `pip install trl`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pyarrow.parquet as pq
import torch

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "instructgpt_samples" / "responses.jsonl.gz"
# Dense bf16 peak per GPU, FLOP/s (vendor datasheets).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}
SIZES = {
    "0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 4096,
    },
}


def curate(out: Path) -> Path:
    from mrtcurate.runs.curate import run
    from mrtcurate.schemas import build_config

    config = build_config(
        {},
        {
            "input": [str(CORPUS)],
            "output": str(out / "curated"),
            "k": 4,
            "embedder": "hashing",
            "plan": False,
            "overwrite": True,
        },
    )
    return Path(run(config).output)


def build_model(curated: Path, out: Path, size: str, max_length: int) -> tuple[Path, int]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mrtcurate.train.tiny import build_tokenizer, save_random_model

    table = pq.read_table(curated / "data")
    tokenizer = build_tokenizer(table["prompt"].to_pylist() + table["completion"].to_pylist())
    shape = dict(SIZES[size])
    shape["vocab_size"] = max(shape["vocab_size"], len(tokenizer))
    config = Qwen2Config(
        **shape,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    directory = out / f"model-{size}"
    model = save_random_model(directory, Qwen2ForCausalLM, config, tokenizer)
    return directory, sum(p.numel() for p in model.parameters())


def run_ours(curated: Path, model: Path, out: Path, args) -> dict:
    from mrtcurate.schemas.train_config import build_train_config
    from mrtcurate.train.job import train

    config = build_train_config({
        "data": str(curated), "model": str(model), "output": str(out / "ours"), "max_steps": args.steps, "batch_size": args.batch_size,
        "max_length": args.max_length, "pack": True, "lr": 1e-4, "warmup_ratio": 0.0, "lr_scheduler": "constant",
        "save_steps": 10 ** 9, "logging_steps": args.steps, "overwrite": True, "progress": False,
    })  # fmt: skip
    metrics = train(config).train_metrics
    return {"tokens": metrics["num_input_tokens_seen"], "seconds": metrics["train_runtime"]}


def run_trl(curated: Path, model: Path, out: Path, args) -> dict:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    shards = sorted(str(p) for p in (curated / "data").glob("*.parquet"))
    dataset = load_dataset("parquet", data_files=shards, split="train").map(
        lambda row: {
            "prompt": [{"role": "user", "content": row["prompt"]}],
            "completion": [{"role": "assistant", "content": row["completion"]}],
        },
        remove_columns=[c for c in pq.read_schema(shards[0]).names],
    )  # conversational prompt-completion: TRL applies the same chat template as ours and masks the prompt
    cuda = torch.cuda.is_available()
    config = SFTConfig(
        output_dir=str(out / "trl"), max_steps=args.steps, per_device_train_batch_size=args.batch_size, max_length=args.max_length,
        packing=True, learning_rate=1e-4, lr_scheduler_type="constant", bf16=cuda and torch.cuda.is_bf16_supported(),
        save_strategy="no", logging_steps=args.steps, report_to="none", include_num_input_tokens_seen="non_padding",
        disable_tqdm=True, use_cpu=not cuda,
    )  # fmt: skip
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32),
        args=config,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(model),
    )
    metrics = trainer.train().metrics
    return {"tokens": metrics["num_input_tokens_seen"], "seconds": metrics["train_runtime"]}


def peak_flops(override: float | None) -> float | None:
    if override:
        return override * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument(
        "--peak-tflops", type=float, help="the device's dense bf16 peak, when not in the built-in table"
    )
    parser.add_argument("--out", default="benchmarks/out/train_throughput")
    args = parser.parse_args()

    from datasets.utils.logging import disable_progress_bar as quiet_datasets
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    quiet_datasets()
    out = Path(args.out)
    curated = curate(out)
    model, parameters = build_model(curated, out, args.size, args.max_length)
    results = {}
    for name, runner in (("trl", run_trl), ("mrt", run_ours)):
        started = time.perf_counter()
        results[name] = runner(curated, model, out, args)
        results[name]["tokens_per_second"] = results[name]["tokens"] / results[name]["seconds"]
        results[name]["wall_seconds"] = time.perf_counter() - started
    # Training FLOPs per token: 6 per parameter (forward + backward) plus causal attention,
    # 6 * layers * hidden * (sequence / 2) on average over a packed sequence.
    shape = SIZES[args.size]
    flops_per_token = 6 * parameters + 6 * shape["num_hidden_layers"] * shape["hidden_size"] * args.max_length / 2
    peak = peak_flops(args.peak_tflops)
    for entry in results.values():
        entry["mfu"] = entry["tokens_per_second"] * flops_per_token / peak if peak else None
    report = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "size": args.size, "parameters": parameters, "steps": args.steps, "batch_size": args.batch_size, "max_length": args.max_length,
        "results": results, "ratio_tokens_per_second": results["mrt"]["tokens_per_second"] / results["trl"]["tokens_per_second"],
    }  # fmt: skip
    (out / "train_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, entry in results.items():
        mfu = f", MFU {entry['mfu']:.1%}" if entry["mfu"] is not None else ""
        print(
            f"{name}: {entry['tokens']:,} tokens in {entry['seconds']:.1f} s = {entry['tokens_per_second']:,.0f} tokens/s{mfu}"
        )
    print(
        f"ratio mrt / trl tokens/s: {report['ratio_tokens_per_second']:.3f} on {report['device']} ({parameters / 1e6:.0f}M parameters)"
    )


if __name__ == "__main__":
    main()
