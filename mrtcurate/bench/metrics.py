"""Distributional metrics of a model's answers against the known true distribution."""

from __future__ import annotations

import numpy as np

COVERAGE_SHARE = 0.5  # an answer counts as covered at >= half its uniform share 1/|A|


def answer_metrics(
    true_probabilities: np.ndarray, model_log_likelihoods: np.ndarray, modes: np.ndarray
) -> dict[str, float]:
    """For one prompt: KL(true || model) over its valid response strings, coverage of its modes, validity mass.

    The model's probability of a response is the probability of its whole string (end token
    included), so these are exact, not sampled. KL uses those probabilities unnormalised: mass the
    model puts on invalid strings shows up as a larger KL and a validity below 1. A mode (answer)
    is covered when the model's probability summed over its phrasings reaches half of 1/|modes|.
    """
    p = np.asarray(true_probabilities, dtype=np.float64)
    log_q = np.asarray(model_log_likelihoods, dtype=np.float64)
    modes = np.asarray(modes)
    mode_mass = np.bincount(modes, weights=np.exp(log_q))
    return {
        "kl": float(np.sum(p * (np.log(p) - log_q))),
        "coverage": float(np.mean(mode_mass >= COVERAGE_SHARE / len(mode_mass))),
        "validity": float(np.exp(log_q).sum()),
    }


def mean_metrics(per_prompt: list[dict[str, float]]) -> dict[str, float]:
    return {name: float(np.mean([metrics[name] for metrics in per_prompt])) for name in ("kl", "coverage", "validity")}
