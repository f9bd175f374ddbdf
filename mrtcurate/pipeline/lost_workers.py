"""A local worker process that dies ends the job in one line, not in a hang or pages of tracebacks.

Beam's local runner starts each worker process from a thread of the driver and raises "Worker subprocess
exited with return code N" in that thread when it ends: nobody reads it. A worker that died at start (an
import that failed) left the driver waiting for its connection forever; one killed mid-job (the kernel's
out-of-memory killer sends SIGKILL) ended the job with a hundred lines of gRPC tracebacks from four threads.
While a job runs on worker processes, that thread's exception ends the command the way an interrupt does
(interrupts.end_now: cleanups, the other workers, one line naming the cause, exit 1).
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Iterator

from mrtcurate import interrupts

_WORKER_EXIT = re.compile(r"Worker subprocess exited with return code (-?\d+)")
# What the driver's main thread raises when a worker's data channel closes under it: the worker's own exit, seen by
# its thread a moment later, is the cause to report.
_CHANNEL_CLOSED = "Channel closed prematurely"
_CAUSE_WAIT_S = 5.0


def why_a_worker_ended(code: int) -> str:
    if code >= 0:
        return f"a local worker process exited with code {code} while the job ran (its own error, if any, is above)"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = ""
    if -code == signal.SIGKILL:
        hint = " (the kernel's out-of-memory killer sends it, see `dmesg`: fewer --workers need less memory)"
    return f"a local worker process was killed by {name} while the job ran{hint}"


class LostWorkers:
    """Within `watching()`, a worker thread's exit exception ends the command (where interrupts.ends_commands) or
    is kept as `cause` for the main thread to raise."""

    def __init__(self):
        self.cause: str | None = None
        self._found = threading.Event()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        previous = threading.excepthook

        def hook(args):
            found = _WORKER_EXIT.search(str(args.exc_value)) if args.exc_type is RuntimeError else None
            if found is None:
                # Another of the runner's threads, whose connection broke with the worker: it reports first as often
                # as not, so it waits a moment for the cause, and says nothing if that came.
                self._found.wait(_CAUSE_WAIT_S)
                if self.cause is None:
                    previous(args)
                return
            if self.cause is not None:
                return
            self.cause = why_a_worker_ended(int(found.group(1)))
            self._found.set()
            if interrupts.ends_commands():
                interrupts.end_now(self.cause)

        threading.excepthook = hook
        try:
            yield
        finally:
            threading.excepthook = previous

    def cause_of(self, error: Exception) -> str | None:
        """The lost worker behind the main thread's `error`, waiting a moment for its thread to report it."""
        if _CHANNEL_CLOSED in str(error):
            self._found.wait(_CAUSE_WAIT_S)
        return self.cause
