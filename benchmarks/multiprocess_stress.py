"""Stress the multi-process local runner: the same curation, repeated with two worker processes while
both cores are kept busy, against one single-worker reference run.

    .venv/bin/python benchmarks/multiprocess_stress.py [--responses 200000] [--repeats 5] [--no-load]

Each run is `mrt run` in a fresh process (random selector, nothing embedded, as issue 12's failing run).
Reports, per run: exit code, wall time, whether the manifest's accounting identity held, and whether
the shards are byte-identical to the reference. Exits 1 if any run failed or differed.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_corpus(directory: Path, responses: int, files: int = 8, seed: int = 0) -> list[Path]:
    """Flat gzipped JSONL: ten responses per prompt, about 10% exact duplicates."""
    rng = random.Random(seed)
    paths = [directory / f"part-{index}.jsonl.gz" for index in range(files)]
    with contextlib.ExitStack() as stack:
        sinks = [stack.enter_context(gzip.open(path, "wt", encoding="utf-8")) for path in paths]
        for index in range(responses):
            prompt = index // 10
            answer = rng.randrange(9) if rng.random() < 0.1 else index  # repeats of a few answers: exact duplicates
            record = {"prompt": f"question {prompt}", "response": f"answer {answer} to question {prompt}"}
            sinks[index % files].write(json.dumps(record) + "\n")
    return paths


def curate(inputs: list[Path], output: Path, beam_args: list[str]) -> tuple[int, float, str]:
    command = [sys.executable, "-m", "mrtcurate.cli", "-q", "run", "--output", str(output), "--selector", "random",
               "--near-dup", "off", "--no-plan", "--embedder", "hashing"]  # fmt: skip
    for path in inputs:
        command += ["--input", str(path)]
    started = time.perf_counter()
    result = subprocess.run([*command, "--", *beam_args], capture_output=True, text=True, check=False)
    return result.returncode, time.perf_counter() - started, result.stderr[-400:]


def shard_digest(output: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((output / "data").glob("*.parquet")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def identity_holds(output: Path) -> bool:
    counts = json.loads((output / "manifest.json").read_text())["counts"]
    return counts["input_records"] == counts["rejected"] + counts["duplicates_merged"] + counts["candidates"]


def _burn(_):
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-load", action="store_true", help="do not keep the cores busy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mrt-stress-") as scratch:
        root = Path(scratch)
        inputs = write_corpus(root, args.responses)
        code, seconds, error = curate(inputs, root / "reference", ["--direct_num_workers=1"])
        if code != 0:
            print(f"reference run failed: {error}")
            return 1
        reference = shard_digest(root / "reference")
        print(f"reference, 1 worker: {seconds:.1f} s")
        load = None if args.no_load else multiprocessing.Pool(os.cpu_count() or 2)
        if load is not None:
            load.map_async(_burn, range(os.cpu_count() or 2))
        failures = 0
        try:
            for repeat in range(args.repeats):
                output = root / f"run-{repeat}"
                code, seconds, error = curate(
                    inputs, output, ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
                )
                same = code == 0 and shard_digest(output) == reference
                holds = code == 0 and identity_holds(output)
                failures += not (same and holds)
                print(
                    f"run {repeat}, 2 workers{'' if args.no_load else ' under load'}: exit {code}, {seconds:.1f} s, identity {'holds' if holds else 'FAILED'}, shards {'identical' if same else 'DIFFER'}"
                    + ("" if code == 0 else f"; {error.strip().splitlines()[-1]}")
                )
        finally:
            if load is not None:
                load.terminate()
        print(f"{failures} of {args.repeats} runs failed or differed")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
