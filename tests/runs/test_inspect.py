import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrtcurate.cli import main
from mrtcurate.errors import UserError
from mrtcurate.runs.inspect import inspect
from mrtcurate.schemas import build_config

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"


def ingest(**options):
    return build_config({}, options).ingest


def test_inspect_reads_parquet_through_the_jobs_parser_and_counts_the_head_only(tmp_path):
    rows = [json.loads(line) for line in (SHAPES / "vllm.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows[:2]), tmp_path / "samples.parquet")
    found = inspect(ingest(input=[str(tmp_path / "samples.parquet")], preset="vllm"))
    assert found["files"][0]["format"] == "parquet" and found["layout"] == "grouped"
    assert (found["sample"]["records"], found["sample"]["candidates"], found["sample"]["prompts"]) == (2, 5, 2)
    assert (
        inspect(ingest(input=[str(SHAPES / "vllm.jsonl")], preset="vllm"), records_per_file=1)["sample"]["records"] == 1
    )


def test_inspect_of_a_message_table_joins_the_sample_in_memory():
    found = inspect(ingest(input=[str(SHAPES / "oasst_messages.jsonl")], preset="oasst-messages"))
    sample = found["sample"]
    assert sample["candidates"] + sample["rejected"] + sample["context_messages"] == sample["records"] == 17
    assert sample["rejected_by_reason"]["missing_parent"] == 1
    assert "replies_field" not in found["mapping"] and found["mapping"]["reward_order"] == "lower"


def test_a_mapping_that_fits_nothing_names_the_fields_and_the_preset_that_fits():
    with pytest.raises(UserError) as raised:
        inspect(ingest(input=[str(SHAPES / "alpaca.jsonl")]))
    assert "its fields: input, instruction, output" in str(raised.value) and "--preset alpaca reads candidates" in str(
        raised.value
    )
    with pytest.raises(UserError, match=r"completions\[0\] has no 'respons'"):
        inspect(
            ingest(
                input=[str(SHAPES / "ultrafeedback.jsonl")],
                preset="ultrafeedback",
                response_field="completions[*].respons",
            )
        )


def test_the_screen_shows_layout_mapping_rejects_and_examples(capsys):
    assert main(["inspect", "--preset", "nectar", "--input", str(SHAPES / "nectar.jsonl")]) == 0
    screen = capsys.readouterr().out
    for expected in (
        "layout grouped (as given, preset nectar)",
        "--response-field 'answers[*].answer'",
        "--reward-order lower",
        "missing_prompt 1",
        "example 3",
        "reward 4",
    ):
        assert expected in screen, expected


def test_inspect_shows_terminal_escape_sequences_from_the_data_escaped(tmp_path, capsys):
    # Issue 20: mrt inspect printed raw colour, screen-clear and window-title sequences from the data.
    rows = [
        {"prompt": "What \u001b[2J\u001b]0;title\u0007 is this?", "response": "red \u001b[31mtext\u001b[0m here"}
    ] * 3
    data = tmp_path / "a.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["inspect", "--input", str(data)]) == 0
    shown = capsys.readouterr().out
    assert "\u001b" not in shown and "\u0007" not in shown
    assert "\\x1b[31mtext" in shown and "\\x1b]0;title\\x07" in shown


@pytest.mark.parametrize("compressed", [False, True])
def test_the_sample_is_spread_across_a_file_sorted_by_model(tmp_path, compressed):
    # Issue 20: a file sorted by model showed "1.0 responses per prompt" from its first 200 records.
    import gzip

    lines = "".join(
        json.dumps({"prompt": f"question {p}", "response": f"{model} says {p}"}) + "\n"
        for model in "ABCDE"
        for p in range(2000)
    )
    path = tmp_path / ("sorted.jsonl.gz" if compressed else "sorted.jsonl")
    path.write_bytes(gzip.compress(lines.encode()) if compressed else lines.encode())
    found = inspect(ingest(input=[str(path)]))
    assert found["sample"]["records"] == 200 and found["sample"]["responses_per_prompt"]["max"] >= 2
    assert found["sampled"] == [
        "in 10 windows drawn across the file" if compressed else "in 10 windows across the file"
    ]
    assert inspect(ingest(input=[str(path)]))["examples"] == found["examples"]  # seeded: the same sample again


def test_the_mapping_is_printed_as_flags_a_shell_accepts_that_reproduce_it(tmp_path, capsys):
    # Issue 20: `--prompt-template input` and `--keep-deleted False` could not be pasted back.
    import shlex

    from mrtcurate.cli import run_parser
    from mrtcurate.cli.options import option_values

    data = tmp_path / "a.jsonl"
    data.write_text(json.dumps({"instruction": "Add", "input": "2 and 3", "output": "5", "meta": {"score": 1}}) + "\n")
    typed = [
        "--prompt-template",
        "{instruction}\\n\\n{input}",
        "--response-field",
        "output",
        "--reward-field",
        "meta.score",
    ]
    assert main(["inspect", "--input", str(data), *typed]) == 0
    printed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mapping "))
    flags = shlex.split(printed.removeprefix("mapping "))
    assert "--prompt-field" not in flags
    pasted = build_config({}, option_values(run_parser().parse_args(["--input", str(data), *flags])))
    original = build_config({}, option_values(run_parser().parse_args(["--input", str(data), *typed])))
    assert pasted.ingest == original.ingest
