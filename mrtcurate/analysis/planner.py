"""Is K > 1 worth it, and which K? The planner turns variance components into a recommendation.

With P prompts fixed, V(K) / V(inf) = 1 + (sigma_w^2 / sigma_b^2) / K; under a budget with cost ratio
c_p / c_r, the optimum is K* = sqrt((sigma_w^2 / sigma_b^2) (c_p / c_r)), capped by the responses at hand.
"""

from __future__ import annotations

import math

from mrtcurate.analysis.variance import Moments, bootstrap_intervals
from mrtcurate.schemas.config import PlanSettings


def relative_variance(ratio: float, k: int) -> float:
    return 1.0 + ratio / k


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def plan(moments: Moments, settings: PlanSettings | None = None, effective_prompts: int | None = None) -> dict:
    """`moments` carry settings.bootstrap replicates (PromptStats.moments or the job's combine)."""
    settings = settings or PlanSettings()
    estimate = moments.components()
    intervals = bootstrap_intervals(moments, settings.ci_level)
    k_max = moments.largest_pool or 1
    if estimate.sigma_b2 > 0:
        ratio = estimate.sigma_w2 / estimate.sigma_b2
    else:
        ratio = math.inf if estimate.sigma_w2 > 0 else 0.0
    k_star = (
        min(k_max, max(1.0, math.sqrt(ratio * (settings.cost_ratio or 1.0)))) if math.isfinite(ratio) else float(k_max)
    )
    if settings.cost_ratio is not None:
        recommended = round(k_star)
    elif not math.isfinite(ratio):
        recommended = k_max
    else:
        recommended = min(k_max, max(1, math.ceil(ratio / settings.tolerance - 1e-12)))
    return {
        "prompts": estimate.prompts,
        "responses": estimate.responses,
        "effective_prompts": effective_prompts if effective_prompts is not None else estimate.prompts,
        "implicit_responses_per_prompt": estimate.responses / effective_prompts if effective_prompts else None,
        "sigma_b2": _finite(estimate.sigma_b2),
        "sigma_w2": _finite(estimate.sigma_w2),
        "rho": _finite(estimate.rho),
        "sigma_b2_ci": [_finite(v) for v in intervals["sigma_b2"]],
        "sigma_w2_ci": [_finite(v) for v in intervals["sigma_w2"]],
        "rho_ci": [_finite(v) for v in intervals["rho"]],
        "ci_level": settings.ci_level,
        "variance_ratio": _finite(ratio),
        "tolerance": settings.tolerance,
        "cost_ratio": settings.cost_ratio,
        "k_star": _finite(k_star),
        "recommended_k": recommended,
        "k_max": k_max,
        "k_table": [{"k": k, "relative_variance": _finite(relative_variance(ratio, k))} for k in range(1, k_max + 1)],
    }


def effective_prompts(summary: dict) -> str:
    """The planner summary's count as people read it: with its interval and sample when estimated."""
    count = f"{summary['effective_prompts']:,}"
    if summary.get("effective_prompts_method") != "sampled":
        return count
    low, high = summary["effective_prompts_ci"]
    return f"about {count}, {round(summary['ci_level'] * 100)}% CI [{low:,}, {high:,}] from {summary['effective_prompts_sample']:,} sampled prompts"
