"""The effective prompt count: exact components for small corpora, a sampled degree estimate with an
interval above, and the job's choice between them."""

import numpy as np
import pytest

from mrtcurate.analysis.planner import effective_prompts
from mrtcurate.pipeline import plan as plan_stage
from mrtcurate.runs.curate import run_plan
from mrtcurate.schemas import build_config
from mrtcurate.vectors.redundancy import exact_effective_prompts, links_to_sample, sampled_effective_prompts
from tests.conftest import write_jsonl


def clustered_prompts(rng, groups: int) -> np.ndarray:
    """`groups` random directions, each present 1 to 4 times with a little noise (cosine > 0.99 within
    a group, about 0 between groups at 384 dimensions)."""
    centres = rng.standard_normal((groups, 384))
    copies = rng.integers(1, 5, groups)
    vectors = np.repeat(centres, copies, axis=0) + 0.05 * rng.standard_normal((copies.sum(), 384))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_sampled_estimate_brackets_the_exact_count():
    rng = np.random.default_rng(0)
    vectors = clustered_prompts(rng, 6_000)
    exact = exact_effective_prompts(vectors, 0.95)
    assert exact.count == 6_000 and exact.method == "exact"
    sample = vectors[rng.choice(len(vectors), 1_500, replace=False)]
    # Degrees counted batch by batch, as the job's streaming pass does.
    degrees = sum(links_to_sample(batch, sample, 0.95) for batch in np.array_split(vectors, 7))
    estimate = sampled_effective_prompts(degrees, len(vectors), 0.9)
    low, high = estimate.interval
    assert estimate.method == "sampled" and estimate.sample == 1_500
    assert low <= 6_000 <= high and high - low < 0.1 * 6_000
    assert abs(estimate.count - 6_000) < 0.05 * 6_000


def test_a_broken_degree_pass_misses_the_truth():
    # Without the sampled prompt counting itself, every degree drops by one and 1/d blows up.
    rng = np.random.default_rng(1)
    vectors = clustered_prompts(rng, 3_000)
    sample = vectors[:500]
    degrees = links_to_sample(vectors, sample, 0.95) - 1
    low, high = sampled_effective_prompts(degrees, len(vectors), 0.9).interval
    assert not low <= 3_000 <= high


@pytest.mark.slow
def test_the_job_samples_above_the_exact_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(plan_stage, "EXACT_PROMPTS", 60)
    monkeypatch.setattr(plan_stage, "SAMPLE_PROMPTS", 40)
    records = [
        {"prompt": f"topic {i} " + " ".join(f"w{i}x{j}" for j in range(6)), "response": f"answer {r} for {i}"}
        for i in range(150)
        for r in range(3)
    ]
    data = write_jsonl(tmp_path / "a.jsonl", records)
    summary = run_plan(build_config({}, {"input": [str(data)], "embedder": "hashing"}))
    # 150 unrelated prompts: every sampled prompt links only to itself, so the estimate is exact.
    assert summary["effective_prompts_method"] == "sampled" and summary["effective_prompts_sample"] == 40
    assert summary["effective_prompts"] == 150 and summary["effective_prompts_ci"] == [150, 150]
    assert effective_prompts(summary) == "about 150, 90% CI [150, 150] from 40 sampled prompts"
    small = run_plan(build_config({}, {"input": [str(data)], "embedder": "hashing", "redundancy_threshold": 0.01}))
    assert small["effective_prompts_method"] == "sampled" and small["effective_prompts"] < 150
