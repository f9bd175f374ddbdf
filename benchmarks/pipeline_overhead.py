"""Pipeline overhead: `mrt run` on N responses from ../shared/data/flask against a bare encode, by the embedder the
run itself uses (its default on this machine: int8 MiniLM on a CPU), of the same unique responses with the same
batch size, in one process.

    .venv/bin/python benchmarks/pipeline_overhead.py [--responses 10000] [--batch-size 64]

Prints both times and their ratio (target: <= 1.15). Embedding dominates on CPU, so the ratio is
what Beam, parsing, dedup, selection and Parquet writing add on top of the model's own work.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mrtcurate.ids import identity_key
from mrtcurate.runs.curate import run
from mrtcurate.schemas import build_config
from mrtcurate.vectors.embedders import load_embedder

FLASK = Path(__file__).resolve().parents[2] / "shared" / "data" / "flask" / "responses.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    with gzip.open(FLASK, "rt", encoding="utf-8") as source:
        lines = [line for _, line in zip(range(args.responses), source)]
    unique_texts = list(
        {identity_key(json.loads(line)["response"]): json.loads(line)["response"].strip() for line in lines}.values()
    )

    with tempfile.TemporaryDirectory() as workdir:
        corpus = Path(workdir) / "flask.jsonl"
        corpus.write_text("".join(lines), encoding="utf-8")

        config = build_config(
            {}, {"input": [str(corpus)], "output": str(Path(workdir) / "out"), "batch_size": args.batch_size}
        )
        embedder = load_embedder(config.embedding.embedder, config.embedding.max_tokens)
        embedder.encode(unique_texts[:64], batch_size=args.batch_size)  # warm-up, as the pipeline's first batch is
        started = time.perf_counter()
        embedder.encode(unique_texts, batch_size=args.batch_size)
        bare = time.perf_counter() - started

        started = time.perf_counter()
        outcome = run(config)
        pipeline = time.perf_counter() - started

    counts = outcome.manifest["counts"]
    print(
        f"responses: {len(lines):,}  unique texts: {len(unique_texts):,}  embedded by the pipeline: {outcome.metrics.get('embedded', 0):,}"
    )
    print(f"prompts: {counts['prompts']:,}  selected: {counts['selected']:,}")
    print(f"bare {config.embedding.embedder} encode:   {bare:.1f} s ({len(unique_texts) / bare:.0f} texts/s)")
    print(f"mrt run (whole job):             {pipeline:.1f} s")
    print(f"ratio pipeline / bare encode:    {pipeline / bare:.3f}  (target <= 1.15)")


if __name__ == "__main__":
    main()
