"""How many distinct prompts a corpus holds once near-duplicate prompts (cosine >= tau) count once.

Up to EXACT_PROMPTS prompts: the number of connected components of the tau-graph, exactly. Above that,
gathering every prompt vector on one machine would not scale (10 million prompts at 384 float32
dimensions are 15 GB), so the count is estimated from a uniform sample of SAMPLE_PROMPTS prompts: each
sampled prompt i gets its degree d_i (prompts within tau of it, itself included), counted in one
streaming pass over all prompts, and

    effective ~= P * mean(1 / d_i),

with a normal interval from the sample's spread and the finite-population correction. The estimator is
exact when every near-duplicate group is a clique (the usual case: copies and light paraphrases of one
prompt are all close to each other); for chains of prompts it counts more than the components do.
Memory is O(SAMPLE_PROMPTS * D) wherever the pass runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mrtcurate.vectors.components import near_duplicate_components

EXACT_PROMPTS = 10_000
SAMPLE_PROMPTS = 2_000


@dataclass(frozen=True)
class EffectivePrompts:
    count: int
    method: str  # "exact" or "sampled"
    interval: tuple[int, int] | None = None  # sampled: the ci_level interval
    sample: int | None = None

    def as_dict(self) -> dict:
        return {
            "effective_prompts": self.count,
            "effective_prompts_method": self.method,
            "effective_prompts_ci": list(self.interval) if self.interval else None,
            "effective_prompts_sample": self.sample,
        }


def exact_effective_prompts(vectors: np.ndarray, tau: float) -> EffectivePrompts:
    count = int(near_duplicate_components(vectors, tau).max() + 1) if len(vectors) else 0
    return EffectivePrompts(count, "exact")


def links_to_sample(vectors: np.ndarray, sample: np.ndarray, tau: float) -> np.ndarray:
    """For each sampled prompt, how many of `vectors` lie within tau of it (unit vectors: cosine = dot)."""
    return (np.asarray(vectors, dtype=np.float32) @ sample.T >= np.float32(tau)).sum(axis=0).astype(np.int64)


def sampled_effective_prompts(degrees: np.ndarray, prompts: int, level: float) -> EffectivePrompts:
    """`degrees`: each sampled prompt's degree over all `prompts`, itself included (so >= 1)."""
    inverse = 1.0 / np.maximum(degrees, 1)
    sampled = len(inverse)
    mean = float(inverse.mean())
    spread = float(inverse.std(ddof=1)) if sampled > 1 else 0.0
    from scipy.stats import norm  # a third of a second to import, and only a sampled count needs it

    half = norm.ppf(0.5 + level / 2) * spread / math.sqrt(sampled) * math.sqrt(max(0.0, 1 - sampled / prompts))
    low, high = max(1, math.floor(prompts * (mean - half))), min(prompts, math.ceil(prompts * (mean + half)))
    return EffectivePrompts(round(prompts * mean), "sampled", (low, high), sampled)
