"""`mrt report DIR`: a self-contained report.html (images embedded) with the PNGs beside it. Computing what it
shows (data.py), drawing it (figures.py, plots.py) and rendering the page (page.py) live apart."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from apache_beam.io.filesystems import FileSystems

from mrtcurate.errors import UserError
from mrtcurate.ingest.files import is_local, local_path
from mrtcurate.interrupts import temporary_folder
from mrtcurate.outputs import remove_path, write_inside
from mrtcurate.report.card import CARD_NAME, SHARD_LISTS, declared_tables, render_card
from mrtcurate.report.data import kept_profile, kept_rows, reward_rows, source_rows
from mrtcurate.report.figures import FIGURE_NAMES, figure_file
from mrtcurate.report.figures import figures as draw_figures
from mrtcurate.report.page import render
from mrtcurate.schemas.manifest import read_manifest

REPORT_NAME = "report.html"


def write_card(directory: str, license_id: str | None = None) -> str:
    """DIR/README.md, the dataset card, from the manifest and the kept rows' sources. Without `license_id`, a
    licence an earlier card named is kept."""
    manifest = read_manifest(directory)
    try:
        kept = kept_profile(kept_rows(directory, manifest))
        schema = _first_shard_schema(directory, manifest)
        split_bytes = {name: _uncompressed_bytes(directory, manifest, name) for name in declared_tables(manifest)}
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(
            f"a shard of {directory} cannot be read ({first_line}); the dataset is damaged: curate it again"
        ) from None
    license_id = license_id or _license_of_card(directory)
    card = render_card(manifest, kept.sources, "messages" in schema.names, split_bytes, license_id)
    return _write_inside(directory, CARD_NAME, card.encode("utf-8"))


def _uncompressed_bytes(directory: str, manifest: dict, name: str) -> int:
    """A table's size before compression, from its shards' Parquet footers (what `datasets` calls num_bytes)."""
    total = 0
    for shard in manifest[SHARD_LISTS[name]]:
        with FileSystems.open(FileSystems.join(directory, shard["path"])) as source:
            metadata = pq.read_metadata(source)
        total += sum(metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups))
    return total


def _first_shard_schema(directory: str, manifest: dict) -> pa.Schema:
    with FileSystems.open(FileSystems.join(directory, manifest["shards"][0]["path"])) as source:
        return pq.read_schema(source)


def _license_of_card(directory: str) -> str | None:
    """The licence the dataset's card names already (the run's --license; `mrt report` rewrites the card)."""
    path = FileSystems.join(directory, CARD_NAME)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as source:
        text = source.read().decode("utf-8", errors="replace")
    try:
        matter = yaml.safe_load(text.split("---\n")[1]) if text.startswith("---\n") else None
    except (yaml.YAMLError, IndexError):
        return None
    return matter.get("license") if isinstance(matter, dict) else None


def write_report(directory: str) -> str:
    """Writes DIR/report.html and DIR/*.png; returns the report's path."""
    manifest = read_manifest(directory)
    with temporary_folder("mrt-report-") as scratch:
        try:
            kept = kept_profile(kept_rows(directory, manifest))
        except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as error:
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(
                f"a shard of {directory} cannot be read ({first_line}); the dataset is damaged: curate it again"
            ) from None
        profile = manifest.get("pool_profile")
        sources = source_rows(profile["sources"], kept.sources) if profile and kept.sources else []
        rewards = reward_rows(profile.get("reward_sample") or {}, kept.rewards) if profile else []
        figures = draw_figures(manifest, kept, sources, Path(scratch))
        page = render(manifest, sources, rewards, figures)
        for path in figures.values():
            _write_inside(directory, path.name, path.read_bytes())
    _remove_figures_not_drawn(directory, figures)
    return _write_inside(directory, REPORT_NAME, page.encode("utf-8"))


def _remove_figures_not_drawn(directory: str, drawn: dict) -> None:
    for name in (name for name in FIGURE_NAMES if name not in drawn):
        if is_local(directory):
            # Joined here: local_path of a joined path resolves a link at the name to its target.
            remove_path(os.path.join(local_path(directory), figure_file(name)))  # a link itself, never its target
        elif FileSystems.exists(path := FileSystems.join(directory, figure_file(name))):
            FileSystems.delete([path])


def _write_inside(directory: str, name: str, data: bytes) -> str:
    if is_local(directory):
        return write_inside(local_path(directory), name, data)
    target = FileSystems.join(directory, name)
    with FileSystems.create(target) as sink:
        sink.write(data)
    return target
