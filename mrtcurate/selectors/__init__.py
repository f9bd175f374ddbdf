"""Pure selection over arrays: no Beam, no I/O. Every selector has the signature (pool, k, seed) -> Selection.

The registry says what each selector needs: preflight (a reward source), the pipeline (whether to embed),
the report's examples and the manifest's notes consult it instead of repeating the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from mrtcurate.ids import stable_hash
from mrtcurate.schemas.config import QDSettings
from mrtcurate.schemas.counts import Count
from mrtcurate.selectors.neardup import Collapsed, NearDuplicateRule, collapse_near_duplicates
from mrtcurate.selectors.pool import Pool, Selection
from mrtcurate.selectors.qd import select_qd
from mrtcurate.selectors.quality import minmax_quality
from mrtcurate.selectors.random_k import select_random
from mrtcurate.selectors.topk import select_topk

Selector = Callable[[Pool, int, int], Selection]


@dataclass(frozen=True)
class SelectorSpec:
    name: str
    build: Callable[[QDSettings], Selector]
    needs_rewards: bool  # a run must name a reward source (pairs bring their own)
    needs_embeddings: bool
    # Pools of more than K with no reward at all: what the selector does there, counted under this name.
    unrewarded_count: Count | None
    unrewarded_note: str | None
    label: str | None = None  # said in the manifest whatever the data


SELECTORS: dict[str, SelectorSpec] = {
    spec.name: spec
    for spec in (
        SelectorSpec("random", lambda _: select_random, False, False, None, None),
        SelectorSpec(
            "topk",
            lambda _: select_topk,
            True,
            False,
            Count.RANDOM_FALLBACK_PROMPTS,
            "prompts with no reward among more than K candidates were chosen at random",
            label="reward top-K is biased towards high-reward modes",
        ),
        SelectorSpec(
            "qd",
            lambda qd: partial(select_qd, settings=qd),
            False,
            True,
            Count.DIVERSITY_ONLY_PROMPTS,
            "prompts that have no rewards ran diversity-only (lambda ignored)",
        ),
    )
}
SELECTOR_NAMES = tuple(SELECTORS)


def build_selector(name: str, qd_settings: QDSettings | None = None) -> Selector:
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose one of {', '.join(SELECTOR_NAMES)}")
    return SELECTORS[name].build(qd_settings or QDSettings())


def select(selector: Selector, pool: Pool, k: int, seed: int) -> Selection:
    """K of the pool; a pool of K or fewer keeps everything, weighted by multiplicity, with no gains."""
    if len(pool) <= k:
        order = sorted(range(len(pool)), key=lambda i: stable_hash(seed, pool.prompt_id, pool.response_ids[i]))
        indices = np.array(order, dtype=np.int64)
        return Selection(indices=indices, draws=pool.multiplicities[indices], gains=None)
    return selector(pool, k, seed)


__all__ = [
    "SELECTORS",
    "SELECTOR_NAMES",
    "Collapsed",
    "NearDuplicateRule",
    "Pool",
    "QDSettings",
    "Selection",
    "Selector",
    "SelectorSpec",
    "build_selector",
    "collapse_near_duplicates",
    "minmax_quality",
    "select",
]
