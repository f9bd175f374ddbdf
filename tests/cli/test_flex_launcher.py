import json
import subprocess
import sys
from pathlib import Path

import pytest

from mrtcurate.cli import run_parser
from mrtcurate.cli.flex_launcher import split_template_args
from mrtcurate.cli.options import template_metadata

ROOT = Path(__file__).resolve().parents[2]


def test_committed_metadata_matches_the_cli():
    committed = json.loads((ROOT / "docker" / "flex-template" / "metadata.json").read_text())
    assert committed == template_metadata()
    names = {parameter["name"] for parameter in committed["parameters"]}
    assert names <= {action.dest for action in run_parser()._actions}  # each parameter is an `mrt run` flag
    assert {"input", "output", "selector", "k", "reward_field", "near_dup", "lambda"} <= names
    required = {p["name"] for p in committed["parameters"] if not p["isOptional"]}
    assert required == {"input", "output"}


def test_template_arguments_split_between_mrt_and_beam():
    ours, beam = split_template_args(
        [
            "--input=gs://a/*.jsonl, gs://b/*.parquet",
            "--output=gs://o/run",
            "--reward_field=score",
            "--k=auto",
            "--overwrite=true",
            "--plan=false",
            "--runner=DataflowRunner",
            "--project=p",
            "--region=r",
            "--sdk_container_image=img:1",
            "--temp_location=gs://b/tmp",
        ]
    )
    assert ours == [
        "--input=gs://a/*.jsonl",
        "--input=gs://b/*.parquet",
        "--output=gs://o/run",
        "--reward-field=score",
        "--k=auto",
        "--overwrite",
        "--no-plan",
    ]
    assert beam == [
        "--runner=DataflowRunner",
        "--project=p",
        "--region=r",
        "--sdk_container_image=img:1",
        "--temp_location=gs://b/tmp",
    ]


def test_worker_requirements_agree_with_the_package():
    requirements = {
        line.split(">=")[0].split("==")[0].split("[")[0]
        for line in (ROOT / "docker" / "worker-requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    import re
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {re.split(r"[<>=\[;\s]", dependency, maxsplit=1)[0] for dependency in dependencies}
    assert declared - {"torch"} == requirements


@pytest.mark.slow
@pytest.mark.network
def test_worker_requirements_resolve_with_pip():
    # --dry-run resolves against the index and what is installed, without changing the environment.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "-r",
            str(ROOT / "docker" / "worker-requirements.txt"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
