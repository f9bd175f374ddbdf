import math

import numpy as np

from mrtcurate.analysis.planner import PlanSettings, plan
from mrtcurate.analysis.variance import Moments, PromptStats, components, poisson_weights

SIGMA_B2, SIGMA_W2, DIM = 0.6, 2.4, 8


def synthetic(rng, prompts=2000):
    sizes = rng.integers(1, 9, size=prompts)  # unequal groups, singletons included
    means = rng.normal(scale=math.sqrt(SIGMA_B2 / DIM), size=(prompts, DIM))
    groups = np.repeat(np.arange(prompts), sizes)
    features = means[groups] + rng.normal(scale=math.sqrt(SIGMA_W2 / DIM), size=(len(groups), DIM))
    return PromptStats.from_features(features, groups)


def test_estimates_within_ten_percent_at_2000_prompts():
    estimate = components(synthetic(np.random.default_rng(0)))
    assert abs(estimate.sigma_b2 - SIGMA_B2) / SIGMA_B2 < 0.10
    assert abs(estimate.sigma_w2 - SIGMA_W2) / SIGMA_W2 < 0.10
    assert abs(estimate.rho - SIGMA_B2 / (SIGMA_B2 + SIGMA_W2)) < 0.03


def test_bootstrap_intervals_cover_the_truth_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    draws, covered_b, covered_w = 60, 0, 0
    for draw in range(draws):
        result = plan(synthetic(rng, prompts=600).moments(150, seed=draw), PlanSettings(bootstrap=150))
        covered_b += result["sigma_b2_ci"][0] <= SIGMA_B2 <= result["sigma_b2_ci"][1]
        covered_w += result["sigma_w2_ci"][0] <= SIGMA_W2 <= result["sigma_w2_ci"][1]
    # Nominal 90%; with 60 draws the binomial spread is about +-4 points.
    assert 0.78 <= covered_b / draws <= 0.99
    assert 0.78 <= covered_w / draws <= 0.99


def test_recommendation_and_table():
    result = plan(synthetic(np.random.default_rng(2)).moments(20), PlanSettings(bootstrap=20))
    ratio = result["variance_ratio"]
    assert 3.0 < ratio < 5.0  # sigma_w2 / sigma_b2 = 4
    assert result["k_max"] == 8 and len(result["k_table"]) == 8
    assert result["k_table"][0]["relative_variance"] == 1 + ratio
    # Smallest K within 10% of V(inf) is ceil(ratio / 0.1) = 40+, capped by the 8 responses available.
    assert result["recommended_k"] == 8
    with_cost = plan(synthetic(np.random.default_rng(2)).moments(20), PlanSettings(bootstrap=20, cost_ratio=4.0))
    assert with_cost["recommended_k"] == min(8, round(math.sqrt(ratio * 4.0)))


def test_identical_responses_recommend_one():
    groups = np.repeat(np.arange(50), 4)
    features = np.random.default_rng(3).normal(size=(50, 4))[groups]
    result = plan(PromptStats.from_features(features, groups).moments(10), PlanSettings(bootstrap=10))
    assert result["sigma_w2"] == 0 and result["recommended_k"] == 1 and result["rho"] == 1.0


def test_no_prompt_with_two_responses_plans_without_numpy_warnings():
    import warnings

    stats = PromptStats.from_features(np.random.default_rng(0).normal(size=(10, 4)), np.arange(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = plan(stats.moments(20), PlanSettings(bootstrap=20))
    assert result["sigma_w2_ci"] == [None, None] or result["sigma_w2_ci"] == (None, None), result


def test_moments_do_not_depend_on_how_prompts_are_split_or_ordered():
    stats = synthetic(np.random.default_rng(4), prompts=500)
    keys = np.arange(500, dtype=np.uint64) * np.uint64(7919)

    def moments_of(index):
        return Moments.of_prompts(keys[index], stats.counts[index], stats.sums[index], stats.square_norms[index], 50, 3)

    whole = moments_of(np.arange(500))
    order = np.random.default_rng(5).permutation(500)
    parts = [moments_of(order[start : start + 37]) for start in range(0, 500, 37)]
    summed = parts[0]
    for part in parts[1:]:
        summed = summed + part
    # Exactly equal, not close: the planner's numbers (and --k auto) cannot move with the runner's bundling.
    assert np.array_equal(whole.scalars, summed.scalars) and np.array_equal(whole.sums, summed.sums)
    assert whole.components() == components(stats) and whole.largest_pool == 8


def test_poisson_weights_are_per_key_and_average_one():
    keys = np.arange(20_000, dtype=np.uint64)
    weights = poisson_weights(keys, 40, seed=1)
    assert abs(weights.mean() - 1.0) < 0.01 and abs(weights.var() - 1.0) < 0.02  # Poisson(1)
    np.testing.assert_array_equal(poisson_weights(keys[::-1], 40, seed=1), weights[::-1])
    assert not np.array_equal(poisson_weights(keys, 40, seed=2), weights)
