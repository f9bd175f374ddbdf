"""Texts per second of an embedder, as `mrt embedders --measure` and benchmarks/embedders.py report it."""

from __future__ import annotations

import time
from collections.abc import Sequence

from mrtcurate.vectors.embedders import Embedder

_WARM_UP_TEXTS = 32


def texts_per_second(embedder: Embedder, texts: Sequence[str], batch_size: int) -> float:
    """The model already loaded and one small batch run first: load time and first-call set-up (thread
    pools, allocations) are not what a long job pays per text."""
    embedder.encode(texts[:_WARM_UP_TEXTS], batch_size=batch_size)
    started = time.perf_counter()
    embedder.encode(texts, batch_size=batch_size)
    return len(texts) / max(time.perf_counter() - started, 1e-9)
