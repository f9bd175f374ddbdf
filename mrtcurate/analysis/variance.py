"""One-way random-effects ANOVA on vector features, unbalanced groups (DESIGN.md 2.1).

Everything is computed from per-prompt sufficient statistics (count n_i, vector sum s_i, sum of
squared norms q_i), so the Beam job can combine them per prompt, and a bootstrap over prompts is a
reweighting of those statistics rather than a pass over the responses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class PromptStats:
    counts: np.ndarray  # (P,) responses per prompt
    sums: np.ndarray  # (P, D) sum of the prompt's feature vectors
    square_norms: np.ndarray  # (P,) sum of the prompt's squared feature norms

    @cached_property
    def explained_squares(self) -> np.ndarray:
        """|s_i|^2 / n_i per prompt: the part of q_i its mean explains."""
        return (self.sums**2).sum(axis=1) / self.counts

    @classmethod
    def from_features(cls, features: np.ndarray, groups: np.ndarray) -> PromptStats:
        features = np.asarray(features, dtype=np.float64)
        labels, index = np.unique(groups, return_inverse=True)
        sums = np.zeros((len(labels), features.shape[1]))
        np.add.at(sums, index, features)
        return cls(
            counts=np.bincount(index, minlength=len(labels)).astype(np.float64),
            sums=sums,
            square_norms=np.bincount(index, weights=(features**2).sum(axis=1), minlength=len(labels)),
        )


@dataclass(frozen=True)
class Components:
    prompts: int
    responses: int
    sigma_b2: float
    sigma_w2: float

    @property
    def rho(self) -> float:
        total = self.sigma_b2 + self.sigma_w2
        return self.sigma_b2 / total if total > 0 else float("nan")


def components(stats: PromptStats, weights: np.ndarray | None = None) -> Components:
    """sigma_b^2 and sigma_w^2 (traces). `weights` counts how often each prompt is drawn (bootstrap).

    Written over per-prompt scalars (n_i, q_i, |s_i|^2 / n_i) and one weighted sum of the vector sums,
    so that a bootstrap replicate costs one matrix-vector product, not fresh P x D temporaries."""
    w = np.ones(len(stats.counts)) if weights is None else weights
    n = stats.counts
    prompts, responses = w.sum(), w @ n
    within_ss = w @ (stats.square_norms - stats.explained_squares)
    # Prompts with one response add n_i - 1 = 0 to the degrees of freedom: they inform sigma_b only.
    msw = within_ss / (responses - prompts) if responses > prompts else float("nan")
    grand_mean = (w @ stats.sums) / responses if responses else np.zeros(stats.sums.shape[1])
    between_ss = w @ stats.explained_squares - responses * (grand_mean @ grand_mean)
    msb = between_ss / (prompts - 1) if prompts > 1 else float("nan")
    n0 = (responses - (w @ n**2) / responses) / (prompts - 1) if prompts > 1 else float("nan")
    estimable = np.isfinite(msb) and np.isfinite(msw) and n0 > 0
    sigma_b2 = max(0.0, (msb - msw) / n0) if estimable else float("nan")
    return Components(round(prompts), round(responses), float(sigma_b2), float(msw))


def bootstrap_intervals(
    stats: PromptStats, replicates: int = 200, level: float = 0.9, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile intervals from resampling prompts with replacement."""
    rng = np.random.default_rng(seed)
    prompts = len(stats.counts)
    draws = {"sigma_b2": [], "sigma_w2": [], "rho": []}
    for _ in range(replicates):
        weights = np.bincount(rng.integers(0, prompts, prompts), minlength=prompts).astype(np.float64)
        estimate = components(stats, weights)
        draws["sigma_b2"].append(estimate.sigma_b2)
        draws["sigma_w2"].append(estimate.sigma_w2)
        draws["rho"].append(estimate.rho)
    tail = (1.0 - level) / 2.0 * 100
    return {name: _percentile_interval(np.asarray(values), tail) for name, values in draws.items()}


def _percentile_interval(values: np.ndarray, tail: float) -> tuple[float, float]:
    """NaN ends when no replicate was estimable (no prompt with two responses), without numpy's warning."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
