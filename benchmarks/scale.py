"""Scale: `mrt run` on a generated corpus, one fresh process per configuration, against a polars baseline
doing the same essential work (read, normalise, exact dedup with multiplicity, K per prompt by a hash,
write Parquet) in the same script.

    .venv/bin/python benchmarks/scale.py [--responses 1000000] [--prompts 100000] [--configs random,random-1worker,qd,qd-1worker]

Prints, per configuration: wall time, peak RSS of the child process tree (the summed RSS of the tree polled from
/proc, or wait4's single-process peak where larger), the ratio to the polars baseline, and whether the
shards of the default (`--workers auto`: one worker process per core for an input this size) are byte-identical to
one worker's. polars, too, uses every core.
Targets on a 2-core machine (issue 22): at 1,000,000 responses random <= 8x polars, qd with the hashing
embedder <= 90 s and <= 3 GB, several workers identical to one and >= 1.3x faster; at 10,000,000 random <= 6x
polars and <= 6 GB. The GroupByKey count of the default graph is printed beside each figure (target <= 6).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl

CONFIGS = {
    "random": ["--selector", "random", "--near-dup", "off", "--no-plan"],
    "random-1worker": ["--selector", "random", "--near-dup", "off", "--no-plan", "--workers", "1"],
    # The boilerplate count (a keyed count over the whole corpus, on by default) left out: its cost is the difference.
    "random-no-boilerplate": ["--selector", "random", "--near-dup", "off", "--no-plan", "--boilerplate-prompts", "off"],
    "qd": ["--selector", "qd", "--embedder", "hashing"],
    "qd-1worker": ["--selector", "qd", "--embedder", "hashing", "--workers", "1"],
    "qd-no-boilerplate": ["--selector", "qd", "--embedder", "hashing", "--boilerplate-prompts", "off"],
    # The distilled static table: the fastest embedder that carries meaning (target at 1M: <= 3 min).
    "qd-static": ["--selector", "qd", "--embedder", "static"],
}
ONE_WORKER = "-1worker"
K = 4


def write_corpus(directory: Path, responses: int, prompts: int, files: int = 8, seed: int = 0) -> list[Path]:
    """Flat gzipped JSONL: each prompt has a few answer modes; responses are worded variants of a mode,
    and about 10% repeat an earlier response exactly."""
    rng = random.Random(seed)
    paths = [directory / f"part-{index}.jsonl.gz" for index in range(files)]
    with contextlib.ExitStack() as stack:
        sinks = [stack.enter_context(gzip.open(path, "wt", encoding="utf-8", compresslevel=3)) for path in paths]
        for index in range(responses):
            prompt = index % prompts
            mode = rng.randrange(3)
            variant = rng.randrange(4) if rng.random() < 0.1 else index
            record = {
                "prompt": f"Question {prompt}: how would you approach problem {prompt * 7 % 1000}?",
                "response": f"Approach {mode} to question {prompt}, worded as variant {variant}: start from case {mode}.",
                "reward": round(rng.random(), 3),
            }
            sinks[index % files].write(json.dumps(record) + "\n")
    return paths


def polars_baseline(inputs: list[Path], output: Path) -> float:
    started = time.perf_counter()
    frames = [pl.read_ndjson(io.BytesIO(gzip.decompress(path.read_bytes()))) for path in inputs]
    table = (
        pl.concat(frames)
        .with_columns(pl.col("prompt").str.strip_chars(), pl.col("response").str.strip_chars())
        .group_by("prompt", "response")
        .agg(pl.len().alias("multiplicity"), pl.col("reward").max())
        .with_columns(pl.concat_str("prompt", "response").hash(seed=0).alias("draw"))
        .sort("prompt", "draw")
        .group_by("prompt", maintain_order=True)
        .head(K)
    )
    output.mkdir(parents=True)
    table.write_parquet(output / "part-0.parquet")
    return time.perf_counter() - started


def curate(inputs: list[Path], output: Path, config: list[str]) -> tuple[int, float, int, str]:
    """Exit code, wall seconds, peak RSS in bytes of the child and its descendants, stderr tail."""
    mrt_args, _, beam_args = " ".join(config).partition(" -- ")
    command = [
        sys.executable,
        "-m",
        "mrtcurate.cli",
        "-q",
        "run",
        "--output",
        str(output),
        "--k",
        str(K),
        *mrt_args.split(),
    ]
    for path in inputs:
        command += ["--input", str(path)]
    if beam_args:
        command += ["--", *beam_args.split()]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        tree_peak = TreePeak(child.pid)
        tree_peak.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        tree_peak.stop.set()
        tree_peak.join()
        errors.seek(0)
        tail = errors.read().decode(errors="replace")[-300:]
    # wait4's figure is the largest single process of the tree: with worker processes the sum is what counts.
    return os.waitstatus_to_exitcode(status), seconds, max(usage.ru_maxrss * 1024, tree_peak.peak), tail


class TreePeak(threading.Thread):
    """The largest sum of resident memory over a process and its descendants, polled from /proc every 0.2 s
    (a peak shorter than that can be missed, so the larger of this and wait4's single-process peak is reported)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            self.peak = max(self.peak, sum(_rss(pid) for pid in _tree(self.pid)))


def _tree(pid: int) -> list[int]:
    pids, index = [pid], 0
    while index < len(pids):
        try:
            tasks = os.listdir(f"/proc/{pids[index]}/task")
            for task in tasks:
                with open(f"/proc/{pids[index]}/task/{task}/children") as children:
                    pids += [int(child) for child in children.read().split()]
        except OSError:  # the process ended between two reads
            pass
        index += 1
    return pids


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError):
        return 0


def shard_digest(output: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((output / "data").glob("*.parquet")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mrt-scale-") as scratch:
        root = Path(scratch)
        inputs = write_corpus(root, args.responses, args.prompts)
        # Every mrt run before the polars baseline and the graph sizes: a child's peak RSS from wait4 starts at
        # its parent's RSS when it was forked (Linux carries the high-water mark across exec), so a parent
        # holding the baseline's frames reported them as the child's (3.03 GB for a 1.25 GB run at 4M).
        runs = {name: curate(inputs, root / name, CONFIGS[name]) for name in args.configs.split(",")}
        baseline = polars_baseline(inputs, root / "polars")
        from mrtcurate.pipeline.launch import usable_cores  # imported after the runs, as graph_size's imports are

        print(
            f"{args.responses:,} responses over {args.prompts:,} prompts, {usable_cores()} cores; "
            f"polars baseline: {baseline:.1f} s"
        )
        digests, failed = {}, False
        for name, (code, seconds, peak, tail) in runs.items():
            output = root / name
            transforms, shuffles = graph_size(inputs, output, CONFIGS[name])
            line = (
                f"{name}: exit {code}, {seconds:.1f} s ({seconds / baseline:.1f}x polars), peak RSS {peak / 2**30:.2f} GB; "
                f"graph: {transforms} primitive transforms, {shuffles} GroupByKeys"
            )
            if code == 0:
                digests[name] = shard_digest(output)
                if name.endswith(ONE_WORKER) and name.removesuffix(ONE_WORKER) in digests:
                    same = digests[name] == digests[name.removesuffix(ONE_WORKER)]
                    line += f", shards {'identical to' if same else 'DIFFER from'} the default's"
                    failed |= not same
            else:
                line += f": {tail.strip().splitlines()[-1] if tail.strip() else ''}"
                failed = True
            print(line, flush=True)
        return 1 if failed else 0


def graph_size(inputs: list[Path], output: Path, options: list[str]) -> tuple[int, int]:
    """Primitive transforms and GroupByKeys of the job's graph for these options, built (not run) in this process."""
    from apache_beam.portability import common_urns

    from mrtcurate.cli.curate import run_parser
    from mrtcurate.cli.options import option_values
    from mrtcurate.pipeline.graph import build
    from mrtcurate.pipeline.launch import new_pipeline
    from mrtcurate.runs.preflight import resolve_inputs
    from mrtcurate.schemas import build_config

    mrt_options = " ".join(options).partition(" -- ")[0].split()
    arguments = [*(f"--input={path}" for path in inputs), "--output", str(output), "--k", str(K), *mrt_options]
    config = build_config({}, option_values(run_parser().parse_args(arguments)))
    pipeline = new_pipeline([])
    build(pipeline, config, resolve_inputs(config), str(output))
    transforms = pipeline.to_runner_api().components.transforms.values()
    primitive = [transform for transform in transforms if not transform.subtransforms]
    shuffles = sum(transform.spec.urn == common_urns.primitives.GROUP_BY_KEY.urn for transform in primitive)
    return len(primitive), shuffles


if __name__ == "__main__":
    sys.exit(main())
