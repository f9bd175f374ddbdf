import gzip
import json
import os
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Fuzzing budget: seconds in CI; `pytest --hypothesis-profile=thorough tests/ingest/test_fuzz.py` for a long run.
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _package_index_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def pytest_runtest_setup(item):
    if item.get_closest_marker("network") and not _package_index_reachable():
        pytest.skip("needs the package index (pypi.org), which this machine cannot reach")


def shared_corpus(name: str) -> Path:
    path = SHARED_DATA / name / "responses.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path} not present (CI and the dev machine have ../shared/data)")
    return path


def read_jsonl_gz(path: Path, limit: int | None = None) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as source:
        rows = [json.loads(line) for line in source]
    return rows[:limit] if limit else rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
