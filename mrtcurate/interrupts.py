"""Ctrl-C and SIGTERM end a command in one line, within seconds, leaving nothing half-written.

Raising KeyboardInterrupt into a running Beam job did not do that: the exception surfaced from whichever
thread or worker saw it first (pages of traceback, exit 1), and the interpreter's exit then waited on the
runner's non-daemon threads, so one interrupt in eleven hung for over ten minutes. Here the handler
runs the cleanups the command registered (its staging folder, its incoming cache files), prints one
line and leaves with os._exit: no thread is joined, no worker traceback is printed. Beam's worker
processes follow by themselves (pipeline/lifeline.py).

Code that must not be cut in half (the renames that publish a dataset) runs inside `deferred()`; a
signal arriving there is acted on when it ends.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
_cleanups: dict[int, Callable[[], None]] = {}
_ids = itertools.count()
_lock = threading.RLock()
_deferring = 0
_pending: int | None = None
_published = False
_active = False  # inside handled(), on the main thread: a failure elsewhere may end the command (end_now)


@contextlib.contextmanager
def cleanup_on_interrupt(cleanup: Callable[[], None]) -> Iterator[None]:
    """`cleanup` runs if the command is interrupted while inside this block."""
    key = next(_ids)
    with _lock:
        _cleanups[key] = cleanup
    try:
        yield
    finally:
        with _lock:
            _cleanups.pop(key, None)


@contextlib.contextmanager
def made_and_undone_on_interrupt(make: Callable[[], T], undo: Callable[[T], None]) -> Iterator[T]:
    """`make()`, with `undo(made)` run by an interrupt inside the block. Both happen under deferred(), so an
    interrupt finds the thing made and its undoing registered, or neither: one that fell between them left the
    thing behind, and the main thread goes on making things while the cleanups run (they hold the lock, which
    deferred() waits for, until the exit)."""
    with contextlib.ExitStack() as registration:
        with deferred():
            made = make()
            registration.enter_context(cleanup_on_interrupt(lambda: undo(made)))
        yield made


@contextlib.contextmanager
def temporary_folder(prefix: str) -> Iterator[str]:
    """tempfile.TemporaryDirectory that an interrupt removes too."""
    with made_and_undone_on_interrupt(lambda: tempfile.mkdtemp(prefix=prefix), _remove_folder) as folder:
        try:
            yield folder
        finally:
            _remove_folder(folder)  # while still registered: an interrupt here removes it again, harmlessly


def _remove_folder(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def cleanups_held_off() -> Iterator[None]:
    """Make a file (and the folders above it, as Beam's FileSystems.create does) inside this block: it is then made
    before an interrupt's cleanups remove its folder, which takes it along, or never. A job thread still writing
    while the cleanups ran brought back a staging folder they had just removed (the cleanups hold this lock until
    the exit). Only the making: writing to a file already open is harmless, as its folder's removal unlinks it."""
    with _lock:
        yield


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    global _deferring
    with _lock:
        _deferring += 1
    try:
        yield
    finally:
        with _lock:
            _deferring -= 1
            pending = _pending if _deferring == 0 else None
        if pending is not None:
            _terminate(pending)


def mark_published() -> None:
    """After this, an interrupt no longer means that nothing was published."""
    global _published
    _published = True


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Within this block (one CLI command), SIGINT and SIGTERM end the process as described above.

    A Python signal handler alone does not do it: it runs on the main thread only, and a main thread
    blocked on a lock (a job whose workers died) never runs it. So the signals are blocked in the main
    thread, which every thread and worker process started later inherits (Ctrl-C to the process group
    no longer reaches Beam's workers), and a watcher thread takes them with sigtimedwait. A thread that
    started before the block (a native pool of an imported library) may still receive one: its C-level
    handler writes to the wakeup pipe, which the watcher reads too. Off the main thread (a test calling
    the CLI from a thread) nothing changes."""
    global _published, _active
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _published, _active = False, True
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, EXIT_CODES)
    previous_handlers = {number: signal.signal(number, _on_signal) for number in EXIT_CODES}
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    previous_wakeup = signal.set_wakeup_fd(wakeup_write, warn_on_full_buffer=False)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(stop, wakeup_read), name="mrt-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        _active = False
        stop.set()
        watcher.join()
        signal.set_wakeup_fd(previous_wakeup)
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        os.close(wakeup_read)
        os.close(wakeup_write)


def _watch(stop: threading.Event, wakeup: int) -> None:
    while not stop.is_set():
        received = signal.sigtimedwait(EXIT_CODES, 0.1)
        number = received.si_signo if received else _woken(wakeup)
        # Only the two exit signals: a profiler attaching with ptrace (py-spy record --pid) makes sigtimedwait return
        # the stop it caused, which was taken for a SIGTERM, removing the staging folder under a running job.
        if number in EXIT_CODES:
            _handle(number)


def _woken(wakeup: int) -> int | None:
    if not select.select([wakeup], [], [], 0)[0]:
        return None
    return next((number for number in os.read(wakeup, 64) if number in EXIT_CODES), None)


def _on_signal(number: int, _frame) -> None:
    _handle(number)


def _handle(number: int) -> None:
    global _pending
    with _lock:  # held to the exit: no publishing rename can begin while cleanups run
        if _deferring:
            _pending = number
            return
        _terminate(number)


def _terminate(number: int) -> None:
    name = "interrupted" if number == signal.SIGINT else "terminated"
    _end(f"{name}: {_outcome()}", EXIT_CODES[number])


def ends_commands() -> bool:
    """Whether end_now may end the process: inside handled(), that is in a CLI command."""
    return _active


def end_now(failure: str) -> None:
    """End the command at once as an interrupt does (cleanups, worker processes first, one line), exit code 1: for a
    failure the main thread cannot see, such as a local worker process that died while the main thread waits on
    it forever (pipeline/launch.py). Only where ends_commands()."""
    with _lock:
        _end(f"job failed: {failure}; {_outcome()}", 1)


def _outcome() -> str:
    return "the output was published before the interrupt" if _published else "nothing was published"


def _end(line: str, code: int) -> None:
    # The runner's threads see their killed workers exit and would print a traceback before os._exit.
    threading.excepthook = lambda _args: None
    # Worker processes first: one still writing after the cleanups would bring back the folders they removed.
    _kill_descendants()
    with _lock:
        cleanups = list(_cleanups.values())
        _cleanups.clear()
    for cleanup in reversed(cleanups):
        try:
            cleanup()
        except Exception:  # noqa: BLE001, S110 - an exit in progress: what a cleanup cannot remove, the next run does
            pass
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(code)


def _kill_descendants() -> None:
    """Beam's local worker processes (and the shells that started them) go first, before they notice the
    driver gone and print tracebacks of broken connections. Read from /proc, where Linux lists each
    process's parent (psutil would do it too, but is not otherwise a dependency of `mrt run`)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit() and (fields := _stat_fields(int(entry))):
            with contextlib.suppress(ValueError, IndexError):
                children.setdefault(int(fields[1]), []).append(int(entry))
    doomed, frontier = [], [os.getpid()]
    while frontier:
        found = children.get(frontier.pop(), [])
        doomed += found
        frontier += found
    for pid in doomed:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 1.0  # a killed process ends once its current system call (a mkdir) returns
    while time.monotonic() < deadline and any(_running(pid) for pid in doomed):
        time.sleep(0.005)


def _running(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != b"Z"


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of /proc/PID/stat after the command name (state, parent, ...); none for a process gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as source:
            return source.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return []
