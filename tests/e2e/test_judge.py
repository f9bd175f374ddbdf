"""`--judge-url`: an LLM judge over real HTTP, against a stand-in OpenAI-compatible server on the loopback address
that answers with grades, garbage, 429s, 500s and delays; and `--cache`, which makes a killed run resume."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mrtcurate.cli import main
from tests.conftest import write_jsonl
from tests.helpers import read_rows, shard_bytes

pytestmark = pytest.mark.slow
KEY = "sk-test-7f3a9c1e5b"
TEMPLATE = "PROMPT<<${prompt}>>RESPONSE<<${response}>>\nEnd with Score: N."


def grade(response: str) -> int:
    return len(response) % 10 + 1


class StandIn(ThreadingHTTPServer):
    """Answers by what the response says: GARBAGE gets no grade, RATE a 429 first, FLAKY a 500 first, BROKEN a
    500 always, SLOW a delay; anything else `Score: grade(response)`. `delay` slows every request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: Counter[str] = Counter()
        self.authorizations: set[str] = set()
        self.delay = 0.0
        self.status: int | None = None  # answer every request with this status
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: StandIn = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][0]["content"]
        response = re.search(r"RESPONSE<<(.*)>>", content, re.DOTALL).group(1)
        with server.lock:
            server.requests[response] += 1
            seen = server.requests[response]
            server.authorizations.add(self.headers.get("Authorization", ""))
        time.sleep(server.delay + (0.2 if "SLOW" in response else 0.0))
        if server.status is not None:
            return self._send(server.status, {"error": "no"})
        if "BROKEN" in response or ("FLAKY" in response and seen == 1):
            return self._send(500, {"error": "down"}, retry_after="0")
        if "RATE" in response and seen == 1:
            return self._send(429, {"error": "slow down"}, retry_after="0")
        text = "What a lovely answer." if "GARBAGE" in response else f"Fine.\nScore: {grade(response)}"
        reply = {
            "choices": [{"message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5},
        }
        self._send(200, reply)

    def _send(self, status: int, payload: dict, retry_after: str | None = None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def judge():
    server = StandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def corpus(folder: Path, prompts: int, per_prompt: int, odd: dict[int, str] | None = None) -> Path:
    rows = []
    for p in range(prompts):
        for r in range(per_prompt):
            tag = (odd or {}).get(p * per_prompt + r, "")
            rows.append({"prompt": f"question {p}: name a colour", "response": f"{tag}answer {r} {'x' * (p % 7)}"})
    rows.append(dict(rows[0]))  # an exact copy: graded once
    return write_jsonl(folder / "samples.jsonl", rows)


def run_args(data: Path, output: Path, server: StandIn, template: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--input",
        str(data),
        "--output",
        str(output),
        "--embedder",
        "hashing",
        "--selector",
        "topk",
        "--k",
        "2",
        "--near-dup",
        "off",
        "--boilerplate-prompts",
        "off",
        "--judge-url",
        server.url,
        "--judge-model",
        "stand-in",
        "--judge-template",
        str(template),
        "--judge-key-env",
        "MRT_TEST_JUDGE_KEY",
        *extra,
    ]


@pytest.fixture
def template(tmp_path) -> Path:
    path = tmp_path / "template.txt"
    path.write_text(TEMPLATE)
    return path


def test_every_distinct_response_is_graded_or_counted_and_the_key_goes_nowhere(
    judge, template, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MRT_TEST_JUDGE_KEY", KEY)
    odd = {1: "GARBAGE ", 5: "RATE ", 6: "FLAKY ", 9: "BROKEN ", 10: "SLOW ", 14: "GARBAGE "}
    data = corpus(tmp_path, prompts=6, per_prompt=4, odd=odd)
    output = tmp_path / "out"
    assert main(run_args(data, output, judge, template, "--judge-concurrency", "3")) == 0
    printed = capsys.readouterr()
    manifest = json.loads((output / "manifest.json").read_text())
    source = manifest["reward_source"]
    distinct = 24
    assert (
        source["kind"] == "judge" and source["model"] == "stand-in" and source["url"] == f"{judge.url}/chat/completions"
    )
    assert source["scored"] == distinct and len(judge.requests) == distinct  # the copy was not sent
    assert source["unparsed"] == 2 and source["failed"] == 1 and source["over_budget"] == 0
    # One retry each for the 429 and the 500; five attempts for the always-broken one.
    assert judge.total == source["requests"] == distinct + 1 + 1 + 4
    assert [n for text, n in judge.requests.items() if "BROKEN" in text] == [5]
    assert source["prompt_tokens"] == 20 * (distinct - 1)  # every 200 reply (all but BROKEN) reported its usage
    assert judge.authorizations == {f"Bearer {KEY}"}
    rows = read_rows(output)
    for row in rows:
        if not any(tag.strip() in row["completion"] for tag in ("GARBAGE", "BROKEN")):
            assert row["reward"] == grade(row["completion"]), row
    assert all(row["reward"] is None for row in rows if "GARBAGE" in row["completion"])
    # topk ranks the graded answers first: a pool of four with two graded keeps the best two.
    by_prompt: dict[str, list] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt"], []).append(row["reward"])
    assert all(len(kept) == 2 for kept in by_prompt.values())
    summary = " ".join(printed.out.split())  # the terminal's width wraps lines
    assert "rewards from the judge stand-in" in summary and "no grade for 2 unparsed, 1 failed" in summary
    everything = (
        printed.out
        + printed.err
        + "".join(
            path.read_text(errors="replace")
            for path in output.rglob("*")
            if path.is_file() and path.suffix != ".parquet"
        )
    )
    assert KEY not in everything and b"sk-test" not in b"".join(path.read_bytes() for path in output.rglob("*.parquet"))
    assert not (output / ".judge-requests").exists()


def test_the_budget_is_never_exceeded_across_worker_processes(judge, template, tmp_path, monkeypatch):
    monkeypatch.setenv("MRT_TEST_JUDGE_KEY", KEY)
    data = corpus(tmp_path, prompts=10, per_prompt=4, odd={3: "FLAKY ", 7: "RATE "})
    output = tmp_path / "out"
    args = run_args(data, output, judge, template, "--judge-budget", "15", "--judge-concurrency", "2")
    beam = ["--", "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    assert main([*args, *beam]) == 0
    source = json.loads((output / "manifest.json").read_text())["reward_source"]
    assert judge.total == source["requests"] == 15
    graded = sum(1 for row in read_rows(output) if row["reward"] is not None)
    # Every distinct response was asked for; those the spent budget left out are counted and get no grade.
    assert source["scored"] == 40 and source["over_budget"] >= 40 - 15 and graded <= 15


def test_a_refused_key_ends_the_run_in_one_line(judge, template, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MRT_TEST_JUDGE_KEY", KEY)
    judge.status = 401
    data = corpus(tmp_path, prompts=2, per_prompt=2)
    assert main(run_args(data, tmp_path / "out", judge, template)) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].endswith("answered 401 (the key was refused); nothing was published"), err
    assert KEY not in err and not (tmp_path / "out").exists()


def test_the_flags_are_checked_before_the_job(judge, template, tmp_path, monkeypatch, capsys):
    data = corpus(tmp_path, prompts=2, per_prompt=2)
    assert main(run_args(data, tmp_path / "out", judge, template)) == 2  # the key variable is not set
    assert "--judge-key-env MRT_TEST_JUDGE_KEY: that environment variable is not set" in capsys.readouterr().err
    monkeypatch.setenv("MRT_TEST_JUDGE_KEY", KEY)
    (tmp_path / "bad.txt").write_text("grade ${prompt}")
    args = run_args(data, tmp_path / "out", judge, tmp_path / "bad.txt")
    assert main(args) == 2 and "has no ${response}" in capsys.readouterr().err
    args = run_args(data, tmp_path / "out", judge, template, "--cache", str(tmp_path / "out" / "cache"))
    assert main(args) == 2 and "is inside output" in capsys.readouterr().err
    assert judge.total == 0


def test_a_killed_run_resumes_from_the_cache_and_publishes_the_same_shards(judge, template, tmp_path, monkeypatch):
    data = corpus(tmp_path, prompts=40, per_prompt=5)
    distinct = 200
    cache = tmp_path / "cache"
    env = {**os.environ, "MRT_TEST_JUDGE_KEY": KEY, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "mrtcurate.cli", "-q"] + run_args(
        data, tmp_path / "resumed", judge, template, "--judge-concurrency", "2", "--cache", str(cache)
    )
    judge.delay = 0.2  # about 20 s of grading in all; the cache writes what it has every 10 s
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(cache.rglob("*.parquet")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "resumed").exists()
    cached = sum(pq.read_metadata(path).num_rows for path in cache.rglob("*.parquet"))
    assert 0 < cached < distinct, cached
    before = judge.total
    judge.delay = 0.0
    finished = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    source = json.loads((tmp_path / "resumed" / "manifest.json").read_text())["reward_source"]
    assert source["from_cache"] == cached and source["requests"] == judge.total - before == distinct - cached
    uninterrupted = tmp_path / "uninterrupted"
    monkeypatch.setenv("MRT_TEST_JUDGE_KEY", KEY)
    assert main(["-q", *run_args(data, uninterrupted, judge, template)]) == 0
    assert shard_bytes(tmp_path / "resumed") == shard_bytes(uninterrupted)


def test_workers_need_the_key_but_not_the_template_file(judge, template, tmp_path, monkeypatch):
    # A remote worker has the job's pickled state, not the driver's files: the judge's identity (the template's
    # text) is read once on the driver and travels with the stage. The key it must have, or it says so.
    from mrtcurate.pipeline.score import ScoreResponses, _Score
    from mrtcurate.schemas import Candidate
    from mrtcurate.schemas.config import ScoringSettings
    from mrtcurate.vectors.judge import JudgeRefused

    monkeypatch.setenv("MRT_TEST_JUDGE_KEY", KEY)
    scoring = ScoringSettings(
        judge_url=judge.url, judge_model="stand-in", judge_template=str(template), judge_key_env="MRT_TEST_JUDGE_KEY"
    )
    stage = ScoreResponses(scoring, None, str(tmp_path))
    template.unlink()
    scorer = _Score(scoring, stage.judge, None, (), str(tmp_path))
    scorer.setup()
    scorer.start_bundle()
    candidate = Candidate("p", "r", "name a colour", "blue, like the sky", None, "s")
    (scored,) = [out for out in scorer.process([candidate]) if isinstance(out, Candidate)]
    scorer.teardown()
    assert (scored.reward, judge.total) == (grade("blue, like the sky"), 1)
    monkeypatch.delenv("MRT_TEST_JUDGE_KEY")
    with pytest.raises(
        JudgeRefused, match="MRT_TEST_JUDGE_KEY, the judge's key variable, is not set where the job runs"
    ):
        _Score(scoring, stage.judge, None, (), str(tmp_path)).setup()
