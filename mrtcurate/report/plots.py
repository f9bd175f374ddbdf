"""Matplotlib figures (Agg backend, files only) for simulations and the run report."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mrtcurate.outputs import write_inside


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    plt.close(figure)
    write_inside(str(path.parent), path.name, image.getvalue())
    return path


def variance_simulation(result: dict, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    by_prompts: dict[int, list] = {}
    for row in result["grid"]:
        by_prompts.setdefault(row["P"], []).append(row)
    for prompts, rows in sorted(by_prompts.items()):
        rows = sorted(rows, key=lambda row: row["K"])
        line = axes.plot([r["K"] for r in rows], [r["predicted"] for r in rows], "-", label=f"P={prompts} predicted")[0]
        axes.plot(
            [r["K"] for r in rows],
            [r["observed"] for r in rows],
            "o",
            color=line.get_color(),
            label=f"P={prompts} observed",
        )
    axes.set(
        xscale="log", yscale="log", xlabel="K (responses per prompt)", ylabel="variance of the mean gradient (trace)"
    )
    axes.set_title(f"Monte-Carlo vs sigma_b²/P + sigma_w²/(PK); max rel. error {result['max_relative_error']:.1%}")
    axes.legend(fontsize=7, ncol=2)
    return _save(figure, path)


def selection_simulation(result: dict, path: Path) -> Path:
    names = list(result["strategies"])
    metrics = ("grad_cosine", "bias_norm", "mode_coverage")
    figure, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    for axis, metric in zip(axes, metrics):
        values = [result["strategies"][name][metric] for name in names]
        axis.bar(names, values, color=["tab:blue", "tab:red", "tab:green"][: len(names)])
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_title(metric.replace("_", " "))
    figure.suptitle(
        f"K={result['k']} of N={result['pool_size']}; the reward prefers the rarest modes {result['preferred_modes']}"
    )
    return _save(figure, path)


def bar_chart(labels: list[str], values: list[float], title: str, path: Path, xlabel: str = "") -> Path:
    figure, axes = plt.subplots(figsize=(6.5, max(2.5, 0.35 * len(labels) + 1)))
    axes.barh(labels, values, color="tab:red")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.invert_yaxis()
    return _save(figure, path)


def histogram(values: list[int], title: str, xlabel: str, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(6.5, 3.5))
    axes.hist(values, bins=min(50, max(5, len(set(values)))), color="tab:blue")
    axes.set(title=title, xlabel=xlabel, ylabel="prompts")
    return _save(figure, path)


def share_comparison(labels: list[str], pool: list[float], kept: list[float], title: str, path: Path) -> Path:
    """Side-by-side shares: what the pools offered against what selection kept."""
    figure, axes = plt.subplots(figsize=(max(6.0, 0.55 * len(labels) + 2), 4))
    positions = range(len(labels))
    axes.bar([p - 0.2 for p in positions], pool, width=0.4, label="pool (candidates)")
    axes.bar([p + 0.2 for p in positions], kept, width=0.4, label="kept rows")
    axes.set_xticks(list(positions), labels, rotation=35, ha="right", fontsize=8)
    axes.set(ylabel="share", title=title)
    axes.legend(fontsize=8)
    return _save(figure, path)


def reward_distributions(pool: dict[str, list[float]], kept: dict[str, np.ndarray], path: Path) -> Path:
    """Per source, the pools' rewards (a sample) against the kept rows' rewards, as densities on shared bins."""
    figure, panels = plt.subplots(len(pool), 1, figsize=(6.5, 1.9 * len(pool) + 0.8), squeeze=False)
    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in (*pool.values(), *kept.values()) if len(v)])
    edges = np.histogram_bin_edges(values, bins=min(40, max(5, len(np.unique(values)))))
    for axes, (source, sample) in zip(panels[:, 0], pool.items(), strict=True):
        axes.hist(sample, bins=edges, density=True, alpha=0.5, label=f"pool ({len(sample):,} sampled)")
        if (chosen := kept.get(source)) is not None and chosen.size:
            axes.hist(chosen, bins=edges, density=True, alpha=0.5, label=f"kept ({chosen.size:,})")
        axes.set_title(source, fontsize=9)
        axes.legend(fontsize=7)
    panels[-1, 0].set_xlabel("reward")
    figure.suptitle("Rewards: pool against kept rows, by source")
    return _save(figure, path)


def planner_curve(plan: dict, selected_k, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(6.5, 4))
    ks = [row["k"] for row in plan["k_table"]]
    values = [row["relative_variance"] for row in plan["k_table"]]
    axes.plot(ks, values, "o-", label="V(K)/V(inf), point estimate")
    low_b, high_b = plan["sigma_b2_ci"]
    low_w, high_w = plan["sigma_w2_ci"]
    if None not in (low_b, high_b, low_w, high_w) and low_b > 0:
        # The ratio's band from the components' interval ends: widest plausible range, not a joint interval.
        axes.fill_between(
            ks,
            [1 + (low_w / high_b) / k for k in ks],
            [1 + (high_w / low_b) / k for k in ks],
            alpha=0.25,
            label=f"{plan['ci_level']:.0%} interval band",
        )
    axes.axvline(
        plan["recommended_k"], color="tab:green", linestyle="--", label=f"recommended K = {plan['recommended_k']}"
    )
    if isinstance(selected_k, int):
        axes.axvline(selected_k, color="tab:gray", linestyle=":", label=f"K used = {selected_k}")
    axes.axhline(1 + plan["tolerance"], color="tab:red", linewidth=0.8, label=f"tolerance {plan['tolerance']:.0%}")
    axes.set(xlabel="K (responses per prompt)", ylabel="V(K) / V(inf) at fixed P")
    axes.set_title(f"rho = {plan['rho']:.3f}" if plan["rho"] is not None else "planner")
    axes.legend(fontsize=8)
    return _save(figure, path)


def quality_diversity(points: dict[str, tuple[float, float]], title: str, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(6, 4.2))
    for label, (diversity, quality) in points.items():
        axes.plot(diversity, quality, "o", markersize=9, label=label)
    axes.set(xlabel="mean pairwise cosine distance (diversity)", ylabel="mean quality", title=title)
    axes.legend(fontsize=8)
    return _save(figure, path)


def qd_frontier(frontier: dict, path: Path) -> Path:
    """Quality against coverage for each lambda, the configured and the recommended lambda marked, random and
    topk as references."""
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    points = frontier["points"]
    axes.plot(
        [p["coverage"] for p in points], [p["quality"] for p in points], "-o", markersize=4, label="qd, lambda 0 to 1"
    )
    for point in points:
        axes.annotate(
            f"{point['lambda']:g}",
            (point["coverage"], point["quality"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    for name, marker in (("random", "s"), ("topk", "^")):
        axes.plot(frontier[name]["coverage"], frontier[name]["quality"], marker, markersize=9, label=name)
    marks = (("chosen_lambda", "chosen lambda", "*", 16), ("recommended_lambda", "recommended lambda", "o", 14))
    for key, label, marker, size in marks:
        found = [p for p in points if p["lambda"] == frontier.get(key)]
        if found:
            axes.plot(
                found[0]["coverage"],
                found[0]["quality"],
                marker,
                markersize=size,
                fillstyle="none",
                label=f"{label} ({found[0]['lambda']:g})",
            )
    axes.set(xlabel="coverage (the objective's diversity term)", ylabel="mean quality (min-max reward in the pool)",
             title=f"qd's quality-diversity frontier ({frontier['pools']} pools, K={frontier['k']})")  # fmt: skip
    axes.legend(fontsize=8)
    return _save(figure, path)


def structured_benchmark(result: dict, path: Path) -> Path:
    """KL, coverage and validity per curated set, equal prompts beside equal examples."""
    metrics = (("kl", "KL(true || model), nats"), ("coverage", "mode coverage"), ("validity", "validity mass"))
    settings = ("equal_prompts", "equal_examples")
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for axis, (metric, label) in zip(axes, metrics):
        for offset, setting in enumerate(settings):
            rows = [row for row in result["results"] if row["setting"] == setting]
            positions = [index + (offset - 0.5) * 0.38 for index in range(len(rows))]
            errors = [row[f"{metric}_sd"] or 0.0 for row in rows]
            axis.bar(positions, [row[metric] for row in rows], width=0.36, yerr=errors, label=setting.replace("_", " "))
            axis.set_xticks(range(len(rows)), [f"K={row['k']} {row['selector']}" for row in rows], fontsize=8)
        reference = result["reference"]["untrained"][metric]
        if metric != "kl":
            axis.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="truth")
        axis.set_title(f"{label} (untrained {reference:.2g})", fontsize=9)
    axes[0].legend(fontsize=7)
    figure.suptitle("structured benchmark: held-out prompts, lower KL and higher coverage are better", fontsize=10)
    return _save(figure, path)
