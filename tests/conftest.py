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


# The fast lane (`make check`) sets this: a test that is not marked slow must finish within FAST_LANE_LIMIT_S.
FAST_LANE = "MRT_FAST_LANE"
FAST_LANE_LIMIT_S = 10.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get(FAST_LANE) and report.when == "call" and report.passed
        and item.get_closest_marker("slow") is None and report.duration > FAST_LANE_LIMIT_S
    ):  # fmt: skip
        report.outcome = "failed"
        report.longrepr = f"took {report.duration:.1f} s, over the fast lane's {FAST_LANE_LIMIT_S:.0f} s: mark it @pytest.mark.slow or make it faster"


def pytest_collection_modifyitems(items):
    """The slow tests first, the rest after: pytest-xdist (--dist loadgroup) hands out its one group (the embedder
    gates) first and then single tests in collection order, so a long test collected late ran alone at the end of
    `make test`. Stable within each kind. (Tried once before one OpenMP thread per worker: the quick bench then ran
    beside the gates with a thread per core each and took 431 s instead of 249 s.)"""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_runtest_setup(item):
    if item.get_closest_marker("network") and not _package_index_reachable():
        pytest.skip("needs the package index (pypi.org), which this machine cannot reach")


def shared_corpus(name: str) -> Path:
    """A real corpus from ../shared/data. A checkout without it skips the test, except in CI (CI=true), where
    the folder is always there: its absence there is a broken setup, not a reason to test less."""
    path = SHARED_DATA / name / "responses.jsonl.gz"
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} not present, and CI always has ../shared/data beside the checkout")
        pytest.skip(f"{path} not present (CI and the dev machine have ../shared/data)")
    return path


def read_jsonl_gz(path: Path, limit: int | None = None) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as source:
        rows = [json.loads(line) for line in source]
    return rows[:limit] if limit else rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
