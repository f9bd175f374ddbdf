"""The C allocator's arenas are limited before a job starts its threads, and its mmap threshold fixed (glibc only)."""

import subprocess
import sys
from pathlib import Path

import pytest

from mrtcurate.allocator import ARENAS, MMAP_THRESHOLD

# Eight threads in zlib (which lets go of the GIL and mallocs) meet in the allocator; glibc's malloc_info then
# lists one <heap> per arena the process made.
_ARENAS_AFTER_THREADS = """
import ctypes, os, sys, threading, zlib
from mrtcurate.allocator import tune_malloc
applied = tune_malloc()["MALLOC_ARENA_MAX"] if sys.argv[1] == "limit" else False
data = os.urandom(1 << 20)
def work():
    for _ in range(40):
        zlib.compress(data, 1)
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL("libc.so.6")
libc.tmpfile.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fflush.argtypes = [ctypes.c_void_p]
libc.fileno.argtypes = [ctypes.c_void_p]
stream = libc.tmpfile()
libc.malloc_info(0, stream)
libc.fflush(stream)
descriptor = libc.fileno(stream)
os.lseek(descriptor, 0, 0)
print(applied, os.read(descriptor, 1 << 20).decode().count("<heap nr="))
"""


def arenas(mode: str, **environment) -> tuple[str, int]:
    shown = subprocess.run(
        [sys.executable, "-c", _ARENAS_AFTER_THREADS, mode],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1],
        env={"PATH": "/usr/bin:/bin", **environment},
    )  # fmt: skip
    applied, heaps = shown.stdout.split()
    return applied, int(heaps)


@pytest.mark.slow  # threads allocating for seconds: 8.6-9.3 s
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_threads_share_the_limited_arenas():
    applied, heaps = arenas("limit")
    assert applied == "True" and heaps <= ARENAS
    _, unlimited = arenas("none")
    assert unlimited > ARENAS  # without the limit the same threads made arenas of their own


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_users_own_setting_is_left_alone():
    applied, heaps = arenas("limit", MALLOC_ARENA_MAX="4")
    assert applied == "False" and heaps <= 4


# A block over the threshold is mapped; once freed, glibc's own rule raises the threshold past its size, so that a
# second block of that size comes from the heap. mallinfo2's hblks counts the blocks held in mappings: the second
# block adds one where the threshold stayed fixed.
_MAPPED_AFTER_A_FREE = """
import ctypes, sys
from mrtcurate.allocator import tune_malloc
applied = tune_malloc()["MALLOC_MMAP_THRESHOLD_"] if sys.argv[1] == "tune" else False
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = Info
size = int(sys.argv[2])
libc.free(libc.malloc(size))
before = libc.mallinfo2().hblks
block = libc.malloc(size)
print(applied, libc.mallinfo2().hblks - before)
"""


def mapped_after_a_free(mode: str) -> list[str]:
    shown = subprocess.run(
        [sys.executable, "-c", _MAPPED_AFTER_A_FREE, mode, str(4 * MMAP_THRESHOLD)],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1], env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return shown.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_blocks_over_the_fixed_threshold_stay_mapped_after_a_free():
    assert mapped_after_a_free("tune") == ["True", "1"]
    assert mapped_after_a_free("none") == ["False", "0"]  # glibc's own rule: the second block came from the heap
