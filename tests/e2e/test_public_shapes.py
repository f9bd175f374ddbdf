"""Each public corpus shape through the real pipeline, by the README's own example command for its preset,
run as written (default embedder included) on a hand-made file of that shape in tests/fixtures/shapes."""

import gzip
import json
import shlex
import shutil
from pathlib import Path

import pytest

from mrtcurate.cli import main
from mrtcurate.cli.options import README
from mrtcurate.schemas.presets import PRESETS
from tests.helpers import read_rows

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"

# Per preset: input records, rejects by reason, prompts and (tree layout) context messages, from the
# fixtures' design (each file's comments name the malformed records).
EXPECTED = {
    "ultrafeedback": (
        11,
        {"empty_list": 1, "empty_response": 1, "invalid_reward": 1, "missing_response": 1, "not_a_list": 1},
        2,
        None,
    ),
    "nectar": (8, {"missing_prompt": 1, "not_a_list": 1}, 2, None),
    "vllm": (9, {"empty_list": 1, "missing_response": 1, "truncated_response": 1}, 3, None),
    "sharegpt": (5, {"invalid_messages": 2}, 2, None),
    "alpaca": (6, {"empty_response": 1, "missing_template_field": 1}, 3, None),
    "oasst": (11, {"deleted_message": 3, "empty_response": 1, "failed_review": 1, "missing_prompt": 1}, 3, 4),
    "oasst-nested": (11, {"deleted_message": 3, "empty_response": 1, "failed_review": 1, "invalid_messages": 1}, 3, 4),
    "oasst-messages": (
        13,
        {
            "deleted_message": 3,
            "duplicate_message_id": 1,
            "empty_response": 1,
            "failed_review": 1,
            "missing_id": 1,
            "missing_parent": 1,
        },
        3,
        4,
    ),
    "hh-rlhf": (8, {"empty_response": 1}, 4, None),
    "ultrafeedback-binarized": (6, {"invalid_messages": 1}, 3, None),
}


def run_example(command: str, cwd: Path, monkeypatch) -> int:
    argv = shlex.split(command)
    assert argv[0] == "mrt"
    fixture = argv[argv.index("--input") + 1]
    shutil.copy(SHAPES / fixture, cwd / fixture)
    monkeypatch.chdir(cwd)
    return main(["-q", *argv[1:]])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PRESETS))
def test_each_presets_readme_example_runs_as_written(name, tmp_path, monkeypatch):
    preset = PRESETS[name]
    assert f"`{preset.example}`" in README.read_text(encoding="utf-8")
    assert run_example(preset.example, tmp_path, monkeypatch) == 0
    manifest = json.loads((tmp_path / "curated" / "manifest.json").read_text())
    counts = manifest["counts"]
    records, reasons, prompts, context = EXPECTED[name]
    assert counts["input_records"] == records and manifest["rejected_by_reason"] == reasons
    assert counts["input_records"] == counts["rejected"] + counts["duplicates_merged"] + counts["candidates"]
    assert counts["prompts"] == prompts and counts.get("context_messages") == context
    rows = read_rows(tmp_path / "curated")
    assert len(rows) == counts["selected"] > 0
    check_shape(name, rows)


def check_shape(name: str, rows: list[dict]) -> None:
    rewards = {row["completion"]: row["reward"] for row in rows}
    if name == "ultrafeedback":
        assert rewards["17, since it has no divisors but 1 and itself."] == 9.0  # each response its own score
    if name == "nectar":
        egg = next(row for row in rows if row["completion"] == "Put it in boiling water for 9 minutes.")
        assert egg["reward"] == 1.0  # ranks written as given
        # The "\n\nHuman: ...\n\nAssistant:" prompt becomes its turns.
        assert egg["prompt"] == "How do I boil an egg?" and [turn["role"] for turn in egg["messages"]] == [
            "user",
            "assistant",
        ]
    if name == "alpaca":
        assert {row["prompt"] for row in rows} >= {
            "Give three tips for staying healthy.",
            "Summarise the text.\n\nThe cat sat on the mat all day.",
        }
    if name == "sharegpt":
        arctic = next(row for row in rows if row["completion"] == "The Arctic Ocean.")
        assert [turn["role"] for turn in arctic["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    if name in ("oasst", "oasst-nested", "oasst-messages"):
        deep = next(row for row in rows if row["completion"] == "How about Nemo the Second?")
        assert len(deep["messages"]) == 4 and deep["reward"] == 0.0
        assert "Spam spam spam" not in rewards and "Sorry, never mind." not in rewards
    if name == "hh-rlhf":
        breakfast = next(row for row in rows if row["completion"] == "Try oatmeal with fruit instead.")
        assert [turn["role"] for turn in breakfast["messages"]] == ["user", "assistant", "user", "assistant"]
    if name in ("hh-rlhf", "ultrafeedback-binarized"):
        best = {"hh-rlhf": {1.0, 0.0}, "ultrafeedback-binarized": {8.0, 9.0, 1.0}}[name]
        assert set(rewards.values()) == best  # topk --k 1 keeps the chosen side wherever it survived


@pytest.mark.slow
def test_topk_with_ranks_keeps_the_best_rank_and_merged_copies_keep_the_best(tmp_path):
    rows = [
        {
            "prompt": "Pick one.",
            "answers": [
                {"answer": "Same answer.", "rank": 3},
                {"answer": "Same answer.", "rank": 1},
                {"answer": "Other.", "rank": 2},
            ],
        }
    ]
    (tmp_path / "ranks.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    code = main(
        [
            "-q",
            "run",
            "--preset",
            "nectar",
            "--input",
            str(tmp_path / "ranks.jsonl"),
            "--output",
            str(tmp_path / "out"),
            "--selector",
            "topk",
            "--k",
            "1",
            "--embedder",
            "hashing",
        ]
    )
    assert code == 0
    [kept] = read_rows(tmp_path / "out")
    assert (kept["completion"], kept["reward"], kept["multiplicity"]) == ("Same answer.", 1.0, 2)


def test_inspect_readme_command_prints_one_json_object(tmp_path, monkeypatch, capsys):
    shutil.copy(SHAPES / "ultrafeedback.jsonl", tmp_path / "ultrafeedback.jsonl")
    monkeypatch.chdir(tmp_path)
    command = "mrt inspect --preset ultrafeedback --input ultrafeedback.jsonl --json"
    assert f".venv/bin/{command}" in README.read_text(encoding="utf-8")
    assert main(shlex.split(command)[1:]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["layout"] == "grouped" and found["preset"] == "ultrafeedback"
    assert found["mapping"]["response_field"] == "completions[*].response"
    assert found["sample"]["candidates"] == 6 and found["sample"]["rejected"] == 5 and found["sample"]["prompts"] == 2
    assert found["examples"][0] == {
        "prompt": "Name a prime number above 10.",
        "completion": "11 is prime.",
        "reward": 7.5,
    }


@pytest.mark.slow
def test_the_curating_your_own_data_commands_run_as_written(tmp_path, monkeypatch):
    """The README's first code block under "Curating your own data", on a small gzipped corpus in data/."""
    readme = README.read_text(encoding="utf-8")
    block = readme.split("## Curating your own data", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.removeprefix(".venv/bin/") for line in block.splitlines() if line.strip()]
    assert len(commands) == 4 and all(command.startswith("mrt ") for command in commands)
    (tmp_path / "data").mkdir()
    rows = [
        {"prompt": f"question {i % 7}", "response": f"answer {i} to question {i % 7}", "score": i % 5}
        for i in range(70)
    ]
    with gzip.open(tmp_path / "data" / "part-0.jsonl.gz", "wt") as file:
        file.writelines(json.dumps(row) + "\n" for row in rows)
    shutil.copy(SHAPES / "ultrafeedback.jsonl", tmp_path / "ultrafeedback.jsonl")
    (tmp_path / "run.yaml").write_text("input: ['data/*.jsonl.gz']\noutput: curated-8/\nreward_field: score\n")
    monkeypatch.chdir(tmp_path)
    for command in commands:
        assert main(["-q", *shlex.split(command)[1:]]) == 0, command
    assert json.loads((tmp_path / "curated" / "manifest.json").read_text())["counts"]["selected"] == 7 * 4
    assert json.loads((tmp_path / "curated-8" / "manifest.json").read_text())["counts"]["selected"] == 7 * 8
