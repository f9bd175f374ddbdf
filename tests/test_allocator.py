"""The C allocator's arenas are limited before a job starts its threads (glibc only)."""

import subprocess
import sys
from pathlib import Path

import pytest

from mrtcurate.allocator import ARENAS

# Eight threads in zlib (which lets go of the GIL and mallocs) meet in the allocator; glibc's malloc_info then
# lists one <heap> per arena the process made.
_ARENAS_AFTER_THREADS = """
import ctypes, os, sys, threading, zlib
from mrtcurate.allocator import limit_malloc_arenas
applied = limit_malloc_arenas() if sys.argv[1] == "limit" else False
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
