"""`mrt report DIR`: a self-contained report.html (images embedded) with the PNGs beside it. Computing what it
shows (data.py), drawing it (figures.py, plots.py) and rendering the page (page.py) live apart."""

from __future__ import annotations

import tempfile
from pathlib import Path

from apache_beam.io.filesystems import FileSystems

from mrtcurate.report.data import kept_profile, kept_rows, source_rows
from mrtcurate.report.figures import figures as draw_figures
from mrtcurate.report.page import render
from mrtcurate.schemas.manifest import read_manifest

REPORT_NAME = "report.html"


def write_report(directory: str) -> str:
    """Writes DIR/report.html and DIR/*.png; returns the report's path."""
    manifest = read_manifest(directory)
    with tempfile.TemporaryDirectory(prefix="mrt-report-") as scratch:
        kept = kept_profile(kept_rows(directory, manifest))
        profile = manifest.get("pool_profile")
        sources = source_rows(profile["sources"], kept[1]) if profile and kept[1] else []
        figures = draw_figures(manifest, kept, sources, Path(scratch))
        page = render(manifest, sources, figures)
        for path in figures.values():
            with FileSystems.create(FileSystems.join(directory, path.name)) as sink:
                sink.write(path.read_bytes())
    target = FileSystems.join(directory, REPORT_NAME)
    with FileSystems.create(target) as sink:
        sink.write(page.encode("utf-8"))
    return target
