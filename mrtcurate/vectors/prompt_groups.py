"""Prompt merging: prompts whose embeddings have cosine >= tau form one group, exposing the implicit
multi-response structure of redundant corpora (DESIGN.md 2.1)."""

from __future__ import annotations

import numpy as np

from mrtcurate.vectors.components import near_duplicate_components


def prompt_groups(prompt_ids: list[str], embeddings: np.ndarray, tau: float) -> dict[str, str]:
    """prompt_id -> group id (the smallest prompt_id in its group), for prompts that joined a group only."""
    if len(prompt_ids) < 2:
        return {}
    labels = near_duplicate_components(embeddings, tau)
    group_of_label: dict[int, str] = {}
    for prompt_id, label in zip(prompt_ids, labels):
        if label not in group_of_label or prompt_id < group_of_label[label]:
            group_of_label[label] = prompt_id
    return {pid: group_of_label[label] for pid, label in zip(prompt_ids, labels) if group_of_label[label] != pid}
