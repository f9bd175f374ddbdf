"""The C allocator, set for a job of many threads that makes and drops large arrays. Both settings cut the peak
resident memory of a run, never its results.

Arenas: glibc gives a thread that meets another in malloc an arena of its own, up to eight per core, and gives back
little of an arena's freed memory: the local runner's processes run a dozen threads (gRPC, data channels,
progress), and a 1,000,000-response qd run on two workers peaked at 2.93 GB over its process tree against 2.58 GB
with ARENAS (RSS polled each second, the same corpus minutes apart, shards identical). Python allocates under the
GIL, so more arenas buy this job nothing.

The mmap threshold: glibc serves a block over it from a mapping of its own, returned to the system when freed, but
raises the threshold each time such a block is freed (up to 32 MB), so that a bucket's arrays of a few MB come from
the heap afterwards, where the small objects around them keep the pages from going back. Fixed at MMAP_THRESHOLD:
the same qd run with each bucket embedded in Select peaked at 3.12 GB, and at 2.48 GB with the fixed threshold."""

from __future__ import annotations

import ctypes
import os
import sys

ARENAS = 2
MMAP_THRESHOLD = 1 << 20
_M_ARENA_MAX = -8  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> dict[str, bool]:
    """Which settings this process now has: its arenas limited to ARENAS and its mmap threshold fixed at
    MMAP_THRESHOLD. Before a process starts its threads: arenas made already stay. Each is left as it is where the
    user set its variable (glibc reads MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_ at start), and both off glibc,
    where mallopt does not take these options."""
    settings = {
        "MALLOC_ARENA_MAX": (_M_ARENA_MAX, ARENAS),
        "MALLOC_MMAP_THRESHOLD_": (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
    }
    applied = dict.fromkeys(settings, False)
    if not sys.platform.startswith("linux"):
        return applied
    try:
        libc = ctypes.CDLL("libc.so.6")
        for variable, (option, value) in settings.items():
            applied[variable] = variable not in os.environ and bool(libc.mallopt(option, value))
    except (OSError, AttributeError):  # musl and other C libraries: no libc.so.6 or no mallopt
        pass
    return applied
