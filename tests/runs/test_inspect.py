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
