"""Incremental refresh: a cold `mrt refresh`, then one after adding 10% new responses, then one with
nothing changed, on a corpus of ../shared/data with the real MiniLM embedder, in one process.

    .venv/bin/python benchmarks/refresh.py [--corpus flask] [--responses 3000]

Prints the time ratio warm / cold (target <= 0.2), the embeddings each refresh computed (the warm one
must equal the new unique responses) and the no-change time.
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
from mrtcurate.runs.refresh import refresh
from mrtcurate.schemas import build_config

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def timed(root: Path, config):
    started = time.perf_counter()
    outcome = refresh(str(root), config)
    return time.perf_counter() - started, outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=3000)
    parser.add_argument(
        "--corpus",
        default="flask",
        help="a folder of ../shared/data (flask: long responses; instructgpt_samples: short ones)",
    )
    args = parser.parse_args()
    with gzip.open(SHARED_DATA / args.corpus / "responses.jsonl.gz", "rt", encoding="utf-8") as source:
        lines = [line for _, line in zip(range(args.responses * 11 // 10), source)]
    cold_lines, added_lines = lines[: args.responses], lines[args.responses :]
    seen = {identity_key(json.loads(line)["response"]) for line in cold_lines}
    new_unique = len({identity_key(json.loads(line)["response"]) for line in added_lines} - seen)
    with tempfile.TemporaryDirectory() as workdir:
        data = Path(workdir) / "data"
        data.mkdir()
        (data / "part-0.jsonl").write_text("".join(cold_lines), encoding="utf-8")
        config = build_config({"input": [str(data / "*.jsonl")], "reward_field": "score"}, {})
        root = Path(workdir) / "root"
        cold_s, cold = timed(root, config)
        (data / "part-1.jsonl").write_text("".join(added_lines), encoding="utf-8")
        time.sleep(1.0)  # snapshot names carry the second
        warm_s, warm = timed(root, config)
        same_s, same = timed(root, config)
    print(
        f"cold refresh:      {cold_s:6.1f} s, {cold.run.metrics.get('embedded', 0):,} responses embedded ({len(cold_lines):,} lines)"
    )
    print(
        f"+10% refresh:      {warm_s:6.1f} s, {warm.run.metrics.get('embedded', 0):,} embedded, {warm.run.metrics.get('cache_hits', 0):,} from the cache; new unique responses: {new_unique:,}"
    )
    print(f"no-change refresh: {same_s:6.1f} s ({'nothing to do' if same.run is None else 'RAN A JOB'})")
    print(f"ratio +10% / cold: {warm_s / cold_s:.3f}  (target <= 0.2)")


if __name__ == "__main__":
    main()
