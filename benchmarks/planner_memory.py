"""The planner's memory against the prompt count: the job's global combine (pipeline/plan.SumStatistics) fed
synthetic per-prompt statistics, one group of one prompt at a time, with peak RSS of the process.
The baseline in the same script is the representation the planner had before: every prompt's vector sum
gathered in one element (P x D float64), allocated and touched for --baseline-prompts prompts.

    .venv/bin/python benchmarks/planner_memory.py [--prompts 10000000] [--dimensions 384] [--baseline-prompts 1000000]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from mrtcurate.pipeline.plan import SumStatistics


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=10_000_000)
    parser.add_argument("--dimensions", type=int, default=384)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--baseline-prompts", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    block = 4096
    means = rng.normal(size=(block, args.dimensions)) / np.sqrt(args.dimensions)
    combine = SumStatistics(args.replicates, seed=0)
    accumulator = combine.create_accumulator()
    started, before = time.perf_counter(), peak_gb()
    for index in range(args.prompts):
        count = 1 + index % 7
        total = means[index % block] * count
        accumulator = combine.add_input(
            accumulator, (index, {f"prompt-{index}": [count, total, float(total @ total) / count + count, ""]})
        )
    moments = combine.extract_output(accumulator).moments
    seconds = time.perf_counter() - started
    estimate = moments.components()
    print(
        f"moments of {args.prompts:,} prompts (D={args.dimensions}, {args.replicates} replicates): {seconds:.0f} s, "
        f"peak RSS {peak_gb():.2f} GB (before the loop {before:.2f} GB); sigma_b2 {estimate.sigma_b2:.4g}, sigma_w2 {estimate.sigma_w2:.4g}",
        flush=True,
    )
    started = time.perf_counter()
    gathered = np.ones((args.baseline_prompts, args.dimensions))  # the old planner's one element, touched
    print(
        f"baseline: {args.baseline_prompts:,} prompts' sums gathered in one element: {gathered.nbytes / 1024**3:.2f} GB "
        f"(peak RSS now {peak_gb():.2f} GB); at {args.prompts:,} prompts it would be "
        f"{args.prompts * args.dimensions * 8 / 1024**3:.1f} GB; {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
