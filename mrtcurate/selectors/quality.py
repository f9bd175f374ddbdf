"""Rewards mapped into [0, 1] within a pool, so that quality means the same on every pool."""

import numpy as np


def minmax_quality(rewards: np.ndarray) -> np.ndarray:
    finite = np.isfinite(rewards)
    if not finite.any():
        return np.full(len(rewards), np.nan)
    low, high = rewards[finite].min(), rewards[finite].max()
    if high == low:
        return np.where(finite, 1.0, np.nan)
    return np.where(finite, (rewards - low) / (high - low), np.nan)
