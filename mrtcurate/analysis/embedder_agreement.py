"""How far a fast embedder's vectors lead to the same decisions as the reference model's, on the same
texts grouped by prompt: the quality gates of tests/vectors and the figures of benchmarks/embedders.py."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr

from mrtcurate.selectors import Pool, select
from mrtcurate.selectors.qd import select_qd

Groups = Sequence[np.ndarray]  # row indices of each prompt's texts


def whole_prompts(rows: list[dict], rows_wanted: int, seed: int = 0) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """Responses of whole prompts (`prompt_id`, `response`, `score` rows), prompts in a seeded order,
    until `rows_wanted` responses: the texts, their groups by prompt, and their rewards (NaN: none)."""
    by_prompt: dict[str, list[dict]] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt_id"], []).append(row)
    prompts = sorted(by_prompt)
    random.Random(seed).shuffle(prompts)
    texts, groups, rewards = [], [], []
    for prompt in prompts:
        if len(texts) >= rows_wanted:
            break
        groups.append(np.arange(len(texts), len(texts) + len(by_prompt[prompt])))
        texts += [row["response"] for row in by_prompt[prompt]]
        rewards += [np.nan if row.get("score") is None else float(row["score"]) for row in by_prompt[prompt]]
    return texts, groups, np.array(rewards)


def row_cosines(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Only for two embedders with the same output space (a quantised copy of one model)."""
    cosines = np.einsum("ij,ij->i", reference, candidate)
    return {"mean": float(cosines.mean()), "p1": float(np.percentile(cosines, 1)), "min": float(cosines.min())}


def _pair_cosines(vectors: np.ndarray, groups: Groups) -> np.ndarray:
    parts = []
    for rows in groups:
        upper = np.triu_indices(len(rows), 1)
        parts.append((vectors[rows] @ vectors[rows].T)[upper])
    return np.concatenate(parts) if parts else np.zeros(0)


def near_dup_agreement(reference: np.ndarray, candidate: np.ndarray, groups: Groups, threshold: float) -> float:
    """Share of within-prompt pairs on which both call near-duplicate (cosine >= threshold) alike."""
    return float(
        np.mean((_pair_cosines(reference, groups) >= threshold) == (_pair_cosines(candidate, groups) >= threshold))
    )


def pair_rank_correlation(reference: np.ndarray, candidate: np.ndarray, groups: Groups) -> float:
    """Spearman correlation of within-prompt pairwise cosines: whether the candidate orders a prompt's
    answers by similarity as the reference does, whatever the scale of its cosines."""
    return float(spearmanr(_pair_cosines(reference, groups), _pair_cosines(candidate, groups)).statistic)


def _qd_choices(vectors: np.ndarray, groups: Groups, rewards: np.ndarray, k: int) -> list[np.ndarray]:
    chosen = []
    for number, rows in enumerate(groups):
        pool = Pool(
            str(number),
            tuple(str(row) for row in rows),
            np.ones(len(rows), dtype=np.int64),
            rewards[rows],
            vectors[rows],
        )
        chosen.append(rows[select(select_qd, pool, k, seed=0).indices])
    return chosen


def qd_overlap(reference: np.ndarray, candidate: np.ndarray, groups: Groups, rewards: np.ndarray, k: int) -> float:
    """Share of the rows qd keeps with the reference's vectors that it also keeps with the candidate's."""
    kept = _qd_choices(reference, groups, rewards, k)
    kept_with_candidate = _qd_choices(candidate, groups, rewards, k)
    shared = sum(len(np.intersect1d(a, b)) for a, b in zip(kept, kept_with_candidate))
    return shared / sum(len(a) for a in kept)


def qd_diversity_kept(
    reference: np.ndarray, candidate: np.ndarray, groups: Groups, rewards: np.ndarray, k: int
) -> float:
    """Diversity (mean pairwise cosine distance under the reference) of what qd keeps when it sees the
    candidate's vectors, as a share of what it keeps when it sees the reference's."""

    def diversity(choices: list[np.ndarray]) -> float:
        return float(np.mean([np.mean(1.0 - _pair_cosines(reference, [rows])) for rows in choices if len(rows) > 1]))

    return diversity(_qd_choices(candidate, groups, rewards, k)) / diversity(_qd_choices(reference, groups, rewards, k))
