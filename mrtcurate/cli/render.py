"""The one-screen summary printed at the end of a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from mrtcurate.analysis.planner import effective_prompts
from mrtcurate.schemas.counts import Totals
from mrtcurate.schemas.manifest import embedding_line

if TYPE_CHECKING:
    from mrtcurate.runs.curate import RunOutcome


def print_summary(outcome: RunOutcome, console: Console) -> None:
    manifest = outcome.manifest
    counts = manifest["counts"]
    totals = Totals.from_manifest(counts)
    table = Table(title=f"mrtcurate: {outcome.output}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name in (
        "input_records",
        "rejected",
        "duplicates_merged_exact",
        "duplicates_merged_near",
        "candidates",
        "prompts",
        "selected",
    ):
        table.add_row(name, f"{counts[name]:,}")
    table.add_row("texts embedded", f"{outcome.metrics.get('embedded', 0):,}")
    table.add_row("shards", f"{len(manifest['shards'])} ({sum(s['rows'] for s in manifest['shards']):,} rows)")
    console.print(table)
    console.print(totals.identity() + (" [green]holds[/green]" if totals.holds else " [red]VIOLATED[/red]"))
    selection = manifest["selection"]
    if selection.get("k_from"):
        console.print(f"K = {selection['k']} per prompt, the planner's recommendation (--k auto)", highlight=False)
    if totals.context_messages is not None:
        console.print(
            f"context messages (user and system turns of the trees, read as prompts): {totals.context_messages:,}",
            highlight=False,
        )
    if manifest["rejected_by_reason"]:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in manifest["rejected_by_reason"].items())
        console.print(f"rejects by reason: {reasons}  (rows in {str(outcome.output).rstrip('/')}/rejects/)")
    if line := _scores_line(manifest.get("reward_source")):
        console.print(line, highlight=False, markup=False)
    if embedding := manifest.get("embedding"):
        fallback = embedding.get("embedding_fallback", 0)
        kept_without = (
            f"; {fallback:,} responses kept without a usable vector (similarity 0 to every other)" if fallback else ""
        )
        cached = f"; {embedding['from_cache']:,} vectors from the cache" if embedding.get("from_cache") else ""
        console.print(f"embedder {embedding_line(embedding)}{kept_without}{cached}", highlight=False)
    near = manifest.get("near_duplicates") or {}
    if dominated := near.get("dominant_cluster_prompts"):
        named = ", ".join(cluster["prompt_id"] for cluster in near["dominant_clusters"])
        console.print(
            f"[yellow]warning[/yellow]: on {dominated:,} prompts one near-duplicate cluster absorbed more than half of the pool "
            f"(for example {named}); the report lists the clusters",
            highlight=False,
        )


def _scores_line(source: dict | None) -> str | None:
    if not source or source["kind"] not in ("model", "judge"):
        return None
    cached = f", {source['from_cache']:,} from the cache" if source.get("from_cache") else ""
    if source["kind"] == "model":
        return (
            f"rewards from {source['path']} ({source['dtype']}): {source['scored']:,} responses scored{cached}, "
            f"{source['truncated']:,} of them cut to the model's window"
        )
    problems = ", ".join(
        f"{source[name]:,} {what}"
        for name, what in (("unparsed", "unparsed"), ("failed", "failed"), ("over_budget", "over budget"))
        if source[name]
    )
    return (
        f"rewards from the judge {source['model']} at {source['url']}: {source['scored']:,} responses graded{cached} "
        f"in {source['requests']:,} requests ({source['prompt_tokens'] + source['completion_tokens']:,} tokens)"
        + (f"; no grade for {problems}" if problems else "")
    )


def print_plan(plan: dict, console: Console) -> None:
    def number(value, digits=4):
        return "n/a" if value is None else f"{value:.{digits}g}"

    def interval(values):
        return f"[{number(values[0])}, {number(values[1])}]"

    level = round(plan["ci_level"] * 100)
    console.print(
        f"prompts {plan['prompts']:,} (effective {effective_prompts(plan)}), responses {plan['responses']:,}\n"
        f"sigma_b^2 {number(plan['sigma_b2'])} {level}% CI {interval(plan['sigma_b2_ci'])}, "
        f"sigma_w^2 {number(plan['sigma_w2'])} {level}% CI {interval(plan['sigma_w2_ci'])}, "
        f"rho {number(plan['rho'], 3)}",
        highlight=False,
    )
    table = Table(title="V(K) / V(inf) with all prompts kept", title_justify="left")
    table.add_column("K", justify="right")
    table.add_column("relative variance", justify="right")
    for row in plan["k_table"]:
        marker = "  <- recommended" if row["k"] == plan["recommended_k"] else ""
        table.add_row(str(row["k"]), f"{number(row['relative_variance'])}{marker}")
    console.print(table)
    basis = (
        f"K* under cost ratio {plan['cost_ratio']}"
        if plan["cost_ratio"]
        else f"within {plan['tolerance']:.0%} of V(inf)"
    )
    console.print(
        f"recommended K = {plan['recommended_k']} ({basis}; K* at cost ratio 1 = {number(plan['k_star'], 3)})"
    )
    if frontier := plan.get("qd_frontier"):
        console.print(
            f"qd frontier on {frontier['pools']} pools (K={frontier['k']}): recommended lambda {frontier['recommended_lambda']} "
            f"(configured {frontier['chosen_lambda']:g}; {frontier['rule']}); `--json` lists every point",
            highlight=False,
        )


def print_bench(result: dict, console: Console) -> None:
    table = Table(title="mrt bench: held-out prompts (mean ± sd over seeds)", title_justify="left")
    for column in ("equal", "K", "selector", "P", "P*K", "KL", "coverage", "validity"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in result["results"]:
        cells = [
            f"{row[m]:.3f}" + (f"±{row[m + '_sd']:.2f}" if row[m + "_sd"] is not None else "")
            for m in ("kl", "coverage", "validity")
        ]
        table.add_row(
            row["setting"].removeprefix("equal_"),
            str(row["k"]),
            row["selector"],
            str(row["prompts"]),
            str(row["budget"]),
            *cells,
        )
    untrained = result["reference"]["untrained"]
    console.print(table)
    console.print(
        f"untrained model: KL {untrained['kl']:.2f}, coverage {untrained['coverage']:.2f}, validity {untrained['validity']:.4f}; "
        f"the true distribution: KL 0, coverage 1, validity 1. Plot: {result['plot']}",
        highlight=False,
    )
