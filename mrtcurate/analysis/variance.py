"""One-way random-effects ANOVA on vector features, unbalanced groups (DESIGN.md 2.1).

Everything is computed from per-prompt sufficient statistics (count n_i, vector sum s_i, sum of
squared norms q_i), and from those only through sums over prompts (Moments): the full sample's and those
of R bootstrap replicates. A replicate is a Poisson bootstrap: prompt i enters replicate r with the weight
Poisson(1) drawn from a hash of (prompt key, r, seed), independently of every other prompt, so the
replicates' sums accumulate prompt by prompt in any order and on any worker, in memory that does not grow
with the prompt count ((R + 1) x (D + 5) numbers). For many prompts it behaves as the multinomial bootstrap
it stands in for (Chamandy et al., "Estimating uncertainty for massive data streams", 2012).

Each prompt's contributions are rounded to multiples of 2^-20 before they are summed: integer-valued
doubles add exactly (below 2^53), so the moments, and every estimate from them, do not depend on the order
the runner combined the prompts in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_GRID = 2.0**20
_POISSON_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(24)])


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """A 64-bit mixer (Steele et al.'s SplitMix64 finaliser), vectorised: numpy has no counter-based draw
    keyed by an arbitrary integer per element, which the bootstrap weights need to be batch-independent."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def poisson_weights(keys: np.ndarray, replicates: int, seed: int) -> np.ndarray:
    """(P, replicates) Poisson(1) weights, each a function of (key, replicate, seed) alone."""
    streams = _splitmix64(np.arange(replicates, dtype=np.uint64) + np.uint64(seed % 2**32) * np.uint64(1 << 32))
    with np.errstate(over="ignore"):
        draws = _splitmix64(np.asarray(keys, dtype=np.uint64)[:, None] ^ streams[None, :])
    uniforms = (draws >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.searchsorted(_POISSON_CDF, uniforms, side="right").astype(np.float64)


@dataclass(frozen=True)
class Moments:
    """Sums over prompts of w_i (1, n_i, q_i, |s_i|^2 / n_i, n_i^2) and of w_i s_i: row 0 with w = 1 (the
    sample), row r the r-th bootstrap replicate. Merged by addition."""

    scalars: np.ndarray  # (R + 1, 5)
    sums: np.ndarray  # (R + 1, D)
    largest_pool: int

    @classmethod
    def of_prompts(
        cls,
        keys: np.ndarray,
        counts: np.ndarray,
        sums: np.ndarray,
        square_norms: np.ndarray,
        replicates: int,
        seed: int,
    ) -> Moments:
        counts = np.asarray(counts, dtype=np.float64)
        sums = np.asarray(sums, dtype=np.float64)
        explained = (sums**2).sum(axis=1) / counts
        per_prompt = np.stack([np.ones_like(counts), counts, square_norms, explained, counts**2], axis=1)
        weights = np.hstack([np.ones((len(counts), 1)), poisson_weights(keys, replicates, seed)])
        return cls(
            weights.T @ (np.round(per_prompt * _GRID) / _GRID),
            weights.T @ (np.round(sums * _GRID) / _GRID),
            int(counts.max()) if len(counts) else 0,
        )

    @classmethod
    def empty(cls, replicates: int, dimensions: int) -> Moments:
        return cls(np.zeros((replicates + 1, 5)), np.zeros((replicates + 1, dimensions)), 0)

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.scalars + other.scalars, self.sums + other.sums, max(self.largest_pool, other.largest_pool))

    @property
    def replicates(self) -> int:
        return len(self.scalars) - 1

    def components(self, replicate: int = 0) -> Components:
        """sigma_b^2 and sigma_w^2 (traces) of the sample (0) or of one bootstrap replicate."""
        prompts, responses, square_norms, explained, count_squares = self.scalars[replicate]
        within_ss = square_norms - explained
        # Prompts with one response add n_i - 1 = 0 to the degrees of freedom: they inform sigma_b only.
        msw = within_ss / (responses - prompts) if responses > prompts else float("nan")
        grand_mean = self.sums[replicate] / responses if responses else np.zeros(self.sums.shape[1])
        between_ss = explained - responses * (grand_mean @ grand_mean)
        msb = between_ss / (prompts - 1) if prompts > 1 else float("nan")
        n0 = (responses - count_squares / responses) / (prompts - 1) if prompts > 1 else float("nan")
        estimable = np.isfinite(msb) and np.isfinite(msw) and n0 > 0
        sigma_b2 = max(0.0, (msb - msw) / n0) if estimable else float("nan")
        return Components(
            round(prompts),
            round(responses),
            float(sigma_b2),
            float(max(msw, 0.0)) if np.isfinite(msw) else float("nan"),
        )


@dataclass(frozen=True)
class PromptStats:
    counts: np.ndarray  # (P,) responses per prompt
    sums: np.ndarray  # (P, D) sum of the prompt's feature vectors
    square_norms: np.ndarray  # (P,) sum of the prompt's squared feature norms

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

    def moments(self, replicates: int = 0, seed: int = 0) -> Moments:
        """The prompts keyed by their position."""
        keys = np.arange(len(self.counts), dtype=np.uint64)
        return Moments.of_prompts(keys, self.counts, self.sums, self.square_norms, replicates, seed)


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


def components(stats: PromptStats) -> Components:
    return stats.moments().components()


def bootstrap_intervals(moments: Moments, level: float = 0.9) -> dict[str, tuple[float, float]]:
    """Percentile intervals over the moments' bootstrap replicates."""
    draws = {"sigma_b2": [], "sigma_w2": [], "rho": []}
    for replicate in range(1, moments.replicates + 1):
        estimate = moments.components(replicate)
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
