"""Launching the job graph.py wires: the runner (the user's, or the local FnApiRunner pinned, with its worker
processes), a workaround for a Beam race on that runner, progress lines on the local runner, the one-line message
of a failed accounting check or a lost worker process (lost_workers.py), and the job's counters."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.pipeline import Pipeline
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.transforms import environments

import mrtcurate
from mrtcurate import interrupts
from mrtcurate.allocator import tune_malloc
from mrtcurate.errors import JobFailed
from mrtcurate.ingest.files import ResolvedInputs
from mrtcurate.pipeline import lifeline, progress
from mrtcurate.pipeline.batching import estimated_text_bytes
from mrtcurate.pipeline.graph import build, build_plan
from mrtcurate.pipeline.lost_workers import LostWorkers
from mrtcurate.schemas import RunConfig

# `--workers auto`: one local worker process per core, up to AUTO_WORKERS_MAX, for an input of at least
# AUTO_WORKERS_TEXT_BYTES of text. Below that the job runs in-process: starting the workers costs about 3 s (a 20-record
# run took 3.6 s in-process and 6.7 s on two workers), while a 1,000,000-response random run took 67 s on one core
# and 40 s on two (benchmarks/scale.py).
AUTO_WORKERS_MAX = 4
AUTO_WORKERS_TEXT_BYTES = 32 * 1024 * 1024
_WORKER_OPTIONS = ("--direct_num_workers", "--direct_running_mode")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local_workers(workers: int | str, inputs: ResolvedInputs) -> int:
    """The worker count `--workers` asks for on this machine and input."""
    if workers != "auto":
        return int(workers)
    if estimated_text_bytes(inputs.files) < AUTO_WORKERS_TEXT_BYTES:
        return 1
    return max(1, min(AUTO_WORKERS_MAX, usable_cores()))


def with_local_workers(beam_args: list[str], workers: int) -> list[str]:
    """The Beam arguments with the local runner's worker processes, unless they name a runner or say how the local
    one runs themselves (Beam's own options win over --workers)."""
    said = any(arg.split("=")[0] in _WORKER_OPTIONS for arg in beam_args)
    if workers == 1 or said or _names_a_runner(beam_args):
        return beam_args
    return [*beam_args, f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]


def _names_a_runner(beam_args: list[str]) -> bool:
    return PipelineOptions(beam_args).view_as(StandardOptions).runner is not None


def new_pipeline(beam_args: list[str]) -> Pipeline:
    """A pipeline on the runner the user named, or else on the local FnApiRunner, pinned.

    With no --runner, Beam's DirectRunner first tries Prism, a Go runner it downloads at run time, and
    falls back to the FnApiRunner only when that fails: a machine with internet would run on another
    engine than the one every test here runs on. This builds the FnApiRunner as DirectRunner's own
    fallback does (provision info carrying the options, which --direct_num_workers and
    --direct_running_mode reach), without the detour. Its worker processes start in lifeline.py.
    """
    options = PipelineOptions(beam_args)
    if options.view_as(StandardOptions).runner is not None:
        return Pipeline(options=options)
    os.environ[lifeline.DRIVER_PID] = str(os.getpid())
    tune_malloc()  # before the runner starts its threads; each worker process does it too (lifeline.py)
    environment = None
    if options.view_as(DirectOptions).direct_running_mode == "multi_processing":
        options.view_as(DirectOptions).direct_running_mode = "in_memory"  # the environment below says it instead
        environment = _worker_processes(options.view_as(DirectOptions).direct_num_workers)
    _send_bundle_inputs_whole()
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    runner = fn_runner.FnApiRunner(
        default_environment=environment,
        provision_info=fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)),
    )
    return Pipeline(runner=runner, options=options)


def _worker_processes(workers: int) -> environments.SubprocessSDKEnvironment:
    """--direct_running_mode=multi_processing's worker, started through lifeline.py with SIGINT ignored: Beam runs it
    through `sh -c`, which unblocks the signals the driver blocked (interrupts.py), and a Ctrl-C to the
    process group while a worker still imports Beam printed its traceback. An ignored signal stays
    ignored through exec, and Python then installs no KeyboardInterrupt handler.

    Each worker's OpenMP (torch's encoders) gets its share of the cores unless the user set OMP_NUM_THREADS: by
    default every process would start one thread per core, and spinning threads oversubscribed the cores.

    Workers import the driver's own mrtcurate: `python -m` puts the current directory first on sys.path, so a
    run started beside another copy of the package (a checkout of another version) had its workers import that
    copy. `-P` (Python 3.11) leaves the current directory out, and the driver's package folder goes first on
    PYTHONPATH where the driver did not find it on sys.path itself (an editable install's finder, a source tree)."""
    threads = max(1, usable_cores() // max(1, workers))
    package_root = _package_root()
    path = (
        ""
        if package_root in sys.path[1:]
        else f"export PYTHONPATH={shlex.quote(package_root)}${{PYTHONPATH:+:$PYTHONPATH}}; "
    )
    command = (
        f"trap '' INT; export OMP_NUM_THREADS=\"${{OMP_NUM_THREADS:-{threads}}}\"; {path}"
        f"exec {shlex.quote(sys.executable)} -P -m {lifeline.__name__}"
    )
    return environments.SubprocessSDKEnvironment.from_command_string(command)


def _package_root() -> str:
    """The folder the driver imported mrtcurate from."""
    return os.path.dirname(os.path.dirname(os.path.abspath(mrtcurate.__file__)))


def _send_bundle_inputs_whole() -> None:
    """Work around a Beam data-loss race on the local runner's multi-process and multi-thread modes.

    The FnApiRunner sends each bundle's input to gRPC workers through a stream that a timer thread
    flushes every DATA_BUFFER_TIME_LIMIT_MS (1 s). Its flush sends the buffer, then clears it; while the
    send blocks on a full queue (a busy worker, a loaded machine) the runner keeps writing into the
    buffer, and the clear drops those bytes unsent: whole elements vanish without an error. That is
    issue 12's miscount, one run in several at a million records under load; tests/pipeline/
    test_local_runner.py reproduces the race deterministically. With the limit at 0 the stream is
    flushed only when the bundle's input is complete, so nothing is written during a send."""
    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 0


def run_curation(
    config: RunConfig,
    inputs: ResolvedInputs,
    directory: str,
    beam_args: list[str],
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """The curation job into `directory`, to completion; returns the job's mrtcurate counters. On the
    local runner, `on_progress` gets a line of progress every PROGRESS_INTERVAL_S seconds."""
    beam_args = with_local_workers(beam_args, local_workers(config.execution.workers, inputs))
    with _interruptible_pipeline(beam_args) as pipeline:
        build(pipeline, config, inputs, directory)
        with _local_progress(beam_args, on_progress):
            result = _run_to_completion(pipeline)
    return _counters(result)


@contextlib.contextmanager
def _interruptible_pipeline(beam_args: list[str]) -> Iterator[Pipeline]:
    """A new Pipeline whose local temp folder an interrupt removes too: Beam makes the folder in the constructor and
    removes it only when run() returns or raises. Made under deferred(), so that no interrupt falls between the
    folder's creation and its cleanup's registration (a SIGINT there left the folder, one run in a few)."""
    with interrupts.made_and_undone_on_interrupt(
        lambda: new_pipeline(beam_args), lambda pipeline: shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)
    ) as pipeline:
        yield pipeline


def _run_to_completion(pipeline: Pipeline):
    """The job's result; a failure that is not a bug (a known one, or a local worker process that died) ends it as
    a JobFailed of one line (`mrt run` and `mrt plan` alike: neither has published anything then)."""
    lost = LostWorkers()
    with lost.watching():
        try:
            result = pipeline.run()
            result.wait_until_finish()
        except Exception as error:
            known = _one_line_failure(error) or lost.cause_of(error)
            if known is None:
                raise
            raise JobFailed(f"{known}; nothing was published") from error
    return result


# The failures the job can meet that are not bugs, each with the line that names it. The in-process runner
# re-raises a DoFn's exception with a step name appended, a multi-process runner inside pages of the
# worker's traceback: matched on the text, as the exception type does not survive the worker boundary.
_KNOWN_FAILURES = (
    (
        re.compile(r"AccountingError: ([^\n]*?)(?: \[while running|$)", re.MULTILINE),
        "the job's counts do not add up: {0}",
    ),
    (re.compile(r"InputChanged: ([^\n]*?)(?: \[while running|$)", re.MULTILINE), "{0}"),
    (re.compile(r"JudgeRefused: ([^\n]*?)(?: \[while running|$)", re.MULTILINE), "{0}"),
    (re.compile(r"\[Errno 28\] No space left on device(?:: '([^']*)')?"), "the disk filled up while the job wrote {0}"),
)


def _one_line_failure(error: Exception) -> str | None:
    text = f"{type(error).__name__}: {error}"
    for pattern, line in _KNOWN_FAILURES:
        found = pattern.search(text)
        if found:
            return line.format(found.group(1) or "its output")
    return None


PROGRESS_INTERVAL_S = 10.0


@contextlib.contextmanager
def _local_progress(beam_args: list[str], on_progress: Callable[[str], None] | None):
    if on_progress is None or _names_a_runner(beam_args):
        yield
        return
    with interrupts.temporary_folder("mrt-progress-") as directory:
        previous = os.environ.get(progress.PROGRESS_DIR)
        os.environ[progress.PROGRESS_DIR] = directory
        try:
            with progress.ProgressMonitor(directory, on_progress, PROGRESS_INTERVAL_S):
                yield
        finally:
            if previous is None:
                os.environ.pop(progress.PROGRESS_DIR, None)
            else:
                os.environ[progress.PROGRESS_DIR] = previous


def run_planner(config: RunConfig, inputs: ResolvedInputs, target: str, beam_args: list[str]) -> None:
    """The planner job (graph.build_plan) to completion; the summary is written to `target` as one JSON line."""
    beam_args = with_local_workers(beam_args, local_workers(config.execution.workers, inputs))
    with _interruptible_pipeline(beam_args) as pipeline:
        build_plan(pipeline, config, inputs, target)
        _run_to_completion(pipeline)


def _counters(result) -> dict[str, int]:
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # noqa: BLE001 - some runners report no metrics; the manifest's counts are the authoritative ones
        return {}
    totals: dict[str, int] = {}
    for counter in counters:
        if counter.key.metric.namespace == "mrtcurate":
            totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (counter.committed or 0)
    return totals
