"""What one candidate and one vector cost to cross a shuffle: Beam's default coder (pickle fallback for
a dataclass and a numpy array) against the job's compact coders (pipeline/coders.py).

    .venv/bin/python benchmarks/coders.py [--n 100000]

Prints encode + decode microseconds per element for each, the ratio, and the encoded sizes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from apache_beam import coders

from mrtcurate.pipeline.coders import CandidateCoder, MemberCoder
from mrtcurate.schemas import Candidate


def round_trip_us(coder: coders.Coder, value, n: int) -> tuple[float, int]:
    started = time.perf_counter()
    encoded = [coder.encode(value) for _ in range(n)]
    for item in encoded:
        coder.decode(item)
    return (time.perf_counter() - started) / n * 1e6, len(encoded[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    n = parser.parse_args().n
    candidate = Candidate(
        "p" * 16, "r" * 16, "question 12345 " * 3, "answer 1 to question 12345 " * 4, 0.5, "part-1.jsonl.gz"
    )
    vector = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    default = coders.FastPrimitivesCoder()
    for label, value, compact in (
        ("candidate", candidate, CandidateCoder()),
        ("candidate + 384-d vector", (candidate, vector), MemberCoder()),
    ):
        slow, slow_size = round_trip_us(default, value, n)
        fast, fast_size = round_trip_us(compact, value, n)
        print(
            f"{label}: default {slow:.2f} us ({slow_size} B), compact {fast:.2f} us ({fast_size} B), {slow / fast:.1f}x"
        )


if __name__ == "__main__":
    main()
