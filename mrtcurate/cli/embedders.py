"""`mrt embedders`: the built-in embedders, whether their artifacts are built here, and how fast they run."""

from __future__ import annotations

import argparse
import json
import random
import re

from rich.console import Console
from rich.table import Table

from mrtcurate.cli.common import status

_MEASURE_TEXTS = 256
_WORDS_PER_TEXT = 60  # about a typical chat response


def register(commands) -> None:
    embedders = commands.add_parser(
        "embedders",
        help="list the built-in embedders: artifact built here?, size, and (--measure) texts/s on this machine",
    )
    embedders.add_argument(
        "--build", action="store_true", help="build every missing artifact (a Docker image does this at build time)"
    )
    embedders.add_argument(
        "--measure",
        action="store_true",
        help=f"build, load and time each on {_MEASURE_TEXTS} texts of {_WORDS_PER_TEXT} words",
    )
    embedders.add_argument("--json", action="store_true", help="print exactly one JSON object")
    embedders.set_defaults(handler=_embedders)


def _embedders(args: argparse.Namespace, beam_args: list[str]) -> None:
    from mrtcurate.schemas.config import EmbeddingSettings
    from mrtcurate.vectors.artifacts import cache_root
    from mrtcurate.vectors.embedders import BUILT_IN, artifact, describe_embedder, load_embedder
    from mrtcurate.vectors.throughput import texts_per_second

    rows = []
    texts = _measure_texts() if args.measure else []
    for name, summary in BUILT_IN.items():
        built = artifact(name)
        if built is not None and (args.build or args.measure) and not built.is_built():
            with status(f"building {name} in {cache_root()}", args.quiet or args.json):
                built.ensure()
        row = {**describe_embedder(name), "summary": summary}
        row["artifact"] = (
            None if built is None else {"path": str(built.path), "built": built.is_built(), "bytes": built.size_bytes()}
        )
        if args.measure:
            with status(f"measuring {name}", args.quiet or args.json):
                row["texts_per_second"] = round(
                    texts_per_second(load_embedder(name), texts, EmbeddingSettings().batch_size), 1
                )
        rows.append(row)
    if args.json:
        print(json.dumps({"cache_dir": str(cache_root()), "embedders": rows}, indent=2))
        return
    table = Table(title=f"embedders (artifacts in {cache_root()})", title_justify="left")
    for column in ("name", "backend, precision", "artifact", *(["texts/s"] if args.measure else []), "what it is"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["embedder"], f"{row['backend']}, {row['precision']}", _artifact_cell(row["artifact"]),
            *([f"{row['texts_per_second']:,.0f}"] if args.measure else []), row["summary"],
        )  # fmt: skip
    Console().print(table)
    if not args.measure:
        Console().print("texts/s on this machine: mrt embedders --measure", highlight=False)


def _artifact_cell(found: dict | None) -> str:
    if found is None:
        return "none needed"
    return (
        f"built, {found['bytes'] / 2**20:.0f} MiB" if found["built"] else "not built (built on first use, or --build)"
    )


def _measure_texts() -> list[str]:
    """Deterministic English-like texts from the demo corpus' vocabulary: no data file needed."""
    from mrtcurate.bench.demo import sample_records

    words = [
        word
        for word in re.findall(r"[A-Za-z']+", "\n".join(sample_records()))
        if word not in ("prompt", "response", "score")
    ]
    rng = random.Random(0)
    return [" ".join(rng.choices(words, k=_WORDS_PER_TEXT)) for _ in range(_MEASURE_TEXTS)]
