"""With no --runner the job runs on the local FnApiRunner, never on a runner downloaded at run time, and
its multi-process mode loses no element."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from apache_beam.runners.direct.direct_runner import DirectRunner
from apache_beam.runners.portability import prism_runner
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner
from apache_beam.runners.worker.data_plane import TimeBasedBufferingClosableOutputStream

from mrtcurate.ingest.files import ResolvedInputs
from mrtcurate.pipeline import launch
from mrtcurate.pipeline.launch import local_workers, new_pipeline, usable_cores, with_local_workers
from mrtcurate.schemas import InputFile
from tests.conftest import write_jsonl
from tests.helpers import curate, shard_bytes


def test_no_runner_option_pins_the_fnapi_runner_and_never_starts_prism(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(
        prism_runner.PrismRunner,
        "run_pipeline",
        lambda *args: started.append(args) or (_ for _ in ()).throw(RuntimeError("prism")),
    )
    monkeypatch.setattr(
        prism_runner.PrismJobServer,
        "local_bin",
        lambda *args: started.append(args) or (_ for _ in ()).throw(RuntimeError("download")),
        raising=False,
    )
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"q{i % 3}", "response": f"a{i}"} for i in range(12)])
    outcome = curate([data], tmp_path / "out", k=2, near_dup="off", beam_args=["--direct_num_workers=1"])
    assert outcome.manifest["counts"]["selected"] == 6 and not started
    assert isinstance(new_pipeline([]).runner, FnApiRunner)
    assert isinstance(new_pipeline(["--runner=DirectRunner"]).runner, DirectRunner)  # a named runner passes through
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["input_records"] == 12


def test_upstream_canary_beams_timed_flush_drops_bytes_written_while_a_send_blocks():
    """A canary on Apache Beam itself, not a test of ours: seen on Beam 2.77.0. The upstream race behind
    issue 12's miscount, made deterministic: the periodic flush has taken the buffer and blocks in its send
    (a full queue); what the runner writes meanwhile is cleared unsent. When a Beam upgrade makes this fail,
    the race is fixed upstream and launch._send_bundle_inputs_whole (the workaround) can go."""
    sent, entered, release = [], threading.Event(), threading.Event()

    def blocking_send(data):
        entered.set()
        release.wait()
        sent.append(data)

    stream = TimeBasedBufferingClosableOutputStream(
        close_callback=sent.append, flush_callback=blocking_send, time_flush_threshold_ms=10
    )
    entered.wait()
    stream.write(b"element-1;element-2;")
    release.set()
    time.sleep(0.1)
    stream.close()
    assert b"".join(sent) == b""  # 20 bytes written, none delivered


@pytest.mark.slow
def test_multi_process_runs_send_bundle_inputs_through_untimed_streams(tmp_path, monkeypatch):
    timed = []
    original = TimeBasedBufferingClosableOutputStream.__init__
    monkeypatch.setattr(
        TimeBasedBufferingClosableOutputStream,
        "__init__",
        lambda self, *a, **k: timed.append(1) or original(self, *a, **k),
    )
    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", 1000)  # Beam's default, as a fresh process has it
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"q{i % 7}", "response": f"a{i}"} for i in range(300)])
    beam_args = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    outcome = curate([data], tmp_path / "two", k=2, near_dup="off", selector="random", plan=False, beam_args=beam_args)
    assert outcome.manifest["counts"]["input_records"] == 300 and outcome.manifest["counts"]["selected"] == 14
    assert timed == [], "the runner sent bundle inputs through a timer-flushed stream"


def test_known_failures_inside_a_worker_traceback_are_found():
    from mrtcurate.errors import InputChanged
    from mrtcurate.pipeline.launch import _one_line_failure

    wrapped = RuntimeError(
        "Traceback (most recent call last):\n  ...\nmrtcurate.schemas.manifest.AccountingError: input_records 5 != 4 [while running 'Manifest/Write']\n  ..."
    )
    assert _one_line_failure(wrapped) == "the job's counts do not add up: input_records 5 != 4"
    assert (
        _one_line_failure(InputChanged("input /d/a.jsonl disappeared during the run"))
        == "input /d/a.jsonl disappeared during the run"
    )
    full = RuntimeError(
        "OSError: [Errno 28] No space left on device: '/out/.x.staging-1/data/part-0.parquet' [while running 'Write']"
    )
    assert _one_line_failure(full) == "the disk filled up while the job wrote /out/.x.staging-1/data/part-0.parquet"
    assert _one_line_failure(RuntimeError("a worker crashed")) is None


def _inputs(*sizes: tuple[str, int]) -> ResolvedInputs:
    files = tuple(InputFile(path, "jsonl", size, "checksum") for path, size in sizes)
    return ResolvedInputs(files, mapping=None, with_messages=False)


def test_auto_workers_start_one_per_core_only_for_a_large_input():
    small = _inputs(("a.jsonl", 5_000_000), ("b.jsonl.gz", 1_000_000))  # 9 MB of text: start-up would dominate
    large = _inputs(("a.jsonl", 30_000_000), ("b.jsonl.gz", 1_000_000))
    assert local_workers("auto", small) == 1
    assert local_workers("auto", large) == max(1, min(launch.AUTO_WORKERS_MAX, usable_cores()))
    assert local_workers(3, small) == 3 and local_workers(1, large) == 1


def test_beams_own_options_and_a_named_runner_win_over_the_worker_count():
    assert with_local_workers([], 2) == ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    assert with_local_workers([], 1) == []
    for said in (["--direct_num_workers=1"], ["--direct_running_mode", "in_memory"], ["--runner=DirectRunner"]):
        assert with_local_workers(said, 2) == said


@pytest.mark.parametrize("preset", [None, "3"], ids=["unset", "set-by-user"])
def test_each_worker_gets_its_share_of_the_cores_for_openmp_unless_the_user_said(preset, monkeypatch):
    monkeypatch.setattr(launch, "usable_cores", lambda: 8)
    command = launch._worker_processes(2).command_string
    environment = {"PATH": "/usr/bin:/bin"} | ({} if preset is None else {"OMP_NUM_THREADS": preset})
    shown = subprocess.run(
        ["sh", "-c", command.replace("exec ", 'echo "$OMP_NUM_THREADS" # ', 1)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == (preset or "4")


@pytest.mark.slow
def test_auto_workers_above_the_threshold_run_on_worker_processes_and_write_the_same_shards(tmp_path, monkeypatch):
    rows = [{"prompt": f"q{i % 23}", "response": f"answer {i % 170} of {i % 23}"} for i in range(600)]
    data = write_jsonl(tmp_path / "in.jsonl", rows)
    started = []
    original = launch._worker_processes
    monkeypatch.setattr(launch, "_worker_processes", lambda workers: started.append(workers) or original(workers))
    one = curate([data], tmp_path / "one", k=3, workers=1)
    monkeypatch.setattr(launch, "AUTO_WORKERS_TEXT_BYTES", 0)
    monkeypatch.setattr(launch, "usable_cores", lambda: 2)
    auto = curate([data], tmp_path / "auto", k=3)
    assert started == [2]  # only the auto run started worker processes, two of them
    assert shard_bytes(tmp_path / "auto") == shard_bytes(tmp_path / "one")
    assert auto.manifest["counts"] == one.manifest["counts"]


@pytest.mark.slow  # starts two worker processes
def test_workers_import_the_drivers_package_not_one_beside_the_current_directory(tmp_path, monkeypatch):
    """`python -m` puts the current directory first on sys.path: a run started beside another copy of mrtcurate (a
    checkout of another version) had its workers import that copy instead of the driver's."""
    decoy = tmp_path / "elsewhere" / "mrtcurate"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('a worker imported the decoy mrtcurate')\n")
    monkeypatch.chdir(decoy.parent)
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"q{i % 7}", "response": f"a{i}"} for i in range(300)])
    beam_args = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    outcome = curate([data], tmp_path / "out", k=2, near_dup="off", selector="random", plan=False, beam_args=beam_args)
    assert outcome.manifest["counts"]["selected"] == 14


@pytest.mark.slow  # starts worker processes, three times
@pytest.mark.parametrize(
    ("job", "death", "said"),
    [
        ("run", "os._exit(3)", "exited with code 3"),
        ("run", "os.kill(os.getpid(), signal.SIGKILL)", "was killed by SIGKILL"),
        ("plan", "os._exit(3)", "exited with code 3"),
    ],
)
def test_a_worker_process_that_dies_ends_the_job_in_one_line(tmp_path, job, death, said):
    """A worker that died at start left the driver waiting for it forever; one killed mid-job (the out-of-memory
    killer) ended it with pages of gRPC tracebacks. A sitecustomize that only worker processes act on (Beam gives
    them the control address) kills each as it starts. `mrt plan` runs a job of its own the same way."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        f"import os, signal\nif 'CONTROL_API_SERVICE_DESCRIPTOR' in os.environ:\n    {death}\n"
    )
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"q{i % 7}", "response": f"a{i}"} for i in range(300)])
    command = [sys.executable, "-m", "mrtcurate.cli", job, "--input", str(data), "--workers", "2", "--near-dup", "off"]
    command += ["--output", str(tmp_path / "out"), "--no-plan"] if job == "run" else ["--embedder", "hashing"]
    env = {**os.environ, "PYTHONPATH": f"{hooks}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    finished = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert finished.returncode == 1
    lines = finished.stderr.strip().splitlines()
    assert lines[-1].startswith(f"job failed: a local worker process {said} while the job ran")
    assert lines[-1].endswith("nothing was published")
    assert "Traceback" not in finished.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hooks", "in.jsonl"]  # no output, no staging left
