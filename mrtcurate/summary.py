"""The one-screen summary printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mrtcurate.pipeline.graph import RunOutcome


def print_summary(outcome: RunOutcome, console: Console) -> None:
    manifest = outcome.manifest
    counts = manifest["counts"]
    table = Table(title=f"mrtcurate: {outcome.output}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name in ("input_records", "rejected", "duplicates_merged_exact", "duplicates_merged_near", "candidates", "prompts", "selected"):
        table.add_row(name, f"{counts[name]:,}")
    table.add_row("embedded (unique texts)", f"{outcome.metrics.get('embedded', 0):,}")
    table.add_row("shards", f"{len(manifest['shards'])} ({sum(s['rows'] for s in manifest['shards']):,} rows)")
    console.print(table)
    identity = counts["rejected"] + counts["duplicates_merged"] + counts["candidates"]
    console.print(
        f"input_records {counts['input_records']:,} = rejected {counts['rejected']:,} + duplicates_merged "
        f"{counts['duplicates_merged']:,} + candidates {counts['candidates']:,} "
        + ("[green]holds[/green]" if identity == counts["input_records"] else "[red]VIOLATED[/red]")
    )
    if manifest["rejected_by_reason"]:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in manifest["rejected_by_reason"].items())
        console.print(f"rejects by reason: {reasons}  (rows in {outcome.output}/rejects/)")
