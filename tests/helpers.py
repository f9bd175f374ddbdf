"""Shared test helpers: run the real pipeline on the DirectRunner and read what it wrote."""

from pathlib import Path

import pyarrow.parquet as pq

from mrtcurate.runs.curate import RunOutcome, run
from mrtcurate.schemas import build_config


def local_pipeline(beam_args: tuple[str, ...] = ()):
    """The pipeline stage tests build: on the local runner the product pins (pipeline/launch.new_pipeline),
    never a bare beam.Pipeline(), whose DirectRunner tries to download Prism first."""
    from mrtcurate.pipeline.launch import new_pipeline

    return new_pipeline(list(beam_args))


# Threads of one process, each stage's input split over them: several bundles per stage, at little cost.
SEVERAL_BUNDLES = ("--direct_num_workers=3", "--direct_running_mode=multi_threading")


def no_files():
    """The record locations of a stage test's candidates, which no input file holds: rows name no file."""
    from mrtcurate.pipeline.read import Locations
    from mrtcurate.schemas.records import RecordLocator

    return Locations(RecordLocator(()))


def curate(inputs, output: Path, beam_args=None, **options) -> RunOutcome:
    options.setdefault("embedder", "hashing")
    config = build_config({}, {"input": [str(path) for path in inputs], "output": str(output), **options})
    return run(config, beam_args)


def shard_bytes(output: Path, table: str = "data") -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((output / table).glob("*.parquet"))}


def read_rows(output: Path, subdir: str = "data") -> list[dict]:
    return pq.read_table(sorted((output / subdir).glob("*.parquet"))).to_pylist()


def collect_to(pcoll, path: Path, label: str):
    """Write a PCollection of JSON-serialisable elements to one file, read back with `collected` after
    the pipeline finished (DoFns are pickled, so appending to a test's list would touch a copy)."""
    import json

    import apache_beam as beam

    return (
        pcoll
        | f"{label}Json" >> beam.Map(json.dumps, sort_keys=True)
        | f"{label}Write" >> beam.io.WriteToText(str(path), shard_name_template="")
    )


def collected(path: Path) -> list:
    import json

    return [json.loads(line) for line in Path(path).read_text().splitlines()] if Path(path).exists() else []
