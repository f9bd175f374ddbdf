"""The entry point of Beam's local worker processes (launch.py starts them as `python -m` this module): it
starts following the driver, then runs Beam's own worker main. First, not as a --beam_plugins import: Beam
imports plugins only after it has connected to the driver's logging service, and a worker whose driver
died before that waited for the connection for a minute.

The workers belong to the `mrt` process that launched them, and end with it: when the driver is gone (an
interrupt, SIGTERM, kill -9) a worker exits within a second instead of living on as an orphan holding
hundreds of megabytes. (Ctrl-C to the process group is the driver's alone: launch.py starts the workers
with SIGINT ignored.)
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

from mrtcurate.allocator import tune_malloc

DRIVER_PID = "MRT_DRIVER_PID"
_POLL_S = 0.5


def _driver_alive(driver: int) -> bool:
    try:
        os.kill(driver, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid was reused by another user's process: ours is gone
        return False
    return True


def _follow(driver: int) -> None:
    while _driver_alive(driver):
        time.sleep(_POLL_S)
    os._exit(1)


class _QuietOnceOrphaned:
    """The worker's stderr. Once the driver is gone, the worker's threads report their broken connections
    (tracebacks, "Logging client failed") in the moment before _follow ends it: those lines are dropped."""

    def __init__(self, stream, driver: int):
        self._stream, self._driver = stream, driver

    def write(self, text: str) -> int:
        return self._stream.write(text) if _driver_alive(self._driver) else len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _start() -> None:
    driver = os.environ.get(DRIVER_PID)
    # Beam sets the control address only for its worker processes; the driver imports this module too.
    if not driver or "CONTROL_API_SERVICE_DESCRIPTOR" not in os.environ or int(driver) == os.getpid():
        return
    sys.stderr = _QuietOnceOrphaned(sys.stderr, int(driver))
    threading.Thread(target=_follow, args=(int(driver),), name="mrt-lifeline", daemon=True).start()


if __name__ == "__main__":
    tune_malloc()  # before Beam's worker starts its threads
    _start()
    runpy.run_module("apache_beam.runners.worker.sdk_worker_main", run_name="__main__", alter_sys=True)
