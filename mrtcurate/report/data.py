"""What the report shows, computed: the published rows read back (lazily, with polars) and set against
the pools' profile from the manifest."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from mrtcurate.ingest.files import is_local
from mrtcurate.schemas.counts import length_histogram

_KEPT_COLUMNS = ["prompt_id", "pool_size", "source", "completion"]
_TOP_SOURCES = 12


def kept_rows(directory: str, manifest: dict) -> pl.LazyFrame:
    """The published rows, as a lazy polars frame of the columns the report reads. Local shards are
    scanned in place; object-store shards are read through Beam's FileSystems (one client for every scheme)."""
    paths = [FileSystems.join(directory, shard["path"]) for shard in manifest["shards"]]
    if all(is_local(path) for path in paths):
        return (
            pl.scan_parquet(paths).select(_KEPT_COLUMNS)
            if paths
            else pl.LazyFrame(schema=dict.fromkeys(_KEPT_COLUMNS, pl.String))
        )
    tables = []
    for path in paths:
        with FileSystems.open(path) as source:
            tables.append(pq.read_table(source, columns=_KEPT_COLUMNS))
    return pl.from_arrow(pa.concat_tables(tables)).lazy()


def kept_profile(kept: pl.LazyFrame) -> tuple[list[int], dict[str, int], list[int]]:
    """Pool size per prompt, kept rows by source, kept rows by completion-length bin (one pass over the shards)."""
    sizes, by_source, chars = pl.collect_all(
        [
            kept.group_by("prompt_id").agg(pl.col("pool_size").first()),
            kept.group_by("source").agg(pl.len()),
            kept.select(pl.col("completion").str.len_chars().alias("chars")),
        ]
    )
    return sizes["pool_size"].to_list(), dict(by_source.iter_rows()), length_histogram(chars["chars"].to_numpy())


def shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def source_rows(pool: dict[str, int], kept: dict[str, int]) -> list[tuple]:
    """Sources by pool share (the largest first): pool share, kept share and the ratio that shows a tilt."""
    pool_total, kept_total = sum(pool.values()), sum(kept.values())
    rows = []
    for source, count in sorted(pool.items(), key=lambda item: (-item[1], item[0]))[:_TOP_SOURCES]:
        pool_share, kept_share = count / pool_total, kept.get(source, 0) / kept_total if kept_total else 0.0
        rows.append((source, f"{pool_share:.1%}", f"{kept_share:.1%}", f"{kept_share / pool_share:.2f}"))
    return rows
