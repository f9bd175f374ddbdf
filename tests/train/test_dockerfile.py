"""No Docker engine here: check what the training image depends on and what its entrypoint accepts."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "docker" / "train.Dockerfile").read_text()


def test_base_image_torch_meets_the_package_range():
    base = re.search(r"ARG BASE_IMAGE=pytorch/pytorch:(\d+\.\d+\.\d+)-cuda", DOCKERFILE).group(1)
    declared = re.search(r'"torch(>=[^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert base in SpecifierSet(declared)


def test_entrypoint_is_mrt_train_and_accepts_the_documented_command_lines():
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", DOCKERFILE, re.MULTILINE).group(1))
    assert entrypoint == ["mrt", "train"]
    from mrtcurate.cli import _parser

    documented = [line.strip(" #\\") for line in DOCKERFILE.splitlines() if "--data /data/curated" in line]
    assert len(documented) == 2
    for line in documented:
        options = line[line.index("--data") :].split()
        args = _parser().parse_args(["train", *options])
        assert args.data == "/data/curated" and args.output == "/data/runs/sft"


def test_torchrun_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "mrtcurate.cli", "train", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0 and "--grad-accum" in result.stdout


@pytest.mark.slow
@pytest.mark.network
def test_train_extras_resolve_with_pip():
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", f"{ROOT}[train]"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
