"""Pure selection over arrays: no Beam, no I/O. Every selector has the signature (pool, k, seed) -> Selection."""

from __future__ import annotations

from functools import partial
from typing import Callable

import numpy as np

from mrtcurate.ids import stable_hash
from mrtcurate.selectors.neardup import collapse_near_duplicates
from mrtcurate.selectors.pool import Pool, Selection
from mrtcurate.selectors.qd import QDSettings, select_qd
from mrtcurate.selectors.quality import minmax_quality
from mrtcurate.selectors.random_k import select_random
from mrtcurate.selectors.topk import select_topk

Selector = Callable[[Pool, int, int], Selection]
SELECTOR_NAMES = ("random", "topk", "qd")


def build_selector(name: str, qd_settings: QDSettings | None = None) -> Selector:
    if name == "random":
        return select_random
    if name == "topk":
        return select_topk
    if name == "qd":
        return partial(select_qd, settings=qd_settings or QDSettings())
    raise ValueError(f"unknown selector {name!r}; choose one of {', '.join(SELECTOR_NAMES)}")


def select(selector: Selector, pool: Pool, k: int, seed: int) -> Selection:
    """K of the pool; a pool of K or fewer keeps everything, weighted by multiplicity, with no gains."""
    if len(pool) <= k:
        order = sorted(range(len(pool)), key=lambda i: stable_hash(seed, pool.prompt_id, pool.response_ids[i]))
        indices = np.array(order, dtype=np.int64)
        return Selection(indices=indices, draws=pool.multiplicities[indices], gains=None)
    return selector(pool, k, seed)


__all__ = [
    "SELECTOR_NAMES",
    "Pool",
    "QDSettings",
    "Selection",
    "Selector",
    "build_selector",
    "collapse_near_duplicates",
    "minmax_quality",
    "select",
]
