import multiprocessing
import time
from pathlib import Path

from mrtcurate.vectors.artifacts import Artifact


def _slow_build(directory: Path) -> None:
    with (directory.parent / "builds.log").open("a") as log:  # O_APPEND: one whole line per build
        log.write("built\n")
    for part in range(5):
        (directory / f"part{part}").write_text(str(part) * 1000)
        time.sleep(0.05)  # wide enough that the builders overlap


def _ensure(cache_dir: str) -> str:
    import os

    os.environ["MRT_CACHE_DIR"] = cache_dir
    return str(Artifact("thing", {"recipe": "1"}, _slow_build).ensure())


def test_concurrent_builders_build_once_and_leave_one_complete_artifact_and_no_staging(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as workers:
        paths = workers.map(_ensure, [str(tmp_path)] * 4)
    assert len(set(paths)) == 1
    built = Path(paths[0])
    assert sorted(file.name for file in built.iterdir()) == [
        "artifact.json",
        "part0",
        "part1",
        "part2",
        "part3",
        "part4",
    ]
    assert all((built / f"part{part}").read_text() == str(part) * 1000 for part in range(5))
    assert (tmp_path / "builds.log").read_text() == "built\n"  # the others waited for it, and found it built
    # Staging directories removed; the lock file stays (removing it would let a waiter lock a file no longer there).
    assert sorted(entry.name for entry in tmp_path.iterdir()) == sorted(
        [built.name, f".{built.name}.lock", "builds.log"]
    )


def test_the_key_names_the_artifact_and_a_failed_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MRT_CACHE_DIR", str(tmp_path))
    first, upgraded = (
        Artifact("thing", {"torch": "2.13"}, _slow_build),
        Artifact("thing", {"torch": "2.14"}, _slow_build),
    )
    assert first.path != upgraded.path and not first.is_built() and first.size_bytes() == 0
    assert first.ensure() == first.path and first.is_built() and first.size_bytes() > 5000

    def broken(directory: Path) -> None:
        (directory / "half").write_text("x")
        raise OSError("disk full")

    failing = Artifact("other", {"recipe": "1"}, broken)
    try:
        failing.ensure()
    except OSError as error:
        assert "disk full" in str(error)
    built = [entry.name for entry in tmp_path.iterdir() if not entry.name.endswith((".lock", ".log"))]
    assert not failing.is_built() and built == [first.path.name]  # no half-built directory


def test_the_cache_is_the_users_unless_set_and_a_read_only_home_falls_back_to_temp(tmp_path, monkeypatch):
    from mrtcurate.vectors import artifacts

    monkeypatch.delenv("MRT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert artifacts.cache_root() == tmp_path / "cache" / "mrtcurate"
    monkeypatch.setattr(artifacts.os, "access", lambda path, mode: False)
    assert artifacts.cache_root().name.startswith("mrtcurate-cache-")
    monkeypatch.setenv("MRT_CACHE_DIR", str(tmp_path / "chosen"))
    assert artifacts.cache_root() == tmp_path / "chosen"
