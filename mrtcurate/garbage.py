"""The cyclic garbage collector, set for a batch job. A job holds millions of small long-lived containers
(candidates, members, rows) and CPython's defaults scan them again every 700 allocations: a profile of a
200,000-response run (py-spy --native) had 15% of its samples in gc_collect_main. Reference counting frees
almost everything here; the cyclic collector only has to run now and then."""

from __future__ import annotations

import gc

# Allocations before a young collection, then young collections per middle one, middle ones per full one.
_THRESHOLDS = (50_000, 50, 1_000)


def tune_collector(freeze: bool = False) -> None:
    """Idempotent, so every worker process can call it from its stages' setup. `freeze`: the objects alive now
    (the imported modules) are never scanned again; for the driver, once its imports are done."""
    if gc.get_threshold() != _THRESHOLDS:
        gc.set_threshold(*_THRESHOLDS)
    if freeze:
        gc.freeze()
