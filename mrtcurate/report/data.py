"""What the report shows, computed: the published rows read back (lazily, with polars) and set against
the pools' profile from the manifest."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from mrtcurate.ingest.files import is_local
from mrtcurate.schemas.counts import length_histogram

_KEPT_COLUMNS = ["prompt_id", "pool_size", "source", "completion", "reward"]
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


class KeptProfile(NamedTuple):
    pool_sizes: list[int]  # per prompt
    sources: dict[str, int]  # kept rows by source
    lengths: list[int]  # kept rows by completion-length bin
    rewards: dict[str, np.ndarray]  # the kept rows' rewards, by source (rows without one left out)


def kept_profile(kept: pl.LazyFrame) -> KeptProfile:
    """What the report sets against the pools, in one pass over the shards."""
    sizes, by_source, chars, rewards = pl.collect_all(
        [
            kept.group_by("prompt_id").agg(pl.col("pool_size").first()),
            kept.group_by("source").agg(pl.len()),
            kept.select(pl.col("completion").str.len_chars().alias("chars")),
            kept.filter(pl.col("reward").is_not_null()).group_by("source").agg(pl.col("reward")),
        ]
    )
    return KeptProfile(
        sizes["pool_size"].to_list(),
        dict(by_source.iter_rows()),
        length_histogram(chars["chars"].to_numpy()),
        {source: np.asarray(values, dtype=np.float64) for source, values in rewards.iter_rows()},
    )


def shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def reward_rows(pool_samples: dict[str, list[float]], kept: dict[str, np.ndarray]) -> list[tuple]:
    """Per source (the most scored first): the pools' and the kept rows' median and mean reward."""
    rows = []
    for source, sample in sorted(pool_samples.items(), key=lambda item: (-len(item[1]), item[0]))[:_TOP_SOURCES]:
        chosen = kept.get(source, np.empty(0))
        rows.append(
            (
                source,
                f"{np.median(sample):.4g}",
                f"{np.median(chosen):.4g}" if chosen.size else "-",
                f"{np.mean(sample):.4g}",
                f"{np.mean(chosen):.4g}" if chosen.size else "-",
            )
        )
    return rows


def source_rows(pool: dict[str, int], kept: dict[str, int]) -> list[tuple]:
    """Sources by pool share (the largest first): pool share, kept share and the ratio that shows a tilt."""
    pool_total, kept_total = sum(pool.values()), sum(kept.values())
    rows = []
    for source, count in sorted(pool.items(), key=lambda item: (-item[1], item[0]))[:_TOP_SOURCES]:
        pool_share, kept_share = count / pool_total, kept.get(source, 0) / kept_total if kept_total else 0.0
        rows.append((source, f"{pool_share:.1%}", f"{kept_share:.1%}", f"{kept_share / pool_share:.2f}"))
    return rows
