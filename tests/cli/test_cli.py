import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mrtcurate.cli import main
from tests.conftest import write_jsonl

ROWS = [{"q": f"question {i % 5}", "a": f"answer {i}", "s": i % 3} for i in range(30)]


def test_run_with_config_file_cli_override_and_beam_args(tmp_path, capsys):
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: [{data}]\noutput: {tmp_path / 'out'}\nprompt_field: q\nresponse_field: a\nreward_field: s\n"
        "k: 2\nembedder: hashing\nselector: topk\n"
    )
    code = main(["-q", "run", "--config", str(config), "--k", "3", "--", "--direct_num_workers=1"])
    assert code == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["k"] == 3 and manifest["config"]["selector"] == "topk"
    assert manifest["counts"]["selected"] == 15
    assert "holds" in capsys.readouterr().out


def test_bad_input_is_a_one_line_error_with_exit_code_2(tmp_path, capsys):
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    assert main(["run", "--input", str(data), "--output", str(tmp_path / "o"), "--embedder", "hashing"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "--prompt-field 'prompt'" in error and "\n" not in error


def test_unknown_config_key(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("input: [x]\noutput: o\nreward_feild: s\n")
    assert main(["run", "--config", str(config)]) == 2
    assert "unknown option 'reward_feild'" in capsys.readouterr().err


@pytest.mark.slow
def test_output_refused_without_overwrite(tmp_path, capsys):
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    args = [
        "-q",
        "run",
        "--input",
        str(data),
        "--output",
        str(tmp_path / "out"),
        "--prompt-field",
        "q",
        "--response-field",
        "a",
        "--embedder",
        "hashing",
    ]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--near-dup", "off"]) == 0
    assert sorted(p.name for p in (tmp_path).iterdir()) == ["data.jsonl", "out"]  # no staging left behind
    assert not (tmp_path / "out" / ".shuffle").exists()  # the groupings' segment files (pipeline/spill.py) neither


def test_qd_options_reach_the_manifest(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    args = [
        "-q",
        "run",
        "--input",
        str(data),
        "--output",
        str(tmp_path / "out"),
        "--prompt-field",
        "q",
        "--response-field",
        "a",
        "--embedder",
        "hashing",
        "--selector",
        "qd",
        "--lambda",
        "0.25",
        "--diversity",
        "logdet",
        "--merge-prompts",
        "0.99",
        "--k",
        "2",
    ]
    assert main(args) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["lambda"] == 0.25 and manifest["config"]["diversity"] == "logdet"
    assert manifest["selection"] == {
        "selector": "qd",
        "k": 2,
        "diversity_only_prompts": 5,
        "note": manifest["selection"]["note"],
    }
    assert "diversity-only" in manifest["selection"]["note"]
    assert manifest["counts"]["prompts_before_merge"] == 5


@pytest.mark.slow
def test_plan_json_is_one_object_and_k_auto_uses_it(tmp_path, capsys):
    rows = [
        {
            "q": f"question {i % 6}",
            "a": f"answer {i % 4} to question {i % 6} variant {i}",
            "f": [float(i % 6), float(i % 4)],
            "s": i % 5,
        }
        for i in range(60)
    ]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    common = ["--input", str(data), "--prompt-field", "q", "--response-field", "a", "--embedder", "hashing"]
    assert main(["-q", "plan", *common, "--json", "--feature-column", "f"]) == 0
    plan = json.loads(capsys.readouterr().out)
    for key in (
        "prompts",
        "responses",
        "effective_prompts",
        "sigma_b2",
        "sigma_w2",
        "rho",
        "sigma_b2_ci",
        "sigma_w2_ci",
        "recommended_k",
        "k_table",
    ):
        assert key in plan
    assert plan["prompts"] == 6 and plan["responses"] == 60 and plan["k_max"] == 10
    assert plan["qd_frontier"] is None  # no rewards: qd has no quality to trade against coverage
    assert main(["-q", "plan", *common, "--json", "--reward-field", "s", "--k", "3"]) == 0
    frontier = json.loads(capsys.readouterr().out)["qd_frontier"]
    assert (
        frontier["pools"] == 6
        and frontier["k"] == 3
        and frontier["recommended_lambda"] in [p["lambda"] for p in frontier["points"]]
    )
    assert main(["-q", "plan", *common, "--reward-field", "s", "--k", "3"]) == 0
    assert f"recommended lambda {frontier['recommended_lambda']}" in capsys.readouterr().out
    # Feature (i % 6, i % 4): the first coordinate is constant within a prompt, the second varies.
    assert plan["sigma_w2"] > 0 and plan["sigma_b2"] > 0
    assert main(["-q", "run", *common, "--feature-column", "f", "--k", "auto", "--output", str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (
        manifest["selection"]["k"] == plan["recommended_k"]
        and manifest["selection"]["k_from"] == "planner recommended_k"
    )
    # Issue 20: `--k auto` never said which K it used.
    assert f"K = {plan['recommended_k']} per prompt, the planner's recommendation" in capsys.readouterr().out
    assert manifest["planner"]["recommended_k"] == plan["recommended_k"]
    assert manifest["counts"]["selected"] == 6 * min(plan["recommended_k"], 10)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--k", "abc", "invalid configuration: k: Input should be a valid integer"),
        ("--near-dup", "high", "invalid configuration: near_dup: "),
        ("--seed", "x", "invalid configuration: seed: Input should be a valid integer"),
        ("--selector", "best", "argument --selector: invalid choice: 'best'"),
        ("--lambda", "2", "invalid configuration: lambda: Input should be less than or equal to 1"),
    ],
)
def test_bad_option_values_are_one_line_naming_the_option(tmp_path, capsys, flag, value, message):
    try:
        code = main(["run", "--input", "x.jsonl", "--output", str(tmp_path / "o"), flag, value])
    except SystemExit as exited:  # argparse's own checks (choices) exit from the parser
        code = exited.code
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error and "usage" not in error


@pytest.mark.slow
def test_ctrl_c_prints_one_line_exits_130_and_leaves_nothing(tmp_path):
    rows = [{"prompt": f"question {i % 2000}", "response": f"answer {i} " + "w" * 40} for i in range(40_000)]
    data = write_jsonl(tmp_path / "in.jsonl", rows)
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mrtcurate.cli",
            "run",
            "--input",
            str(data),
            "--output",
            str(tmp_path / "out"),
            "--embedder",
            "hashing",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        # A shell's background jobs (CI scripts) start with SIGINT ignored, which the child would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - runs before exec, touches no lock
    )
    deadline = time.time() + 120
    while not list(tmp_path.glob(".out.staging-*")) and run.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # inside the job
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted: nothing was published" and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@pytest.mark.slow
def test_quiet_run_prints_no_model_loading_bars(tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"q{i % 3}", "response": f"answer {i}"} for i in range(12)])
    run = subprocess.run(
        [sys.executable, "-m", "mrtcurate.cli", "-q", "run", "--input", str(data), "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "Loading weights" not in run.stderr and "it/s" not in run.stderr
    assert run.stderr.strip() == ""


def test_counts_that_do_not_add_up_fail_in_one_line_and_publish_nothing(tmp_path, capsys, monkeypatch):
    from mrtcurate.pipeline import manifest as manifest_stage
    from mrtcurate.schemas.manifest import AccountingError

    def lost_records(*args, **kwargs):
        raise AccountingError("input_records 12 != rejected + duplicates_merged + candidates 11 (counts: ...)")

    monkeypatch.setattr(manifest_stage, "build_manifest", lost_records)
    data = write_jsonl(tmp_path / "a.jsonl", [{"prompt": f"q{i % 3}", "response": f"a{i}"} for i in range(12)])
    code = main(["run", "--input", str(data), "--output", str(tmp_path / "out"), "--embedder", "hashing"])
    error = capsys.readouterr().err
    assert code == 1 and "Traceback" not in error
    assert "job failed: the job's counts do not add up: input_records 12 != " in " ".join(error.split())
    assert not (tmp_path / "out").exists()
