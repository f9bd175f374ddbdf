"""The report's HTML: one self-contained page (images inline) from what report/data.py and report/figures.py computed."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from mrtcurate.analysis.planner import effective_prompts
from mrtcurate.schemas.counts import SCORE_SAMPLE, Totals
from mrtcurate.schemas.manifest import embedding_line


def _image(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{encoded}">'


def _table(rows: list[tuple], header: tuple) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _examples_html(examples: list[dict]) -> str:
    parts = []
    for example in examples:
        parts.append(f"<h3>{html.escape(example['prompt'][:300])}</h3><p>{example['pool_size']} candidates</p>")
        for name, kept in example["choices"].items():
            rows = [
                (rank, item["reward"] if item["reward"] is not None else "", item["completion"][:400])
                for rank, item in enumerate(kept)
            ]
            parts.append(f"<h4>{html.escape(name)}</h4>" + _table(rows, ("rank", "reward", "completion")))
        if not_kept := example.get("not_kept"):
            rows = [
                (
                    item["reason"],
                    "" if item["reward"] is None else item["reward"],
                    item["completion"][:400],
                    (item["merged_into"] or "")[:200]
                    if item["reason"] == "near_duplicate"
                    else ("" if item["pool_rank"] is None else item["pool_rank"]),
                    _read_from(item),
                )
                for item in not_kept
            ]
            parts.append(
                "<h4>not kept (a few; every one is in dropped/)</h4>"
                + _table(rows, ("reason", "reward", "completion", "merged into / rank by reward", "read from"))
            )
    return "".join(parts)


def _read_from(item: dict) -> str:
    """The input file (its name) and row of a dropped example; a report of a dataset written before version 2 of the
    manifest has neither."""
    if item.get("source_file") is None:
        return ""
    return f"{item['source_file'].rsplit('/', 1)[-1]}:{item['source_row']}"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _frontier_html(frontier: dict, figures: dict[str, Path]) -> list[str]:
    rows = [
        (f"qd, lambda {p['lambda']:g}", _number(p["quality"]), _number(p["coverage"]), _number(p["modes"]))
        for p in frontier["points"]
    ]
    rows += [
        (
            name,
            _number(frontier[name]["quality"]),
            _number(frontier[name]["coverage"]),
            _number(frontier[name]["modes"]),
        )
        for name in ("random", "topk")
    ]
    recommended = "none" if frontier["recommended_lambda"] is None else format(frontier["recommended_lambda"], "g")
    explanation = (
        f"<p>{html.escape(frontier['definition'])}. This run's lambda: <b>{frontier['chosen_lambda']:g}</b>; recommended for this data: "
        f"<b>{recommended}</b> ({html.escape(frontier['rule'])}).</p>"
    )
    return [
        "<h2>Choosing qd's lambda: the quality-diversity frontier</h2>",
        explanation,
        _image(figures["qd_frontier"]) if "qd_frontier" in figures else "",
        _table(rows, ("selection", "quality", "coverage", "modes kept")),
    ]


def _near_duplicates_html(near: dict) -> list[str]:
    """The rule, then per merge the representative kept and texts merged into it: the largest clusters and
    a sample; a warning names prompts where one cluster took more than half of the pool."""
    rule = ", ".join(
        f"{name}: {near[name]['test']} >= {near[name]['threshold']}"
        for name in ("lexical", "embedding")
        if near.get(name)
    )
    parts = [
        "<h2>Near-duplicates: what was merged into what</h2>",
        f"<p>{html.escape(near['rule'])}; {html.escape(rule or 'off')}.</p>",
    ]
    if near.get("dominant_cluster_prompts"):
        named = ", ".join(cluster["prompt_id"] for cluster in near["dominant_clusters"])
        parts.append(
            f"<p><b>Warning</b>: on {near['dominant_cluster_prompts']:,} prompts one cluster absorbed more than half of the pool ({html.escape(named)}).</p>"
        )
    for title, key in (("Largest clusters", "largest_clusters"), ("A sample of clusters", "sample_clusters")):
        clusters = near.get(key) or []
        if clusters:
            rows = [
                (
                    cluster["prompt"][:120],
                    f"{cluster['size']} of {cluster['pool_size']}",
                    cluster["kept"][:300],
                    " | ".join(text[:200] for text in cluster["merged"]),
                )
                for cluster in clusters
            ]
            parts += [
                f"<h3>{title}</h3>",
                _table(rows, ("prompt", "cluster / pool", "kept (representative)", "merged into it (up to 3)")),
            ]
    return parts


def _reward_origin(source: dict | None) -> str:
    if not source:
        return ""
    if source["kind"] == "model":
        return f"Rewards from the reward model {source['path']} ({source['dtype']})."
    if source["kind"] == "judge":
        return f"Rewards from the judge {source['model']} at {source['url']} (grades 1-10; responses without one left out)."
    return f"Rewards from the field {source['field']}."


def render(manifest: dict, source_rows: list[tuple], reward_rows: list[tuple], figures: dict[str, Path]) -> str:
    """The whole report page, images inline, from the manifest, the source rows and the figure files."""
    counts = manifest["counts"]
    totals = Totals.from_manifest(counts)
    planner = manifest.get("planner")
    sections = [
        "<h1>mrtcurate run report</h1>",
        (
            f"<p>{html.escape(manifest['created_at'])}, mrtcurate {html.escape(manifest['mrtcurate_version'])}, "
            f"selector <b>{html.escape(manifest['selection']['selector'])}</b>, K = {manifest['selection']['k']}</p>"
        ),
        "<h2>Counts</h2>",
        _table(sorted(counts.items()), ("count", "value")),
        f"<p>{totals.identity()}: <b>{'holds' if totals.holds else 'VIOLATED'}</b></p>",
    ]
    if embedding := manifest.get("embedding"):
        sections += ["<h2>Embedding</h2>", f"<p>{html.escape(embedding_line(embedding))}</p>"]
    if "rejects" in figures:
        sections += ["<h2>Rejects</h2>", _image(figures["rejects"])]
    if "pool_sizes" in figures:
        sections += ["<h2>Responses per prompt</h2>", _image(figures["pool_sizes"])]
    if planner:
        sections += [
            "<h2>Is K &gt; 1 worth it?</h2>",
            (
                f"<p>sigma_b² = {planner['sigma_b2']}, sigma_w² = {planner['sigma_w2']}, rho = {planner['rho']}; "
                f"{planner['prompts']:,} prompts ({effective_prompts(planner)} effective), recommended K = "
                f"<b>{planner['recommended_k']}</b>.</p>"
            ),
            _image(figures["planner"]) if "planner" in figures else "",
        ]
    if quality := manifest.get("selection_quality"):
        rows = [
            (
                name,
                _number(quality[part]["quality"]),
                _number(quality[part]["coverage"]),
                _number(quality[part]["diversity"]),
            )
            for name, part in (
                ("pool (all candidates)", "pool"),
                (f"kept by {manifest['selection']['selector']}", "selected"),
            )
        ]
        sections += [
            "<h2>Quality and diversity of the kept set</h2>",
            (
                "<p>Coverage is the diversity qd optimises: the share of the pool's mass (by multiplicity) the kept set stands "
                "for, each member counted by its best similarity to a kept answer. Mean pairwise distance is beside it.</p>"
            ),
            _table(rows, ("set", "quality", "coverage", "mean pairwise distance")),
            _image(figures["quality_diversity"]) if "quality_diversity" in figures else "",
        ]
    if frontier := manifest.get("qd_frontier"):
        sections += _frontier_html(frontier, figures)
    if near := manifest.get("near_duplicates"):
        sections += _near_duplicates_html(near)
    if "sources" in figures:
        sections += [
            "<h2>Which sources does the selection favour?</h2>",
            "<p>Kept/pool above 1: the selector keeps that source's responses more often than the pools offer them.</p>",
            _table(source_rows, ("source", "pool share", "kept share", "kept / pool")),
            _image(figures["sources"]),
        ]
    if "lengths" in figures:
        sections += ["<h2>Does selection shift completion length?</h2>", _image(figures["lengths"])]
    if "rewards" in figures:
        sections += [
            "<h2>Which rewards does the selection keep?</h2>",
            (
                f"<p>{html.escape(_reward_origin(manifest.get('reward_source')))} Pools: a sample of up to "
                f"{SCORE_SAMPLE:,} rewards per source (by response hash); kept: every kept row.</p>"
            ),
            _table(reward_rows, ("source", "pool median", "kept median", "pool mean", "kept mean")),
            _image(figures["rewards"]),
        ]
    if manifest.get("examples"):
        sections += ["<h2>What each selector keeps, on a few prompts</h2>", _examples_html(manifest["examples"])]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>mrtcurate report</title><style>"
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:left;vertical-align:top;font-size:0.9em}img{max-width:100%}</style></head><body>"
        + "".join(sections)
        + "</body></html>"
    )
    return page
