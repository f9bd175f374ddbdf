"""The report's figures, computed from the manifest and the kept rows' profile (report/data.py) into PNG files."""

from __future__ import annotations

from pathlib import Path

from mrtcurate.report import plots
from mrtcurate.report.data import KeptProfile, shares
from mrtcurate.schemas.counts import length_bin_labels

REWARD_PANELS = 6  # sources whose reward distributions the report draws, the most scored first
# Every figure a report may draw, each to NAME.png beside the report: a report removes those it did not draw, left by
# an earlier report of the same dataset (`mrt report` after a change, or after an upgrade that dropped a figure).
FIGURE_NAMES = ("rejects", "pool_sizes", "planner", "quality_diversity", "qd_frontier", "sources", "lengths", "rewards")


def figure_file(name: str) -> str:
    return f"{name}.png"


def figures(manifest: dict, kept: KeptProfile, source_rows: list[tuple], workdir: Path) -> dict[str, Path]:
    figures = {}
    if manifest["rejected_by_reason"]:
        reasons = manifest["rejected_by_reason"]
        figures["rejects"] = plots.bar_chart(
            list(reasons),
            list(reasons.values()),
            "Rejected records by reason",
            workdir / figure_file("rejects"),
            "records",
        )
    sizes, kept_sources, kept_lengths, kept_rewards = kept
    if sizes:
        figures["pool_sizes"] = plots.histogram(
            sizes, "Candidates per prompt after dedup", "candidates (pool size)", workdir / figure_file("pool_sizes")
        )
    if manifest.get("planner") and manifest["planner"]["k_table"]:
        figures["planner"] = plots.planner_curve(
            manifest["planner"], manifest["selection"]["k"], workdir / figure_file("planner")
        )
    quality = manifest.get("selection_quality")
    if quality:
        points = {
            "all candidates (pool)": (quality["pool"]["diversity"], quality["pool"]["quality"] or 0.0),
            f"kept by {manifest['selection']['selector']}": (
                quality["selected"]["diversity"],
                quality["selected"]["quality"] or 0.0,
            ),
        }
        # A kept set of one response per prompt has no pairwise distance to plot.
        points = {label: point for label, point in points.items() if point[0] is not None}
        if points:
            figures["quality_diversity"] = plots.quality_diversity(
                points, "Kept set against its pool (means over prompts)", workdir / figure_file("quality_diversity")
            )
    if manifest.get("qd_frontier"):
        figures["qd_frontier"] = plots.qd_frontier(manifest["qd_frontier"], workdir / figure_file("qd_frontier"))
    profile = manifest.get("pool_profile")
    # One source is all of the pool and all of the kept rows: its panel would say nothing (and cost a quarter
    # second a run to draw).
    if len(source_rows) > 1:
        sources = [row[0] for row in source_rows]
        figures["sources"] = plots.share_comparison(
            sources,
            shares([profile["sources"][s] for s in sources]),
            shares([kept_sources.get(s, 0) for s in sources]),
            "Share of candidates (pool) and of kept rows, by source",
            workdir / figure_file("sources"),
        )
    if source_rows:
        figures["lengths"] = plots.share_comparison(
            length_bin_labels(),
            shares(profile["length_counts"]),
            shares(kept_lengths),
            "Completion length (characters): pool against kept rows",
            workdir / figure_file("lengths"),
        )
    if samples := (profile or {}).get("reward_sample"):
        figures["rewards"] = plots.reward_distributions(
            dict(sorted(samples.items(), key=lambda item: (-len(item[1]), item[0]))[:REWARD_PANELS]),
            kept_rewards,
            workdir / figure_file("rewards"),
        )
    return figures
