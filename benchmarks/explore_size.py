"""`mrt explore` at scale: the page's size and the time and peak memory of writing it, against polars reading
the same inputs (the least any rebuild of the pools must do) in the same script.

    .venv/bin/python benchmarks/explore_size.py [--responses 1000000] [--per-prompt 10] [--prompts 2000] [--dropped-texts]

It writes a corpus of RESPONSES answers, PER-PROMPT per prompt, curates it (random K=2, hashing embedder,
no planner, no near-duplicate test: the cheapest run, as the page's cost is the explorer's own), then times
`mrt explore` and `polars.read_ndjson` of the input in child processes (/usr/bin/time -v for wall and peak
memory of each whole process). With --dropped-texts the run writes every dropped response's text and the
explorer takes the pools from the dataset alone instead of rereading the input.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(command: list[str]) -> tuple[float, float, str]:
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = (float(part) if part else 0.0 for part in wall.groups())
    peak_kb = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return hours * 3600 + minutes * 60 + seconds, peak_kb / 1e6, result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--per-prompt", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=2_000, help="prompts on the page")
    parser.add_argument("--dropped-texts", action="store_true", help="curate with --dropped-texts")
    args = parser.parse_args()
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
    with tempfile.TemporaryDirectory(prefix="mrt-explore-bench-") as scratch:
        corpus = Path(scratch) / "corpus.jsonl"
        with corpus.open("w") as sink:
            for index in range(args.responses):
                prompt = index // args.per_prompt
                answer = " ".join(rng.choice(words) for _ in range(25))
                sink.write(
                    json.dumps(
                        {
                            "prompt": f"question {prompt}: {words[prompt % 12]}?",
                            "response": f"{index} {answer}",
                            "score": rng.random(),
                        }
                    )
                    + "\n"
                )
        curated = Path(scratch) / "curated"
        run = [
            str(BIN / "mrt"),
            "-q",
            "run",
            "--input",
            str(corpus),
            "--output",
            str(curated),
            "--k",
            "2",
            "--embedder",
            "hashing",
            "--no-plan",
            "--near-dup",
            "off",
            "--boilerplate-prompts",
            "off",
            "--reward-field",
            "score",
            *(["--dropped-texts"] if args.dropped_texts else []),
        ]
        curate_s, curate_gb, _ = timed(run)
        explore_s, explore_gb, said = timed(
            [str(BIN / "mrt"), "-q", "explore", str(curated), "--prompts", str(args.prompts)]
        )
        polars_s, polars_gb, _ = timed(
            [sys.executable, "-c", f"import polars as pl; print(pl.read_ndjson({str(corpus)!r}).height)"]
        )
        size_mb = (curated / "explorer.html").stat().st_size / 1e6
    print(
        f"{args.responses:,} responses, {args.responses // args.per_prompt:,} prompts; curate {curate_s:.1f} s, {curate_gb:.2f} GB"
    )
    print(
        f"mrt explore --prompts {args.prompts}: {explore_s:.1f} s, peak {explore_gb:.2f} GB, page {size_mb:.1f} MB ({said})"
    )
    print(
        f"polars reading the input: {polars_s:.1f} s, peak {polars_gb:.2f} GB; explore / polars = {explore_s / polars_s:.1f}x"
    )


if __name__ == "__main__":
    main()
