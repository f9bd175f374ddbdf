from mrtcurate.analysis.simulate import random_bias_by_trials, selection_bias, variance_grid


def test_variance_formula_matches_monte_carlo():
    result = variance_grid(trials=3000, seed=1)
    assert result["max_relative_error"] < 0.10
    diagonal = sorted((row for row in result["grid"] if row["budget"] == 256), key=lambda row: row["K"])
    # At equal budget P*K, more prompts and fewer responses each always has the lower variance.
    assert [row["observed"] for row in diagonal] == sorted(row["observed"] for row in diagonal)


def test_selection_bias_random_unbiased_topk_misaligned_qd_covers():
    strategies = selection_bias(prompts=150, trials=4, seed=2)["strategies"]
    assert strategies["random"]["mean_grad_cosine"] > 0.99 and strategies["random"]["bias_norm"] < 0.03
    # The reward prefers the rarest modes: top-K's gradient points away from the true objective's.
    assert strategies["topk"]["mean_grad_cosine"] < 0 and strategies["topk"]["grad_cosine"] < 0.1
    assert strategies["qd"]["mode_coverage"] > strategies["random"]["mode_coverage"]
    assert strategies["topk"]["bias_norm"] > 10 * strategies["random"]["bias_norm"]


def test_random_bias_shrinks_with_more_draws():
    biases = dict(random_bias_by_trials(trial_counts=(1, 16), prompts=40, seed=3))
    assert biases[16] < biases[1] and biases[16] < 0.03
