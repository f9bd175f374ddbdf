"""The signal and process harness: a real `mrt run` interrupted at several points, on one worker and on two
worker processes. Each must end within seconds with exit 130 (SIGINT) or 143 (SIGTERM), say so in at most
three lines, leave no staging folder and no process of the job alive."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

MULTI = ["--", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("signals") / "corpus.jsonl"
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "omega", "kappa"]
    with path.open("w") as sink:
        for index in range(40_000):
            response = f"answer {index} " + " ".join(rng.choice(words) for _ in range(30))
            sink.write(
                json.dumps({"prompt": f"question {index % 2000}", "response": response, "reward": rng.random()}) + "\n"
            )
    return path


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, frontier = set(), [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.add(child)
            frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def _start(corpus: Path, output: Path, beam_args: list[str], temp_dir: Path | None = None) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "mrtcurate.cli",
        "run",
        "--input",
        str(corpus),
        "--output",
        str(output),
        "--k",
        "2",
        "--embedder",
        "hashing",
        *beam_args,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"TMPDIR": str(temp_dir)} if temp_dir else {})}
    # Its own session: a signal to "the process group" reaches the job's processes, not pytest.
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait_for(condition, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _job_running(process: subprocess.Popen, output: Path, workers: int) -> bool:
    staged = any(output.parent.glob(f".{output.name}.staging-*"))
    return (
        staged
        and len([pid for pid in _descendants(process.pid) if b"mrtcurate.pipeline.lifeline" in _cmdline(pid)])
        >= workers
    )


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


CASES = [
    # (signal, to the group?, worker processes, seconds after the job started)
    (signal.SIGINT, False, 0, 0.0),
    (signal.SIGINT, True, 0, 3.0),
    (signal.SIGTERM, False, 0, 1.5),
    (signal.SIGINT, False, 2, 3.0),
    (signal.SIGINT, True, 2, 0.5),
    (signal.SIGTERM, False, 2, 2.0),
]


@pytest.mark.parametrize(
    ("number", "group", "workers", "after_s"),
    CASES,
    ids=[f"{signal.Signals(c[0]).name}-{'group' if c[1] else 'process'}-{c[2]}procs-{c[3]}s" for c in CASES],
)
def test_an_interrupt_ends_the_job_quickly_in_one_line_and_leaves_nothing(
    corpus, tmp_path, number, group, workers, after_s
):
    output, temp_dir = tmp_path / "out", tmp_path / "tmp"  # the job's TMPDIR: Beam's and the progress folders
    temp_dir.mkdir()
    process = _start(corpus, output, MULTI if workers else [], temp_dir)
    try:
        assert _wait_for(lambda: _job_running(process, output, workers) or process.poll() is not None, 60), (
            "the job never started"
        )
        assert process.poll() is None, process.stdout.read().decode()
        time.sleep(after_s)
        family = _descendants(process.pid)
        sent = time.monotonic()
        if group:
            os.killpg(process.pid, number)
        else:
            process.send_signal(number)
        code = process.wait(timeout=10)
        took = time.monotonic() - sent
        text = process.stdout.read().decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[number], text
    assert took < 5, took
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("INFO", " "))]
    assert len(lines) <= 3 and lines[-1].endswith("nothing was published"), text
    assert "Traceback" not in text
    assert _wait_for(lambda: not any(_alive(pid) for pid in family), 3), [
        (pid, _cmdline(pid)) for pid in family if _alive(pid)
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tmp"]
    assert sorted(path.name for path in temp_dir.iterdir()) == []


def test_workers_of_a_killed_driver_exit_and_the_next_run_removes_its_staging(corpus, tmp_path):
    output = tmp_path / "out"
    process = _start(corpus, output, MULTI)
    try:
        assert _wait_for(lambda: _job_running(process, output, 2) or process.poll() is not None, 60), (
            "the job never started"
        )
        time.sleep(2)
        workers = _descendants(process.pid)
        process.kill()
        process.wait(timeout=10)
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), 5), [
            (pid, _cmdline(pid)) for pid in workers if _alive(pid)
        ]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert any(path.name.startswith(".out.staging-") for path in tmp_path.iterdir())
    from tests.helpers import curate

    curate([corpus], output, k=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
