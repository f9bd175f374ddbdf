"""Fixed cost: a 20-record `mrt run` (the defaults: default embedder, selector, planner, report), cold in a fresh
process and warm in one that already ran it, against the imports alone that any such run pays first (apache_beam,
pyarrow, polars, onnxruntime, matplotlib), in the same script.

    .venv/bin/python benchmarks/fixed_cost.py [--repeats 3]

Prints the median wall time and the peak RSS of each, and the cold run's ratio to the imports (issue 22's target:
<= 3 s wall for the cold run on this 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

IMPORTS = "import apache_beam, pyarrow.parquet, polars, onnxruntime, matplotlib.pyplot"


def corpus(path: Path) -> Path:
    rows = [
        {
            "prompt": f"Question {prompt}: how would you explain topic {prompt}?",
            "response": f"Answer {answer} to {prompt}",
        }
        for prompt in range(4)
        for answer in range(5)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def child(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mrt = [sys.executable, "-m", "mrtcurate.cli", "-q", "run"]
    with tempfile.TemporaryDirectory() as workdir:
        data = corpus(Path(workdir) / "twenty.jsonl")
        imports = [child([sys.executable, "-c", IMPORTS]) for _ in range(args.repeats)]
        imports_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10
        cold = [
            child([*mrt, "--input", str(data), "--output", str(Path(workdir) / f"cold{i}")])
            for i in range(args.repeats)
        ]
        cold_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10

        from mrtcurate.runs.curate import run
        from mrtcurate.schemas import build_config

        warm = []
        for i in range(args.repeats + 1):
            config = build_config({}, {"input": [str(data)], "output": str(Path(workdir) / f"warm{i}")})
            started = time.perf_counter()
            run(config)
            warm.append(time.perf_counter() - started)
        warm_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10

    imports_s, cold_s, warm_s = statistics.median(imports), statistics.median(cold), statistics.median(warm[1:])
    print(f"imports alone ({IMPORTS}): {imports_s:.2f} s, peak RSS {imports_rss:.0f} MiB")
    print(
        f"20-record mrt run, cold:  {cold_s:.2f} s ({cold_s / imports_s:.1f}x the imports), peak RSS {cold_rss:.0f} MiB"
    )
    print(f"20-record run, warm (in-process, after one): {warm_s:.2f} s, peak RSS {warm_rss:.0f} MiB")
    print(f"target: cold <= 3 s: {'met' if cold_s <= 3 else 'missed'}")


if __name__ == "__main__":
    main()
