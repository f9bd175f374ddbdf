"""Live progress of a local run. Beam's metrics reach the driver only once the FnApiRunner has finished,
so they cannot show a long run moving; instead each worker process keeps tallies and writes them, at
most once a second, to a small JSON file in a directory the driver names in MRT_PROGRESS_DIR (in-process
workers and multi-processing workers, which inherit the environment, both see it). The driver sums the
files on a timer. On a remote runner the variable is unset and every call here returns at once."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

PROGRESS_DIR = "MRT_PROGRESS_DIR"
READ = "read"  # input records parsed (candidates and rejects)
COVERED = "covered"  # candidates whose text reached the embedding stage
TO_EMBED = "to_embed"  # distinct texts among them that the model must encode (not cached)
EMBEDDED = "embedded"
# Characters of those texts (each counted up to TEXT_CHARS_CAP): encoding time follows length, not count,
# so the time left is estimated in characters; counted in texts it was three times too hopeful on a
# corpus whose short texts were encoded first.
TO_EMBED_CHARS = "to_embed_chars"
EMBEDDED_CHARS = "embedded_chars"
TEXT_CHARS_CAP = 2048  # about 512 tokens: no embedder here reads further into a text
SELECTED = "selected"  # prompts whose K were chosen

_lock = threading.Lock()
_tallies: dict[str, dict[str, int]] = {}
_flushed_at: dict[str, float] = {}


def add(stage: str, n: int, flush_now: bool = False) -> None:
    directory = os.environ.get(PROGRESS_DIR)
    if directory is None:
        return
    with _lock:
        tallies = _tallies.setdefault(directory, {})
        tallies[stage] = tallies.get(stage, 0) + n
        if flush_now or time.monotonic() - _flushed_at.get(directory, 0.0) >= 1.0:
            _write(directory, tallies)


def flush() -> None:
    """This process's tallies to its file now (end of a bundle), whatever the time since the last write."""
    directory = os.environ.get(PROGRESS_DIR)
    if directory is None:
        return
    with _lock:
        if directory in _tallies:
            _write(directory, _tallies[directory])


def _write(directory: str, tallies: dict[str, int]) -> None:
    _flushed_at[directory] = time.monotonic()
    path = Path(directory) / f"{os.getpid()}.json"
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(json.dumps(tallies))
        temporary.replace(path)  # atomic: the driver never reads half a file
    except OSError:
        pass  # the run finished and removed the directory; progress is advisory


@dataclass(frozen=True)
class Snapshot:
    tallies: dict[str, int]
    at: float

    def __getitem__(self, stage: str) -> int:
        return self.tallies.get(stage, 0)


def snapshot(directory: str) -> Snapshot:
    totals: dict[str, int] = {}
    for path in Path(directory).glob("*.json"):
        try:
            tallies = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for stage, count in tallies.items():
            totals[stage] = totals.get(stage, 0) + count
    return Snapshot(totals, time.monotonic())


def describe(now: Snapshot, before: Snapshot, finished: bool = False, embedding_since: Snapshot | None = None) -> str:
    """One line: what has been done, the rate since the last line, and, while the run goes on, the embedding
    stage's time left: the characters still to encode at the average speed since the stage began
    (`embedding_since`, else `before`), steadier than the last interval's."""
    seconds = max(now.at - before.at, 1e-9)

    def rate(stage: str) -> str:
        moved = (now[stage] - before[stage]) / seconds
        return f" ({moved:,.0f}/s)" if moved > 0 else ""

    parts = [f"read {now[READ]:,} records{rate(READ)}"]
    if now[COVERED] and not finished:
        # Distinct uncached texts (and their characters) per candidate so far, scaled to every record read:
        # an estimate that firms up as the stage goes (records read bound the candidates from above).
        scale = now[READ] / now[COVERED]
        expected = max(round(now[TO_EMBED] * scale), now[EMBEDDED])
        since = embedding_since or before
        char_speed = (now[EMBEDDED_CHARS] - since[EMBEDDED_CHARS]) / max(now.at - since.at, 1e-9)
        chars_left = now[TO_EMBED_CHARS] * scale - now[EMBEDDED_CHARS]
        speed = (now[EMBEDDED] - before[EMBEDDED]) / seconds
        details = [f"{speed:,.0f}/s"] if speed > 0 else []
        if char_speed > 0 and chars_left > 0 and expected > now[EMBEDDED]:
            details.append(f"about {_duration(chars_left / char_speed)} left")
        parts.append(
            f"embedded {now[EMBEDDED]:,} of about {expected:,} texts" + (f" ({', '.join(details)})" if details else "")
        )
    elif now[EMBEDDED]:
        parts.append(f"embedded {now[EMBEDDED]:,} texts{rate(EMBEDDED)}")
    if now[SELECTED]:
        parts.append(f"selected K for {now[SELECTED]:,} prompts{rate(SELECTED)}")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class ProgressMonitor:
    """While the job runs in this process: every `interval` seconds, `report(line)`; once at the end."""

    def __init__(self, directory: str, report: Callable[[str], None], interval: float = 10.0):
        self.directory = directory
        self.report = report
        self.interval = interval
        self._stopped = threading.Event()
        self._emitting = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="mrt progress", daemon=True)
        self._embedding_since: Snapshot | None = None

    def __enter__(self) -> Self:
        self._previous = snapshot(self.directory)
        self._thread.start()
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        # No join: the watcher is a daemon that stops at its next wake-up, so an interrupted run leaves
        # at once; a finished one gets its final line from here.
        self._stopped.set()
        if exc_type is None:
            self._emit(finished=True)

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval):
            self._emit()

    def _emit(self, finished: bool = False) -> None:
        # A line every interval, moved or not: a long batch must not look like a hang.
        with self._emitting:
            now = snapshot(self.directory)
            if self._embedding_since is None and now[EMBEDDED]:
                self._embedding_since = self._previous
            if now.tallies:
                self.report(describe(now, self._previous, finished, self._embedding_since))
            self._previous = now
