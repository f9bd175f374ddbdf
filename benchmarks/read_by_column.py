"""The read by column (ingest/columnar.py) against the per-record parser it falls back to, on the same records:
parse a generated flat corpus (benchmarks/scale.py's) to candidates both ways, in this process, with the job's
collector settings.

    .venv/bin/python benchmarks/read_by_column.py [--responses 1000000]

Prints each way's seconds (reading the gzip and the JSON lines included, as the job's read stage does), the
ratio, and this process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import write_corpus

from mrtcurate.garbage import tune_collector
from mrtcurate.ingest.columnar import BLOCK_RECORDS, block_units
from mrtcurate.ingest.files import open_binary
from mrtcurate.ingest.formats import iter_records
from mrtcurate.ingest.layouts import FieldMapping, to_units

MAPPING = FieldMapping(layout="flat", reward="reward")


def by_record(paths: list[Path]) -> int:
    units = 0
    for path in paths:
        with open_binary(str(path)) as stream:
            for record in iter_records(stream, "jsonl", str(path), 100_000):
                units += sum(1 for _ in to_units(record, MAPPING, str(path)))
    return units


def by_column(paths: list[Path]) -> int:
    units = 0
    for path in paths:
        with open_binary(str(path)) as stream:
            block = []
            for record in iter_records(stream, "jsonl", str(path), 100_000):
                block.append(record)
                if len(block) == BLOCK_RECORDS:
                    units += sum(len(found) for found in block_units(block, MAPPING, str(path)))
                    block = []
            units += sum(len(found) for found in block_units(block, MAPPING, str(path)))
    return units


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=1_000_000)
    args = parser.parse_args()
    tune_collector(freeze=True)
    with tempfile.TemporaryDirectory(prefix="mrt-read-") as scratch:
        paths = write_corpus(Path(scratch), args.responses, args.responses // 10)
        timings = {}
        for name, read in (("per record", by_record), ("by column", by_column)):
            started = time.perf_counter()
            units = read(paths)
            timings[name] = time.perf_counter() - started
            print(f"{name}: {timings[name]:.2f} s for {units:,} candidates", flush=True)
    ratio = timings["per record"] / timings["by column"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"by column is {ratio:.2f}x the per-record parser; peak RSS {peak:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
